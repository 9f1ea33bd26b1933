//! Who may run what, and how often: every operation passes here, whatever carried it (HTTP
//! POST, GET, either WebSocket protocol), so no transport can skip a rule. The transport only
//! says who is calling ([`Caller`]); this layer decides.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult,
    extensions::{ExtensionContext, NextRequest, NextResolve, NextSubscribe, ResolveInfo},
    futures_util::stream::{self, BoxStream, StreamExt},
    parser::types::OperationType,
};

use super::{
    RequestNow, codes,
    operation::{record_operation, selected_operation},
    outcome::{label_errors, metrics_kind, outcome_of},
};
use crate::{
    auth::{Principal, Scope},
    contacts::ContactService,
    error::{AppError, ErrorCode},
    metrics::Metrics,
    rate_limit::RateLimit,
};

/// How an operation arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /graphql?query=`: may only read.
    HttpGet,
    HttpPost,
    WebSocket,
}

/// Who is calling and how: put into the request data (HTTP) or the connection's session data
/// (WebSocket) by the transport. An operation without one is refused.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub address: IpAddr,
    pub transport: Transport,
}

impl Caller {
    /// The bucket the caller's operations count against: the credential, or the address of an
    /// anonymous caller.
    pub fn rate_limit_key(&self) -> String {
        if self.principal.is_anonymous() {
            crate::rate_limit::address_key(self.address)
        } else {
            self.principal.id.clone()
        }
    }
}

/// Operations a WebSocket connection may have running at once (subscriptions included): put
/// into the connection's session data by the transport.
#[derive(Debug, Clone)]
pub struct ConnectionOperations {
    running: Arc<AtomicUsize>,
    max: usize,
}

impl ConnectionOperations {
    pub fn new(max: usize) -> Self {
        Self {
            running: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot for one more operation, released when the returned guard drops.
    fn acquire(&self) -> Option<OperationSlot> {
        let taken = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < self.max).then_some(running + 1)
            });
        taken.ok().map(|_| OperationSlot(self.running.clone()))
    }
}

struct OperationSlot(Arc<AtomicUsize>);

impl Drop for OperationSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The policy the schema's extension ([`super::checks`]) applies.
pub struct Policy {
    pub rate_limit: Arc<RateLimit>,
    pub metrics: Arc<Metrics>,
}

impl Policy {
    /// The policy's state for one request.
    pub(super) fn check(&self) -> PolicyCheck {
        PolicyCheck {
            rate_limit: self.rate_limit.clone(),
            metrics: self.metrics.clone(),
            kind: Mutex::new(None),
            root_fields: tokio::sync::Semaphore::new(MAX_PARALLEL_ROOT_FIELDS),
        }
    }
}

/// One per request.
pub(super) struct PolicyCheck {
    rate_limit: Arc<RateLimit>,
    metrics: Arc<Metrics>,
    /// The operation's type once known, for the metrics.
    kind: Mutex<Option<OperationType>>,
    /// Places for the root fields running at once.
    root_fields: tokio::sync::Semaphore,
}

/// Root fields of one query resolved at once. GraphQL runs a query's root fields
/// concurrently; each may hold a database connection, so without a bound one document of
/// aliased fields could take the whole pool and starve every other request.
pub const MAX_PARALLEL_ROOT_FIELDS: usize = 2;

/// A refusal before anything ran: no location in the document to point at.
fn refusal(err: AppError) -> ServerError {
    let err: async_graphql::Error = err.into();
    let mut refused = ServerError::new(err.message, None);
    refused.extensions = err.extensions;
    refused
}

fn coded(message: &str, code: ErrorCode) -> ServerError {
    codes::with_code(ServerError::new(message, None), code)
}

/// Who is calling, admitted before the document is looked at.
pub(super) struct Admitted {
    caller: Caller,
    now: chrono::DateTime<chrono::Utc>,
}

impl PolicyCheck {
    /// A whole query or mutation (not a subscription): gives every error a code and counts
    /// the outcome.
    pub(super) async fn request(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextRequest<'_>,
    ) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        label_errors(&mut response);
        let kind = self.kind.lock().ok().and_then(|kind| *kind);
        let outcome = outcome_of(&response);
        self.metrics
            .observe(metrics_kind(kind), outcome, started.elapsed());
        tracing::Span::current().record("outcome", outcome.label());
        response
    }

    /// Before the document is parsed: a caller with a live credential, within its rate.
    pub(super) fn admit(
        &self,
        ctx: &ExtensionContext<'_>,
        request: &Request,
    ) -> ServerResult<Admitted> {
        let caller = request
            .data
            .get(&std::any::TypeId::of::<Caller>())
            .and_then(|data| data.downcast_ref::<Caller>())
            .or_else(|| ctx.data_opt::<Caller>())
            .cloned()
            .ok_or_else(|| refusal(AppError::Unauthenticated))?;
        let now = ctx
            .data_opt::<ContactService>()
            .map_or_else(chrono::Utc::now, ContactService::now);
        // A WebSocket connection outlives its credential: each operation checks it again.
        if caller.principal.expires_at.is_some_and(|exp| exp <= now) {
            return Err(refusal(AppError::Unauthenticated));
        }
        // Counted before the document is even parsed: refusing is the cheap part.
        if let Err(wait) = self.rate_limit.check(&caller.rate_limit_key()) {
            return Err(refusal(AppError::RateLimited(wait.as_secs().max(1))));
        }
        Ok(Admitted { caller, now })
    }

    /// Once the document is parsed: may this caller run its operation, over this transport?
    pub(super) fn authorise(
        &self,
        admitted: Admitted,
        mut request: Request,
    ) -> ServerResult<Request> {
        let name = request.operation_name.clone();
        let doc = request
            .parsed_query()
            .map_err(|err| codes::with_code(err, ErrorCode::GraphqlParseFailed))?;
        let operation = selected_operation(doc, name.as_deref());
        record_operation(&operation);
        if let Ok(mut kind) = self.kind.lock() {
            *kind = operation.kind;
        }
        authorise(&admitted.caller, operation.kind)?;
        // GraphQL's "single root field" rule, which async-graphql does not check: one
        // subscription must not fan out into many streams.
        if operation.kind == Some(OperationType::Subscription) && operation.root_fields != 1 {
            let message = "a subscription selects exactly one root field";
            return Err(coded(message, ErrorCode::GraphqlValidationFailed));
        }
        request.data.insert(RequestNow(admitted.now));
        Ok(request)
    }

    /// A field: root fields of one query wait for a place ([`MAX_PARALLEL_ROOT_FIELDS`]).
    pub(super) async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        // Never closed, so acquiring only fails if it were; then run unbounded.
        let _place = self.root_fields.acquire().await.ok();
        next.run(ctx, info).await
    }

    /// A subscription: counted against its connection's budget of operations.
    pub(super) fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Errors raised before the stream ran (no operation selected...) pass no `request`
        // hook over WebSocket: they get their code here.
        let labelled = |mut response: Response| {
            label_errors(&mut response);
            response
        };
        // Only WebSocket connections carry a budget; without one nothing is counted.
        let Some(budget) = ctx.data_opt::<ConnectionOperations>() else {
            return next.run(ctx, stream).map(labelled).boxed();
        };
        match budget.acquire() {
            Some(slot) => next
                .run(ctx, stream)
                .map(move |response| {
                    let _held = &slot;
                    labelled(response)
                })
                .boxed(),
            None => {
                let message = format!(
                    "this connection already runs {} operations; complete one first",
                    budget.max
                );
                let error = coded(&message, ErrorCode::RateLimited);
                stream::once(async move { Response::from_errors(vec![error]) }).boxed()
            }
        }
    }
}

/// The rules: mutations need a write credential and POST (or a WebSocket); subscriptions
/// need a WebSocket.
fn authorise(caller: &Caller, kind: Option<OperationType>) -> ServerResult<()> {
    match (kind, caller.transport) {
        (Some(OperationType::Mutation), _) if caller.principal.scope < Scope::Write => {
            Err(refusal(AppError::Forbidden(
                "this credential may only read; mutations need write".into(),
            )))
        }
        (Some(OperationType::Mutation), Transport::HttpGet) => Err(refusal(
            AppError::MethodNotAllowed("mutations are not allowed over GET; use POST".into()),
        )),
        (Some(OperationType::Subscription), Transport::HttpGet | Transport::HttpPost) => {
            Err(coded(
                "subscriptions are served over WebSocket at /graphql/ws",
                ErrorCode::BadRequest,
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    /// A root field that records how many of its kind run at once.
    struct Probe {
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    #[Object]
    impl Probe {
        async fn slow(&self) -> bool {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            true
        }
    }

    #[tokio::test]
    async fn a_query_runs_at_most_two_root_fields_at_once() {
        let peak = Arc::new(AtomicUsize::new(0));
        let probe = Probe {
            running: Arc::default(),
            peak: peak.clone(),
        };
        let policy = Policy {
            rate_limit: Arc::new(RateLimit::new(0, 0)),
            metrics: Arc::default(),
        };
        let limits = super::super::limits::OperationLimits::new(Default::default());
        let schema = Schema::build(probe, EmptyMutation, EmptySubscription)
            .extension(super::super::checks::Checks::new(policy, limits))
            .finish();
        let request = Request::new("{ a: slow b: slow c: slow d: slow e: slow }")
            .data(caller(Scope::Read, Transport::HttpPost));
        let response = schema.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert_eq!(peak.load(Ordering::SeqCst), MAX_PARALLEL_ROOT_FIELDS);
    }

    use std::net::Ipv4Addr;

    use super::*;

    fn caller(scope: Scope, transport: Transport) -> Caller {
        Caller {
            principal: Principal {
                id: "key:abc".into(),
                scope,
                expires_at: None,
            },
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            transport,
        }
    }

    fn code(result: ServerResult<()>) -> Option<String> {
        let err = result.err()?;
        err.extensions?.get("code").map(|code| code.to_string())
    }

    #[test]
    fn read_credentials_never_mutate_on_any_transport() {
        for transport in [
            Transport::HttpGet,
            Transport::HttpPost,
            Transport::WebSocket,
        ] {
            let read = caller(Scope::Read, transport);
            assert_eq!(
                code(authorise(&read, Some(OperationType::Mutation))).as_deref(),
                Some("\"FORBIDDEN\""),
                "{transport:?}"
            );
            assert!(authorise(&read, Some(OperationType::Query)).is_ok());
        }
        let write = caller(Scope::Write, Transport::WebSocket);
        assert!(authorise(&write, Some(OperationType::Mutation)).is_ok());
        let get = caller(Scope::Write, Transport::HttpGet);
        assert_eq!(
            code(authorise(&get, Some(OperationType::Mutation))).as_deref(),
            Some("\"METHOD_NOT_ALLOWED\"")
        );
    }

    #[test]
    fn a_connection_runs_at_most_its_budget_at_once() {
        let budget = ConnectionOperations::new(2);
        let first = budget.acquire();
        let second = budget.acquire();
        assert!(first.is_some() && second.is_some());
        assert!(budget.acquire().is_none());
        drop(first);
        assert!(budget.acquire().is_some());
    }
}
