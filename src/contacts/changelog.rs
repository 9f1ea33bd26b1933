//! The change log: every committed create, update, delete and merge, with a position that
//! only grows in commit order, written in the writing transaction (so a change is logged if
//! and only if it commits).
//!
//! Why positions follow commit order:
//! - SQLite: every write runs on the one write connection, one transaction at a time, so the
//!   `AUTOINCREMENT` position handed out inside a transaction is also its commit order.
//! - PostgreSQL: transactions overlap, and a sequence value taken by a transaction that commits
//!   later would let a reader pass it by (it reads 11, then 10 commits). Filtering on
//!   `pg_snapshot_xmin(pg_current_snapshot())` alone does not close that hole: transaction ids
//!   are taken at first write, positions at the log insert, so an older transaction can take
//!   the larger position (xid 100 logs 11 and commits while xid 101, holding 10, is still in
//!   flight; the reader's xmin is 101, so 11 passes the filter and 10 is skipped for good).
//!   Instead the log insert takes a transaction-scoped advisory lock (per schema) just before
//!   the commit and holds it until the commit: the log inserts of all instances are then
//!   serialised, and a transaction can only take a position after every transaction with a
//!   smaller one has committed or rolled back (PostgreSQL makes a commit visible before it
//!   releases the transaction's locks). So every visible position is final: nothing can
//!   later appear below it, and readers need no filter. The lock is held only for the log
//!   insert and the commit; the contacts are read before it is taken.
//!
//! Why the lock is taken inside the log's insert statement on PostgreSQL: writers pass the
//! section from the lock to the commit one at a time, so every round trip in it divides the
//! write throughput of all instances. Taken by a statement of its own, the section was three
//! round trips (lock, insert, commit); inside the insert it is the insert's tail and the
//! commit. A create with nothing else to write ([`create_logged`]) is one autocommit
//! statement, so its section never leaves the server. The lock is taken by the SQL function
//! `contact_changes_ordered_at` (migration `m20261127_000001_change_log_order`), which also
//! settles the change's `at`: the service's clock, read before the statement, or the newest
//! time already logged if that is later. The statement's own snapshot predates the lock
//! wait; the function's query runs after it, so `at` never goes back along positions even
//! when a write waited (on the lock or on another writer's unique key).

use chrono::{DateTime, TimeDelta, Utc};
use entity::{
    contact,
    contact_change::{ActiveModel, Column, Entity, Model},
    contact_change_horizon,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement,
};
use uuid::Uuid;

use super::service::ContactService;
use crate::{
    error::{AppError, AppResult},
    events::{ChangeKind, ContactChange},
};

/// How long the log keeps changes unless configured (`CHANGE_LOG_RETENTION_DAYS`).
pub const DEFAULT_RETENTION: TimeDelta = TimeDelta::days(30);

/// Rows per insert and per `IN (…)` read (6 columns: far below SQLite's bind limit).
const CHUNK: usize = 500;

/// Distinguishes the log's advisory lock from any other (the second key is the schema's).
const LOCK_CLASS: i32 = 0x4348_4c47; // "CHLG"

/// A change as the log holds it.
#[derive(Debug, Clone)]
pub struct LoggedChange {
    pub position: i64,
    pub change: ContactChange,
    /// The contact as the change left it; `None` once deleted.
    pub contact: Option<contact::Model>,
}

impl LoggedChange {
    fn from_row(row: Model) -> AppResult<Self> {
        let kind = ChangeKind::from_name(&row.kind)
            .ok_or_else(|| AppError::Internal(format!("change log kind {:?}", row.kind)))?;
        let contact = row
            .contact
            .map(serde_json::from_value::<contact::Model>)
            .transpose()
            .map_err(|err| AppError::Internal(format!("change log snapshot: {err}")))?;
        Ok(Self {
            position: row.position,
            change: ContactChange {
                kind,
                contact_id: row.contact_id,
                at: row.at,
                merged_contact_id: row.merged_contact_id,
            },
            contact,
        })
    }
}

/// Appends `changes` to the log inside `txn`, each with the contact as `txn` left it, all at
/// `now()` (on PostgreSQL, or the newest time already logged if later: see the module docs).
pub(super) async fn append(
    txn: &DatabaseTransaction,
    changes: &[ContactChange],
    now: impl FnOnce() -> DateTime<Utc>,
) -> AppResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let snapshots = snapshots(txn, changes).await?;
    let at = now();
    let rows: Vec<LogRow> = changes
        .iter()
        .map(|change| LogRow {
            change,
            contact: match change.kind {
                ChangeKind::Deleted => None,
                _ => snapshots.get(&change.contact_id).cloned(),
            },
            at,
        })
        .collect();
    let postgres = txn.get_database_backend() == DbBackend::Postgres;
    for chunk in rows.chunks(CHUNK) {
        if postgres {
            txn.execute_raw(locked_insert(chunk)).await?;
        } else {
            Entity::insert_many(chunk.iter().map(LogRow::active_model))
                .exec_without_returning(txn)
                .await?;
        }
    }
    Ok(())
}

/// One row of the log, before its position is taken.
struct LogRow<'a> {
    change: &'a ContactChange,
    contact: Option<serde_json::Value>,
    at: DateTime<Utc>,
}

impl LogRow<'_> {
    fn active_model(&self) -> ActiveModel {
        ActiveModel {
            position: NotSet,
            kind: Set(self.change.kind.name().to_owned()),
            contact_id: Set(self.change.contact_id),
            merged_contact_id: Set(self.change.merged_contact_id),
            contact: Set(self.contact.clone()),
            at: Set(self.at),
        }
    }
}

/// PostgreSQL: inserts `rows` into the log, taking the log's lock first in the same statement
/// (the join cannot yield a row, so no position is drawn, before the lock is held), at the
/// time `contact_changes_ordered_at` settles once the lock is held (see the module docs).
fn locked_insert(rows: &[LogRow]) -> Statement {
    let at = rows.first().map(|row| row.at);
    let mut values: Vec<sea_orm::Value> = vec![LOCK_CLASS.into(), at.into()];
    let mut tuples = Vec::new();
    for row in rows {
        let n = values.len();
        tuples.push(format!(
            "(${}::text, ${}::uuid, ${}::uuid, ${}::json)",
            n + 1,
            n + 2,
            n + 3,
            n + 4
        ));
        values.extend([
            row.change.kind.name().into(),
            row.change.contact_id.into(),
            row.change.merged_contact_id.into(),
            row.contact.clone().into(),
        ]);
    }
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO contact_changes (kind, contact_id, merged_contact_id, contact, at) \
             SELECT v.kind, v.contact_id, v.merged_contact_id, v.contact, ordered.at \
             FROM (SELECT contact_changes_ordered_at($1, $2::timestamptz) AS at) AS ordered \
             CROSS JOIN (VALUES {}) AS v (kind, contact_id, merged_contact_id, contact)",
            tuples.join(", ")
        ),
        values,
    )
}

/// PostgreSQL: inserts `row` (a new contact, every column set) and logs its creation, in one
/// autocommit statement. The log's lock is taken after the contact is in (so a wait on its
/// unique keys happens outside the lock) and held only for the statement's tail and its
/// commit; the change's time is `at`, or a later one already logged (see the module docs).
/// Returns the contact as stored.
pub(super) async fn create_logged(
    conn: &DatabaseConnection,
    row: contact::Model,
    at: DateTime<Utc>,
) -> Result<contact::Model, DbErr> {
    let snapshot = serde_json::to_value(&row).map_err(|err| DbErr::Json(err.to_string()))?;
    let insert =
        contact::Entity::insert(row.into_active_model().reset_all()).build(DbBackend::Postgres);
    let mut values = insert.values.map(|values| values.0).unwrap_or_default();
    let n = values.len();
    values.extend([
        ChangeKind::Created.name().into(),
        Some(snapshot).into(),
        LOCK_CLASS.into(),
        at.into(),
    ]);
    let sql = format!(
        "WITH created AS ({} RETURNING *), \
         logged AS (INSERT INTO contact_changes (kind, contact_id, contact, at) \
         SELECT ${}::text, created.id, ${}::json, ordered.at FROM created \
         CROSS JOIN LATERAL (SELECT contact_changes_ordered_at(${}, ${}::timestamptz) AS at \
         WHERE created.id IS NOT NULL) AS ordered) \
         SELECT * FROM created",
        insert.sql,
        n + 1,
        n + 2,
        n + 3,
        n + 4
    );
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    let stored = conn
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    contact::Model::from_query_result(&stored, "")
}

/// The changed contacts as `txn` sees them, serialised, by id.
async fn snapshots(
    txn: &DatabaseTransaction,
    changes: &[ContactChange],
) -> AppResult<std::collections::HashMap<Uuid, serde_json::Value>> {
    let mut ids: Vec<Uuid> = changes
        .iter()
        .filter(|change| change.kind != ChangeKind::Deleted)
        .map(|change| change.contact_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = contact::Entity::find()
            .filter(contact::Column::Id.is_in(chunk.iter().copied()))
            .all(txn)
            .await?;
        for row in rows {
            let json = serde_json::to_value(&row)
                .map_err(|err| AppError::Internal(format!("contact snapshot: {err}")))?;
            found.insert(row.id, json);
        }
    }
    Ok(found)
}

/// One read of the log.
#[derive(Debug)]
pub struct ChangeRead {
    pub changes: Vec<LoggedChange>,
    /// More changes follow the last one.
    pub has_more: bool,
}

/// Up to `limit` changes after position `after`, in commit order.
pub(super) async fn read_after<C: ConnectionTrait>(
    conn: &C,
    after: i64,
    limit: u64,
) -> AppResult<ChangeRead> {
    let rows = Entity::find()
        .filter(Column::Position.gt(after))
        .order_by_asc(Column::Position)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let has_more = rows.len() as u64 > limit;
    let changes = rows
        .into_iter()
        .take(limit as usize)
        .map(LoggedChange::from_row)
        .collect::<AppResult<_>>()?;
    Ok(ChangeRead { changes, has_more })
}

/// The newest position committed (the newest pruned when the log is empty; 0 at first).
pub(super) async fn head<C: ConnectionTrait>(conn: &C) -> AppResult<i64> {
    let newest = Entity::find()
        .select_only()
        .column_as(Column::Position.max(), "head")
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?
        .flatten();
    match newest {
        Some(head) => Ok(head),
        None => pruned_through(conn).await,
    }
}

/// Cursors before this position are expired.
pub(super) async fn pruned_through<C: ConnectionTrait>(conn: &C) -> AppResult<i64> {
    let horizon = contact_change_horizon::Entity::find_by_id(1)
        .one(conn)
        .await?;
    Ok(horizon.map_or(0, |row| row.pruned_through))
}

impl ContactService {
    /// Up to `limit` changes after position `after` (from the oldest kept when `None`), in
    /// commit order. `CURSOR_EXPIRED` when changes after `after` may have been pruned.
    pub async fn changes_after(&self, after: Option<i64>, limit: u64) -> AppResult<ChangeRead> {
        let read = read_after(&self.db.read, after.unwrap_or(0), limit).await?;
        // Checked after the read: a prune that committed before it is seen here.
        if let Some(after) = after
            && after < pruned_through(&self.db.read).await?
        {
            return Err(AppError::CursorExpired);
        }
        Ok(read)
    }

    /// The newest position committed.
    pub async fn change_head(&self) -> AppResult<i64> {
        head(&self.db.read).await
    }

    /// Deletes the changes older than the retention, and moves the horizon past them so their
    /// cursors answer `CURSOR_EXPIRED`. Returns how many were deleted.
    pub async fn prune_changes(&self) -> AppResult<u64> {
        let cutoff = self.now() - self.change_retention();
        let txn = self.begin_write().await?;
        let newest_expired = Entity::find()
            .select_only()
            .column_as(Column::Position.max(), "newest")
            .filter(Column::At.lt(cutoff))
            .into_tuple::<Option<i64>>()
            .one(&txn)
            .await?
            .flatten();
        let Some(through) = newest_expired else {
            return Ok(0);
        };
        // Horizon first: a reader that sees rows gone also sees the horizon moved.
        contact_change_horizon::Entity::update_many()
            .col_expr(
                contact_change_horizon::Column::PrunedThrough,
                through.into(),
            )
            .filter(contact_change_horizon::Column::Id.eq(1))
            .filter(contact_change_horizon::Column::PrunedThrough.lt(through))
            .exec(&txn)
            .await?;
        let deleted = Entity::delete_many()
            .filter(Column::Position.lte(through))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }
}

/// Prunes the log (and folds the contact counter) every `every` until the process ends; a
/// failure only means next time.
pub async fn prune_periodically(service: ContactService, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match service.prune_changes().await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned the change log"),
            Err(err) => tracing::warn!(error = %err.describe(), "change log not pruned"),
        }
        // The contact counter's stripes, folded on the same schedule (see `counts`).
        if let Err(err) = service.fold_counters().await {
            tracing::warn!(error = %err.describe(), "contact counter not folded");
        }
    }
}
