//! Property tests: the parsers of client input never panic, and what they accept round-trips.

use async_graphql::{ScalarType, Value as GqlValue};
use chrono::{DateTime, Datelike, FixedOffset};
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

/// `YYYY-…`: RFC 3339's year, which SQLite's text comparison orders correctly.
fn has_four_digit_year(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() > 4 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
}

/// The first second of year 1 and of year 10000, in Unix seconds.
const YEAR_1: i64 = -62_135_596_800;
const YEAR_10000: i64 = 253_402_300_800;

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
    fn cursors_round_trip(text in "\\+[0-9]{1,15}", micros in 0i64..4_102_444_800_000_000, null in any::<bool>()) {
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
            prop_assert!(has_four_digit_year(&text), "{}", text);
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

    #[test]
    fn timestamps_parse_only_within_four_digit_utc_years(
        secs in prop_oneof![YEAR_1 - 172_800..YEAR_1 + 172_800, YEAR_10000 - 172_800..YEAR_10000 + 172_800],
        offset_minutes in -1439i32..1439,
    ) {
        let at = DateTime::from_timestamp(secs, 0).unwrap();
        let local = at.with_timezone(&FixedOffset::east_opt(offset_minutes * 60).unwrap());
        // RFC 3339 itself writes four-digit years only.
        prop_assume!((0..=9999).contains(&local.year()));
        let parsed = Timestamp::parse(GqlValue::String(local.to_rfc3339()));
        prop_assert_eq!(parsed.is_ok(), (1..=9999).contains(&at.year()), "{}", local);
        if let Ok(parsed) = parsed {
            let GqlValue::String(text) = parsed.to_value() else { panic!("a string") };
            prop_assert!(has_four_digit_year(&text), "{}", text);
        }
    }

    #[test]
    fn metadata_keys_never_hold_control_characters_nor_values_nul(
        key in "[a\\x00-\\x1f\\x7f-\\u{9f}]{1,8}",
        value in "[a\\x00\\n\\t\\r]{0,8}",
    ) {
        let object: Map<String, Value> = [(key.clone(), Value::String(value.clone()))].into_iter().collect();
        let accepted = Metadata::parse(&object, "metadata").is_ok();
        prop_assert_eq!(accepted, !key.chars().any(char::is_control) && !value.contains('\0'));
    }

    #[test]
    fn phone_numbers_with_a_control_character_are_refused(
        before in "[0-9]{0,9}",
        control in "[\\x00-\\x1f\\x7f-\\u{9f}]",
        after in "[0-9]{0,9}",
    ) {
        let raw = format!("+569{before}{control}{after}");
        prop_assert!(phone::parse_phone(&raw, None, FIELDS).is_err(), "{:?}", raw);
    }

    #[test]
    fn digits_of_any_script_parse_like_ascii_digits(
        digits in "[0-9]{6,10}",
        zero in proptest::sample::select(vec!['０', '٠', '۰', '०', '০', '๐', '𝟎', '𝟘']),
    ) {
        let ascii = format!("+56 9{digits}");
        let other: String = ascii
            .chars()
            .map(|c| c.to_digit(10).and_then(|d| char::from_u32(u32::from(zero) + d)).unwrap_or(c))
            .collect();
        let e164 = |raw: &str| phone::parse_phone(raw, None, FIELDS).map(|p| p.e164).ok();
        prop_assert_eq!(e164(&other), e164(&ascii), "{}", other);
    }
}
