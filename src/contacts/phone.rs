//! Phone numbers as people type them, parsed with libphonenumber's metadata and kept in E.164.

use std::str::FromStr;

use phonenumber::{PhoneNumber, country, metadata::DATABASE};

use crate::error::{AppError, AppResult};

/// A number that passed the possible-number check, in the forms the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPhone {
    /// `+56912345678`
    pub e164: String,
    /// The given country code, else the region libphonenumber derives (`None` when it cannot tell).
    pub country_code: Option<String>,
}

/// Where in the input the two values came from, for `extensions.field`.
#[derive(Debug, Clone, Copy)]
pub struct PhoneFields<'a> {
    pub phone_number: &'a str,
    pub country_code: &'a str,
}

/// Validates an ISO 3166-1 alpha-2 code that libphonenumber knows; returns it upper-cased.
pub fn parse_country_code(raw: &str, field: &str) -> AppResult<country::Id> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() != 2 {
        return Err(AppError::validation(
            field,
            "countryCode must be an ISO 3166-1 alpha-2 code such as \"CL\"",
        ));
    }
    country::Id::from_str(&code)
        .map_err(|_| AppError::validation(field, format!("unknown country code \"{code}\"")))
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
    if raw.trim().is_empty() {
        return Err(bad("phoneNumber must not be empty".into()));
    }
    if raw.len() > 64 {
        return Err(bad("phoneNumber is too long".into()));
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
    let derived = || number.country().id().map(|id| id.as_ref().to_owned());
    Ok(ParsedPhone {
        e164: format!("+{calling_code}{}", number.national()),
        country_code: region.map(|id| id.as_ref().to_owned()).or_else(derived),
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
        let general = descriptors.general().possible_length();
        let by_type = [
            descriptors.fixed_line(),
            descriptors.mobile(),
            descriptors.toll_free(),
            descriptors.premium_rate(),
            descriptors.shared_cost(),
            descriptors.personal_number(),
            descriptors.voip(),
            descriptors.pager(),
            descriptors.uan(),
            descriptors.voicemail(),
        ];
        general.contains(&length)
            || by_type
                .into_iter()
                .flatten()
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

    #[test]
    fn prefix_must_be_plus_and_digits() {
        assert_eq!(parse_prefix("+569", "f").unwrap(), "+569");
        for raw in ["569", "+", "+56a", "+1234567890123456"] {
            assert!(parse_prefix(raw, "f").is_err(), "{raw}");
        }
    }
}
