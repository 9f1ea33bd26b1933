//! Gives every error that async-graphql raises before execution a stable `extensions.code`,
//! as our own errors have: parse failures, validation failures, and bad argument values.

use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::ExecutableDocument,
};

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const BAD_REQUEST: &str = "BAD_REQUEST";

/// Sets `code` (and `field`, when known) unless the error already has a code.
pub fn with_code(mut err: ServerError, code: &str) -> ServerError {
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
        Some((field, _)) if code == VALIDATION_FAILED => {
            extensions.set("code", BAD_USER_INPUT);
            extensions.set("field", field);
        }
        _ => extensions.set("code", code),
    }
    err
}

/// The extension factory to register on the schema.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|err| with_code(err, PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errs| {
            errs.into_iter()
                .map(|err| with_code(err, VALIDATION_FAILED))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(err: &ServerError) -> Option<String> {
        err.extensions.as_ref()?.get("code").map(|v| v.to_string())
    }

    #[test]
    fn bad_argument_values_become_bad_user_input_with_field() {
        let err = with_code(
            ServerError::new(
                "Invalid value for argument \"filter.createdAfter\", expected type \"DateTime\"",
                None,
            ),
            VALIDATION_FAILED,
        );
        assert_eq!(code_of(&err).as_deref(), Some("\"BAD_USER_INPUT\""));
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
            code_of(&with_code(err, PARSE_FAILED)).as_deref(),
            Some("\"CONFLICT\"")
        );
    }
}
