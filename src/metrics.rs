//! Prometheus metrics: GraphQL requests and latency by operation type and outcome, database
//! pool occupancy, and rows read for subscription events.

use std::{sync::Mutex, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::db::PoolStats;

pub mod webhook;
pub mod webhook_out;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum OperationType {
    Query,
    Mutation,
    Subscription,
    /// The document did not parse, or named no runnable operation.
    Unknown,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Errors caused by the request (bad input, not found, conflict...).
    ClientError,
    /// `INTERNAL_SERVER_ERROR`.
    ServerError,
}

impl OperationType {
    pub fn label(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
            Self::Subscription => "subscription",
            Self::Unknown => "unknown",
        }
    }
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation_type: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    role: &'static str,
    state: &'static str,
}

/// The service's metrics; one registry per app, so tests can run several apps in one process.
pub struct Metrics {
    registry: Registry,
    requests: Family<OperationLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    pool: Family<PoolLabels, Gauge>,
    /// `POST /webhooks/whatsapp`.
    pub webhook: webhook::WebhookMetrics,
    /// Outgoing webhooks (`WEBHOOK_URLS`).
    pub webhook_out: webhook_out::WebhookOutMetrics,
    /// Serialises scrapes, which refresh the pool gauges before encoding.
    scrape: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00025, 2.0, 16,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<OperationLabels, Counter>::default();
        let latency = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations served",
            requests.clone(),
        );
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL operation latency",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by role and state",
            pool.clone(),
        );
        let webhook = webhook::WebhookMetrics::default();
        webhook.register(&mut registry);
        let webhook_out = webhook_out::WebhookOutMetrics::default();
        webhook_out.register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            pool,
            webhook,
            webhook_out,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    pub fn observe(&self, operation_type: OperationType, outcome: Outcome, elapsed: Duration) {
        let labels = OperationLabels {
            operation_type: operation_type.label(),
            outcome: outcome.label(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Also exposes `reads` (the service's [`event_row_reads`]) as
    /// `contact_event_row_reads_total`.
    ///
    /// [`event_row_reads`]: crate::contacts::ContactService::event_row_reads
    pub fn with_event_row_reads(mut self, reads: Counter) -> Self {
        self.registry.register(
            "contact_event_row_reads",
            "Contact rows read to deliver change events to subscribers",
            reads,
        );
        self
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self, pools: &[PoolStats]) -> String {
        let _guard = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for stats in pools {
            let set = |state, value: u32| {
                self.pool
                    .get_or_create(&PoolLabels {
                        role: stats.role,
                        state,
                    })
                    .set(i64::from(value));
            };
            set("idle", stats.idle);
            set("in_use", stats.size.saturating_sub(stats.idle));
            set("max", stats.max);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_pools() {
        let metrics = Metrics::default();
        metrics.observe(
            OperationType::Mutation,
            Outcome::ClientError,
            Duration::from_millis(3),
        );
        let text = metrics.render(&[PoolStats {
            role: "write",
            size: 1,
            idle: 1,
            max: 1,
        }]);
        assert!(
            text.contains(
                "graphql_requests_total{operation_type=\"mutation\",outcome=\"client_error\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("db_pool_connections{role=\"write\",state=\"idle\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn renders_event_row_reads() {
        let reads = Counter::default();
        let metrics = Metrics::default().with_event_row_reads(reads.clone());
        reads.inc_by(3);
        let text = metrics.render(&[]);
        assert!(text.contains("contact_event_row_reads_total 3"), "{text}");
    }
}
