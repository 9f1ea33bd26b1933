//! Meta's webhook payload (`object: whatsapp_business_account`, `entry[].changes[]`) turned
//! into the domain's events, each with its metric labels. Each message, call or preference
//! is typed alone: a malformed one is counted invalid and skipped, and the rest of the
//! delivery is recorded; only a body that is not Meta's shape at the top level is refused.

use serde_json::Value;

use super::{
    calls,
    labels::{self, Field},
    meta::{
        Contact, Message, MessagesValue, Notification, UserIdUpdate, UserIdUpdateValue,
        UserPreference, UserPreferencesValue, each,
    },
    system::{self, digits, e164},
};
use crate::contacts::{
    inbound::{InboundInput, InboundKind},
    preferences::MarketingPreferenceInput,
    webhook::{DeliveredEvent, WebhookEvent},
};

/// What one Meta event (a message, a status, a call...) became, with its metric labels.
#[derive(Debug)]
pub struct Item {
    pub field: Field,
    pub kind: &'static str,
    pub what: Disposition,
}

/// What becomes of one Meta event.
#[derive(Debug)]
pub enum Disposition {
    Record(DeliveredEvent),
    /// Deliberately not recorded (statuses, business-initiated calls).
    Ignored,
    /// A field, type or value this server does not know.
    Unknown,
    /// Not of Meta's shape (a malformed entry, a time out of range): skipped, counted.
    Invalid,
}

impl Item {
    pub fn event(&self) -> Option<&DeliveredEvent> {
        match &self.what {
            Disposition::Record(event) => Some(event),
            _ => None,
        }
    }
}

/// The events of a delivery, or why it is not Meta's shape (answered 400).
pub fn parse(body: &[u8]) -> Result<Vec<Item>, String> {
    let notification: Notification =
        serde_json::from_slice(body).map_err(|err| format!("not Meta's payload: {err}"))?;
    if notification.object != "whatsapp_business_account" {
        return Err("object must be whatsapp_business_account".into());
    }
    let mut items = Vec::new();
    for change in notification
        .entry
        .into_iter()
        .flat_map(|entry| entry.changes)
    {
        let field = labels::field(&change.field);
        let shape =
            |err: serde_json::Error| format!("{} is not Meta's shape: {err}", field.as_str());
        match field {
            Field::Messages => messages(
                serde_json::from_value(change.value).map_err(shape)?,
                &mut items,
            ),
            Field::Calls => calls::calls(
                serde_json::from_value(change.value).map_err(shape)?,
                &mut items,
            ),
            Field::UserIdUpdate => user_id_updates(
                serde_json::from_value(change.value).map_err(shape)?,
                &mut items,
            ),
            Field::UserPreferences => preferences(
                serde_json::from_value(change.value).map_err(shape)?,
                &mut items,
            ),
            Field::Other => {
                tracing::info!(field = %change.field, "WhatsApp webhook field not handled");
                items.push(item(field, "other", Disposition::Unknown));
            }
        }
    }
    Ok(items)
}

pub(super) fn item(field: Field, kind: &'static str, what: Disposition) -> Item {
    Item { field, kind, what }
}

/// A malformed entry: logged by field only (its values may be phone numbers).
pub(super) fn invalid(field: Field, kind: &'static str) -> Item {
    tracing::warn!(
        field = field.as_str(),
        "WhatsApp webhook event not of Meta's shape"
    );
    item(field, kind, Disposition::Invalid)
}

/// The well-formed `contacts[]` entries; a malformed one only loses its names.
pub(super) fn contacts(values: Vec<Value>) -> Vec<Contact> {
    each(values).into_iter().filter_map(Result::ok).collect()
}

fn messages(value: MessagesValue, items: &mut Vec<Item>) {
    let business = value.metadata.phone_number_id.as_deref();
    let contacts = contacts(value.contacts);
    for raw in value.messages {
        let named = labels::message_type(raw.get("type").and_then(Value::as_str).unwrap_or(""));
        let message = serde_json::from_value::<Message>(raw).ok();
        let Some(message) = message.filter(|m| m.id.as_deref().is_none_or(plausible_id)) else {
            items.push(invalid(Field::Messages, named));
            continue;
        };
        let kind = labels::message_type(&message.kind);
        let event = DeliveredEvent {
            meta_id: message.id.clone(),
            effects: message_effects(&message, &contacts, business),
        };
        items.push(item(Field::Messages, kind, Disposition::Record(event)));
    }
    for _ in &value.statuses {
        items.push(item(Field::Messages, "status", Disposition::Ignored));
    }
}

/// The longest message id taken. Meta's `wamid.` ids are base64 of a few dozen bytes; the
/// bound keeps ids well inside what a PostgreSQL B-tree index entry can hold.
const MAX_MESSAGE_ID_BYTES: usize = 512;

/// An id that can be Meta's: at most [`MAX_MESSAGE_ID_BYTES`], no control
/// characters (a NUL is refused by PostgreSQL's text type). Anything else makes the message
/// (or call) invalid (counted), not the delivery a 500.
pub(super) fn plausible_id(id: &str) -> bool {
    id.len() <= MAX_MESSAGE_ID_BYTES && !id.chars().any(char::is_control)
}

/// What a message means: an inbound event of its sender, after the change of number or
/// BSUID, or the marketing choice, a `system` message announces.
fn message_effects(
    message: &Message,
    contacts: &[Contact],
    business: Option<&str>,
) -> Vec<WebhookEvent> {
    let sender = sender_of(
        contacts,
        message.from.as_deref(),
        message.from_user_id.as_deref(),
    );
    let number = system::number_change(message);
    let user_id = system::user_id_change(message);
    // After a change, `from` names what the user left: the user is named by the identities
    // the change gave them.
    let (phone, user_id_now) = match (&user_id, &number) {
        (
            Some(WebhookEvent::UserIdChange {
                next, phone_number, ..
            }),
            _,
        ) => (phone_number.clone(), Some(next.clone())),
        (None, Some(WebhookEvent::NumberChange { next, .. })) => {
            (Some(next.clone()), message.from_user_id.clone())
        }
        _ => (
            message.from.as_deref().map(e164),
            message.from_user_id.clone().or(user_id_of(sender)),
        ),
    };
    let mut effects: Vec<WebhookEvent> = number.into_iter().chain(user_id).collect();
    effects.extend(system::preference_change(message, business));
    let profile = sender.and_then(|c| c.profile.as_ref());
    effects.push(WebhookEvent::Inbound(InboundInput {
        phone_number: phone,
        whatsapp_user_id: user_id_now,
        parent_whatsapp_user_id: message.from_parent_user_id.clone().or(parent_of(sender)),
        username: profile.and_then(|p| present(&p.username)),
        profile_name: profile.and_then(|p| present(&p.name)),
        kind: InboundKind::Message,
        received_at: message.timestamp,
        business_phone_number_id: business.map(str::to_owned),
        ..InboundInput::default()
    }));
    effects
}

fn user_id_updates(value: UserIdUpdateValue, items: &mut Vec<Item>) {
    for update in each::<UserIdUpdate>(value.user_id_update) {
        let Ok(update) = update else {
            items.push(invalid(Field::UserIdUpdate, "user_id_update"));
            continue;
        };
        let Some(at) = update.timestamp else {
            items.push(item(
                Field::UserIdUpdate,
                "user_id_update",
                Disposition::Unknown,
            ));
            continue;
        };
        let change = WebhookEvent::UserIdChange {
            previous: update.user_id.previous,
            next: update.user_id.current,
            phone_number: update.wa_id.as_deref().map(e164),
            at,
        };
        let event = DeliveredEvent {
            meta_id: None,
            effects: vec![change],
        };
        items.push(item(
            Field::UserIdUpdate,
            "user_id_update",
            Disposition::Record(event),
        ));
    }
}

/// Marketing `stop`/`resume`, for the business number the webhook names. Other categories
/// or values, or one without a time, are not known here: counted, not recorded.
fn preferences(value: UserPreferencesValue, items: &mut Vec<Item>) {
    for preference in each::<UserPreference>(value.user_preferences) {
        let Ok(preference) = preference else {
            items.push(invalid(Field::UserPreferences, "other"));
            continue;
        };
        let marketing = preference.category.as_deref() == Some("marketing_messages");
        let opted_out = match preference.value.as_deref() {
            Some("stop") => Some(true),
            Some("resume") => Some(false),
            _ => None,
        };
        let (Some(opted_out), Some(at), true) = (opted_out, preference.timestamp, marketing) else {
            items.push(item(Field::UserPreferences, "other", Disposition::Unknown));
            continue;
        };
        let input = MarketingPreferenceInput {
            phone_number: preference.wa_id.as_deref().map(e164),
            whatsapp_user_id: preference.user_id,
            business_phone_number_id: value.metadata.phone_number_id.clone(),
            opted_out,
            at,
        };
        let event = DeliveredEvent {
            meta_id: None,
            effects: vec![WebhookEvent::MarketingPreference(input)],
        };
        let kind = if opted_out { "stop" } else { "resume" };
        items.push(item(
            Field::UserPreferences,
            kind,
            Disposition::Record(event),
        ));
    }
}

/// The `contacts[]` entry of the sender: the one with the sender's BSUID, else the one with
/// the sender's number (by digits). An entry naming someone else is never the sender's,
/// even when it is the only one: its names and BSUID are another person's.
pub(super) fn sender_of<'a>(
    contacts: &'a [Contact],
    phone: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'a Contact> {
    let by_user_id =
        user_id.and_then(|id| contacts.iter().find(|c| c.user_id.as_deref() == Some(id)));
    let phone = phone.map(digits).filter(|d| !d.is_empty());
    let by_phone = || {
        let phone = phone.as_deref()?;
        contacts
            .iter()
            .find(|c| c.wa_id.as_deref().map(digits).as_deref() == Some(phone))
    };
    by_user_id.or_else(by_phone)
}

pub(super) fn user_id_of(contact: Option<&Contact>) -> Option<String> {
    contact.and_then(|c| c.user_id.clone())
}

pub(super) fn parent_of(contact: Option<&Contact>) -> Option<String> {
    contact.and_then(|c| c.parent_user_id.clone())
}

/// A name Meta sends, or `None` when the contact fields would refuse it: empty (a user
/// without a name or username), too long or with control characters. Names are typed by
/// users and optional; an odd one is left out, and must not make the message invalid.
pub(super) fn present(name: &Option<String>) -> Option<String> {
    name.as_deref()
        .and_then(|n| crate::contacts::bsuid::parse_name(n, "name").ok())
}
