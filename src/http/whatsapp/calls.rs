//! `field: calls`: a call the user placed is an inbound event of kind `CALL`; calls the
//! business placed, and other call events than `connect`, are ignored.

use super::{
    labels::{self, Field},
    meta::{Call, CallsValue, Contact, each},
    payload::{
        Disposition, Item, contacts, invalid, item, parent_of, plausible_id, present, sender_of,
        user_id_of,
    },
    system::{digits, e164},
};
use crate::contacts::{
    inbound::{InboundInput, InboundKind},
    webhook::{DeliveredEvent, WebhookEvent},
};

pub(super) fn calls(value: CallsValue, items: &mut Vec<Item>) {
    let business = value.metadata.phone_number_id.clone();
    let our_number = value.metadata.display_phone_number.as_deref();
    let contacts = contacts(value.contacts);
    for call in each::<Call>(value.calls) {
        // Its id is stored among the seen ids: one no database can store is invalid.
        let call = call
            .ok()
            .filter(|c| c.id.as_deref().is_none_or(plausible_id));
        let Some(call) = call else {
            items.push(invalid(Field::Calls, "other"));
            continue;
        };
        let kind = labels::call_event(call.event.as_deref().unwrap_or(""));
        let connect = call.event.as_deref() == Some("connect");
        let what = if connect && user_initiated(&call, our_number) {
            Disposition::Record(call_event(&call, &contacts, business.clone()))
        } else {
            Disposition::Ignored
        };
        items.push(item(Field::Calls, kind, what));
    }
}

/// A call the user placed: `direction: USER_INITIATED`; without a direction (older
/// payloads), one whose `from` is not the business's own number, compared by digits
/// (`display_phone_number` may carry `+`, spaces or dashes).
fn user_initiated(call: &Call, our_number: Option<&str>) -> bool {
    if let Some(direction) = call.direction.as_deref() {
        return direction.eq_ignore_ascii_case("USER_INITIATED");
    }
    let ours = our_number.map(digits).filter(|d| !d.is_empty());
    match (call.from.as_deref().map(digits), ours) {
        (Some(from), Some(ours)) => from != ours,
        _ => true,
    }
}

fn call_event(call: &Call, contacts: &[Contact], business: Option<String>) -> DeliveredEvent {
    let sender = sender_of(contacts, call.from.as_deref(), call.from_user_id.as_deref());
    let profile = sender.and_then(|c| c.profile.as_ref());
    DeliveredEvent {
        meta_id: call.id.as_ref().map(|id| format!("call:{id}")),
        effects: vec![WebhookEvent::Inbound(InboundInput {
            phone_number: call.from.as_deref().map(e164),
            whatsapp_user_id: call.from_user_id.clone().or(user_id_of(sender)),
            parent_whatsapp_user_id: call.from_parent_user_id.clone().or(parent_of(sender)),
            username: profile.and_then(|p| present(&p.username)),
            profile_name: profile.and_then(|p| present(&p.name)),
            kind: InboundKind::Call,
            received_at: call.timestamp,
            business_phone_number_id: business,
            ..InboundInput::default()
        })],
    }
}
