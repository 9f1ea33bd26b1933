//! `ContactFilter`: validated filter input and the SQL condition it becomes. Every filter runs
//! in SQL on an index; none is applied in Rust.

use chrono::{DateTime, Utc};
use entity::contact::Column;
use sea_orm::{Condition, DbBackend, ExprTrait, sea_query::Expr};
use serde_json::{Map, Value};

pub use super::sql::MetadataProbe;
use super::{bsuid, metadata::Metadata, phone, policy_sql, sql, windows};
use crate::error::AppResult;

/// The filter as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct FilterInput {
    pub whatsapp_window_open: Option<bool>,
    pub country_code: Option<Vec<String>>,
    pub phone_number_prefix: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub last_whatsapp_message_after: Option<DateTime<Utc>>,
    pub last_whatsapp_message_before: Option<DateTime<Utc>>,
    pub whatsapp_user_id: Option<String>,
    pub has_phone_number: Option<bool>,
    pub business_phone_number_id: Option<String>,
    pub messaging_free_form: Option<bool>,
    pub marketing_allowed: Option<bool>,
}

/// A validated filter.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    whatsapp_window_open: Option<bool>,
    country_codes: Option<Vec<String>>,
    phone_number_prefix: Option<String>,
    metadata: Option<Metadata>,
    /// How SQLite reads `metadata` ([`ContactFilter::with_metadata_probe`]).
    metadata_probe: MetadataProbe,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    last_message_after: Option<DateTime<Utc>>,
    last_message_before: Option<DateTime<Utc>>,
    whatsapp_user_id: Option<String>,
    has_phone_number: Option<bool>,
    /// The number the window, free-form and marketing filters are evaluated for.
    business_number: Option<String>,
    /// Read "open on the business number" from that number's open windows, as a set, instead
    /// of probing each contact of the last-message walk ([`ContactFilter::with_window_set`]).
    window_set: bool,
    /// Test the phone prefix on each row of the order's walk instead of reading its range
    /// ([`ContactFilter::with_prefix_tested_per_row`]).
    prefix_per_row: bool,
    messaging_free_form: Option<bool>,
    marketing_allowed: Option<bool>,
}

impl ContactFilter {
    /// Validates `input`; `field` is the argument path (`filter`).
    pub fn parse(input: FilterInput, field: &str) -> AppResult<Self> {
        let country_codes = input
            .country_code
            .map(|codes| {
                codes
                    .iter()
                    .map(|code| {
                        let id = phone::parse_country_code(code, &format!("{field}.countryCode"))?;
                        Ok(id.as_ref().to_owned())
                    })
                    .collect::<AppResult<Vec<_>>>()
            })
            .transpose()?;
        let phone_number_prefix = input
            .phone_number_prefix
            .map(|prefix| phone::parse_prefix(&prefix, &format!("{field}.phoneNumberPrefix")))
            .transpose()?;
        // An empty object requires nothing (every contact's metadata contains it): no
        // condition, so the count stays the maintained total instead of reading the table.
        let metadata = input
            .metadata
            .map(|object| Metadata::parse(&object, &format!("{field}.metadata")))
            .transpose()?
            .filter(|metadata| !metadata.is_empty());
        let whatsapp_user_id = input
            .whatsapp_user_id
            .map(|id| bsuid::parse_bsuid(&id, &format!("{field}.whatsappUserId")))
            .transpose()?;
        let business_number = input
            .business_phone_number_id
            .map(|id| {
                windows::parse_business_number(&id, &format!("{field}.businessPhoneNumberId"))
            })
            .transpose()?;
        Ok(Self {
            business_number,
            messaging_free_form: input.messaging_free_form,
            marketing_allowed: input.marketing_allowed,
            whatsapp_user_id,
            has_phone_number: input.has_phone_number,
            whatsapp_window_open: input.whatsapp_window_open,
            country_codes,
            phone_number_prefix,
            metadata,
            metadata_probe: MetadataProbe::default(),
            window_set: false,
            prefix_per_row: false,
            created_after: input.created_after,
            created_before: input.created_before,
            last_message_after: input.last_whatsapp_message_after,
            last_message_before: input.last_whatsapp_message_before,
        })
    }

    /// The metadata pairs the filter requires, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// The filter with its metadata read by `probe` (SQLite; PostgreSQL's GIN index needs no
    /// choice).
    pub fn with_metadata_probe(&self, probe: MetadataProbe) -> Self {
        Self {
            metadata_probe: probe,
            ..self.clone()
        }
    }

    /// The business number whose open windows a list page may read as a set: the filter asks
    /// for an open window (or free-form messaging) on it.
    pub fn open_on_number(&self) -> Option<&str> {
        let wants_open =
            self.whatsapp_window_open == Some(true) || self.messaging_free_form == Some(true);
        self.business_number.as_deref().filter(|_| wants_open)
    }

    /// The filter reading the number's open windows as a set (SQLite, for a number with few:
    /// its planner would otherwise walk every open contact of every number and probe each).
    pub fn with_window_set(&self) -> Self {
        Self {
            window_set: true,
            ..self.clone()
        }
    }

    /// The phone-number prefix the filter requires, if any.
    pub fn phone_number_prefix(&self) -> Option<&str> {
        self.phone_number_prefix.as_deref()
    }

    /// The filter testing its prefix on each row of the order's walk (SQLite, for a prefix
    /// many contacts share: read as a range of the phone index, its matches are all sorted
    /// for every page).
    pub fn with_prefix_tested_per_row(&self) -> Self {
        Self {
            prefix_per_row: true,
            ..self.clone()
        }
    }

    /// True when no contact without a last message can match: ordering by that column
    /// then needs no nulls-last term, and SQLite can walk its index instead of sorting.
    pub fn excludes_never_messaged(&self) -> bool {
        self.whatsapp_window_open == Some(true)
            || self.messaging_free_form == Some(true)
            || self.last_message_after.is_some()
            || self.last_message_before.is_some()
    }

    /// The window-open condition this filter's `contactStats` counts: open on the filter's
    /// business number (read from that number's open windows), or on any.
    pub fn window_open_condition(&self, backend: DbBackend, now: DateTime<Utc>) -> Condition {
        match &self.business_number {
            Some(number) => policy_sql::open_on_number_set(backend, number, now),
            None => policy_sql::window_open(backend, None, now).is(true),
        }
    }

    /// True when the filter keeps every contact (a business number alone narrows nothing:
    /// it only says where the window, free-form and marketing filters look), so the count is
    /// the maintained total.
    pub fn keeps_every_contact(&self) -> bool {
        self.whatsapp_window_open.is_none() && self.keeps_every_window()
    }

    /// `Some(open)` when the filter is the window filter alone (with or without a business
    /// number): its count is the open windows', or the total minus theirs.
    pub fn window_filter_alone(&self) -> Option<bool> {
        self.whatsapp_window_open
            .filter(|_| self.keeps_every_window())
    }

    /// No condition but (perhaps) the window filter.
    fn keeps_every_window(&self) -> bool {
        let Self {
            whatsapp_window_open: _,
            business_number: _,
            metadata_probe: _,
            window_set: _,
            prefix_per_row: _,
            country_codes,
            phone_number_prefix,
            metadata,
            created_after,
            created_before,
            last_message_after,
            last_message_before,
            whatsapp_user_id,
            has_phone_number,
            messaging_free_form,
            marketing_allowed,
        } = self;
        country_codes.is_none()
            && phone_number_prefix.is_none()
            && metadata.is_none()
            && created_after.is_none()
            && created_before.is_none()
            && last_message_after.is_none()
            && last_message_before.is_none()
            && whatsapp_user_id.is_none()
            && has_phone_number.is_none()
            && messaging_free_form.is_none()
            && marketing_allowed.is_none()
    }

    /// True when no contact without a phone number can match (a prefix or `hasPhoneNumber:
    /// true`), so a walk in phone order skips the rows without one.
    pub fn excludes_missing_phone(&self) -> bool {
        self.phone_number_prefix.is_some() || self.has_phone_number == Some(true)
    }

    /// The WHERE condition, with the window evaluated at `now`.
    pub fn condition(&self, backend: DbBackend, now: DateTime<Utc>) -> Condition {
        let last = || Expr::col(Column::LastWhatsappMessageAt);
        let created = || Expr::col(Column::CreatedAt);
        let mut cond = Condition::all();
        let number = self.business_number.as_deref();
        let open_set = number
            .filter(|_| self.window_set)
            .map(|number| policy_sql::open_on_number_set(backend, number, now));
        if let Some(open) = self.whatsapp_window_open {
            cond = match (&open_set, open) {
                (Some(set), true) => cond.add(set.clone()),
                _ => cond.add(policy_sql::window_open(backend, number, now).is(open)),
            };
        }
        if let Some(free_form) = self.messaging_free_form {
            cond = match (&open_set, free_form) {
                (Some(set), true) => cond
                    .add(policy_sql::not_blocked().is(true))
                    .add(set.clone()),
                _ => {
                    let allowed = policy_sql::not_blocked()
                        .and(policy_sql::window_open(backend, number, now));
                    cond.add(allowed.is(free_form))
                }
            };
        }
        if let Some(marketing) = self.marketing_allowed {
            let opted_out = policy_sql::opted_out(backend, number);
            let allowed = policy_sql::not_blocked().and(opted_out.negated());
            cond = cond.add(allowed.is(marketing));
        }
        if let Some(codes) = &self.country_codes {
            cond = cond.add(Expr::col(Column::CountryCode).is_in(codes.iter().cloned()));
        }
        let per_row = self.prefix_per_row && backend == DbBackend::Sqlite;
        if let Some(prefix) = self.phone_number_prefix.as_ref().filter(|_| per_row) {
            // `+column` is the same value, but no index serves it: the walk keeps its order.
            cond = cond.add(sql::custom(
                backend,
                "+phone_number >= ? AND +phone_number < ?",
                [prefix.clone(), prefix_upper_bound(prefix)],
            ));
        } else if let Some(prefix) = &self.phone_number_prefix {
            // A range rather than LIKE, so the unique index serves it on both backends. The
            // bound is in byte order, which is how the column compares on both: SQLite's BINARY,
            // and on PostgreSQL the column's own `COLLATE "C"` (a linguistic default collation
            // sorts `:` before the digits, and the range for `+569` would be empty).
            cond = cond.add(Expr::col(Column::PhoneNumber).gte(prefix.clone()));
            cond = cond.add(Expr::col(Column::PhoneNumber).lt(prefix_upper_bound(prefix)));
        }
        if let Some(user_id) = &self.whatsapp_user_id {
            // The unique index on the BSUID serves it.
            cond = cond.add(Expr::col(Column::WhatsappUserId).eq(user_id.clone()));
        }
        match self.has_phone_number {
            // Both backends keep NULLs in the unique phone index, so it serves either test.
            Some(true) => cond = cond.add(Expr::col(Column::PhoneNumber).is_not_null()),
            Some(false) => cond = cond.add(Expr::col(Column::PhoneNumber).is_null()),
            None => {}
        }
        if let Some(metadata) = &self.metadata {
            cond = cond.add(sql::metadata_contains(
                backend,
                metadata,
                self.metadata_probe,
            ));
        }
        if let Some(at) = self.created_after {
            cond = cond.add(created().gt(at));
        }
        if let Some(at) = self.created_before {
            cond = cond.add(created().lt(at));
        }
        if let Some(at) = self.last_message_after {
            cond = cond.add(last().gt(at));
        }
        if let Some(at) = self.last_message_before {
            cond = cond.add(last().lt(at));
        }
        cond
    }
}

/// The smallest string above every string starting with `prefix` (`+569` → `+56:`), in byte
/// order.
pub(super) fn prefix_upper_bound(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bound_is_next_string() {
        assert_eq!(prefix_upper_bound("+569"), "+56:");
        assert!(*"+56999999999" < *prefix_upper_bound("+569"));
        assert!(*"+5700000" >= *prefix_upper_bound("+569"));
    }

    #[test]
    fn rejects_bad_filter_values_with_their_path() {
        let input = FilterInput {
            phone_number_prefix: Some("569".into()),
            ..Default::default()
        };
        let err = ContactFilter::parse(input, "filter").unwrap_err();
        assert!(
            matches!(err, crate::error::AppError::Validation { field, .. } if field == "filter.phoneNumberPrefix")
        );
        let input = FilterInput {
            country_code: Some(vec!["CL".into(), "ZZZ".into()]),
            ..Default::default()
        };
        assert!(ContactFilter::parse(input, "filter").is_err());
    }
}
