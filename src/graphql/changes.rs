//! The change feed (`contactChanges`): the change log as a Relay connection.

use std::sync::Arc;

use async_graphql::{ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    connection::PageInfo, contact::Contact, messaging::MessagingLoader, scalars::Timestamp,
    subscription::ContactEventKind,
};
use crate::contacts::{change_cursor, changelog::LoggedChange};

/// A page of the change feed.
pub struct ContactChangeConnection {
    pub changes: Vec<LoggedChange>,
    pub has_next_page: bool,
    /// Where to poll from when the page is empty: the cursor the client sent, or the log's
    /// head when it sent none.
    pub resume_from: i64,
    pub now: DateTime<Utc>,
}

/// A change with its cursor.
#[derive(SimpleObject)]
pub struct ContactChangeEdge {
    /// Opaque; pass as `after`.
    cursor: String,
    /// The change.
    node: ContactChangeNode,
}

/// One committed create, update, delete or merge.
pub struct ContactChangeNode {
    logged: LoggedChange,
    now: DateTime<Utc>,
    /// Shared by the page's changes, so their contacts' windows and choices are read once.
    messaging: Arc<MessagingLoader>,
}

#[Object(name = "ContactChange")]
impl ContactChangeNode {
    /// Opaque; pass as `contactChanges(after:)` or `contactEvents(after:)` to continue after
    /// this change.
    async fn cursor(&self) -> String {
        change_cursor::encode(self.logged.position)
    }

    /// Created, updated, deleted or merged.
    async fn kind(&self) -> ContactEventKind {
        self.logged.change.kind.into()
    }

    /// The contact's id; for `MERGED`, the survivor's.
    async fn contact_id(&self) -> ID {
        ID(self.logged.change.contact_id.to_string())
    }

    /// For `MERGED`: the contact absorbed into `contactId` (deleted by the merge, with no
    /// separate `DELETED`). Null otherwise.
    async fn merged_contact_id(&self) -> Option<ID> {
        self.logged
            .change
            .merged_contact_id
            .map(|id| ID(id.to_string()))
    }

    /// The contact as of this change; null for a delete.
    // `contactChanges` counts per ten changes; a contact counts once per change, as in
    // `contacts`, or a page of 1,000 would carry 1,000 contacts' metadata at a tenth of the cost.
    #[graphql(complexity = "crate::graphql::limits::cost::CHANGES_PER_UNIT * child_complexity + 1")]
    async fn contact(&self) -> Option<Contact> {
        let row = self.logged.contact.clone()?;
        Some(Contact::sharing(row, self.now, self.messaging.clone()))
    }

    /// When the change was committed.
    async fn at(&self) -> Timestamp {
        Timestamp(self.logged.change.at)
    }
}

impl ContactChangeConnection {
    fn node(&self, logged: &LoggedChange, messaging: &Arc<MessagingLoader>) -> ContactChangeNode {
        ContactChangeNode {
            logged: logged.clone(),
            now: self.now,
            messaging: messaging.clone(),
        }
    }

    /// One loader for the contacts of the page's changes.
    fn loader(&self) -> Arc<MessagingLoader> {
        let mut ids: Vec<_> = self
            .changes
            .iter()
            .filter_map(|logged| logged.contact.as_ref().map(|row| row.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        MessagingLoader::for_contacts(ids)
    }
}

#[Object]
impl ContactChangeConnection {
    /// The changes with their cursors, in commit order.
    async fn edges(&self) -> Vec<ContactChangeEdge> {
        let messaging = self.loader();
        self.changes
            .iter()
            .map(|logged| ContactChangeEdge {
                cursor: change_cursor::encode(logged.position),
                node: self.node(logged, &messaging),
            })
            .collect()
    }

    /// The changes, in commit order.
    async fn nodes(&self) -> Vec<ContactChangeNode> {
        let messaging = self.loader();
        self.changes
            .iter()
            .map(|logged| self.node(logged, &messaging))
            .collect()
    }

    /// `endCursor` is where to continue from; on an empty page, the cursor to poll from.
    async fn page_info(&self) -> PageInfo {
        let first = self.changes.first().map(|logged| logged.position);
        let last = self.changes.last().map(|logged| logged.position);
        PageInfo::forward(
            self.has_next_page,
            first.map(change_cursor::encode),
            Some(change_cursor::encode(last.unwrap_or(self.resume_from))),
        )
    }
}
