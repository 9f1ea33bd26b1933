//! A contact's plain fields, written straight into the response.
//!
//! async-graphql resolves every field of an object as its own boxed future, polled through a
//! `FuturesUnordered` and wrapped in the schema extension's hook: a page of 50 contacts of nine
//! fields is 450 futures, for values already in memory. A selection made only of fields that
//! take no argument, carry no directive and have no sub-selection, each answered from the row
//! ([`ContactFields::plain_field`]), is written here in selection order instead; any other
//! selection (a fragment, an argument, a field that reads the database) takes async-graphql's
//! path. The extension's per-field hook only acts on root fields, so skipping it here changes
//! nothing; `tests/plain_fields.rs` holds both paths to the same bytes.

use async_graphql::{
    ContextSelectionSet, Value,
    indexmap::{IndexMap, map::Entry},
    parser::types::Selection,
};

use super::contact::{ContactFields, PLAIN_FIELDS};

/// The contact's object for this selection, or `None` when the selection is not plain.
pub(super) fn resolve(contact: &ContactFields, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
    // Checked whole before any value is made, so a selection that is not plain costs no work
    // here before async-graphql's path does it again.
    let mut fields = Vec::with_capacity(ctx.item.node.items.len());
    for selection in &ctx.item.node.items {
        let Selection::Field(field) = &selection.node else {
            return None;
        };
        let field = &field.node;
        let plain = field.arguments.is_empty()
            && field.directives.is_empty()
            && field.selection_set.node.items.is_empty()
            && PLAIN_FIELDS.contains(&field.name.node.as_str());
        if !plain {
            return None;
        }
        fields.push(field);
    }
    let mut object = IndexMap::with_capacity(fields.len());
    for field in fields {
        // A key selected twice is one entry, where it first appeared (both are the same
        // field: validation refuses one key for two different fields).
        if let Entry::Vacant(entry) = object.entry(field.response_key().node.clone()) {
            entry.insert(contact.plain_field(field.name.node.as_str())?);
        }
    }
    (!object.is_empty()).then_some(Value::Object(object))
}
