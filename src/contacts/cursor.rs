//! Opaque pagination cursors: base64url of `[order field, sort value, id]`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::order::{OrderField, SortValue};
use crate::error::{AppError, AppResult};

/// A position in one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub field: OrderField,
    pub value: SortValue,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let value = match &self.value {
            SortValue::Time(at) => Value::String(at.to_rfc3339_opts(SecondsFormat::Micros, true)),
            SortValue::Text(text) => Value::String(text.clone()),
            SortValue::Null => Value::Null,
        };
        URL_SAFE_NO_PAD.encode(json!([self.field.name(), value, self.id.to_string()]).to_string())
    }

    /// Decodes a cursor and checks it belongs to `expected` order; `arg` names the argument.
    pub fn decode(raw: &str, expected: OrderField, arg: &str) -> AppResult<Self> {
        let invalid = || AppError::validation(arg, format!("`{arg}` is not a valid cursor"));
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.as_bytes())
            .map_err(|_| invalid())?;
        let parts: (String, Value, String) =
            serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let field = OrderField::from_name(&parts.0).ok_or_else(invalid)?;
        if field != expected {
            return Err(AppError::validation(
                arg,
                format!(
                    "`{arg}` is a cursor for order {}, not {}",
                    field.name(),
                    expected.name()
                ),
            ));
        }
        // Only values this service could have written: a cursor is client input, and what the
        // database is handed must compare the same on both backends (no NUL, no year 10000).
        let value = match (field, parts.1) {
            (OrderField::LastWhatsappMessageAt | OrderField::PhoneNumber, Value::Null) => {
                SortValue::Null
            }
            (OrderField::PhoneNumber, Value::String(text)) if is_e164(&text) => {
                SortValue::Text(text)
            }
            (OrderField::PhoneNumber, _) => return Err(invalid()),
            (_, Value::String(text)) => {
                let at = DateTime::parse_from_rfc3339(&text)
                    .map_err(|_| invalid())?
                    .with_timezone(&Utc);
                if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
                    return Err(invalid());
                }
                SortValue::Time(at)
            }
            _ => return Err(invalid()),
        };
        let id = Uuid::parse_str(&parts.2).map_err(|_| invalid())?;
        Ok(Self { field, value, id })
    }
}

/// `+` and 1 to 15 digits: the shape of every stored phone number.
fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(field: OrderField, value: SortValue) -> Cursor {
        Cursor {
            field,
            value,
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn round_trips_every_kind_of_value() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T13:37:00.123456Z")
            .unwrap()
            .to_utc();
        for cursor in [
            sample(OrderField::CreatedAt, SortValue::Time(at)),
            sample(OrderField::LastWhatsappMessageAt, SortValue::Null),
            sample(
                OrderField::PhoneNumber,
                SortValue::Text("+56912345678".into()),
            ),
        ] {
            assert_eq!(
                Cursor::decode(&cursor.encode(), cursor.field, "after").unwrap(),
                cursor
            );
        }
    }

    #[test]
    fn rejects_garbage_and_other_orders() {
        assert!(Cursor::decode("not a cursor", OrderField::CreatedAt, "after").is_err());
        assert!(
            Cursor::decode(
                &URL_SAFE_NO_PAD.encode("[1,2,3]"),
                OrderField::CreatedAt,
                "after"
            )
            .is_err()
        );
        let cursor = sample(OrderField::PhoneNumber, SortValue::Text("+1".into()));
        assert!(Cursor::decode(&cursor.encode(), OrderField::CreatedAt, "after").is_err());
        let null_time = sample(OrderField::CreatedAt, SortValue::Null);
        assert!(Cursor::decode(&null_time.encode(), OrderField::CreatedAt, "after").is_err());
    }

    #[test]
    fn refuses_values_this_service_never_writes() {
        let id = Uuid::now_v7();
        for value in [
            json!("+569\u{0}"),
            json!("569"),
            json!("+5691234567890123"),
            json!(1),
        ] {
            let raw =
                URL_SAFE_NO_PAD.encode(json!(["PHONE_NUMBER", value, id.to_string()]).to_string());
            assert!(
                Cursor::decode(&raw, OrderField::PhoneNumber, "after").is_err(),
                "{value}"
            );
        }
        let early = json!(["CREATED_AT", "0001-01-01T00:00:00+01:00", id.to_string()]);
        let raw = URL_SAFE_NO_PAD.encode(early.to_string());
        assert!(Cursor::decode(&raw, OrderField::CreatedAt, "after").is_err());
    }
}
