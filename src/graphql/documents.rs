//! Parsed documents by query text. Clients send the same few operations over and over, and
//! parsing is the costliest step that does not depend on variables: each text is parsed and
//! checked against the operation limits once, then served from here.

use std::sync::Arc;

use async_graphql::{ServerError, ServerResult, parser::types::ExecutableDocument};
use quick_cache::sync::Cache;

use super::{Limits, codes, limits};

/// Distinct documents kept; the least recently used go first.
const CAPACITY: usize = 1_000;
/// Longer texts are parsed every time rather than kept.
const MAX_CACHED_BYTES: usize = 16 * 1024;

/// Marks a request whose document was already checked against the limits here, so the
/// schema's limits extension does not check it again.
#[derive(Debug, Clone, Copy)]
pub struct LimitsChecked;

#[derive(Clone)]
pub struct DocumentCache {
    documents: Arc<Cache<String, Arc<ExecutableDocument>>>,
    limits: Limits,
}

impl DocumentCache {
    pub fn new(limits: Limits) -> Self {
        Self {
            documents: Arc::new(Cache::new(CAPACITY)),
            limits,
        }
    }

    /// `query` parsed and within the limits, or the error that refuses it.
    pub fn parse(&self, query: &str) -> ServerResult<ExecutableDocument> {
        if let Some(doc) = self.documents.get(query) {
            return Ok((*doc).clone());
        }
        // Refused before parsing, so an oversized document costs little.
        limits::check_tokens(query, self.limits.max_tokens)?;
        let doc = async_graphql::parser::parse_query(query).map_err(|err| {
            codes::with_code(
                ServerError::from(err),
                crate::error::ErrorCode::GraphqlParseFailed,
            )
        })?;
        limits::check_document(&doc, &self.limits)?;
        if query.len() <= MAX_CACHED_BYTES {
            self.documents
                .insert(query.to_owned(), Arc::new(doc.clone()));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_refusals_are_not_kept() {
        let cache = DocumentCache::new(Limits::default());
        let query = "{ contactStats { total } }";
        let first = cache.parse(query).unwrap();
        assert_eq!(cache.documents.len(), 1);
        let again = cache.parse(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
        assert!(cache.parse("{ contactStats { total }").is_err());
        let deep = format!("{}{}", "{ a ".repeat(10), "}".repeat(10));
        assert!(cache.parse(&deep).is_err());
        assert_eq!(cache.documents.len(), 1);
    }
}
