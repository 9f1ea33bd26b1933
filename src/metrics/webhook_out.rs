//! Outgoing webhook metrics, by endpoint (the first 12 hex digits of its URL's SHA-256, never
//! the URL, which may hold a token): deliveries by outcome, retries, changes skipped as
//! expired, and lag (log positions not yet acknowledged).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: String,
    outcome: &'static str,
}

/// Counters and gauges of the delivery workers.
#[derive(Default)]
pub struct WebhookOutMetrics {
    deliveries: Family<OutcomeLabels, Counter>,
    retries: Family<EndpointLabels, Counter>,
    expired: Family<EndpointLabels, Counter>,
    lag: Family<EndpointLabels, Gauge>,
}

fn endpoint(label: &str) -> EndpointLabels {
    EndpointLabels {
        endpoint: label.to_owned(),
    }
}

impl WebhookOutMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "webhook_out_deliveries",
            "Outgoing webhook requests by endpoint and outcome (ok, http_error, timeout, \
             connect_error, error)",
            self.deliveries.clone(),
        );
        registry.register(
            "webhook_out_retries",
            "Outgoing webhook requests retried after a failure",
            self.retries.clone(),
        );
        registry.register(
            "webhook_out_expired_positions",
            "Change-log positions skipped because they left the retention before delivery",
            self.expired.clone(),
        );
        registry.register(
            "webhook_out_lag",
            "Change-log positions an endpoint has not acknowledged yet",
            self.lag.clone(),
        );
    }

    /// A request to `label` ended with `outcome`.
    pub fn delivery(&self, label: &str, outcome: &'static str) {
        let labels = OutcomeLabels {
            endpoint: label.to_owned(),
            outcome,
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    pub fn retry(&self, label: &str) {
        self.retries.get_or_create(&endpoint(label)).inc();
    }

    /// `positions` left the retention before `label` acknowledged them.
    pub fn expired(&self, label: &str, positions: u64) {
        self.expired
            .get_or_create(&endpoint(label))
            .inc_by(positions);
    }

    pub fn lag(&self, label: &str, positions: i64) {
        self.lag
            .get_or_create(&endpoint(label))
            .set(positions.max(0));
    }
}
