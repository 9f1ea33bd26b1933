//! `system` messages: a user's new phone number (`user_changed_number`, Meta's system
//! messages webhook reference: `system.wa_id` is the new number, `from` the one left), a new
//! BSUID (`user_changed_user_id`, or `system.user_id` on either type), and marketing
//! `stop`/`resume` (`user_preference_changed`).

use super::meta::Message;
use crate::contacts::{preferences::MarketingPreferenceInput, webhook::WebhookEvent};

/// `user_changed_number`: the contact holding `from` now holds `system.wa_id`.
pub(super) fn number_change(message: &Message) -> Option<WebhookEvent> {
    let system = message.system.as_ref()?;
    if system.kind.as_deref() != Some("user_changed_number") {
        return None;
    }
    let (old, new) = (message.from.as_deref()?, system.wa_id.as_deref()?);
    if digits(old) == digits(new) || digits(new).is_empty() {
        return None;
    }
    Some(WebhookEvent::NumberChange {
        previous: e164(old),
        next: e164(new),
        at: message.timestamp?,
    })
}

/// A new BSUID: the previous one is in `from_user_id` or `system.previous_user_id` when Meta
/// sends it, else (on `user_changed_user_id` only, whose body names BSUIDs) in the body
/// ("User … changed from <OLD> to <NEW>").
pub(super) fn user_id_change(message: &Message) -> Option<WebhookEvent> {
    let system = message.system.as_ref()?;
    let next = system.user_id.clone()?;
    let names_user_ids = system.kind.as_deref() != Some("user_changed_number");
    let from_body = system
        .body
        .as_deref()
        .filter(|_| names_user_ids)
        .and_then(|body| {
            let (_, rest) = body.rsplit_once(" changed from ")?;
            let (old, _) = rest.split_once(" to ")?;
            Some(old.trim().to_owned())
        });
    let previous = [
        message.from_user_id.clone(),
        system.previous_user_id.clone(),
        from_body,
    ]
    .into_iter()
    .flatten()
    .find(|id| *id != next)?;
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
pub(super) fn preference_change(message: &Message, business: Option<&str>) -> Option<WebhookEvent> {
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

/// Meta's `wa_id`/`from` is the number's digits without `+`.
pub(super) fn e164(digits: &str) -> String {
    if digits.starts_with('+') {
        digits.to_owned()
    } else {
        format!("+{digits}")
    }
}

/// The ASCII digits of a number as Meta writes it (`15550783881`, `+1 555-078-3881`).
pub(super) fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}
