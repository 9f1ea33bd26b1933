//! The schema's one extension: the policy ([`super::policy`]), the operation limits
//! ([`super::limits`]) and the error codes ([`super::codes`]) for every operation, whatever
//! carried it.
//!
//! One registration, not three: once any extension is registered, async-graphql runs every
//! extension's `resolve` hook around every field (a boxed future each), so each extension
//! costs every field of every response. With the three as separate extensions that overhead
//! was about a tenth of the server's CPU on a page of 50 contacts (BENCHMARKS.md).

use std::sync::Arc;

use async_graphql::{
    Request, Response, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextResolve, NextSubscribe, NextValidation, ResolveInfo,
    },
    futures_util::stream::BoxStream,
    parser::types::ExecutableDocument,
};

use super::{
    codes,
    limits::{Checker, OperationLimits},
    policy::{Policy, PolicyCheck},
};
use crate::error::ErrorCode;

/// The factory registered on the schema: one [`RequestChecks`] per operation.
pub struct Checks {
    policy: Policy,
    limits: OperationLimits,
}

impl Checks {
    pub fn new(policy: Policy, limits: OperationLimits) -> Self {
        Self { policy, limits }
    }
}

impl ExtensionFactory for Checks {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestChecks {
            policy: self.policy.check(),
            limits: self.limits.checker(),
        })
    }
}

struct RequestChecks {
    policy: PolicyCheck,
    limits: Checker,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestChecks {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        self.policy.request(ctx, next).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        self.policy.subscribe(ctx, stream, next)
    }

    /// The policy refuses first, before the document is even parsed; then the document is
    /// parsed (or taken from the cache) within the limits; then the policy decides on what
    /// the document asks for.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let admitted = self.policy.admit(ctx, &request)?;
        let request = self.limits.prepare(request)?;
        let request = next.run(ctx, request).await?;
        self.policy.authorise(admitted, request)
    }

    /// Runs even for a document the limits already parsed: async-graphql checks directives
    /// per field and recursion depth here, and their refusals need a code too.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|err| codes::with_code(err, ErrorCode::GraphqlParseFailed))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<async_graphql::ServerError>> {
        let result = next.run(ctx).await.map_err(codes::validation_failed)?;
        self.limits.validated(result)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        self.policy.resolve(ctx, info, next).await
    }
}
