//! Subscription root: translation of the domain's live views.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use super::{contact::Contact, parse_id, scalars::Timestamp, service};
use crate::{
    contacts::{ContactService, watch::WindowState},
    events::ChangeKind,
};

pub struct SubscriptionRoot;

/// What happened to a contact.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ContactEventKind {
    Created,
    Updated,
    Deleted,
}

impl From<ChangeKind> for ContactEventKind {
    fn from(kind: ChangeKind) -> Self {
        match kind {
            ChangeKind::Created => Self::Created,
            ChangeKind::Updated => Self::Updated,
            ChangeKind::Deleted => Self::Deleted,
        }
    }
}

/// A committed change to a contact.
pub struct ContactEvent {
    kind: ContactEventKind,
    contact_id: ID,
    contact: Option<Contact>,
    at: Timestamp,
}

#[Object]
impl ContactEvent {
    /// Created, updated or deleted.
    async fn kind(&self) -> ContactEventKind {
        self.kind
    }

    /// The contact's id.
    async fn contact_id(&self) -> &ID {
        &self.contact_id
    }

    /// The contact as it is now; null once deleted.
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
}

impl From<WindowState> for WhatsappWindowState {
    fn from(state: WindowState) -> Self {
        Self {
            contact_id: ID(state.contact_id.to_string()),
            open: state.open,
            expires_at: state.expires_at.map(Timestamp),
        }
    }
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed change to any contact, or to the one with `id`.
    async fn contact_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this contact's changes.")] id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<ContactEvent>> + use<>> {
        let only = id.map(|id| parse_id(&id, "id")).transpose()?;
        let service: ContactService = service(ctx)?.clone();
        let now_source = service.clone();
        Ok(service.watch_changes(only).map(move |item| {
            let (change, row) = item?;
            Ok(ContactEvent {
                kind: change.kind.into(),
                contact_id: ID(change.contact_id.to_string()),
                contact: row.map(|row| Contact::new(row, now_source.now())),
                at: Timestamp(change.at),
            })
        }))
    }

    /// The contact's window: the current state first, then every change, including
    /// `open: false` at the moment it expires.
    async fn whatsapp_window(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to watch.")] contact_id: ID,
    ) -> Result<impl Stream<Item = Result<WhatsappWindowState>> + use<>> {
        let id = parse_id(&contact_id, "contactId")?;
        let stream = service(ctx)?.watch_window(id);
        Ok(stream.map(|item| Ok(item?.into())))
    }
}
