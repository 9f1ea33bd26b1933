//! Custom scalars: `DateTime` (RFC 3339, UTC, `Z`) and `Metadata` (a JSON object of strings).

use async_graphql::{
    Description, InputValueError, InputValueResult, Name, Scalar, ScalarType, Value,
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as Json};

use crate::contacts::{input::parse_timestamp, metadata::Metadata};

/// An instant in RFC 3339 with a `Z` (`2026-11-24T13:37:00Z`); sub-second precision is kept up to
/// microseconds. Input may use any offset and is converted to UTC; the year in UTC must be
/// 0001–9999, and leap seconds (`:60`) are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Description)]
#[graphql(name = "DateTime")]
pub struct Timestamp(pub DateTime<Utc>);

#[Scalar(
    name = "DateTime",
    use_type_description,
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(text) = &value else {
            return Err(InputValueError::expected_type(value));
        };
        parse_timestamp(text)
            .map(Self)
            .map_err(InputValueError::custom)
    }

    // Checked during validation too, so a bad literal or variable is rejected before anything
    // runs, with the argument path.
    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(text) if parse_timestamp(text).is_ok())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// String → string map, `{}` when empty. At most 50 keys; keys 1–40 characters without control
/// characters (U+0000–U+001F, U+007F–U+009F); values at most 500 characters, any but U+0000.
#[derive(Debug, Clone, Default, PartialEq, Description)]
#[graphql(name = "Metadata")]
pub struct MetadataMap(pub Map<String, Json>);

#[Scalar(name = "Metadata", use_type_description)]
impl ScalarType for MetadataMap {
    fn parse(value: Value) -> InputValueResult<Self> {
        // Only the shape is checked here; the limits are checked by the domain, which knows
        // the input path to report.
        match value.into_json() {
            Ok(Json::Object(object)) => Ok(Self(object)),
            _ => Err(InputValueError::custom(
                "Metadata must be a JSON object whose values are strings",
            )),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Object(_))
    }

    fn to_value(&self) -> Value {
        Value::from_json(Json::Object(self.0.clone())).unwrap_or(Value::Null)
    }
}

impl MetadataMap {
    /// Stored metadata as the value `Metadata::from_stored`, then this scalar, would write
    /// (string values only, keys in order), built directly: on a page of contacts the two maps
    /// and the JSON between them were half the cost of the plain fields.
    pub fn value_of_stored(stored: &Json) -> Value {
        let Some(object) = stored.as_object() else {
            return Value::Object(Default::default());
        };
        let mut entries: Vec<(&String, &str)> = object
            .iter()
            .filter_map(|(key, value)| value.as_str().map(|text| (key, text)))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Value::Object(
            entries
                .into_iter()
                .map(|(key, text)| (Name::new(key), Value::String(text.to_owned())))
                .collect(),
        )
    }
}

impl From<&Metadata> for MetadataMap {
    fn from(metadata: &Metadata) -> Self {
        match metadata.to_json() {
            Json::Object(object) => Self(object),
            _ => Self::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_metadata_is_written_as_the_scalar_writes_it() {
        let stored =
            serde_json::json!({ "z": "1", "a": "2", "n": 3, "m": null, "é": "x", "": "e" });
        let direct = MetadataMap::value_of_stored(&stored);
        let through_maps = MetadataMap::from(&Metadata::from_stored(&stored)).to_value();
        // As written to the response: the same keys in the same order.
        let written = |value: &Value| serde_json::to_string(value).unwrap();
        assert_eq!(written(&direct), written(&through_maps));
        assert_eq!(written(&direct), r#"{"":"e","a":"2","z":"1","é":"x"}"#);
        for odd in [serde_json::json!([]), serde_json::json!("text"), Json::Null] {
            let through_maps = MetadataMap::from(&Metadata::from_stored(&odd)).to_value();
            assert_eq!(MetadataMap::value_of_stored(&odd), through_maps);
        }
    }

    #[test]
    fn datetime_is_written_in_utc_with_z() {
        let parsed = Timestamp::parse(Value::from("2026-11-24T15:37:00.5+02:00")).unwrap();
        assert_eq!(parsed.to_value(), Value::from("2026-11-24T13:37:00.500Z"));
    }

    #[test]
    fn datetime_keeps_microseconds_and_drops_nanoseconds() {
        let parsed = Timestamp::parse(Value::from("2026-11-24T13:37:00.123456789Z")).unwrap();
        assert_eq!(
            parsed.to_value(),
            Value::from("2026-11-24T13:37:00.123456Z")
        );
    }

    #[test]
    fn datetime_rejects_other_formats() {
        for bad in ["2026-11-24", "yesterday", "2026-11-24 13:37:00"] {
            assert!(Timestamp::parse(Value::from(bad)).is_err(), "{bad}");
        }
        assert!(Timestamp::parse(Value::from(5)).is_err());
    }

    #[test]
    fn datetime_refuses_five_digit_years_in_utc_and_leap_seconds() {
        for bad in [
            "9999-12-31T23:30:00-01:00",
            "0001-01-01T00:30:00+01:00",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(Timestamp::parse(Value::from(bad)).is_err(), "{bad}");
            assert!(!Timestamp::is_valid(&Value::from(bad)), "{bad}");
        }
        let last = Timestamp::parse(Value::from("9999-12-31T23:59:59.999999Z")).unwrap();
        assert_eq!(last.to_value(), Value::from("9999-12-31T23:59:59.999999Z"));
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert!(MetadataMap::parse(Value::from("x")).is_err());
        assert!(MetadataMap::parse(Value::List(vec![])).is_err());
    }
}
