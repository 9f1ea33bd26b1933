//! Meta's webhook payload as typed here: only the fields this server reads, from Meta's
//! documented examples (messages, calls, user_preferences, user_id_update and the BSUID
//! page; see tests/fixtures/meta). Every other field is ignored, so Meta adding one never
//! fails a delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, de::IgnoredAny};

#[derive(Deserialize)]
pub(super) struct Notification {
    pub(super) object: String,
    pub(super) entry: Vec<Entry>,
}

#[derive(Deserialize)]
pub(super) struct Entry {
    #[serde(default)]
    pub(super) changes: Vec<Change>,
}

#[derive(Deserialize)]
pub(super) struct Change {
    pub(super) field: String,
    #[serde(default)]
    pub(super) value: serde_json::Value,
}

#[derive(Deserialize, Default)]
pub(super) struct Metadata {
    pub(super) display_phone_number: Option<String>,
    pub(super) phone_number_id: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct Profile {
    pub(super) name: Option<String>,
    pub(super) username: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Contact {
    #[serde(default)]
    pub(super) profile: Profile,
    pub(super) wa_id: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) parent_user_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Message {
    pub(super) from: Option<String>,
    pub(super) from_user_id: Option<String>,
    pub(super) from_parent_user_id: Option<String>,
    pub(super) id: Option<String>,
    #[serde(default, deserialize_with = "unix_time")]
    pub(super) timestamp: Option<DateTime<Utc>>,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) system: Option<System>,
}

#[derive(Deserialize)]
pub(super) struct System {
    pub(super) body: Option<String>,
    pub(super) wa_id: Option<String>,
    pub(super) user_id: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// `stop`/`resume` of a `user_preference_changed` system message.
    pub(super) marketing: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MessagesValue {
    #[serde(default)]
    pub(super) metadata: Metadata,
    #[serde(default)]
    pub(super) contacts: Vec<Contact>,
    #[serde(default)]
    pub(super) messages: Vec<Message>,
    #[serde(default)]
    pub(super) statuses: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct Call {
    pub(super) id: Option<String>,
    pub(super) from: Option<String>,
    pub(super) from_user_id: Option<String>,
    pub(super) from_parent_user_id: Option<String>,
    pub(super) event: Option<String>,
    pub(super) direction: Option<String>,
    #[serde(default, deserialize_with = "unix_time")]
    pub(super) timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
pub(super) struct CallsValue {
    #[serde(default)]
    pub(super) metadata: Metadata,
    #[serde(default)]
    pub(super) contacts: Vec<Contact>,
    #[serde(default)]
    pub(super) calls: Vec<Call>,
}

#[derive(Deserialize)]
pub(super) struct PreviousCurrent {
    pub(super) previous: String,
    pub(super) current: String,
}

#[derive(Deserialize)]
pub(super) struct UserIdUpdate {
    pub(super) wa_id: Option<String>,
    pub(super) user_id: PreviousCurrent,
    #[serde(default, deserialize_with = "unix_time")]
    pub(super) timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
pub(super) struct UserIdUpdateValue {
    #[serde(default)]
    pub(super) user_id_update: Vec<UserIdUpdate>,
}

#[derive(Deserialize)]
pub(super) struct UserPreference {
    pub(super) wa_id: Option<String>,
    pub(super) user_id: Option<String>,
    pub(super) category: Option<String>,
    pub(super) value: Option<String>,
    #[serde(default, deserialize_with = "unix_time")]
    pub(super) timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
pub(super) struct UserPreferencesValue {
    #[serde(default)]
    pub(super) metadata: Metadata,
    #[serde(default)]
    pub(super) user_preferences: Vec<UserPreference>,
}

/// Meta's `timestamp`: Unix seconds, as a string (documented) or a number (seen).
pub(super) fn unix_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    let seconds = match Option::<Raw>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(Raw::Number(n)) => n,
        Some(Raw::Text(text)) => text
            .trim()
            .parse::<i64>()
            .map_err(|_| serde::de::Error::custom("timestamp must be Unix seconds"))?,
    };
    DateTime::from_timestamp(seconds, 0)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
}
