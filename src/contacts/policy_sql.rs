//! The messaging rules of `policy` as SQL conditions on `contacts`, for the filters and
//! counts: the same rules, evaluated at the same instant, so a filter agrees with the field.
//! Each probes the side tables by primary key, or starts from an index of its own.

use chrono::{DateTime, Utc};
use entity::contact::Column;
use sea_orm::{Condition, DbBackend, ExprTrait, sea_query::Expr};

use super::{sql, window, windows};

/// A rule as SQL: when it holds, and when it fails. Both are spelled out because a NULL
/// makes `NOT (x > bound)` unknown, not true.
pub struct Rule {
    holds: Condition,
    fails: Condition,
}

impl Rule {
    fn new(holds: Condition, fails: Condition) -> Self {
        Self { holds, fails }
    }

    /// Both rules hold.
    pub fn and(self, other: Rule) -> Rule {
        Rule::new(
            Condition::all().add(self.holds).add(other.holds),
            Condition::any().add(self.fails).add(other.fails),
        )
    }

    /// The rule that holds where this one fails.
    pub fn negated(self) -> Rule {
        Rule::new(self.fails, self.holds)
    }

    /// The condition for the rule holding (`true`) or failing (`false`).
    pub fn is(self, wanted: bool) -> Condition {
        if wanted { self.holds } else { self.fails }
    }
}

/// The window is open at `now`, on `number` or (`None`) on any number.
pub fn window_open(backend: DbBackend, number: Option<&str>, now: DateTime<Utc>) -> Rule {
    let bound = window::opened_after(now);
    // Open on any number: the contact-level time, on its index.
    let last = || Expr::col(Column::LastWhatsappMessageAt);
    let Some(number) = number else {
        // On SQLite the null test is written on `+column`, which no index serves: with both
        // sides indexable the planner reads the closed side as two index searches and sorts
        // their union; this way a page walks its order's index and tests each row.
        let never_messaged = match backend {
            DbBackend::Sqlite => Expr::cust("+\"last_whatsapp_message_at\" IS NULL"),
            _ => last().is_null(),
        };
        return Rule::new(
            Condition::all().add(last().gt(bound)),
            Condition::any().add(never_messaged).add(last().lte(bound)),
        );
    };
    let open_on_number = |template: &str| {
        sql::custom(
            backend,
            template,
            [
                sea_orm::Value::from(number.to_owned()),
                sea_orm::Value::from(bound),
            ],
        )
    };
    // Open on one number implies open on any: a page walks the last-message index (in its
    // order, so it stops after a page) and probes each candidate's window by key.
    let probe = "EXISTS (SELECT 1 FROM contact_whatsapp_windows w \
         WHERE w.contact_id = contacts.id AND w.business_phone_number_id = ? \
         AND w.last_inbound_at > ?)";
    Rule::new(
        Condition::all()
            .add(last().gt(bound))
            .add(open_on_number(probe)),
        Condition::all().add(open_on_number(&format!("NOT {probe}"))),
    )
}

/// The contacts whose window on `number` is open at `now`, as the set of that number's open
/// windows, a range of the number's index: what `contactStats` counts, reading only them.
pub fn open_on_number_set(backend: DbBackend, number: &str, now: DateTime<Utc>) -> Condition {
    let bound = window::opened_after(now);
    Condition::all()
        .add(Expr::col(Column::LastWhatsappMessageAt).gt(bound))
        .add(sql::custom(
            backend,
            "contacts.id IN (SELECT w.contact_id FROM contact_whatsapp_windows w \
             WHERE w.business_phone_number_id = ? AND w.last_inbound_at > ?)",
            [
                sea_orm::Value::from(number.to_owned()),
                sea_orm::Value::from(bound),
            ],
        ))
}

/// The business has not blocked the contact. Written as the bare column so the partial index
/// `WHERE blocked` serves the blocked side.
pub fn not_blocked() -> Rule {
    Rule::new(
        Condition::all().add(Expr::cust("NOT contacts.blocked")),
        Condition::all().add(Expr::cust("contacts.blocked")),
    )
}

/// The contact opted out of marketing from `number` (`None`: by a choice for every number):
/// an opt-out for the number or for all with no later resume for either; at the same instant
/// the opt-out wins (`policy::opted_out`). Opt-outs are few: the opted-out side is a set the
/// partial index on opt-outs yields; the other side probes each row's choices by key.
pub fn opted_out(backend: DbBackend, number: Option<&str>) -> Rule {
    const OPTED_OUT: &str = "SELECT p.contact_id FROM contact_marketing_preferences p \
         WHERE p.opted_out AND p.business_phone_number_id IN ('', ?) \
         AND NOT EXISTS (SELECT 1 FROM contact_marketing_preferences q \
         WHERE q.contact_id = p.contact_id AND q.business_phone_number_id IN ('', ?) \
         AND NOT q.opted_out AND q.recorded_at > p.recorded_at)";
    let number = windows::key(number).to_owned();
    let values = || [number.clone(), number.clone()];
    Rule::new(
        Condition::all().add(sql::custom(
            backend,
            &format!("contacts.id IN ({OPTED_OUT})"),
            values(),
        )),
        Condition::all().add(sql::custom(
            backend,
            &format!("NOT EXISTS ({OPTED_OUT} AND p.contact_id = contacts.id)"),
            values(),
        )),
    )
}
