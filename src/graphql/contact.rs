//! The `Contact` object and the `Node` interface.

use std::{borrow::Cow, sync::Arc};

use async_graphql::{
    ContainerType, Context, ContextSelectionSet, ID, Interface, Object, ObjectType, OutputType,
    Positioned, Result, ScalarType, ServerResult, Value, parser::types::Field, registry::Registry,
};
use chrono::{DateTime, Utc};
use entity::{contact::Model, marketing_preference, whatsapp_window};

use super::{
    messaging::{MessagingLoader, MessagingPolicy, WhatsappWindow},
    plain_fields,
    scalars::{MetadataMap, Timestamp},
    service,
};
use crate::contacts::{metadata::Metadata, policy, window, windows};

/// A person reachable on WhatsApp: the schema's `Contact`. Its fields are [`ContactFields`]'s;
/// a selection of plain fields only is written directly ([`plain_fields`]).
pub struct Contact(ContactFields);

/// What a contact's fields are resolved from.
pub struct ContactFields {
    row: Model,
    /// The request's "now", so every field and the SQL filter agree on the window.
    now: DateTime<Utc>,
    /// Reads the windows and marketing choices once for every contact shown with this one.
    messaging: Arc<MessagingLoader>,
}

impl Contact {
    pub fn new(row: Model, now: DateTime<Utc>) -> Self {
        let messaging = MessagingLoader::for_contacts(vec![row.id]);
        Self(ContactFields {
            row,
            now,
            messaging,
        })
    }

    /// A contact shown with others that share `messaging` (a page of the change feed).
    pub fn sharing(row: Model, now: DateTime<Utc>, messaging: Arc<MessagingLoader>) -> Self {
        Self(ContactFields {
            row,
            now,
            messaging,
        })
    }

    /// The contacts of one page, sharing one loader.
    pub fn page(rows: &[Model], now: DateTime<Utc>) -> Vec<Self> {
        let messaging = MessagingLoader::for_contacts(rows.iter().map(|row| row.id).collect());
        rows.iter()
            .map(|row| {
                Self(ContactFields {
                    row: row.clone(),
                    now,
                    messaging: messaging.clone(),
                })
            })
            .collect()
    }

    /// The `Node` interface's field, which its derive calls on each variant.
    async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        self.0.id(ctx).await
    }
}

impl OutputType for Contact {
    fn type_name() -> Cow<'static, str> {
        ContactFields::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        ContactFields::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match plain_fields::resolve(&self.0, ctx) {
            Some(value) => Ok(value),
            None => self.0.resolve(ctx, field).await,
        }
    }
}

impl ContainerType for Contact {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        self.0.resolve_field(ctx).await
    }
}

impl ObjectType for Contact {}

/// The fields [`ContactFields::plain_field`] answers.
pub(super) const PLAIN_FIELDS: [&str; 15] = [
    "__typename",
    "id",
    "phoneNumber",
    "countryCode",
    "lastWhatsappMessageAt",
    "whatsappWindowOpen",
    "whatsappWindowExpiresAt",
    "blocked",
    "metadata",
    "whatsappUserId",
    "parentWhatsappUserId",
    "whatsappUsername",
    "whatsappProfileName",
    "createdAt",
    "updatedAt",
];

impl ContactFields {
    /// The value of a field that takes no argument and has no sub-selection, when it needs
    /// nothing but the row: what the resolver of the same name below answers.
    pub(super) fn plain_field(&self, name: &str) -> Option<Value> {
        let row = &self.row;
        let text = |value: &Option<String>| value.as_deref().map_or(Value::Null, Value::from);
        let time = |value: DateTime<Utc>| Timestamp(value).to_value();
        Some(match name {
            "__typename" => Value::from(Self::type_name().into_owned()),
            "id" => Value::from(row.id.to_string()),
            "phoneNumber" => text(&row.phone_number),
            "countryCode" => text(&row.country_code),
            "lastWhatsappMessageAt" => row.last_whatsapp_message_at.map_or(Value::Null, time),
            "whatsappWindowOpen" => {
                Value::from(window::is_open(row.last_whatsapp_message_at, self.now))
            }
            "whatsappWindowExpiresAt" => {
                window::expires_at(row.last_whatsapp_message_at).map_or(Value::Null, time)
            }
            "blocked" => Value::from(row.blocked),
            "metadata" => MetadataMap::value_of_stored(&row.metadata),
            "whatsappUserId" => text(&row.whatsapp_user_id),
            "parentWhatsappUserId" => text(&row.parent_whatsapp_user_id),
            "whatsappUsername" => text(&row.whatsapp_username),
            "whatsappProfileName" => text(&row.whatsapp_profile_name),
            "createdAt" => time(row.created_at),
            "updatedAt" => time(row.updated_at),
            _ => return None,
        })
    }

    async fn windows<'a>(&'a self, ctx: &Context<'a>) -> Result<&'a [whatsapp_window::Model]> {
        Ok(self
            .messaging
            .windows_of(service(ctx)?, self.row.id)
            .await?)
    }

    async fn preferences<'a>(
        &'a self,
        ctx: &Context<'a>,
    ) -> Result<&'a [marketing_preference::Model]> {
        Ok(self
            .messaging
            .preferences_of(service(ctx)?, self.row.id)
            .await?)
    }
}

/// Checks an optional `businessPhoneNumberId` argument.
fn business_number(raw: Option<String>) -> Result<Option<String>> {
    Ok(raw
        .map(|id| windows::parse_business_number(&id, "businessPhoneNumberId"))
        .transpose()?)
}

/// An object with a globally unique id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Globally unique, immutable id."))]
pub enum Node {
    Contact(Contact),
}

#[Object(name = "Contact")]
impl ContactFields {
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

    /// True while free-form messages are allowed: within 24 hours of the last inbound message
    /// or call, on the given business number, or (without one) on any number.
    async fn whatsapp_window_open(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Meta's `phone_number_id`; omit for any number.")]
        business_phone_number_id: Option<String>,
    ) -> Result<bool> {
        let Some(number) = business_number(business_phone_number_id)? else {
            return Ok(window::is_open(self.row.last_whatsapp_message_at, self.now));
        };
        let windows = self.windows(ctx).await?;
        Ok(policy::window_open(windows, Some(&number), self.now))
    }

    /// When the window closes: 24 hours after the last inbound message or call on the given
    /// business number, or (without one) on any number; null when there was none.
    async fn whatsapp_window_expires_at(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Meta's `phone_number_id`; omit for any number.")]
        business_phone_number_id: Option<String>,
    ) -> Result<Option<Timestamp>> {
        let last = match business_number(business_phone_number_id)? {
            None => self.row.last_whatsapp_message_at,
            Some(number) => policy::latest_inbound(self.windows(ctx).await?, Some(&number)),
        };
        Ok(window::expires_at(last).map(Timestamp))
    }

    /// One window per business number that has heard from the contact, newest first.
    /// `lastWhatsappMessageAt` is the latest of them; `whatsappWindowOpen` is open while any is.
    // Up to `windows::MAX_PER_CONTACT` of them: their fields are charged per 25 windows.
    #[graphql(
        complexity = "crate::graphql::limits::cost::windows_multiplier() * child_complexity + 1"
    )]
    async fn whatsapp_windows(&self, ctx: &Context<'_>) -> Result<Vec<WhatsappWindow>> {
        Ok(self
            .windows(ctx)
            .await?
            .iter()
            .map(|row| WhatsappWindow::of(row, self.now))
            .collect())
    }

    /// True when the user stopped marketing messages from the given business number. The
    /// latest choice wins between one made for that number and one made for every number (at
    /// the same instant, the opt-out wins): a stop for all numbers followed by a resume on one
    /// number allows that number only; a resume on one number followed by a stop for all
    /// stops it too. Without a number: the choice made for every number (what a number the
    /// user never named gets).
    async fn marketing_opted_out(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Meta's `phone_number_id`; omit for the choice made for all numbers.")]
        business_phone_number_id: Option<String>,
    ) -> Result<bool> {
        let number = business_number(business_phone_number_id)?;
        Ok(policy::opted_out(
            self.preferences(ctx).await?,
            number.as_deref(),
        ))
    }

    /// True when the business blocked the user (`setContactBlocked`): nothing may be sent.
    async fn blocked(&self) -> bool {
        self.row.blocked
    }

    /// What may be sent to the contact now, from the given business number (without one: the
    /// window on any number, the marketing choice made for all numbers), with every rule that
    /// said no. The filters `messagingFreeForm` and `marketingAllowed` agree with it.
    async fn messaging(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Meta's `phone_number_id`; omit for any number.")]
        business_phone_number_id: Option<String>,
    ) -> Result<MessagingPolicy> {
        let number = business_number(business_phone_number_id)?;
        let open = match &number {
            None => window::is_open(self.row.last_whatsapp_message_at, self.now),
            Some(number) => policy::window_open(self.windows(ctx).await?, Some(number), self.now),
        };
        let opted_out = policy::opted_out(self.preferences(ctx).await?, number.as_deref());
        Ok(policy::decide(open, self.row.blocked, opted_out).into())
    }

    /// String → string map, `{}` when empty.
    // Up to ~155 KiB of JSON: charged as what it may weigh, not as one field.
    #[graphql(complexity = "crate::graphql::limits::cost::METADATA")]
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
    #[graphql(complexity = "crate::graphql::limits::cost::PREVIOUS_USER_IDS")]
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
