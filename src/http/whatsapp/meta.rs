//! Meta's webhook payload as typed here: only the fields this server reads, from Meta's
//! documented examples (messages, calls, user_preferences, user_id_update and the BSUID
//! page; see tests/fixtures/meta). Every other field is ignored, so Meta adding one never
//! fails a delivery.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::IgnoredAny};
use serde_json::Value;

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
    /// Absent or `null` alike: a user without a profile.
    #[serde(default)]
    pub(super) profile: Option<Profile>,
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
    /// The BSUID replaced, on `user_changed_user_id` and `user_changed_number`.
    pub(super) previous_user_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MessagesValue {
    #[serde(default)]
    pub(super) metadata: Metadata,
    /// Each entry parsed alone (see [`each`]): one malformed entry is skipped, not fatal.
    #[serde(default)]
    pub(super) contacts: Vec<Value>,
    #[serde(default)]
    pub(super) messages: Vec<Value>,
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
    pub(super) contacts: Vec<Value>,
    #[serde(default)]
    pub(super) calls: Vec<Value>,
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
    pub(super) user_id_update: Vec<Value>,
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
    pub(super) user_preferences: Vec<Value>,
}

/// Each entry of a list typed alone: a malformed one is an `Err` of its own, so it is
/// counted and skipped while the rest of the delivery is recorded.
pub(super) fn each<T: DeserializeOwned>(values: Vec<Value>) -> Vec<Result<T, serde_json::Error>> {
    values.into_iter().map(serde_json::from_value).collect()
}

/// Meta's `timestamp`: Unix seconds, as a string (documented) or a number (seen), in the
/// years 0001-9999 (both backends store those; PostgreSQL fails on some others, and no
/// real event is outside them).
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
        .filter(|at| (1..=9999).contains(&at.year()))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
}
