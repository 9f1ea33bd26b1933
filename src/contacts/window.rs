//! WhatsApp's customer-service window: free-form messages are allowed for 24 hours after the
//! contact's last inbound message.

use chrono::{DateTime, TimeDelta, Utc};

/// How long the window stays open after an inbound message.
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

/// How far in the future a reported message time may be (clock skew between systems).
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// When the window closes, or `None` when the contact never messaged.
pub fn expires_at(last_message_at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    last_message_at.map(|at| at + WINDOW)
}

/// Open iff a message was received and `now < last + 24h`: closed at exactly 24 hours.
pub fn is_open(last_message_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at(last_message_at).is_some_and(|expiry| now < expiry)
}

/// The SQL side of the same rule: a window is open iff `last_message_at > opened_after(now)`.
pub fn opened_after(now: DateTime<Utc>) -> DateTime<Utc> {
    now - WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn open_one_microsecond_before_24h() {
        let last = at("2026-11-24T10:00:00Z");
        assert!(is_open(Some(last), at("2026-11-25T09:59:59.999999Z")));
    }

    #[test]
    fn closed_at_exactly_24h() {
        let last = at("2026-11-24T10:00:00Z");
        assert!(!is_open(Some(last), at("2026-11-25T10:00:00Z")));
    }

    #[test]
    fn never_messaged_is_closed() {
        assert!(!is_open(None, at("2026-11-25T10:00:00Z")));
        assert_eq!(expires_at(None), None);
    }

    #[test]
    fn sql_bound_agrees_with_rule_at_the_boundary() {
        let last = at("2026-11-24T10:00:00Z");
        for now in [
            at("2026-11-25T09:59:59.999999Z"),
            at("2026-11-25T10:00:00Z"),
        ] {
            assert_eq!(last > opened_after(now), is_open(Some(last), now));
        }
    }
}
