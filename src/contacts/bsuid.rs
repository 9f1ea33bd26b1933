//! WhatsApp identity values: the business-scoped user id (BSUID), its parent, the username and
//! the profile name, validated as Meta defines them.

use super::phone;
use crate::error::{AppError, AppResult};

/// Letters and digits after the period, at most (Meta: "up to 128").
pub const MAX_BSUID_BODY: usize = 128;
/// Longest username or profile name kept, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Validates a BSUID: `CC.<1-128 ASCII letters and digits>`, `CC` an ISO 3166-1 alpha-2 code
/// under the rule of `countryCode`, upper case as Meta writes it. Kept exactly as given (it
/// is an opaque key, so no case folding).
pub fn parse_bsuid(raw: &str, field: &str) -> AppResult<String> {
    let invalid = || {
        AppError::validation(
            field,
            format!(
                "a WhatsApp user id is `CC.` (an ISO 3166-1 alpha-2 code, upper case) followed \
                 by 1 to {MAX_BSUID_BODY} letters and digits, e.g. US.13491208655302741918"
            ),
        )
    };
    let (country, body) = raw.split_once('.').ok_or_else(invalid)?;
    let upper = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
    if !upper
        || body.is_empty()
        || body.len() > MAX_BSUID_BODY
        || !body.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(invalid());
    }
    phone::parse_country_code(country, field).map_err(|_| invalid())?;
    Ok(raw.to_owned())
}

/// Validates a parent BSUID: Meta writes `ENT.` after the country code
/// (`US.ENT.11815799212886844830`); a plain BSUID is accepted too.
pub fn parse_parent_bsuid(raw: &str, field: &str) -> AppResult<String> {
    let plain = match raw.split_once(".ENT.") {
        Some((country, body)) => format!("{country}.{body}"),
        None => raw.to_owned(),
    };
    parse_bsuid(&plain, field)?;
    Ok(raw.to_owned())
}

/// Validates a username or profile name: trimmed, not empty, at most [`MAX_NAME_CHARS`]
/// characters, no control characters.
pub fn parse_name(raw: &str, field: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::validation(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::validation(
            field,
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_meta_bsuids() {
        for ok in ["US.13491208655302741918", "CL.a", "BR.AbC123"] {
            assert_eq!(parse_bsuid(ok, "f").ok().as_deref(), Some(ok));
        }
        let longest = format!("DE.{}", "9".repeat(MAX_BSUID_BODY));
        assert!(parse_bsuid(&longest, "f").is_ok());
    }

    #[test]
    fn refuses_anything_else_naming_the_field() {
        let too_long = format!("DE.{}", "9".repeat(MAX_BSUID_BODY + 1));
        for bad in [
            "",
            "US",
            "US.",
            ".123",
            "us.123",
            "USA.123",
            "ZZ.123",
            "US.12-3",
            "US.1 2",
            "US.１２",
            "US.12.3",
            &too_long,
        ] {
            let err = parse_bsuid(bad, "input.whatsappUserId").unwrap_err();
            assert!(
                matches!(&err, AppError::Validation { field, .. } if field == "input.whatsappUserId"),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  ana.w ", "f").ok().as_deref(), Some("ana.w"));
        assert!(parse_name(" ", "f").is_err());
        assert!(parse_name("a\u{0}b", "f").is_err());
        assert!(parse_name(&"x".repeat(MAX_NAME_CHARS + 1), "f").is_err());
    }

    #[test]
    fn parent_bsuids_carry_ent() {
        let parent = "US.ENT.11815799212886844830";
        assert_eq!(
            parse_parent_bsuid(parent, "f").ok().as_deref(),
            Some(parent)
        );
        assert!(parse_parent_bsuid("US.13491208655302741918", "f").is_ok());
        assert!(parse_parent_bsuid("US.ENT.", "f").is_err());
        assert!(parse_parent_bsuid("US.ENT.1.2", "f").is_err());
        assert!(parse_bsuid(parent, "f").is_err());
    }
}

/// The WhatsApp identity an input carries, validated; `None` fields were not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhatsappIds {
    pub user_id: Option<String>,
    pub parent_user_id: Option<String>,
    pub username: Option<String>,
    pub profile_name: Option<String>,
}

/// Where each value sits in the input, for `extensions.field`.
pub struct WhatsappFields {
    pub user_id: String,
    pub parent_user_id: String,
    pub username: String,
    pub profile_name: String,
}

impl WhatsappIds {
    /// Validates raw values (same order as the fields) found at `fields`.
    pub fn parse(raw: [Option<String>; 4], fields: &WhatsappFields) -> AppResult<Self> {
        let [user_id, parent, username, profile_name] = raw;
        Ok(Self {
            user_id: user_id
                .map(|id| parse_bsuid(&id, &fields.user_id))
                .transpose()?,
            parent_user_id: parent
                .map(|id| parse_parent_bsuid(&id, &fields.parent_user_id))
                .transpose()?,
            username: username
                .map(|name| parse_name(&name, &fields.username))
                .transpose()?,
            profile_name: profile_name
                .map(|name| parse_name(&name, &fields.profile_name))
                .transpose()?,
        })
    }

    /// True when nothing but the BSUID-less phone path is needed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
