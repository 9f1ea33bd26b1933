//! Subscription root: translation of the domain's live views.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::{contact::Contact, parse_id, scalars::Timestamp, service};
use crate::{
    contacts::{ContactService, change_cursor, watch::WindowState, windows},
    events::ChangeKind,
};

pub struct SubscriptionRoot;

/// What happened to a contact.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ContactEventKind {
    Created,
    Updated,
    Deleted,
    /// Another contact was merged into this one (`mergedContactId`), which is deleted.
    Merged,
}

impl From<ChangeKind> for ContactEventKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Created => Self::Created,
            ChangeKind::Updated => Self::Updated,
            ChangeKind::Deleted => Self::Deleted,
            ChangeKind::Merged => Self::Merged,
        }
    }
}

/// A committed change to a contact.
pub struct ContactEvent {
    cursor: String,
    kind: ContactEventKind,
    contact_id: ID,
    merged_contact_id: Option<ID>,
    contact: Option<Contact>,
    at: Timestamp,
}

#[Object]
impl ContactEvent {
    /// Opaque; pass as `contactEvents(after:)` to resume after this event, or as
    /// `contactChanges(after:)`.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// Created, updated, deleted or merged.
    async fn kind(&self) -> ContactEventKind {
        self.kind
    }

    /// The contact's id; for `MERGED`, the survivor's.
    async fn contact_id(&self) -> &ID {
        &self.contact_id
    }

    /// For `MERGED`: the contact absorbed into `contactId`, deleted by the merge (no separate
    /// `DELETED` is sent). `contactEvents(id:)` of either contact receives it. Null otherwise.
    async fn merged_contact_id(&self) -> Option<&ID> {
        self.merged_contact_id.as_ref()
    }

    /// The contact as of this change; null for a delete.
    async fn contact(&self) -> Option<&Contact> {
        self.contact.as_ref()
    }

    /// When the change was committed.
    async fn at(&self) -> Timestamp {
        self.at
    }
}

/// Whether a contact may be messaged freely, and until when.
#[derive(SimpleObject)]
pub struct WhatsappWindowState {
    /// The contact's id.
    contact_id: ID,
    /// True while free-form messages are allowed.
    open: bool,
    /// When the window closes (or closed); null when the contact never messaged.
    expires_at: Option<Timestamp>,
    /// Set on the final state of a contact merged into another: the survivor's id. `open`
    /// and `expiresAt` are then the survivor's, and the subscription ends; subscribe to the
    /// survivor to follow its window.
    merged_into_contact_id: Option<ID>,
}

impl From<WindowState> for WhatsappWindowState {
    fn from(state: WindowState) -> Self {
        Self {
            contact_id: ID(state.contact_id.to_string()),
            open: state.open,
            expires_at: state.expires_at.map(Timestamp),
            merged_into_contact_id: state.merged_into.map(|id| ID(id.to_string())),
        }
    }
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed change to any contact, or to the one with `id`, in commit order.
    /// With `after` (a cursor of an event or of `contactChanges`), the changes since it are
    /// replayed first, with no gap and no duplicate; a subscriber that reads slowly catches up
    /// from the change log. `CURSOR_EXPIRED` when `after` is older than the log's retention.
    async fn contact_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this contact's changes.")] id: Option<ID>,
        #[graphql(desc = "Resume after this cursor; omit for changes from now on.")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<ContactEvent>> + use<>> {
        let only = id.map(|id| parse_id(&id, "id")).transpose()?;
        let after = after
            .map(|raw| change_cursor::decode(&raw, "after"))
            .transpose()?;
        let service: ContactService = service(ctx)?.clone();
        let now_source = service.clone();
        Ok(service.follow_changes(only, after).map(move |item| {
            let logged = item?;
            let change = &logged.change;
            Ok(ContactEvent {
                cursor: change_cursor::encode(logged.position),
                kind: change.kind.into(),
                contact_id: ID(change.contact_id.to_string()),
                merged_contact_id: change.merged_contact_id.map(|id| ID(id.to_string())),
                contact: logged
                    .contact
                    .clone()
                    .map(|row| Contact::new(row, now_source.now())),
                at: Timestamp(change.at),
            })
        }))
    }

    /// The contact's window: the current state first, then every change, including
    /// `open: false` at the moment it expires. When the contact is merged into another, a
    /// last state carries `mergedIntoContactId` and the subscription completes. With
    /// `businessPhoneNumberId`, the window on that number (as
    /// `Contact.whatsappWindowOpen(businessPhoneNumberId)`), which also closes by itself.
    async fn whatsapp_window(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to watch.")] contact_id: ID,
        #[graphql(desc = "Meta's `phone_number_id`; omit for the window on any number.")]
        business_phone_number_id: Option<String>,
    ) -> Result<impl Stream<Item = Result<WhatsappWindowState>> + use<>> {
        let id = parse_id(&contact_id, "contactId")?;
        let number = business_phone_number_id
            .map(|raw| windows::parse_business_number(&raw, "businessPhoneNumberId"))
            .transpose()?;
        let stream = service(ctx)?.watch_window(id, number);
        Ok(stream.map(|item| Ok(item?.into())))
    }
}
