//! Operation limits, checked before anything runs: document size in tokens, depth (with a
//! separate allowance for introspection, so GraphiQL keeps working), aliases, root fields and
//! size once fragments are spread. Complexity and directives per field are async-graphql's own
//! limits, set on the schema; each count's charge (`counts`) is added to the complexity. The
//! checks run in the schema's extension ([`super::checks`]), so every transport (HTTP, both WebSocket
//! protocols) passes them.

pub mod cost;
mod counts;
mod expansion;
#[cfg(test)]
mod generated;
mod tokens;

use std::sync::Mutex;

use async_graphql::{Request, ServerError, ServerResult, ValidationResult};

pub use self::{
    counts::{MAINTAINED_TOTAL, RANGE_COUNT},
    expansion::{Measure, check_document, count_charge, measure},
    tokens::{Tokens, check_tokens},
};
use super::{
    codes,
    documents::{DocumentCache, Fresh},
};

/// The limits; every one configurable. Defaults follow GraphQL Armor's spirit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    /// Depth allowed below `__schema` / `__type` (GraphiQL's introspection query needs ~13).
    pub max_introspection_depth: usize,
    /// Cost: each field 1, a connection's fields multiplied by its `first`/`last`, a field
    /// whose answer may be large by what it may weigh ([`cost`]), each count by what it may
    /// read ([`RANGE_COUNT`], [`MAINTAINED_TOTAL`]).
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives: usize,
    pub max_tokens: usize,
    pub introspection: bool,
    pub suggestions: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_introspection_depth: 15,
            max_complexity: 5_000,
            max_aliases: 15,
            max_root_fields: 20,
            max_directives: 10,
            max_tokens: 1_000,
            introspection: true,
            suggestions: true,
        }
    }
}

fn too_big(message: String) -> ServerError {
    codes::with_code(
        ServerError::new(message, None),
        crate::error::ErrorCode::GraphqlValidationFailed,
    )
}

/// Checks every request against the limits and hands async-graphql the parsed document, so
/// nothing parses it again: on `prepare_request`, the document comes from the cache, or its
/// tokens are counted, then it is parsed and measured (fragments spread in linear time); it is
/// kept in the cache only once it has passed validation.
pub struct OperationLimits {
    documents: DocumentCache,
    limits: Limits,
}

impl OperationLimits {
    pub fn new(limits: Limits) -> Self {
        Self {
            documents: DocumentCache::new(limits),
            limits,
        }
    }

    /// The cache of validated documents these checks fill.
    pub fn documents(&self) -> DocumentCache {
        self.documents.clone()
    }

    /// The checks of one request.
    pub(super) fn checker(&self) -> Checker {
        Checker {
            documents: self.documents.clone(),
            max_complexity: self.limits.max_complexity,
            parsed: Mutex::new(None),
            count_charge: Mutex::new(0),
        }
    }
}

/// One request's checks, run by the schema's extension ([`super::checks`]).
pub(super) struct Checker {
    documents: DocumentCache,
    max_complexity: usize,
    /// What the counts of the operation run cost, added to async-graphql's complexity.
    count_charge: Mutex<u64>,
    /// The query text and document parsed for this request, to keep if validation passes.
    parsed: Mutex<Option<(String, Fresh)>>,
}

impl Checker {
    /// Before async-graphql looks at the document: `request` with its document parsed and
    /// within the limits, from the cache or parsed now.
    pub(super) fn prepare(&self, mut request: Request) -> ServerResult<Request> {
        let loaded = self.documents.load(&request.query)?;
        let charge = count_charge(&loaded.doc, request.operation_name.as_deref())?;
        if let Ok(mut count_charge) = self.count_charge.lock() {
            *count_charge = charge;
        }
        if let (Some(fresh), Ok(mut parsed)) = (loaded.fresh, self.parsed.lock()) {
            *parsed = Some((request.query.clone(), fresh));
        }
        request.set_parsed_query(loaded.doc);
        Ok(request)
    }

    /// After async-graphql's validation passed: the complexity with the counts' charge, then
    /// the document kept for the next request of the same text.
    pub(super) fn validated(
        &self,
        result: ValidationResult,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let charge = self.count_charge.lock().map_or(0, |charge| *charge);
        let complexity = u64::try_from(result.complexity).unwrap_or(u64::MAX);
        if complexity.saturating_add(charge) > self.max_complexity as u64 {
            // async-graphql's own refusal, with its message and code: one limit.
            return Err(vec![too_big("Query is too complex.".to_owned())]);
        }
        let parsed = self.parsed.lock().ok().and_then(|mut parsed| parsed.take());
        if let Some((query, fresh)) = parsed {
            self.documents.keep(query, fresh);
        }
        Ok(result)
    }
}
