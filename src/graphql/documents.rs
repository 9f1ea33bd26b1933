//! Parsed documents by query text. Clients send the same few operations over and over, and
//! parsing is the costliest step that does not depend on variables: each text is checked
//! against the operation limits and parsed once, then served from here. Only documents that
//! passed validation are kept, and the cache is bounded in bytes, not in entries: a document's
//! tree takes many times its text (a 16 KiB text of short fields, a few hundred KiB).

use std::sync::Arc;

use async_graphql::{ServerError, ServerResult, parser::types::ExecutableDocument};
use quick_cache::{Weighter, sync::Cache};

use super::{Limits, codes, limits};

/// Memory the cache may hold, texts and parsed documents together (estimated as
/// [`estimated_bytes`]); the least recently used go first.
pub const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;
/// Entries expected, to size the cache's table (not a bound).
const ESTIMATED_ENTRIES: usize = 1_000;
/// Longer texts are parsed every time rather than kept.
pub const MAX_CACHED_TEXT: usize = 16 * 1024;
/// An upper bound of what a parsed document holds per token besides the text it copies (its
/// nodes, vectors' spare room, each name's own allocation). Measured in `tests/limits.rs`.
pub const BYTES_PER_TOKEN: u64 = 512;

/// A document parsed for this request, with its estimated size, to keep once it is valid.
pub struct Fresh {
    doc: Arc<ExecutableDocument>,
    bytes: u64,
}

/// [`DocumentCache::load`]'s answer.
pub struct Loaded {
    pub doc: ExecutableDocument,
    /// Set when `doc` was parsed now and may be kept ([`DocumentCache::keep`]).
    pub fresh: Option<Fresh>,
}

/// Estimated memory of a query text and its parsed document, given its number of tokens.
pub fn estimated_bytes(query: &str, tokens: usize) -> u64 {
    // The key, and the names and strings the tree copies out of the text.
    2 * query.len() as u64 + tokens as u64 * BYTES_PER_TOKEN
}

#[derive(Clone)]
struct Entry {
    doc: Arc<ExecutableDocument>,
    bytes: u64,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Entry> for ByBytes {
    fn weight(&self, _query: &String, entry: &Entry) -> u64 {
        entry.bytes
    }
}

#[derive(Clone)]
pub struct DocumentCache {
    documents: Arc<Cache<String, Entry, ByBytes>>,
    limits: Limits,
}

impl DocumentCache {
    pub fn new(limits: Limits) -> Self {
        let cache = Cache::with_weighter(ESTIMATED_ENTRIES, CAPACITY_BYTES, ByBytes);
        Self {
            documents: Arc::new(cache),
            limits,
        }
    }

    /// `query` parsed and within the limits: from the cache, or else its tokens counted (so
    /// an oversized document costs little to refuse), then parsed, then measured.
    pub fn load(&self, query: &str) -> ServerResult<Loaded> {
        if let Some(entry) = self.documents.get(query) {
            let doc = (*entry.doc).clone();
            return Ok(Loaded { doc, fresh: None });
        }
        let tokens = limits::check_tokens(query, self.limits.max_tokens)?;
        let doc = async_graphql::parser::parse_query(query).map_err(|err| {
            codes::with_code(
                ServerError::from(err),
                crate::error::ErrorCode::GraphqlParseFailed,
            )
        })?;
        limits::check_document(&doc, &self.limits)?;
        let fresh = (query.len() <= MAX_CACHED_TEXT).then(|| Fresh {
            doc: Arc::new(doc.clone()),
            bytes: estimated_bytes(query, tokens),
        });
        Ok(Loaded { doc, fresh })
    }

    /// Keeps a document that has passed validation.
    pub fn keep(&self, query: String, fresh: Fresh) {
        let entry = Entry {
            doc: fresh.doc,
            bytes: fresh.bytes,
        };
        self.documents.insert(query, entry);
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The estimated bytes held now; never more than [`CAPACITY_BYTES`].
    pub fn weight(&self) -> u64 {
        self.documents.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_and_keep(cache: &DocumentCache, query: &str) -> ServerResult<ExecutableDocument> {
        let loaded = cache.load(query)?;
        if let Some(fresh) = loaded.fresh {
            cache.keep(query.to_owned(), fresh);
        }
        Ok(loaded.doc)
    }

    #[test]
    fn a_document_is_parsed_once_and_refusals_are_not_kept() {
        let cache = DocumentCache::new(Limits::default());
        let query = "{ contactStats { total } }";
        let first = load_and_keep(&cache, query).unwrap();
        assert_eq!(cache.len(), 1);
        let again = cache.load(query).unwrap();
        assert!(again.fresh.is_none(), "served from the cache");
        assert_eq!(format!("{first:?}"), format!("{:?}", again.doc));
        assert!(load_and_keep(&cache, "{ contactStats { total }").is_err());
        let deep = format!("{}{}", "{ a ".repeat(10), "}".repeat(10));
        assert!(load_and_keep(&cache, &deep).is_err());
        assert_eq!(cache.len(), 1);
        // Loading alone keeps nothing: only validation does.
        assert!(cache.load("{ other }").is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let cache = DocumentCache::new(Limits::default());
        // 1,000 distinct 16 KiB documents of 1,000 tokens: 500 MiB by the estimate.
        let fields = "f ".repeat(495);
        for i in 0..1_000 {
            let pad = "x".repeat(MAX_CACHED_TEXT - 1_000 - 20);
            let query = format!("query Q{i} {{ a {{ {fields} }} }} # {pad}");
            assert!(query.len() <= MAX_CACHED_TEXT);
            load_and_keep(&cache, &query).unwrap();
            assert!(cache.weight() <= CAPACITY_BYTES);
        }
        assert!(cache.len() < 1_000);
        assert!(cache.weight() > CAPACITY_BYTES / 2, "{}", cache.weight());
    }
}
