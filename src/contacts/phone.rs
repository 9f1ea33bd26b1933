//! Phone numbers as people type them, parsed with libphonenumber's metadata and kept in E.164.

use std::str::FromStr;

mod digits;
mod region;

use phonenumber::{PhoneNumber, country, metadata::DATABASE};

use self::{
    digits::normalise,
    region::{is_known_iso_region, region_of},
};
use crate::error::{AppError, AppResult};

/// A number that passed the possible-number check, in the forms the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPhone {
    /// `+56912345678`
    pub e164: String,
    /// The given country code, else the region libphonenumber derives (`None` when it cannot tell
    /// or the region has no ISO 3166-1 code).
    pub country_code: Option<String>,
    /// True when `country_code` was given rather than derived: an upsert of an existing number
    /// writes a given code and keeps the stored one otherwise.
    pub country_given: bool,
}

/// Where in the input the two values came from, for `extensions.field`.
#[derive(Debug, Clone, Copy)]
pub struct PhoneFields<'a> {
    pub phone_number: &'a str,
    pub country_code: &'a str,
}

/// Validates a country code ([`is_known_iso_region`], any letter case); returns it upper-cased.
pub fn parse_country_code(raw: &str, field: &str) -> AppResult<country::Id> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::validation(
            field,
            "countryCode must be an ISO 3166-1 alpha-2 code such as \"CL\"",
        ));
    }
    match country::Id::from_str(&code) {
        Ok(id) if is_known_iso_region(&code) => Ok(id),
        _ => Err(AppError::validation(
            field,
            format!("unknown country code \"{code}\""),
        )),
    }
}

/// Parses `raw` (E.164, international with spaces or dashes, or national with `country_code`).
pub fn parse_phone(
    raw: &str,
    country_code: Option<&str>,
    fields: PhoneFields<'_>,
) -> AppResult<ParsedPhone> {
    let region = country_code
        .map(|code| parse_country_code(code, fields.country_code))
        .transpose()?;
    let bad = |message: String| AppError::validation(fields.phone_number, message);
    if raw.chars().count() > 64 {
        return Err(bad("phoneNumber is too long".into()));
    }
    let raw = &normalise(raw).map_err(bad)?;
    if raw.trim().is_empty() {
        return Err(bad("phoneNumber must not be empty".into()));
    }
    let number = phonenumber::parse(region, raw).map_err(|err| {
        let hint = if region.is_none() && !raw.trim_start().starts_with('+') {
            " (a national number needs countryCode)"
        } else {
            ""
        };
        bad(format!("\"{raw}\" is not a phone number: {err}{hint}"))
    })?;
    if number.extension().is_some() {
        return Err(bad("phoneNumber must not have an extension".into()));
    }
    check_possible(&number)
        .map_err(|why| bad(format!("\"{raw}\" is not a possible phone number: {why}")))?;
    let calling_code = number.code().value();
    if let Some(region) = region {
        let region_code = DATABASE
            .by_id(region.as_ref())
            .map(|meta| meta.country_code());
        if region_code != Some(calling_code) {
            return Err(AppError::validation(
                fields.country_code,
                format!(
                    "countryCode {} does not match the number's calling code +{calling_code}",
                    region.as_ref()
                ),
            ));
        }
    }
    Ok(ParsedPhone {
        e164: format!("+{calling_code}{}", number.national()),
        country_code: region
            .map(|id| id.as_ref().to_owned())
            .or_else(|| region_of(&number)),
        country_given: region.is_some(),
    })
}

/// libphonenumber's "possible number": a known calling code and a national number length that
/// some number type of that code uses. Deliberately weaker than "valid", because assignment
/// metadata lags real allocations.
fn check_possible(number: &PhoneNumber) -> Result<(), String> {
    let code = number.code().value();
    let regions = DATABASE
        .by_code(&code)
        .ok_or_else(|| format!("unknown country calling code +{code}"))?;
    let length = u16::try_from(number.national().to_string().len()).unwrap_or(u16::MAX);
    let fits = regions.iter().any(|meta| {
        let descriptors = meta.descriptors();
        descriptors.general().possible_length().contains(&length)
            || region::number_types(descriptors)
                .any(|desc| desc.possible_length().contains(&length))
    });
    if fits {
        Ok(())
    } else {
        Err(format!("wrong length for +{code}"))
    }
}

/// Validates a `phoneNumberPrefix` filter: `+` then up to 15 digits.
pub fn parse_prefix(raw: &str, field: &str) -> AppResult<String> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::validation(
            field,
            "phoneNumberPrefix must be \"+\" followed by digits, e.g. \"+569\"",
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: PhoneFields<'static> = PhoneFields {
        phone_number: "phoneNumber",
        country_code: "countryCode",
    };

    fn parse(raw: &str, cc: Option<&str>) -> AppResult<ParsedPhone> {
        parse_phone(raw, cc, FIELDS)
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_seed_number_that_is_possible_but_not_valid() {
        let parsed = parse("+56912345678", None).unwrap();
        assert_eq!(parsed.e164, "+56912345678");
        assert_eq!(parsed.country_code.as_deref(), Some("CL"));
    }

    #[test]
    fn accepts_what_people_type() {
        for raw in ["+56 9 1234 5678", "+56-9-1234-5678", "+56 (9) 1234-5678"] {
            assert_eq!(parse(raw, None).unwrap().e164, "+56912345678", "{raw}");
        }
    }

    #[test]
    fn national_number_needs_country_code() {
        assert_eq!(
            parse("9 1234 5678", Some("CL")).unwrap().e164,
            "+56912345678"
        );
        assert_eq!(
            parse("9 1234 5678", Some("cl"))
                .unwrap()
                .country_code
                .as_deref(),
            Some("CL")
        );
        assert_eq!(
            field_of(parse("9 1234 5678", None).unwrap_err()),
            "phoneNumber"
        );
    }

    #[test]
    fn derives_region_for_other_countries() {
        assert_eq!(
            parse("+14155550100", None).unwrap().country_code.as_deref(),
            Some("US")
        );
        assert_eq!(
            parse("+442071838750", None)
                .unwrap()
                .country_code
                .as_deref(),
            Some("GB")
        );
        assert_eq!(
            parse("+4915123456789", None)
                .unwrap()
                .country_code
                .as_deref(),
            Some("DE")
        );
    }

    #[test]
    fn unassigned_nanp_range_has_no_region() {
        let parsed = parse("+1 200 555 0100", None).unwrap();
        assert_eq!(parsed.e164, "+12005550100");
        assert_eq!(parsed.country_code, None);
    }

    #[test]
    fn rejects_impossible_numbers() {
        for raw in [
            "+5691234",
            "+569123456789012",
            "+999 1234 5678",
            "hello",
            "",
            "+",
            "12",
        ] {
            assert_eq!(
                field_of(parse(raw, None).unwrap_err()),
                "phoneNumber",
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_country_code_of_another_calling_code() {
        assert_eq!(
            field_of(parse("+56912345678", Some("US")).unwrap_err()),
            "countryCode"
        );
        assert_eq!(
            field_of(parse("+56912345678", Some("XX")).unwrap_err()),
            "countryCode"
        );
        assert_eq!(
            field_of(parse("+56912345678", Some("CHL")).unwrap_err()),
            "countryCode"
        );
    }

    #[test]
    fn shared_calling_code_keeps_the_given_region() {
        assert_eq!(
            parse("+14155550100", Some("CA"))
                .unwrap()
                .country_code
                .as_deref(),
            Some("CA")
        );
    }

    #[test]
    fn rejects_extensions() {
        assert!(parse("+1 415 555 0100 ext. 12", None).is_err());
    }

    fn region(raw: &str) -> Option<String> {
        parse(raw, None).unwrap().country_code
    }

    #[test]
    fn italian_landlines_keep_their_leading_zero_and_region() {
        let milan = parse("+39 02 1234 5678", None).unwrap();
        assert_eq!(milan.e164, "+390212345678");
        assert_eq!(milan.country_code.as_deref(), Some("IT"));
        assert_eq!(region("+39 06 4991 1234").as_deref(), Some("IT"));
        assert_eq!(region("+39 312 345 6789").as_deref(), Some("IT"));
        // Vatican City shares +39 and is told apart by its leading digits.
        assert_eq!(region("+39 06 698 12345").as_deref(), Some("VA"));
    }

    #[test]
    fn shared_calling_codes_resolve_as_libphonenumber_does() {
        for (raw, expected) in [
            ("+1 416 555 0100", "CA"),
            ("+1 876 555 0100", "JM"),
            ("+1 787 555 0100", "PR"),
            ("+44 1481 256789", "GG"),
            ("+44 7400 123456", "GB"),
            ("+7 495 123 4567", "RU"),
            ("+7 912 345 6789", "RU"),
            ("+7 717 212 3456", "KZ"),
            ("+7 701 234 5678", "KZ"),
        ] {
            assert_eq!(region(raw).as_deref(), Some(expected), "{raw}");
        }
    }

    #[test]
    fn regions_without_an_iso_code_are_neither_derived_nor_accepted() {
        // Ascension (+247), Tristan da Cunha (+290 8) and Kosovo (+383): AC, TA and XK.
        assert_eq!(region("+247 62889"), None);
        assert_eq!(region("+290 8999"), None);
        assert_eq!(region("+383 44 123 456"), None);
        for (raw, code) in [
            ("+247 62889", "AC"),
            ("+290 8999", "TA"),
            ("+383 44 123 456", "XK"),
        ] {
            assert_eq!(field_of(parse(raw, Some(code)).unwrap_err()), "countryCode");
        }
        assert!(parse_country_code("X1", "f").is_err());
        assert_eq!(
            parse_country_code(" sh ", "f").unwrap().as_ref(),
            "SH",
            "every other region id is an assigned code"
        );
    }

    #[test]
    fn digits_of_other_scripts_are_read_as_digits() {
        for raw in [
            "+５６９１２３４５６７８",
            "+٥٦٩١٢٣٤٥٦٧٨",
            "+۵۶۹۱۲۳۴۵۶۷۸",
            "＋56 9 1234 5678",
        ] {
            let parsed = parse(raw, None).unwrap();
            assert_eq!(parsed.e164, "+56912345678", "{raw}");
            assert_eq!(parsed.country_code.as_deref(), Some("CL"), "{raw}");
        }
    }

    #[test]
    fn control_characters_are_refused_not_cut_off() {
        for raw in [
            "+56912345678\u{0}",
            "+5691234\u{0}5678",
            "+56912345678\n",
            "+56 9\t1234 5678",
            "\u{1b}+56912345678",
        ] {
            let err = parse(raw, None).unwrap_err();
            assert_eq!(field_of(err), "phoneNumber", "{raw:?}");
        }
    }

    #[test]
    fn a_derived_country_is_not_marked_as_given() {
        assert!(!parse("+56912345678", None).unwrap().country_given);
        assert!(parse("+56912345678", Some("cl")).unwrap().country_given);
    }

    #[test]
    fn prefix_must_be_plus_and_digits() {
        assert_eq!(parse_prefix("+569", "f").unwrap(), "+569");
        for raw in ["569", "+", "+56a", "+1234567890123456"] {
            assert!(parse_prefix(raw, "f").is_err(), "{raw}");
        }
    }
}
