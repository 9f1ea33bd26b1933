//! Validation of contact input: what a client sends becomes what the store keeps.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value};

use super::{
    bsuid::{WhatsappFields, WhatsappIds},
    clock::to_storage_precision,
    messaging_state::{MessagingInput, MessagingState},
    metadata::Metadata,
    phone::{self, ParsedPhone, PhoneFields},
    window::MAX_FUTURE_SKEW,
};
use crate::error::{AppError, AppResult};

/// `CreateContactInput` as sent.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    /// Required unless `whatsapp_user_id` is given.
    pub phone_number: Option<String>,
    pub country_code: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub last_whatsapp_message_at: Option<DateTime<Utc>>,
    pub whatsapp_user_id: Option<String>,
    pub parent_whatsapp_user_id: Option<String>,
    pub whatsapp_username: Option<String>,
    pub whatsapp_profile_name: Option<String>,
    /// Windows, choices and the block, as a contacts file carries them (not the API).
    pub messaging: MessagingInput,
}

/// `UpdateContactInput` as sent: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ContactChanges {
    pub phone_number: Option<Option<String>>,
    pub country_code: Option<Option<String>>,
    pub metadata: Option<Option<Map<String, Value>>>,
    pub last_whatsapp_message_at: Option<Option<DateTime<Utc>>>,
}

/// A validated new contact (or the values an upsert writes).
#[derive(Debug, Clone)]
pub struct NewContact {
    /// `None` only when `whatsapp.user_id` is set.
    pub phone: Option<ParsedPhone>,
    pub whatsapp: WhatsappIds,
    /// `None` when not given: a create stores `{}`, an upsert keeps what is stored.
    pub metadata: Option<Metadata>,
    pub last_whatsapp_message_at: Option<DateTime<Utc>>,
    pub messaging: MessagingState,
}

/// Joins an input path: `path("input", "phoneNumber")` is `input.phoneNumber`.
pub fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl NewContact {
    /// Validates `input` found at `prefix` (e.g. `input`, or `contacts.3`).
    pub fn parse(input: ContactInput, prefix: &str, now: DateTime<Utc>) -> AppResult<Self> {
        let phone_field = path(prefix, "phoneNumber");
        let country_field = path(prefix, "countryCode");
        let fields = PhoneFields {
            phone_number: &phone_field,
            country_code: &country_field,
        };
        let whatsapp = WhatsappIds::parse(
            [
                input.whatsapp_user_id,
                input.parent_whatsapp_user_id,
                input.whatsapp_username,
                input.whatsapp_profile_name,
            ],
            &WhatsappFields {
                user_id: path(prefix, "whatsappUserId"),
                parent_user_id: path(prefix, "parentWhatsappUserId"),
                username: path(prefix, "whatsappUsername"),
                profile_name: path(prefix, "whatsappProfileName"),
            },
        )?;
        let phone = match (&input.phone_number, &whatsapp.user_id) {
            (Some(raw), _) => Some(phone::parse_phone(
                raw,
                input.country_code.as_deref(),
                fields,
            )?),
            (None, Some(_)) if input.country_code.is_some() => {
                return Err(AppError::validation(
                    &country_field,
                    "countryCode needs a phoneNumber",
                ));
            }
            (None, Some(_)) => None,
            (None, None) => {
                return Err(AppError::validation(
                    &phone_field,
                    "phoneNumber is required unless whatsappUserId is given",
                ));
            }
        };
        let metadata = input
            .metadata
            .map(|m| Metadata::parse(&m, &path(prefix, "metadata")))
            .transpose()?;
        let last_whatsapp_message_at = input
            .last_whatsapp_message_at
            .map(|at| message_time(at, now, &path(prefix, "lastWhatsappMessageAt")))
            .transpose()?;
        let messaging = MessagingState::parse(input.messaging, prefix, now)?;
        Ok(Self {
            phone,
            whatsapp,
            metadata,
            last_whatsapp_message_at,
            messaging,
        })
    }
}

/// Years a timestamp may have once converted to UTC: four digits, so every stored instant
/// writes as RFC 3339 and SQLite, which compares timestamps as text, orders them as
/// PostgreSQL does.
pub const TIMESTAMP_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// Parses an RFC 3339 timestamp (any offset) into UTC at storage precision; the error says
/// why, for the caller to attach to its field.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("\"{text}\" is not an RFC 3339 date-time"))?;
    check_timestamp(at.with_timezone(&Utc)).map_err(|why| format!("\"{text}\": {why}"))
}

/// Refuses instants the store cannot keep faithfully: a leap second (`:60`, which chrono
/// keeps but neither backend stores) and years outside [`TIMESTAMP_YEARS`] in UTC.
pub fn check_timestamp(at: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if at.nanosecond() >= 1_000_000_000 {
        return Err("leap seconds (:60) are not supported".into());
    }
    if !TIMESTAMP_YEARS.contains(&at.year()) {
        return Err("the year must be between 0001 and 9999 in UTC".into());
    }
    Ok(to_storage_precision(at))
}

/// A reported inbound-message time: stored at microsecond precision, and never more than
/// [`MAX_FUTURE_SKEW`] ahead of `now`.
pub fn message_time(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    field: &str,
) -> AppResult<DateTime<Utc>> {
    if at > now + MAX_FUTURE_SKEW {
        return Err(AppError::validation(
            field,
            "a message time may be at most 5 minutes in the future",
        ));
    }
    Ok(to_storage_precision(at))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn five_minutes_ahead_is_accepted_one_more_microsecond_is_not() {
        let limit = now() + MAX_FUTURE_SKEW;
        assert!(message_time(limit, now(), "f").is_ok());
        assert!(message_time(limit + TimeDelta::microseconds(1), now(), "f").is_err());
    }

    #[test]
    fn timestamps_stay_within_four_digit_years_in_utc() {
        for ok in [
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "0001-01-01T01:00:00+01:00",
            "9999-12-31T22:59:59-01:00",
        ] {
            assert!(parse_timestamp(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:59:59+01:00",
            "9999-12-31T23:59:59-01:00",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_nested_field() {
        let input = ContactInput {
            phone_number: Some("nope".into()),
            ..Default::default()
        };
        let err = NewContact::parse(input, "contacts.3", now()).unwrap_err();
        assert!(
            matches!(err, AppError::Validation { field, .. } if field == "contacts.3.phoneNumber")
        );
    }
}
