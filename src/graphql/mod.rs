//! The GraphQL schema: translation between GraphQL and the contacts domain, nothing else.

mod changes;
pub mod checks;
pub mod codes;
mod connection;
mod contact;
pub mod documents;
mod inbound;
mod inputs;
pub mod limits;
mod messaging;
mod mutation;
pub mod operation;
pub mod outcome;
mod plain_fields;
pub mod policy;
mod query;
pub mod scalars;
mod subscription;

use std::sync::Arc;

use async_graphql::{Context, ID, Schema, SchemaBuilder};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::limits::Limits;
pub use self::{mutation::MutationRoot, query::QueryRoot, subscription::SubscriptionRoot};
use crate::{contacts::ContactService, error::AppError, metrics::Metrics, rate_limit::RateLimit};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// "Now" for one request, read once so the SQL filter and every `whatsappWindowOpen` agree.
#[derive(Debug, Clone, Copy)]
pub struct RequestNow(pub DateTime<Utc>);

/// The schema without data: shared by the server, the SDL export and tests.
///
/// One extension ([`checks`]): the policy (who may run what, how often) refuses before the
/// document is parsed within the limits, and decides on what that parse found.
pub fn schema_builder(
    limits: &Limits,
    policy: policy::Policy,
) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .extension(checks::Checks::new(
            policy,
            limits::OperationLimits::new(*limits),
        ))
        .limit_complexity(limits.max_complexity)
        .limit_directives(limits.max_directives);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if !limits.suggestions {
        builder = builder.disable_suggestions();
    }
    builder
}

/// The schema the server runs: every operation counts against `rate_limit` and is observed
/// in `metrics`.
pub fn build_schema(
    service: ContactService,
    limits: &Limits,
    rate_limit: Arc<RateLimit>,
    metrics: Arc<Metrics>,
) -> AppSchema {
    let policy = policy::Policy {
        rate_limit,
        metrics,
    };
    schema_builder(limits, policy).data(service).finish()
}

/// The SDL, as written to `schema.graphql`.
pub fn sdl() -> String {
    let policy = policy::Policy {
        rate_limit: Arc::new(RateLimit::new(0, 0)),
        metrics: Arc::default(),
    };
    sdl_of(&schema_builder(&Limits::default(), policy).finish())
}

/// The SDL of `schema` as introspection describes it: async-graphql's default export leaves
/// out `@specifiedBy(url:)` on scalars, which introspection reports as `specifiedByURL`.
pub fn sdl_of(schema: &AppSchema) -> String {
    schema.sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

pub(crate) fn service<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a ContactService> {
    ctx.data::<ContactService>()
}

pub(crate) fn request_now(ctx: &Context<'_>) -> DateTime<Utc> {
    match ctx.data_opt::<RequestNow>() {
        Some(now) => now.0,
        None => ctx
            .data_opt::<ContactService>()
            .map(ContactService::now)
            .unwrap_or_else(Utc::now),
    }
}

pub(crate) fn parse_id(id: &ID, field: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::validation(field, format!("`{field}` is not a contact id")))
}
