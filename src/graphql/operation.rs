//! The operation a request selects, as far as its document tells before validation.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

use crate::logging;

/// The operation that will run, as far as the document tells before validation.
pub struct SelectedOperation<'a> {
    pub name: Option<&'a str>,
    /// `None` when the document does not say which operation runs (validation refuses it).
    pub kind: Option<OperationType>,
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
    SelectedOperation {
        name,
        kind: operation.map(|op| op.node.ty),
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
    let name = operation.name.map_or("anonymous".into(), logging::mask);
    span.record("operation_name", name.as_ref());
}
