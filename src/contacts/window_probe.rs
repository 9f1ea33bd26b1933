//! How a list page reads "open on a business number" on SQLite: from the number's open
//! windows when it has few, else along the order's index (see [`ContactFilter::with_window_set`]).
//!
//! Walking the last-message index and probing each contact's window on the number fills a
//! page after a few rows when the number holds many of the open windows, but reads every open
//! contact of every number when it holds few or none (the review measured 0.1–0.6 s per page
//! of a quiet number at 200,000 open windows). Starting from the number's open windows (its
//! own index) and sorting them is right for those. A bounded count picks, as for metadata.

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;

use super::{filter::ContactFilter, service::ContactService, sql, window};
use crate::error::AppResult;

/// Open windows on the number below which a page starts from them (and sorts at most this
/// many); the count that decides stops here, so it reads at most this many index entries.
const FEW_OPEN_WINDOWS: u64 = 10_000;

impl ContactService {
    /// `filter` reading the open windows on its business number as a set when the number has
    /// fewer than [`FEW_OPEN_WINDOWS`] (SQLite; PostgreSQL plans from its own statistics).
    pub async fn with_window_probe_for_list(
        &self,
        filter: ContactFilter,
        now: DateTime<Utc>,
    ) -> AppResult<ContactFilter> {
        let Some(number) = filter.open_on_number() else {
            return Ok(filter);
        };
        if self.db.backend() == DbBackend::Postgres {
            return Ok(filter);
        }
        let rows = "FROM contact_whatsapp_windows \
                    WHERE business_phone_number_id = ? AND last_inbound_at > ?";
        let values = vec![number.into(), window::opened_after(now).into()];
        let open = sql::count_up_to(&self.db.read, rows, values, FEW_OPEN_WINDOWS).await?;
        let few = open < FEW_OPEN_WINDOWS;
        Ok(if few {
            filter.with_window_set()
        } else {
            filter
        })
    }
}
