//! The operation a request selects, as far as its document tells before validation.

use std::collections::HashSet;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

use crate::logging;

/// The operation that will run, as far as the document tells before validation.
pub struct SelectedOperation<'a> {
    pub name: Option<&'a str>,
    /// `None` when the document does not say which operation runs (validation refuses it).
    pub kind: Option<OperationType>,
    /// Distinct response keys at its root, through fragments.
    pub root_fields: usize,
}

/// Its name (as given, or the only one the document has) and its type.
pub fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    given: Option<&'a str>,
) -> SelectedOperation<'a> {
    let (name, operation) = match (&doc.operations, given) {
        (DocumentOperations::Single(op), _) => (given, Some(op)),
        (DocumentOperations::Multiple(ops), Some(name)) => (Some(name), ops.get(name)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .iter()
            .next()
            .map_or((None, None), |(name, op)| (Some(name.as_str()), Some(op))),
        (DocumentOperations::Multiple(_), None) => (None, None),
    };
    let mut keys = HashSet::new();
    if let Some(op) = operation {
        root_keys(
            doc,
            &op.node.selection_set.node,
            &mut keys,
            &mut HashSet::new(),
        );
    }
    SelectedOperation {
        name,
        kind: operation.map(|op| op.node.ty),
        root_fields: keys.len(),
    }
}

/// The response keys (alias, else name) selected at the root of `set`, through fragment
/// spreads (each fragment once) and inline fragments.
fn root_keys<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut HashSet<&'a str>,
    spread: &mut HashSet<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                keys.insert(field.node.response_key().node.as_str());
            }
            Selection::InlineFragment(inline) => {
                root_keys(doc, &inline.node.selection_set.node, keys, spread);
            }
            Selection::FragmentSpread(name) => {
                let name = name.node.fragment_name.node.as_str();
                if let Some(fragment) = doc.fragments.get(name)
                    && spread.insert(name)
                {
                    root_keys(doc, &fragment.node.selection_set.node, keys, spread);
                }
            }
        }
    }
}

/// Names the operation on the current span (the HTTP request's or the WebSocket connection's).
pub fn record_operation(operation: &SelectedOperation<'_>) {
    let span = tracing::Span::current();
    let kind = match operation.kind {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    };
    span.record("kind", kind);
    let name = operation
        .name
        .map_or_else(|| "anonymous".to_owned(), logging::clip_and_mask);
    span.record("operation_name", name.as_str());
}
