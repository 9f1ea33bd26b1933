//! Metric labels for webhook events: Meta's names where this server knows them, `other`
//! otherwise, so a payload can never grow the number of series.

/// The `field` of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Messages,
    Calls,
    UserPreferences,
    UserIdUpdate,
    Other,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Calls => "calls",
            Self::UserPreferences => "user_preferences",
            Self::UserIdUpdate => "user_id_update",
            Self::Other => "other",
        }
    }
}

pub fn field(name: &str) -> Field {
    match name {
        "messages" => Field::Messages,
        "calls" => Field::Calls,
        "user_preferences" => Field::UserPreferences,
        "user_id_update" => Field::UserIdUpdate,
        _ => Field::Other,
    }
}

/// Message types of Meta's messages webhook reference.
const MESSAGE_TYPES: &[&str] = &[
    "audio",
    "button",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "order",
    "reaction",
    "request_welcome",
    "sticker",
    "system",
    "text",
    "unsupported",
    "video",
];

/// A message `type` label: Meta's, or `other` for one this server does not know (still
/// recorded: any inbound message opens the window).
pub fn message_type(name: &str) -> &'static str {
    known(name, MESSAGE_TYPES)
}

const CALL_EVENTS: &[&str] = &["connect", "terminate", "status"];

pub fn call_event(name: &str) -> &'static str {
    known(name, CALL_EVENTS)
}

fn known(name: &str, names: &[&'static str]) -> &'static str {
    names
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_become_other() {
        assert_eq!(message_type("text"), "text");
        assert_eq!(message_type("hologram"), "other");
        assert_eq!(call_event("connect"), "connect");
        assert_eq!(field("account_update"), Field::Other);
        assert_eq!(field("calls").as_str(), "calls");
    }
}
