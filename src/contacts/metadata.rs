//! Contact metadata: a string → string map with Stripe's limits, holding only text both
//! backends can store.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_CHARS: usize = 40;
pub const MAX_VALUE_CHARS: usize = 500;

/// A validated metadata map. Ordered, so stored JSON is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// Validates a JSON object of strings against the limits; `field` names the input path.
    pub fn parse(object: &Map<String, Value>, field: &str) -> AppResult<Self> {
        if object.len() > MAX_KEYS {
            return Err(AppError::validation(
                field,
                format!("metadata has at most {MAX_KEYS} keys"),
            ));
        }
        let mut map = BTreeMap::new();
        for (key, value) in object {
            check_key(key, field)?;
            let Value::String(text) = value else {
                return Err(AppError::validation(
                    field,
                    format!("metadata value of \"{key}\" must be a string"),
                ));
            };
            if text.contains('\0') {
                return Err(AppError::validation(
                    field,
                    format!("metadata value of \"{key}\" must not contain U+0000 (NUL)"),
                ));
            }
            if text.chars().count() > MAX_VALUE_CHARS {
                return Err(AppError::validation(
                    field,
                    format!(
                        "metadata value of \"{key}\" is longer than {MAX_VALUE_CHARS} characters"
                    ),
                ));
            }
            map.insert(key.clone(), text.clone());
        }
        Ok(Self(map))
    }

    /// Reads a stored value; anything that is not a string map (never written by this service)
    /// is dropped rather than failing a read.
    pub fn from_stored(value: &Value) -> Self {
        let map = value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Self(map)
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

/// Keys are 1 to 40 characters, none of them a control character (U+0000–U+001F,
/// U+007F–U+009F): PostgreSQL cannot store NUL at all, and a key is a name (a CSV column
/// header, a filter), where a line break or escape is a mistake or an attack, never data.
/// Values may hold any character but NUL, so notes keep their line breaks and tabs.
pub fn check_key(key: &str, field: &str) -> AppResult<()> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(AppError::validation(
            field,
            format!("metadata keys have 1 to {MAX_KEY_CHARS} characters"),
        ));
    }
    if let Some(control) = key.chars().find(|c| c.is_control()) {
        return Err(AppError::validation(
            field,
            format!(
                "metadata keys must not contain control characters (U+{:04X})",
                u32::from(control)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> AppResult<Metadata> {
        Metadata::parse(value.as_object().unwrap(), "input.metadata")
    }

    #[test]
    fn accepts_limits_exactly() {
        let object: Map<String, Value> = (0..MAX_KEYS)
            .map(|i| (format!("{i:0>40}"), Value::String("é".repeat(500))))
            .collect();
        assert_eq!(Metadata::parse(&object, "m").unwrap().len(), MAX_KEYS);
    }

    #[test]
    fn rejects_51_keys() {
        let object: Map<String, Value> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect();
        assert!(Metadata::parse(&object, "m").is_err());
    }

    #[test]
    fn rejects_bad_keys_and_values() {
        assert!(parse(json!({ "": "v" })).is_err());
        assert!(parse(json!({ "k".repeat(41): "v" })).is_err());
        assert!(parse(json!({ "k": "v".repeat(501) })).is_err());
        assert!(parse(json!({ "k": 1 })).is_err());
        assert!(parse(json!({ "k": null })).is_err());
        assert!(parse(json!({ "k": { "nested": "x" } })).is_err());
    }

    #[test]
    fn refuses_nul_anywhere_and_control_characters_in_keys() {
        for bad in [
            json!({ "a\u{0}b": "v" }),
            json!({ "k": "a\u{0}b" }),
            json!({ "line\nbreak": "v" }),
            json!({ "tab\t": "v" }),
            json!({ "\u{7f}": "v" }),
            json!({ "\u{9b}x": "v" }),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert!(
                matches!(&err, AppError::Validation { field, .. } if field == "input.metadata"),
                "{bad}: {err:?}"
            );
        }
        assert!(check_key("a\u{0}", "unset").is_err());
        let notes = parse(json!({ "notes": "line one\n\tline two\r\n\u{1b}" })).unwrap();
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn round_trips_through_json() {
        let metadata = parse(json!({ "b": "2", "a": "1" })).unwrap();
        assert_eq!(Metadata::from_stored(&metadata.to_json()), metadata);
    }
}
