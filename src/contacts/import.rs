//! Bulk import: up to 1,000 rows a call, upserted by phone number; a bad row is reported by
//! index and never fails the others, whether validation or the database refuses it.

use chrono::{DateTime, Utc};
use entity::contact::Model;
use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::{
    input::{ContactInput, NewContact},
    service::{ContactService, change},
};
use crate::{
    error::{AppError, AppResult},
    events::ChangeKind,
};

pub const MAX_IMPORT_ROWS: usize = 1000;

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFailure {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub failed: Vec<ImportFailure>,
}

/// How rows are written inside the import's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// One statement per row and nothing else: the usual case, and the fastest.
    None,
    /// Each row under its own savepoint, so a row the database refuses is rolled back alone
    /// (on PostgreSQL a failed statement otherwise aborts the whole transaction).
    PerRow,
}

impl ContactService {
    pub async fn import(&self, rows: Vec<ContactInput>) -> AppResult<ImportReport> {
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(AppError::validation(
                "contacts",
                format!("at most {MAX_IMPORT_ROWS} contacts per call"),
            ));
        }
        let now = self.now();
        let mut failed = Vec::new();
        let mut valid = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            match NewContact::parse(row, &format!("contacts.{index}"), now) {
                Ok(contact) => valid.push((index, contact)),
                Err(err) => failed.push(failure(index, err)),
            }
        }
        let mut report = match self.write_rows(&valid, now, Isolation::None).await {
            Ok(report) => report,
            // The database is out of reach: no row can be written, the call fails.
            Err(err @ AppError::Unavailable(_)) => return Err(err),
            // A row the database refused undid the whole transaction: write the rows again,
            // each on its own, so only the rows that fail are reported as failed.
            Err(_) => self.write_rows(&valid, now, Isolation::PerRow).await?,
        };
        report.failed.extend(failed);
        report.failed.sort_by_key(|failure| failure.index);
        Ok(report)
    }

    /// Upserts `rows` in one transaction (one commit, one fsync); with [`Isolation::PerRow`] a
    /// row's database error becomes that row's failure.
    async fn write_rows(
        &self,
        rows: &[(usize, NewContact)],
        now: DateTime<Utc>,
        isolation: Isolation,
    ) -> AppResult<ImportReport> {
        let mut report = ImportReport::default();
        let txn = self.begin_write().await?;
        let mut changes = Vec::with_capacity(rows.len());
        for (index, contact) in rows {
            let written = match isolation {
                Isolation::None => self.upsert_on(&txn, contact, now).await,
                Isolation::PerRow => self.upsert_alone(&txn, contact, now).await,
            };
            match written {
                Ok((row, true)) => {
                    report.created += 1;
                    changes.push(change(ChangeKind::Created, row.id, now));
                }
                Ok((row, false)) => {
                    report.updated += 1;
                    changes.push(change(ChangeKind::Updated, row.id, now));
                }
                Err(err) if isolation == Isolation::PerRow && !is_unavailable(&err) => {
                    report.failed.push(failure(*index, err));
                }
                Err(err) => return Err(err),
            }
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(report)
    }

    /// One upsert under a savepoint: rolled back alone when the database refuses it.
    async fn upsert_alone(
        &self,
        txn: &DatabaseTransaction,
        contact: &NewContact,
        now: DateTime<Utc>,
    ) -> AppResult<(Model, bool)> {
        let savepoint = txn.begin().await?;
        match self.upsert_on(&savepoint, contact, now).await {
            Ok(written) => {
                savepoint.commit().await?;
                Ok(written)
            }
            Err(err) => {
                savepoint.rollback().await?;
                Err(err)
            }
        }
    }
}

fn is_unavailable(err: &AppError) -> bool {
    matches!(err, AppError::Unavailable(_))
}

fn failure(index: usize, err: AppError) -> ImportFailure {
    if let AppError::Internal(detail) = &err {
        // The client sees a generic message; the operator needs the cause.
        tracing::error!(row = index, error = %crate::logging::mask(detail), "import row failed");
    }
    ImportFailure {
        index,
        code: err.code().as_str(),
        message: err.describe(),
    }
}
