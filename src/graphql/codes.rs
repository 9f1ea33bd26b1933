//! Gives every error that async-graphql raises before execution a stable `extensions.code`,
//! as our own errors have: parse failures, validation failures, and bad argument values. The
//! schema's extension ([`super::checks`]) applies them.

use async_graphql::ServerError;

use crate::error::ErrorCode;

/// The code of an error, as read back from its extensions.
pub fn code_of(err: &ServerError) -> Option<ErrorCode> {
    match err.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => ErrorCode::parse(code),
        _ => None,
    }
}

/// Sets `code` (and `field`, when known) unless the error already has a code.
pub fn with_code(mut err: ServerError, code: ErrorCode) -> ServerError {
    let has_code = err
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if has_code {
        return err;
    }
    let extensions = err.extensions.get_or_insert_with(Default::default);
    // async-graphql words bad argument values as: Invalid value for argument "a.b", reason
    let argument = err
        .message
        .strip_prefix("Invalid value for argument \"")
        .and_then(|rest| rest.split_once('"'));
    match argument {
        Some((field, _)) if code == ErrorCode::GraphqlValidationFailed => {
            extensions.set("code", ErrorCode::BadUserInput.as_str());
            extensions.set("field", field);
        }
        _ => extensions.set("code", code.as_str()),
    }
    err
}

/// Validation errors, each with its code (bad argument values as `BAD_USER_INPUT`).
pub fn validation_failed(errors: Vec<ServerError>) -> Vec<ServerError> {
    errors
        .into_iter()
        .map(|err| with_code(err, ErrorCode::GraphqlValidationFailed))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_argument_values_become_bad_user_input_with_field() {
        let err = with_code(
            ServerError::new(
                "Invalid value for argument \"filter.createdAfter\", expected type \"DateTime\"",
                None,
            ),
            ErrorCode::GraphqlValidationFailed,
        );
        assert_eq!(code_of(&err), Some(ErrorCode::BadUserInput));
        let field = err
            .extensions
            .as_ref()
            .and_then(|e| e.get("field"))
            .map(|v| v.to_string());
        assert_eq!(field.as_deref(), Some("\"filter.createdAfter\""));
    }

    #[test]
    fn existing_codes_are_kept() {
        let mut err = ServerError::new("x", None);
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", "CONFLICT");
        assert_eq!(
            code_of(&with_code(err, ErrorCode::GraphqlParseFailed)),
            Some(ErrorCode::Conflict)
        );
    }
}
