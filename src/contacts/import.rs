//! `importContacts`: up to 1,000 rows a call, upserted by phone number; a bad row is reported
//! by index and never fails the others, whether validation or the database refuses it.

use super::{
    input::{ContactInput, NewContact},
    service::ContactService,
};
use crate::error::{AppError, AppResult};

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
    /// Rows equal to what was stored: not written, not announced.
    pub unchanged: usize,
    pub failed: Vec<ImportFailure>,
}

impl ContactService {
    /// `importContacts`: the rows are validated one by one, then written by the bulk engine
    /// the command-line import uses ([`ContactService::upsert_rows`]), so both report rows
    /// equal to what is stored as unchanged, neither created nor updated.
    pub async fn import(&self, rows: Vec<ContactInput>) -> AppResult<ImportReport> {
        if rows.len() > MAX_IMPORT_ROWS {
            return Err(AppError::validation(
                "contacts",
                format!("at most {MAX_IMPORT_ROWS} contacts per call"),
            ));
        }
        let now = self.now();
        let mut failed = Vec::new();
        let mut indexes = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            match NewContact::parse(row, &format!("contacts.{index}"), now) {
                Ok(contact) => {
                    indexes.push(index);
                    valid.push(contact);
                }
                Err(err) => failed.push(failure(index, err)),
            }
        }
        let outcome = self.upsert_rows(&valid).await?;
        for (position, err) in outcome.refused {
            let index = indexes.get(position).copied().unwrap_or(position);
            failed.push(failure(index, err));
        }
        failed.sort_by_key(|failure| failure.index);
        Ok(ImportReport {
            created: outcome.report.created,
            updated: outcome.report.updated,
            unchanged: outcome.report.unchanged,
            failed,
        })
    }
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
