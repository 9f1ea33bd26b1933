//! What may be sent to a contact now: free-form messages, templates, marketing templates, and
//! the rules that said no. Pure rules; the SQL filters in `filter` state the same ones.

use chrono::{DateTime, Utc};
use entity::{marketing_preference, whatsapp_window};

use super::{window, windows};

/// A contact's rows in the side tables the policy reads.
#[derive(Debug, Clone, Default)]
pub struct MessagingRows {
    /// Newest first.
    pub windows: Vec<whatsapp_window::Model>,
    pub preferences: Vec<marketing_preference::Model>,
}

/// A rule that forbids some kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No inbound message or call in the last 24 hours: free-form messages are not allowed.
    WindowClosed,
    /// The business blocked the user: nothing may be sent.
    Blocked,
    /// The user stopped marketing messages.
    MarketingOptOut,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WindowClosed => "WINDOW_CLOSED",
            Self::Blocked => "BLOCKED",
            Self::MarketingOptOut => "MARKETING_OPT_OUT",
        }
    }
}

/// `Contact.messaging`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingPolicy {
    pub free_form: bool,
    pub template: bool,
    pub marketing_template: bool,
    /// Every rule that said no, in the order of [`Reason`].
    pub reasons: Vec<Reason>,
}

/// Free-form needs an open window and no block; templates need no block; marketing templates
/// also need no opt-out.
pub fn decide(window_open: bool, blocked: bool, opted_out: bool) -> MessagingPolicy {
    let reasons = [
        (!window_open, Reason::WindowClosed),
        (blocked, Reason::Blocked),
        (opted_out, Reason::MarketingOptOut),
    ]
    .into_iter()
    .filter_map(|(applies, reason)| applies.then_some(reason))
    .collect();
    MessagingPolicy {
        free_form: window_open && !blocked,
        template: !blocked,
        marketing_template: !blocked && !opted_out,
        reasons,
    }
}

/// The window on `number` (`None`: on any number) at `now`. `windows` are the contact's.
pub fn window_open(
    windows: &[whatsapp_window::Model],
    number: Option<&str>,
    now: DateTime<Utc>,
) -> bool {
    latest_inbound(windows, number).is_some_and(|at| window::is_open(Some(at), now))
}

/// The latest inbound on `number` (`None`: on any number).
pub fn latest_inbound(
    windows: &[whatsapp_window::Model],
    number: Option<&str>,
) -> Option<DateTime<Utc>> {
    windows
        .iter()
        .filter(|w| number.is_none_or(|n| w.business_phone_number_id == n))
        .map(|w| w.last_inbound_at)
        .max()
}

/// Whether the user opted out of marketing from `number`: the latest choice among the ones
/// made for that number and for every number wins; at the same instant an opt-out wins. With
/// no number, only the choices made for every number count (what a number the user never
/// named gets). `preferences` are the contact's.
pub fn opted_out(preferences: &[marketing_preference::Model], number: Option<&str>) -> bool {
    preferences
        .iter()
        .filter(|p| {
            p.business_phone_number_id == windows::UNNAMED
                || number.is_some_and(|n| p.business_phone_number_id == n)
        })
        .max_by_key(|p| (p.recorded_at, p.opted_out))
        .is_some_and(|p| p.opted_out)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn choice(number: &str, opted_out: bool, when: &str) -> marketing_preference::Model {
        marketing_preference::Model {
            contact_id: Uuid::nil(),
            business_phone_number_id: number.into(),
            opted_out,
            recorded_at: at(when),
        }
    }

    #[test]
    fn every_rule_that_says_no_is_named() {
        let all_no = decide(false, true, true);
        assert!(!all_no.free_form && !all_no.template && !all_no.marketing_template);
        assert_eq!(
            all_no.reasons,
            [
                Reason::WindowClosed,
                Reason::Blocked,
                Reason::MarketingOptOut
            ]
        );
        let open = decide(true, false, false);
        assert!(open.free_form && open.template && open.marketing_template);
        assert!(open.reasons.is_empty());
        let opted = decide(true, false, true);
        assert!(opted.free_form && opted.template && !opted.marketing_template);
    }

    #[test]
    fn the_latest_choice_wins_between_a_number_and_all_numbers() {
        let global_out_then_resume_on_1 = [
            choice("", true, "2026-11-01T00:00:00Z"),
            choice("1", false, "2026-11-02T00:00:00Z"),
        ];
        assert!(!opted_out(&global_out_then_resume_on_1, Some("1")));
        assert!(opted_out(&global_out_then_resume_on_1, Some("2")));
        assert!(opted_out(&global_out_then_resume_on_1, None));
        let resume_on_1_then_global_out = [
            choice("1", false, "2026-11-01T00:00:00Z"),
            choice("", true, "2026-11-02T00:00:00Z"),
        ];
        assert!(opted_out(&resume_on_1_then_global_out, Some("1")));
        let tie = [
            choice("", false, "2026-11-01T00:00:00Z"),
            choice("1", true, "2026-11-01T00:00:00Z"),
        ];
        assert!(opted_out(&tie, Some("1")));
        assert!(!opted_out(&tie, None));
        assert!(!opted_out(&[], Some("1")));
    }

    #[test]
    fn a_window_is_per_number_and_any_number_opens_the_contact() {
        let windows = [whatsapp_window::Model {
            contact_id: Uuid::nil(),
            business_phone_number_id: "1".into(),
            last_inbound_at: at("2026-11-24T10:00:00Z"),
        }];
        let before = at("2026-11-25T09:59:59Z");
        let boundary = at("2026-11-25T10:00:00Z");
        assert!(window_open(&windows, Some("1"), before));
        assert!(!window_open(&windows, Some("2"), before));
        assert!(window_open(&windows, None, before));
        assert!(!window_open(&windows, Some("1"), boundary));
    }
}
