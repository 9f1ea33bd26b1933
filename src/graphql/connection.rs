//! `ContactConnection`: a Relay cursor connection over one keyset page.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{contact::Contact, service};
use crate::contacts::{filter::ContactFilter, page::Page};

/// A page of contacts.
pub struct ContactConnection {
    pub page: Page,
    pub filter: ContactFilter,
    pub now: DateTime<Utc>,
}

/// A contact and its cursor.
pub struct ContactEdge {
    cursor: String,
    node: Contact,
}

#[Object]
impl ContactEdge {
    /// Opaque; pass as `after` or `before`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The contact.
    async fn node(&self) -> &Contact {
        &self.node
    }
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More rows follow `endCursor`.
    has_next_page: bool,
    /// More rows precede `startCursor`.
    has_previous_page: bool,
    /// Cursor of the first edge.
    start_cursor: Option<String>,
    /// Cursor of the last edge.
    end_cursor: Option<String>,
}

impl PageInfo {
    /// Page information of a forward-only connection.
    pub(super) fn forward(has_next_page: bool, start: Option<String>, end: Option<String>) -> Self {
        Self {
            has_next_page,
            has_previous_page: false,
            start_cursor: start,
            end_cursor: end,
        }
    }
}

#[Object]
impl ContactConnection {
    /// The contacts with their cursors.
    async fn edges(&self) -> Vec<ContactEdge> {
        let page = &self.page;
        let nodes = Contact::page(&page.rows, self.now);
        page.rows
            .iter()
            .zip(nodes)
            .map(|(row, node)| ContactEdge {
                cursor: page.cursor_of(row),
                node,
            })
            .collect()
    }

    /// The contacts, without cursors.
    async fn nodes(&self) -> Vec<Contact> {
        Contact::page(&self.page.rows, self.now)
    }

    /// Where this page sits.
    async fn page_info(&self) -> PageInfo {
        let page = &self.page;
        PageInfo {
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            start_cursor: page.rows.first().map(|row| page.cursor_of(row)),
            end_cursor: page.rows.last().map(|row| page.cursor_of(row)),
        }
    }

    /// How many contacts match the filter, across all pages. Counted only when selected.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(service(ctx)?.count(&self.filter, self.now).await?)
    }
}
