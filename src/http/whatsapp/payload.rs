//! Meta's webhook payload (`object: whatsapp_business_account`, `entry[].changes[]`) turned
//! into the domain's events, each with its metric labels.

use super::{
    labels::{self, Field},
    meta::{
        CallsValue, Contact, Message, MessagesValue, Notification, UserIdUpdateValue,
        UserPreferencesValue,
    },
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
    /// What to record; `None` when there is nothing to record (see `unknown`).
    pub event: Option<DeliveredEvent>,
    /// A field, type or value this server does not know (counted as `unknown`); else
    /// nothing to record means deliberately ignored (statuses, business-initiated calls).
    pub unknown: bool,
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
            Field::Calls => calls(
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
                items.push(unknown(field, "other"));
            }
        }
    }
    Ok(items)
}

fn unknown(field: Field, kind: &'static str) -> Item {
    Item {
        field,
        kind,
        event: None,
        unknown: true,
    }
}

fn messages(value: MessagesValue, items: &mut Vec<Item>) {
    let business = value.metadata.phone_number_id.as_deref();
    for message in &value.messages {
        items.push(Item {
            field: Field::Messages,
            kind: labels::message_type(&message.kind),
            event: Some(DeliveredEvent {
                meta_id: message.id.clone(),
                effects: message_effects(message, &value.contacts, business),
            }),
            unknown: false,
        });
    }
    for _ in &value.statuses {
        items.push(Item {
            field: Field::Messages,
            kind: "status",
            event: None,
            unknown: false,
        });
    }
}

/// What a message means: an inbound event of its sender, after the identity change or the
/// marketing choice a `system` message announces.
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
    let change = identity_change(message);
    // After a change of number, `from` is the number the user left: the user is named by
    // the identities the change gave them.
    let (phone, user_id) = match &change {
        Some(WebhookEvent::UserIdChange {
            next, phone_number, ..
        }) => (phone_number.clone(), Some(next.clone())),
        _ => (
            message.from.as_deref().map(e164),
            message.from_user_id.clone().or(user_id_of(sender)),
        ),
    };
    let mut effects: Vec<WebhookEvent> = change.into_iter().collect();
    effects.extend(preference_change(message, business));
    effects.push(WebhookEvent::Inbound(InboundInput {
        phone_number: phone,
        whatsapp_user_id: user_id,
        parent_whatsapp_user_id: message.from_parent_user_id.clone().or(parent_of(sender)),
        username: sender.and_then(|c| c.profile.username.clone()),
        profile_name: sender.and_then(|c| c.profile.name.clone()),
        kind: InboundKind::Message,
        received_at: message.timestamp,
        business_phone_number_id: business.map(str::to_owned),
        ..InboundInput::default()
    }));
    effects
}

/// A `system` message announcing a new BSUID: the previous one is in `from_user_id` when
/// Meta sends it, else in the body ("User … changed from <OLD> to <NEW>").
fn identity_change(message: &Message) -> Option<WebhookEvent> {
    let system = message.system.as_ref()?;
    let next = system.user_id.clone()?;
    let from_body = system.body.as_deref().and_then(|body| {
        let (_, rest) = body.rsplit_once(" changed from ")?;
        let (old, _) = rest.split_once(" to ")?;
        Some(old.trim().to_owned())
    });
    let previous = message
        .from_user_id
        .clone()
        .filter(|id| *id != next)
        .or(from_body)
        .filter(|id| *id != next)?;
    Some(WebhookEvent::UserIdChange {
        previous,
        next,
        phone_number: system.wa_id.as_deref().map(e164),
        at: message.timestamp?,
    })
}

/// A `system` message of type `user_preference_changed`: the user stopped or resumed
/// marketing messages (`system.marketing`, as integrations in the wild read it; Meta's
/// `user_preferences` field says the same and is the one to subscribe to).
fn preference_change(message: &Message, business: Option<&str>) -> Option<WebhookEvent> {
    let system = message.system.as_ref()?;
    if system.kind.as_deref() != Some("user_preference_changed") {
        return None;
    }
    let opted_out = match system.marketing.as_deref()? {
        "stop" => true,
        "resume" => false,
        _ => return None,
    };
    Some(WebhookEvent::MarketingPreference(
        MarketingPreferenceInput {
            phone_number: message.from.as_deref().map(e164),
            whatsapp_user_id: message.from_user_id.clone(),
            business_phone_number_id: business.map(str::to_owned),
            opted_out,
            at: message.timestamp?,
        },
    ))
}

fn calls(value: CallsValue, items: &mut Vec<Item>) {
    let business = value.metadata.phone_number_id.clone();
    let our_number = value.metadata.display_phone_number.as_deref();
    for call in &value.calls {
        let connect = call.event.as_deref() == Some("connect");
        // Older payloads carry no direction: a call from our own number is ours.
        let from_user = match call.direction.as_deref() {
            Some(direction) => direction.eq_ignore_ascii_case("USER_INITIATED"),
            None => call.from.as_deref() != our_number,
        };
        let sender = sender_of(
            &value.contacts,
            call.from.as_deref(),
            call.from_user_id.as_deref(),
        );
        let event = (connect && from_user).then(|| DeliveredEvent {
            meta_id: call.id.as_ref().map(|id| format!("call:{id}")),
            effects: vec![WebhookEvent::Inbound(InboundInput {
                phone_number: call.from.as_deref().map(e164),
                whatsapp_user_id: call.from_user_id.clone().or(user_id_of(sender)),
                parent_whatsapp_user_id: call.from_parent_user_id.clone().or(parent_of(sender)),
                username: sender.and_then(|c| c.profile.username.clone()),
                profile_name: sender.and_then(|c| c.profile.name.clone()),
                kind: InboundKind::Call,
                received_at: call.timestamp,
                business_phone_number_id: business.clone(),
                ..InboundInput::default()
            })],
        });
        items.push(Item {
            field: Field::Calls,
            kind: labels::call_event(call.event.as_deref().unwrap_or("")),
            event,
            unknown: false,
        });
    }
}

fn user_id_updates(value: UserIdUpdateValue, items: &mut Vec<Item>) {
    for update in value.user_id_update {
        let Some(at) = update.timestamp else {
            items.push(unknown(Field::UserIdUpdate, "user_id_update"));
            continue;
        };
        let change = WebhookEvent::UserIdChange {
            previous: update.user_id.previous,
            next: update.user_id.current,
            phone_number: update.wa_id.as_deref().map(e164),
            at,
        };
        items.push(Item {
            field: Field::UserIdUpdate,
            kind: "user_id_update",
            event: Some(DeliveredEvent {
                meta_id: None,
                effects: vec![change],
            }),
            unknown: false,
        });
    }
}

/// Marketing `stop`/`resume`, for the business number the webhook names. Other categories
/// or values, or one without a time, are not known here: counted, not recorded.
fn preferences(value: UserPreferencesValue, items: &mut Vec<Item>) {
    for preference in value.user_preferences {
        let marketing = preference.category.as_deref() == Some("marketing_messages");
        let opted_out = match preference.value.as_deref() {
            Some("stop") => Some(true),
            Some("resume") => Some(false),
            _ => None,
        };
        let (Some(opted_out), Some(at), true) = (opted_out, preference.timestamp, marketing) else {
            items.push(unknown(Field::UserPreferences, "other"));
            continue;
        };
        let input = MarketingPreferenceInput {
            phone_number: preference.wa_id.as_deref().map(e164),
            whatsapp_user_id: preference.user_id,
            business_phone_number_id: value.metadata.phone_number_id.clone(),
            opted_out,
            at,
        };
        items.push(Item {
            field: Field::UserPreferences,
            kind: if opted_out { "stop" } else { "resume" },
            event: Some(DeliveredEvent {
                meta_id: None,
                effects: vec![WebhookEvent::MarketingPreference(input)],
            }),
            unknown: false,
        });
    }
}

/// The `contacts[]` entry of the sender: by BSUID, else by phone number, else the only one.
fn sender_of<'a>(
    contacts: &'a [Contact],
    phone: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'a Contact> {
    let by_user_id =
        user_id.and_then(|id| contacts.iter().find(|c| c.user_id.as_deref() == Some(id)));
    let by_phone = || phone.and_then(|p| contacts.iter().find(|c| c.wa_id.as_deref() == Some(p)));
    let only = || (contacts.len() == 1).then(|| &contacts[0]);
    by_user_id.or_else(by_phone).or_else(only)
}

fn user_id_of(contact: Option<&Contact>) -> Option<String> {
    contact.and_then(|c| c.user_id.clone())
}

fn parent_of(contact: Option<&Contact>) -> Option<String> {
    contact.and_then(|c| c.parent_user_id.clone())
}

/// Meta's `wa_id`/`from` is the number's digits without `+`.
fn e164(digits: &str) -> String {
    if digits.starts_with('+') {
        digits.to_owned()
    } else {
        format!("+{digits}")
    }
}
