//! Digits as people type them in any script, read as libphonenumber reads them.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// `raw` with every Unicode decimal digit (full-width `５`, Arabic-Indic `٥`…) as its ASCII
/// digit, as libphonenumber normalises before parsing; control characters are refused, since
/// the parser would silently stop at them and keep what came before.
pub(super) fn normalise(raw: &str) -> Result<String, String> {
    raw.chars()
        .map(|c| {
            if c.is_control() {
                Err(format!(
                    "phoneNumber must not contain control characters (U+{:04X})",
                    u32::from(c)
                ))
            } else {
                Ok(decimal_value(c)
                    .and_then(|d| char::from_digit(d, 10))
                    .unwrap_or(c))
            }
        })
        .collect()
}

/// The value of a decimal digit of any script. Unicode encodes every decimal digit set as ten
/// consecutive code points, zero to nine, so a digit's value is its distance from the start of
/// the unbroken run of digits that holds it, modulo ten.
fn decimal_value(c: char) -> Option<u32> {
    // Nearly every digit an import reads: no table lookups.
    if c.is_ascii() {
        return c.to_digit(10);
    }
    let is_digit = |c: char| c.general_category() == GeneralCategory::DecimalNumber;
    if !is_digit(c) {
        return None;
    }
    let mut start = u32::from(c);
    while char::from_u32(start - 1).is_some_and(is_digit) {
        start -= 1;
    }
    Some((u32::from(c) - start) % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_have_their_value() {
        assert_eq!(decimal_value('５'), Some(5));
        assert_eq!(decimal_value('٩'), Some(9));
        assert_eq!(decimal_value('९'), Some(9));
        // Five sets of mathematical digits in one unbroken run.
        assert_eq!(decimal_value('𝟎'), Some(0));
        assert_eq!(decimal_value('𝟗'), Some(9));
        assert_eq!(decimal_value('𝟿'), Some(9));
        assert_eq!(decimal_value('x'), None);
        assert_eq!(decimal_value('½'), None);
    }

    #[test]
    fn normalising_keeps_punctuation_and_refuses_control_characters() {
        assert_eq!(normalise("＋５６ (９) ١٢٣").unwrap(), "＋56 (9) 123");
        assert!(normalise("+56\u{0}").is_err());
        assert!(normalise("+56\u{85}").is_err());
    }
}
