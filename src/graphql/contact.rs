//! The `Contact` object and the `Node` interface.

use async_graphql::{Context, ID, Interface, Object, Result};
use chrono::{DateTime, Utc};
use entity::contact::Model;

use super::{
    scalars::{MetadataMap, Timestamp},
    service,
};
use crate::contacts::{metadata::Metadata, window};

/// A person reachable on WhatsApp.
pub struct Contact {
    row: Model,
    /// The request's "now", so every field and the SQL filter agree on the window.
    now: DateTime<Utc>,
}

impl Contact {
    pub fn new(row: Model, now: DateTime<Utc>) -> Self {
        Self { row, now }
    }
}

/// An object with a globally unique id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Globally unique, immutable id."))]
pub enum Node {
    Contact(Contact),
}

#[Object]
impl Contact {
    /// Time-ordered UUID (v7), immutable.
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// E.164, e.g. `+56912345678`. Unique. Null only for a contact known by `whatsappUserId`
    /// alone (a user who hides the number behind a username); every contact has at least one.
    async fn phone_number(&self) -> Option<&str> {
        self.row.phone_number.as_deref()
    }

    /// ISO 3166-1 alpha-2, upper case; derived from the number when not given.
    async fn country_code(&self) -> Option<&str> {
        self.row.country_code.as_deref()
    }

    /// When the contact last messaged us on WhatsApp.
    async fn last_whatsapp_message_at(&self) -> Option<Timestamp> {
        self.row.last_whatsapp_message_at.map(Timestamp)
    }

    /// True while free-form messages are allowed: within 24 hours of the last inbound message.
    async fn whatsapp_window_open(&self) -> bool {
        window::is_open(self.row.last_whatsapp_message_at, self.now)
    }

    /// `lastWhatsappMessageAt + 24h`; null when the contact never messaged.
    async fn whatsapp_window_expires_at(&self) -> Option<Timestamp> {
        window::expires_at(self.row.last_whatsapp_message_at).map(Timestamp)
    }

    /// String → string map, `{}` when empty.
    async fn metadata(&self) -> MetadataMap {
        MetadataMap::from(&Metadata::from_stored(&self.row.metadata))
    }

    /// The business-scoped user id (BSUID) Meta identifies the user by, `CC.<alphanumerics>`;
    /// unique. Null when only the phone number is known.
    async fn whatsapp_user_id(&self) -> Option<&str> {
        self.row.whatsapp_user_id.as_deref()
    }

    /// The parent BSUID, spanning linked business portfolios, when Meta sent one.
    async fn parent_whatsapp_user_id(&self) -> Option<&str> {
        self.row.parent_whatsapp_user_id.as_deref()
    }

    /// The user's WhatsApp username as last seen. Changes; not a key.
    async fn whatsapp_username(&self) -> Option<&str> {
        self.row.whatsapp_username.as_deref()
    }

    /// The user's WhatsApp profile name as last seen.
    async fn whatsapp_profile_name(&self) -> Option<&str> {
        self.row.whatsapp_profile_name.as_deref()
    }

    /// BSUIDs the contact held before identity changes, oldest first; each still finds the
    /// contact (`contactByWhatsappUserId`, inbound events). Read with one query per contact,
    /// so select it on single contacts or small pages.
    async fn previous_whatsapp_user_ids(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(service(ctx)?
            .previous_whatsapp_user_ids(self.row.id)
            .await?)
    }

    /// When the contact was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.row.created_at)
    }

    /// When the contact last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.row.updated_at)
    }
}
