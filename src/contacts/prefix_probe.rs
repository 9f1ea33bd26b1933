//! How a list page reads a phone-number prefix on SQLite when it is not ordered by phone
//! number: as a range of the phone index, then sorted, when few contacts share the prefix;
//! along the order's index, testing each row, when many do. SQLite's planner always takes the
//! range, so a common prefix sorted all its matches for every page (the 10M benchmark: 100,000
//! matches, 417 ms a page). A bounded count picks, as for metadata and business numbers.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{filter::ContactFilter, order::OrderField, service::ContactService};
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
        let count = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT count(*) AS n FROM (SELECT 1 FROM contacts \
             WHERE phone_number >= ? AND phone_number < ? LIMIT ?)",
            [
                prefix.into(),
                super::filter::prefix_upper_bound(prefix).into(),
                COMMON_MATCHES.into(),
            ],
        );
        let row = self.db.read.query_one_raw(count).await?;
        let matches = row.map(|row| row.try_get::<i64>("", "n")).transpose()?;
        let common = matches.is_some_and(|n| u64::try_from(n).unwrap_or(0) >= COMMON_MATCHES);
        Ok(if common {
            filter.with_prefix_tested_per_row()
        } else {
            filter
        })
    }
}
