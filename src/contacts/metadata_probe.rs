//! How a list page reads a metadata filter on SQLite: from the matches when the rarest pair is
//! rare, else along the order's index (see [`MetadataProbe`]).

use sea_orm::DbBackend;

use super::{
    filter::{ContactFilter, MetadataProbe},
    service::ContactService,
    sql,
};
use crate::error::AppResult;

/// Matches at or above which a pair counts as common. Below it a page sorts at most this many
/// rows; above it a walk reads about `50 × contacts / matches` rows for a page of 50. The
/// count that decides stops here, so it costs at most this many index entries.
const COMMON_MATCHES: u64 = 10_000;

/// Index entries the choice may read in all, however many pairs the filter has (up to 50):
/// three common pairs. A rare pair after them goes unseen and the page walks instead.
const PROBE_BUDGET: u64 = 3 * COMMON_MATCHES;

impl ContactService {
    /// `filter` with its metadata probe chosen for a list page: a bounded count per pair,
    /// stopping at the first rare one or when [`PROBE_BUDGET`] is spent. PostgreSQL plans
    /// from its own statistics.
    pub async fn with_metadata_probe_for_list(
        &self,
        filter: &ContactFilter,
    ) -> AppResult<ContactFilter> {
        let Some(metadata) = filter.metadata() else {
            return Ok(filter.clone());
        };
        if self.db.backend() == DbBackend::Postgres {
            return Ok(filter.clone());
        }
        let mut budget = PROBE_BUDGET;
        for (key, value) in metadata.iter() {
            if budget < COMMON_MATCHES {
                break;
            }
            let matches = self.matches_up_to_bound(key, value).await?;
            if matches < COMMON_MATCHES {
                return Ok(filter.with_metadata_probe(MetadataProbe::Matches));
            }
            budget -= matches;
        }
        Ok(filter.with_metadata_probe(MetadataProbe::EachRow))
    }

    async fn matches_up_to_bound(&self, key: &str, value: &str) -> AppResult<u64> {
        let rows = "FROM contact_metadata_entries WHERE key = ? AND value = ?";
        let values = vec![key.into(), value.into()];
        Ok(sql::count_up_to(&self.db.read, rows, values, COMMON_MATCHES).await?)
    }
}
