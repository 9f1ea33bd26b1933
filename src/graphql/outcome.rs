//! What became of an operation: every error given a code, and the outcome counted.

use async_graphql::{Response, parser::types::OperationType};

use super::codes;
use crate::{
    error::ErrorCode,
    metrics::{self, Outcome},
};

/// Errors raised before execution carry no path; resolver errors always do. Any error still
/// without a code gets one: the request's fault as a whole, or its input's.
pub fn label_errors(response: &mut Response) {
    let request_error = is_request_error(response);
    let fallback = if request_error {
        ErrorCode::BadRequest
    } else {
        ErrorCode::BadUserInput
    };
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|e| codes::with_code(e, fallback))
        .collect();
}

/// True when nothing ran: no data, and only errors without a path.
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

pub fn outcome_of(response: &Response) -> Outcome {
    let internal = response.errors.iter().any(|e| {
        matches!(
            codes::code_of(e),
            Some(ErrorCode::InternalServerError | ErrorCode::ServiceUnavailable)
        )
    });
    match (internal, response.errors.is_empty()) {
        (true, _) => Outcome::ServerError,
        (false, true) => Outcome::Ok,
        (false, false) => Outcome::ClientError,
    }
}

pub fn metrics_kind(kind: Option<OperationType>) -> metrics::OperationType {
    match kind {
        Some(OperationType::Query) => metrics::OperationType::Query,
        Some(OperationType::Mutation) => metrics::OperationType::Mutation,
        Some(OperationType::Subscription) => metrics::OperationType::Subscription,
        None => metrics::OperationType::Unknown,
    }
}
