//! `AppError`: every failure a request can meet, and [`ErrorCode`]: the stable
//! `extensions.code` of every error the API reports, with the HTTP status it means.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

/// Every `extensions.code` the API reports. One list, so a code and its HTTP status can never
/// drift apart between the transport and the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    NotFound,
    Conflict,
    Unauthenticated,
    Forbidden,
    RateLimited,
    SubscriberLagged,
    ServiceUnavailable,
    InternalServerError,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
    PayloadTooLarge,
    MisdirectedRequest,
    FailedPrecondition,
    QueryTimeout,
    CursorExpired,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    const ALL: [Self; 20] = [
        Self::BadUserInput,
        Self::NotFound,
        Self::Conflict,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::RateLimited,
        Self::SubscriberLagged,
        Self::ServiceUnavailable,
        Self::InternalServerError,
        Self::GraphqlParseFailed,
        Self::GraphqlValidationFailed,
        Self::BadRequest,
        Self::MethodNotAllowed,
        Self::NotAcceptable,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::MisdirectedRequest,
        Self::FailedPrecondition,
        Self::QueryTimeout,
        Self::CursorExpired,
    ];

    /// The code as clients see it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::SubscriberLagged => "SUBSCRIBER_LAGGED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::BadRequest => "BAD_REQUEST",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::MisdirectedRequest => "MISDIRECTED_REQUEST",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::QueryTimeout => "QUERY_TIMEOUT",
            Self::CursorExpired => "CURSOR_EXPIRED",
        }
    }

    /// The code named `text`, as read back from an error's extensions.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// The HTTP status of a response that failed with this code before anything ran.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadUserInput
            | Self::GraphqlParseFailed
            | Self::GraphqlValidationFailed
            | Self::BadRequest
            | Self::FailedPrecondition
            | Self::QueryTimeout
            | Self::CursorExpired => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::SubscriberLagged | Self::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    /// True for codes about the request as a whole (who sent it, how, how often), whose status
    /// applies under the legacy `application/json` response type too; document errors (parse,
    /// validation, input) keep that type's 200.
    pub const fn is_transport_level(self) -> bool {
        matches!(
            self,
            Self::Unauthenticated
                | Self::Forbidden
                | Self::RateLimited
                | Self::ServiceUnavailable
                | Self::MethodNotAllowed
                | Self::NotAcceptable
                | Self::UnsupportedMediaType
                | Self::PayloadTooLarge
                | Self::MisdirectedRequest
        )
    }
}

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
    /// The contact is not in the state the operation needs (blocking without an open window).
    FailedPrecondition(String),
    Unauthenticated,
    /// The caller may not run this operation.
    Forbidden(String),
    /// The operation is not allowed over this transport (a mutation over GET).
    MethodNotAllowed(String),
    /// Over a rate or count limit; retry after this many seconds.
    RateLimited(u64),
    /// A subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
    /// A statement ran past its deadline and was stopped: the query asks too much, and the
    /// same query retried would be stopped again, so no `Retry-After`.
    QueryTimeout,
    /// A change-feed cursor older than the log's retention: changes after it may be gone.
    CursorExpired,
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

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.into(),
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
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::BadUserInput,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::QueryTimeout => ErrorCode::QueryTimeout,
            Self::CursorExpired => ErrorCode::CursorExpired,
            Self::Lagged(_) => ErrorCode::SubscriberLagged,
            Self::Internal(_) => ErrorCode::InternalServerError,
        }
    }

    /// The message a client sees: never internals.
    pub fn public_message(&self) -> String {
        match self {
            Self::Validation { message, .. }
            | Self::NotFound { message }
            | Self::Conflict { message, .. }
            | Self::FailedPrecondition(message)
            | Self::Forbidden(message)
            | Self::MethodNotAllowed(message) => message.clone(),
            Self::Unauthenticated => "authentication required".to_owned(),
            Self::RateLimited(_) => "too many requests; retry later".to_owned(),
            Self::Unavailable(_) => "the database is unavailable; retry shortly".to_owned(),
            Self::QueryTimeout => "the query ran past its deadline and was stopped; ask for less \
                 (a smaller page, a narrower filter)"
                .to_owned(),
            Self::CursorExpired => "the cursor is older than the change log's retention; \
                 changes after it may be gone: read the contacts again and follow the feed from \
                 a new cursor"
                .to_owned(),
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
        if is_deadline(&err) {
            Self::QueryTimeout
        } else if is_unavailable(&err) {
            Self::Unavailable(format!("database: {err}"))
        } else {
            Self::Internal(format!("database: {err}"))
        }
    }
}

/// The database error behind `err`, if any.
fn database_error(err: &DbErr) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            inner.as_database_error()
        }
        _ => None,
    }
}

/// A statement stopped at its deadline: SQLite's `SQLITE_INTERRUPT` (9), raised by the
/// progress handler `db` installs, or PostgreSQL's `query_canceled` (57014), raised by
/// `statement_timeout` (this service sends no other cancel request).
fn is_deadline(err: &DbErr) -> bool {
    database_error(err)
        .and_then(|db| db.code())
        .is_some_and(|code| code == "9" || code == "57014")
}

/// Connection failures, pool timeouts, PostgreSQL's connection (08), insufficient resources
/// (53: out of memory or of lock slots, disk full, too many connections) and operator
/// intervention (57: shutdown; a statement timeout is taken first, as `QueryTimeout`) classes,
/// and a lock wait past `lock_timeout` (55P03): the database, not the request. On SQLite,
/// `SQLITE_BUSY` and its extended codes: another process (the command-line import, a backup)
/// held the write lock past `busy_timeout`, the same contention a retry resolves.
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
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    ["08", "53", "57"]
                        .iter()
                        .any(|class| code.starts_with(class))
                        || code == "55P03"
                        || crate::db::is_sqlite_busy(&code)
                }),
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
            ext.set("code", err.code().as_str());
            match &err {
                AppError::Validation { field, .. } | AppError::Conflict { field, .. } => {
                    ext.set("field", field.as_str())
                }
                AppError::RateLimited(seconds) => ext.set("retryAfter", *seconds),
                _ => {}
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
    fn every_code_reads_back_as_itself() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("NO_SUCH_CODE"), None);
        assert_eq!(
            ErrorCode::RateLimited.status(),
            StatusCode::TOO_MANY_REQUESTS
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
