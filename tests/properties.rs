//! Property tests: the parsers of client input never panic, and what they accept round-trips.

use async_graphql::{ScalarType, Value as GqlValue};
use contacts_server::{
    contacts::{
        cursor::Cursor,
        metadata::{self, Metadata},
        order::{OrderField, SortValue},
        phone::{self, PhoneFields},
    },
    graphql::scalars::Timestamp,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const FIELDS: PhoneFields<'static> = PhoneFields {
    phone_number: "phoneNumber",
    country_code: "countryCode",
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn phone_parsing_never_panics_and_e164_is_a_fixed_point(raw in "\\PC{0,40}", country in proptest::option::of("[A-Za-z]{0,3}")) {
        if let Ok(parsed) = phone::parse_phone(&raw, country.as_deref(), FIELDS) {
            prop_assert!(parsed.e164.starts_with('+'));
            prop_assert!(parsed.e164[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(parsed.e164.len() <= 16);
            let again = phone::parse_phone(&parsed.e164, None, FIELDS).unwrap();
            prop_assert_eq!(again.e164, parsed.e164);
        }
    }

    #[test]
    fn typed_numbers_in_any_spacing_parse_to_one_e164(groups in proptest::collection::vec("[0-9]{1,4}", 1..5), separator in "[ .-]") {
        let digits: String = groups.concat();
        let spaced = format!("+56 9{}{}", separator, groups.join(&separator));
        let plain = format!("+569{digits}");
        let (a, b) = (phone::parse_phone(&spaced, None, FIELDS), phone::parse_phone(&plain, None, FIELDS));
        prop_assert_eq!(a.map(|p| p.e164).ok(), b.map(|p| p.e164).ok());
    }

    #[test]
    fn metadata_parsing_never_panics_and_keeps_its_limits(
        entries in proptest::collection::vec(("\\PC{0,45}", prop_oneof![
            "\\PC{0,510}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            Just(Value::Null),
        ]), 0..60)
    ) {
        let object: Map<String, Value> = entries.into_iter().collect();
        if let Ok(parsed) = Metadata::parse(&object, "metadata") {
            prop_assert!(parsed.len() <= metadata::MAX_KEYS);
            for (key, value) in parsed.iter() {
                prop_assert!((1..=metadata::MAX_KEY_CHARS).contains(&key.chars().count()));
                prop_assert!(value.chars().count() <= metadata::MAX_VALUE_CHARS);
            }
            prop_assert_eq!(Metadata::from_stored(&parsed.to_json()), parsed);
        }
    }

    #[test]
    fn cursor_decoding_never_panics(raw in "\\PC{0,80}") {
        for field in OrderField::ALL {
            let _ = Cursor::decode(&raw, field, "after");
        }
    }

    #[test]
    fn cursors_round_trip(text in "\\PC{0,30}", micros in 0i64..4_102_444_800_000_000, null in any::<bool>()) {
        let at = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        let id = uuid::Uuid::now_v7();
        let cases = [
            Cursor { field: OrderField::PhoneNumber, value: SortValue::Text(text), id },
            Cursor { field: OrderField::CreatedAt, value: SortValue::Time(at), id },
            Cursor {
                field: OrderField::LastWhatsappMessageAt,
                value: if null { SortValue::Null } else { SortValue::Time(at) },
                id,
            },
        ];
        for cursor in cases {
            prop_assert_eq!(Cursor::decode(&cursor.encode(), cursor.field, "after").unwrap(), cursor);
        }
    }

    #[test]
    fn datetime_parsing_never_panics_and_output_is_canonical(raw in "\\PC{0,40}") {
        if let Ok(parsed) = Timestamp::parse(GqlValue::String(raw)) {
            let GqlValue::String(text) = parsed.to_value() else { panic!("a string") };
            prop_assert!(text.ends_with('Z'));
            prop_assert_eq!(Timestamp::parse(GqlValue::String(text)).unwrap(), parsed);
        }
    }

    #[test]
    fn valid_datetimes_round_trip(micros in 0i64..253_402_300_799_000_000, offset_minutes in -840i32..840) {
        let at = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
        let text = at.with_timezone(&offset).to_rfc3339();
        let parsed = Timestamp::parse(GqlValue::String(text)).unwrap();
        prop_assert_eq!(parsed.0, at);
    }
}
