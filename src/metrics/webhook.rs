//! WhatsApp webhook metrics: deliveries by field and outcome, events by field, type and
//! outcome (unknown fields and types included), signature failures and duplicates.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    field: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    field: &'static str,
    /// The message type, call event or preference category.
    kind: &'static str,
    outcome: &'static str,
}

/// Counters of `POST /webhooks/whatsapp`.
#[derive(Default)]
pub struct WebhookMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    events: Family<EventLabels, Counter>,
    signature_failures: Counter,
    duplicates: Counter,
}

impl WebhookMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "whatsapp_webhook_deliveries",
            "WhatsApp webhook changes received, by field and delivery outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "whatsapp_webhook_events",
            "WhatsApp webhook events, by field, kind and outcome",
            self.events.clone(),
        );
        registry.register(
            "whatsapp_webhook_signature_failures",
            "WhatsApp webhook deliveries refused for a missing or wrong signature",
            self.signature_failures.clone(),
        );
        registry.register(
            "whatsapp_webhook_duplicates",
            "WhatsApp webhook events skipped as redeliveries of a recorded Meta id",
            self.duplicates.clone(),
        );
    }

    /// A change of `field` in a delivery answered with `outcome` (`ok`, `bad_request`,
    /// `error`, `too_many_events`), or a delivery not read (`field="none"`, `busy`).
    pub fn delivery(&self, field: &'static str, outcome: &'static str) {
        let labels = DeliveryLabels { field, outcome };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// An event (`recorded`, `duplicate`, `invalid`, `ignored`, `unknown`).
    pub fn event(&self, field: &'static str, kind: &'static str, outcome: &'static str) {
        let labels = EventLabels {
            field,
            kind,
            outcome,
        };
        self.events.get_or_create(&labels).inc();
        if outcome == "duplicate" {
            self.duplicates.inc();
        }
    }

    pub fn signature_failure(&self) {
        self.signature_failures.inc();
    }
}
