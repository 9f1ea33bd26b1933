//! The operations of issue 13's size table, served by the GraphQL server alone: whether each
//! costs the same at 100,000 and at 10,000,000 contacts. Orders by last message, the
//! closed-window list, the metadata and prefix filters and `totalCount`.

use serde_json::{Value, json};

use crate::load::{CONTACT, graphql};

/// The metadata pair one seeded contact in 1,000 carries (`metadata.name` is `name<index %
/// 1000>`), and one no contact carries.
const METADATA_MATCH: (&str, &str) = ("name", "name7");
const METADATA_NONE: (&str, &str) = ("name", "nobody");
/// A prefix of one seeded number in 100 (the seed's numbers are `+569` and eight digits).
const PREFIX: &str = "+56912";

/// The orders a keyset walk may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// The default, `CREATED_AT ASC`.
    Created,
    /// `LAST_WHATSAPP_MESSAGE_AT DESC`: valued rows first, the never messaged last.
    LastMessage,
}

/// One page of 50 in `walk`'s order after `after`, every field (GraphQL).
pub fn page(walk: Walk, after: Option<String>) -> (&'static str, Value) {
    let order = match walk {
        Walk::Created => "",
        Walk::LastMessage => ", orderBy: { field: LAST_WHATSAPP_MESSAGE_AT, direction: DESC }",
    };
    graphql(
        &format!(
            "query($after: String) {{ contacts(first: 50, after: $after{order}) {{ nodes {{ {CONTACT} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        ),
        json!({ "after": after }),
    )
}

/// The first 50 contacts whose window is closed (or never opened), by last message.
pub fn closed_windows() -> (&'static str, Value) {
    list(
        "whatsappWindowOpen: false",
        ", orderBy: { field: LAST_WHATSAPP_MESSAGE_AT, direction: DESC }",
    )
}

/// The first 50 contacts carrying the metadata pair, or none when `matching` is false.
pub fn metadata(matching: bool) -> (&'static str, Value) {
    let (key, value) = if matching {
        METADATA_MATCH
    } else {
        METADATA_NONE
    };
    list(&format!("metadata: {{ {key}: \"{value}\" }}"), "")
}

/// The first 50 contacts whose number starts with [`PREFIX`].
pub fn prefix() -> (&'static str, Value) {
    list(&format!("phoneNumberPrefix: \"{PREFIX}\""), "")
}

/// `totalCount` alone: of every contact, or of the open windows.
pub fn total_count(filtered: bool) -> (&'static str, Value) {
    let filter = if filtered {
        "(filter: { whatsappWindowOpen: true })"
    } else {
        ""
    };
    graphql(
        &format!("{{ contacts{filter} {{ totalCount }} }}"),
        json!({}),
    )
}

/// The first 50 of `filter`, in `order` (empty: the default), every field.
fn list(filter: &str, order: &str) -> (&'static str, Value) {
    graphql(
        &format!(
            "{{ contacts(first: 50, filter: {{ {filter} }}{order}) {{ nodes {{ {CONTACT} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        ),
        json!({}),
    )
}
