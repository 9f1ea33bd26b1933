//! Counts that do not read the table: the number of contacts is the sum of the counter
//! stripes (kept exact by triggers in every writing transaction, see the `contact_counters`
//! migration), open windows are a range of the last-message index (or of one number's
//! windows), closed windows the total minus the open ones, and any other filter counts the
//! index range that serves it.

use chrono::{DateTime, Utc};
use entity::contact::Entity;
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Statement,
    sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder, SimpleExpr},
};

use super::{filter::ContactFilter, service::ContactService};
use crate::error::AppResult;

/// `contactStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactStats {
    pub total: i64,
    pub whatsapp_window_open: i64,
}

/// Moves every unlocked stripe but 0 into stripe 0, in one statement.
const FOLD: &str = "WITH folded AS (DELETE FROM contact_counters WHERE stripe IN \
    (SELECT stripe FROM contact_counters WHERE stripe <> 0 FOR UPDATE SKIP LOCKED) \
    RETURNING delta), \
    base AS (UPDATE contact_counters SET delta = delta + \
    (SELECT COALESCE(SUM(delta), 0) FROM folded) WHERE stripe = 0 RETURNING stripe) \
    SELECT (SELECT COUNT(*) FROM folded) AS folded FROM base";

/// The number of contacts: a sum over the stripes (stripe 0 and one per backend that wrote
/// since the last fold), never the table.
fn maintained_total() -> SimpleExpr {
    Expr::cust("(SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM contact_counters)")
}

/// `(SELECT COUNT(*) FROM contacts WHERE cond)`.
fn rows_where(cond: sea_orm::Condition) -> SimpleExpr {
    let select = Entity::find()
        .select_only()
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(cond)
        .into_query();
    Expr::SubQuery(None, Box::new(select.into_sub_query_statement()))
}

/// How `filter`'s total is counted.
fn total_of(filter: &ContactFilter, backend: DbBackend, now: DateTime<Utc>) -> SimpleExpr {
    if filter.keeps_every_contact() {
        return maintained_total();
    }
    let open = || rows_where(filter.window_open_condition(backend, now));
    match filter.window_filter_alone() {
        Some(true) => open(),
        // Closed windows are most of the table: read the few open ones instead.
        Some(false) => maintained_total().sub(open()),
        None => rows_where(filter.condition(backend, now)),
    }
}

/// How many of `filter`'s contacts have their window open.
fn open_of(filter: &ContactFilter, backend: DbBackend, now: DateTime<Utc>) -> SimpleExpr {
    let open = filter.window_open_condition(backend, now);
    match filter.window_filter_alone() {
        // Closed and open at once: none, without asking the database.
        Some(false) => Expr::cust("CAST(0 AS BIGINT)"),
        Some(true) => rows_where(open),
        None if filter.keeps_every_contact() => rows_where(open),
        None => rows_where(filter.condition(backend, now).add(open)),
    }
}

/// The statement counting `filter`'s contacts (`totalCount`).
pub(super) fn count_statement(
    backend: DbBackend,
    filter: &ContactFilter,
    now: DateTime<Utc>,
) -> Statement {
    let query = Query::select()
        .expr_as(total_of(filter, backend, now), "n")
        .to_owned();
    backend.build(&query)
}

/// The statement of `contactStats`: both numbers in one statement, so from one snapshot.
pub(super) fn stats_statement(
    backend: DbBackend,
    filter: &ContactFilter,
    now: DateTime<Utc>,
) -> Statement {
    let query = Query::select()
        .expr_as(total_of(filter, backend, now), "total")
        .expr_as(open_of(filter, backend, now), "open")
        .to_owned();
    backend.build(&query)
}

impl ContactService {
    /// How many contacts match, regardless of pagination.
    pub async fn count(&self, filter: &ContactFilter, now: DateTime<Utc>) -> AppResult<u64> {
        let statement = count_statement(self.db.backend(), filter, now);
        let row = self.db.read.query_one_raw(statement).await?;
        let count = row.map(|row| row.try_get::<i64>("", "n")).transpose()?;
        Ok(count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// `contactStats` over `filter`'s contacts, with windows open at `now`.
    pub async fn stats(
        &self,
        filter: &ContactFilter,
        now: DateTime<Utc>,
    ) -> AppResult<ContactStats> {
        let statement = stats_statement(self.db.backend(), filter, now);
        let row = self.db.read.query_one_raw(statement).await?;
        let (total, whatsapp_window_open) = match row {
            Some(row) => (
                row.try_get::<i64>("", "total")?,
                row.try_get::<i64>("", "open")?,
            ),
            None => (0, 0),
        };
        Ok(ContactStats {
            total,
            whatsapp_window_open,
        })
    }

    /// Folds the stripes of backends not in a writing transaction into stripe 0, so the sum
    /// reads a few rows however many connections have come and gone (PostgreSQL; SQLite has
    /// one stripe). A stripe locked by a transaction in progress is skipped, never waited for;
    /// two folds at once skip each other's rows and then queue on stripe 0 alone. Returns how
    /// many stripes were folded.
    pub async fn fold_counters(&self) -> AppResult<u64> {
        if self.db.backend() != DbBackend::Postgres {
            return Ok(0);
        }
        let statement = Statement::from_string(DbBackend::Postgres, FOLD);
        let folded = self.db.write.query_one_raw(statement).await?;
        let folded = folded.map_or(Ok(0), |row| row.try_get::<i64>("", "folded"))?;
        Ok(u64::try_from(folded).unwrap_or(0))
    }

    /// The statements of [`Self::count`] and [`Self::stats`] for `filter`, for the
    /// query-plan tests.
    pub fn count_statements(&self, filter: &ContactFilter, now: DateTime<Utc>) -> Vec<Statement> {
        let backend = self.db.backend();
        vec![
            count_statement(backend, filter, now),
            stats_statement(backend, filter, now),
        ]
    }
}
