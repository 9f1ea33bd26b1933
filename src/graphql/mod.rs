//! The GraphQL schema: translation between GraphQL and the contacts domain, nothing else.

pub mod codes;
mod connection;
mod contact;
pub mod documents;
mod inputs;
pub mod limits;
mod mutation;
mod query;
pub mod scalars;
mod subscription;

use async_graphql::{Context, ID, Schema, SchemaBuilder};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::limits::Limits;
pub use self::{mutation::MutationRoot, query::QueryRoot, subscription::SubscriptionRoot};
use crate::{contacts::ContactService, error::AppError};

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// "Now" for one request, read once so the SQL filter and every `whatsappWindowOpen` agree.
#[derive(Debug, Clone, Copy)]
pub struct RequestNow(pub DateTime<Utc>);

/// The schema without data: shared by the server, the SDL export and tests.
pub fn schema_builder(limits: &Limits) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .extension(codes::ErrorCodes)
        .extension(limits::LimitsExtension::new(*limits))
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

/// The schema the server runs.
pub fn build_schema(service: ContactService, limits: &Limits) -> AppSchema {
    schema_builder(limits).data(service).finish()
}

/// The SDL, as written to `schema.graphql`.
pub fn sdl() -> String {
    schema_builder(&Limits::default()).finish().sdl()
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
