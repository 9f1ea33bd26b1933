//! How a list page reads a phone-number prefix on SQLite when it is not ordered by phone
//! number: as a range of the phone index, then sorted, when few contacts share the prefix;
//! along the order's index, testing each row, when many do. SQLite's planner always takes the
//! range, so a common prefix sorted all its matches for every page (the 10M benchmark: 100,000
//! matches, 417 ms a page). A bounded count picks, as for metadata and business numbers.

use sea_orm::DbBackend;

use super::{filter::ContactFilter, order::OrderField, service::ContactService, sql};
use crate::error::AppResult;

/// Matches at or above which the page walks its order instead of sorting them; the count that
/// decides stops here, so it reads at most this many index entries.
const COMMON_MATCHES: u64 = 10_000;

impl ContactService {
    /// `filter` with its prefix tested per row when many contacts share it and the page is
    /// not in phone order (SQLite; PostgreSQL plans from its own statistics).
    pub async fn with_prefix_probe_for_list(
        &self,
        filter: ContactFilter,
        order: OrderField,
    ) -> AppResult<ContactFilter> {
        let Some(prefix) = filter.phone_number_prefix() else {
            return Ok(filter);
        };
        if order == OrderField::PhoneNumber || self.db.backend() == DbBackend::Postgres {
            return Ok(filter);
        }
        let rows = "FROM contacts WHERE phone_number >= ? AND phone_number < ?";
        let upper = super::filter::prefix_upper_bound(prefix);
        let values = vec![prefix.into(), upper.into()];
        let matches = sql::count_up_to(&self.db.read, rows, values, COMMON_MATCHES).await?;
        let common = matches >= COMMON_MATCHES;
        Ok(if common {
            filter.with_prefix_tested_per_row()
        } else {
            filter
        })
    }
}
