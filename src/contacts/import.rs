//! Bulk import: up to 1,000 rows a call, upserted by phone number; a bad row is reported by
//! index and never fails the others.

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

impl ContactService {
    pub async fn import(&self, rows: Vec<ContactInput>) -> AppResult<ImportReport> {
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(AppError::validation(
                "contacts",
                format!("at most {MAX_IMPORT_ROWS} contacts per call"),
            ));
        }
        let now = self.now();
        let mut report = ImportReport::default();
        let mut valid = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            match NewContact::parse(row, &format!("contacts.{index}"), now) {
                Ok(contact) => valid.push(contact),
                Err(err) => report.failed.push(failure(index, err)),
            }
        }
        // One transaction: one commit (and one fsync) for the whole batch.
        let txn = self.begin_write().await?;
        let mut changes = Vec::with_capacity(valid.len());
        for contact in &valid {
            let (row, created) = self.upsert_on(&txn, contact, now).await?;
            if created {
                report.created += 1;
            } else {
                report.updated += 1;
            }
            let kind = if created {
                ChangeKind::Created
            } else {
                ChangeKind::Updated
            };
            changes.push(change(kind, row.id, now));
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(report)
    }
}

fn failure(index: usize, err: AppError) -> ImportFailure {
    ImportFailure {
        index,
        code: err.code().as_str(),
        message: err.describe(),
    }
}
