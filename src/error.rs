//! `AppError`: every failure a request can meet, each with a stable GraphQL `extensions.code`.

use async_graphql::ErrorExtensions;
use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

/// Result of a domain operation.
pub type AppResult<T> = Result<T, AppError>;

/// A failure with a stable code.
///
/// Deliberately not `Display`: async-graphql turns any `Display` error into a GraphQL error
/// without a code, so the only conversion is [`From<AppError> for async_graphql::Error`] below,
/// which always attaches `extensions.code`.
#[derive(Debug)]
pub enum AppError {
    /// Client input that breaks a rule; `field` is the input path (`input.phoneNumber`).
    Validation {
        field: String,
        message: String,
    },
    NotFound {
        message: String,
    },
    Conflict {
        field: String,
        message: String,
    },
    Unauthenticated,
    Forbidden,
    RateLimited,
    /// A subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
    /// The database cannot be reached right now; retrying later may succeed.
    Unavailable(String),
    /// Anything the client did not cause. Logged in full, answered generically.
    Internal(String),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    /// Maps a unique-constraint violation to `Conflict` on `field`, on every backend;
    /// any other database error is internal.
    pub fn from_db_with_conflict(err: DbErr, field: &str, message: &str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::Conflict {
                field: field.to_owned(),
                message: message.to_owned(),
            },
            _ => err.into(),
        }
    }

    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "BAD_USER_INPUT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Conflict { .. } => "CONFLICT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Lagged(_) => "SUBSCRIBER_LAGGED",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The message a client sees: never internals.
    pub fn public_message(&self) -> String {
        match self {
            Self::Validation { message, .. }
            | Self::NotFound { message }
            | Self::Conflict { message, .. } => message.clone(),
            Self::Unauthenticated => "authentication required".to_owned(),
            Self::Forbidden => "not allowed".to_owned(),
            Self::RateLimited => "too many requests".to_owned(),
            Self::Unavailable(_) => "the database is unavailable; retry shortly".to_owned(),
            Self::Lagged(missed) => {
                format!("this subscription fell behind and missed {missed} events; subscribe again")
            }
            Self::Internal(_) => "internal server error".to_owned(),
        }
    }

    /// The public message with the input path in front (`phoneNumber: …`), for reports
    /// that have no `extensions.field` to carry it: import failures, the command line.
    pub fn describe(&self) -> String {
        match self {
            Self::Validation { field, message } if !field.is_empty() => {
                format!("{field}: {message}")
            }
            other => other.public_message(),
        }
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(format!("database: {err}"))
        } else {
            Self::Internal(format!("database: {err}"))
        }
    }
}

/// Connection failures, pool timeouts, and PostgreSQL's connection (08) and operator
/// intervention (57: shutdown, statement timeout) classes: the database, not the request.
fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
                _ => false,
            }
        }
        _ => false,
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        match &err {
            AppError::Internal(detail) => {
                tracing::error!(error = %crate::logging::mask(detail), "internal error")
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(error = %crate::logging::mask(detail), "database unavailable")
            }
            _ => {}
        }
        async_graphql::Error::new(err.public_message()).extend_with(|_, ext| {
            ext.set("code", err.code());
            if let AppError::Validation { field, .. } | AppError::Conflict { field, .. } = &err {
                ext.set("field", field.as_str());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_carries_code_and_field() {
        let err: async_graphql::Error = AppError::validation("input.phoneNumber", "bad").into();
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("BAD_USER_INPUT"))
        );
        assert_eq!(
            ext.get("field"),
            Some(&async_graphql::Value::from("input.phoneNumber"))
        );
    }

    #[test]
    fn internal_error_hides_detail() {
        let err: async_graphql::Error = AppError::Internal("SELECT secret".into()).into();
        assert_eq!(err.message, "internal server error");
        let ext = err.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("INTERNAL_SERVER_ERROR"))
        );
    }
}
