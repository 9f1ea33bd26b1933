//! Input objects and enums, and their translation into domain input.

use async_graphql::{Enum, InputObject, MaybeUndefined};

use super::scalars::{MetadataMap, Timestamp};
use crate::contacts::{
    filter::FilterInput,
    input::{ContactChanges, ContactInput},
    order::{self, OrderField},
};

/// Which contacts to return; every given condition must hold.
#[derive(InputObject, Default)]
pub struct ContactFilter {
    /// Only contacts whose window is open (true) or closed or never opened (false), on
    /// `businessPhoneNumberId` when given, else on any number: as `Contact.whatsappWindowOpen`
    /// answers at the same instant.
    pub whatsapp_window_open: Option<bool>,
    /// Any of these country codes (the rule of `CreateContactInput.countryCode`).
    pub country_code: Option<Vec<String>>,
    /// E.164 prefix, e.g. `+569`.
    pub phone_number_prefix: Option<String>,
    /// Every pair must match.
    pub metadata: Option<MetadataMap>,
    /// Created strictly after this instant.
    pub created_after: Option<Timestamp>,
    /// Created strictly before this instant.
    pub created_before: Option<Timestamp>,
    /// Last inbound message strictly after this instant.
    pub last_whatsapp_message_after: Option<Timestamp>,
    /// Last inbound message strictly before this instant.
    pub last_whatsapp_message_before: Option<Timestamp>,
    /// The contact whose current WhatsApp user id (BSUID) is this one; validated like
    /// `CreateContactInput.whatsappUserId`. A replaced BSUID matches nothing here
    /// (`contactByWhatsappUserId` also finds those).
    pub whatsapp_user_id: Option<String>,
    /// Contacts with a phone number (true), or known by `whatsappUserId` alone (false).
    pub has_phone_number: Option<bool>,
    /// The business number (Meta's `phone_number_id`) that `whatsappWindowOpen`,
    /// `messagingFreeForm` and `marketingAllowed` are evaluated for, as the fields of the same
    /// name answer with this argument; without one, any number (window) or the choice made
    /// for all numbers (marketing). It selects nothing by itself, and
    /// `lastWhatsappMessageAfter`/`Before` stay about any number.
    pub business_phone_number_id: Option<String>,
    /// As `Contact.messaging(businessPhoneNumberId).freeForm` answers at the same instant:
    /// an open window and no block.
    pub messaging_free_form: Option<bool>,
    /// As `Contact.messaging(businessPhoneNumberId).marketingTemplate` answers: no block
    /// and no marketing opt-out.
    pub marketing_allowed: Option<bool>,
}

impl From<ContactFilter> for FilterInput {
    fn from(f: ContactFilter) -> Self {
        Self {
            whatsapp_window_open: f.whatsapp_window_open,
            country_code: f.country_code,
            phone_number_prefix: f.phone_number_prefix,
            metadata: f.metadata.map(|m| m.0),
            created_after: f.created_after.map(|t| t.0),
            created_before: f.created_before.map(|t| t.0),
            last_whatsapp_message_after: f.last_whatsapp_message_after.map(|t| t.0),
            last_whatsapp_message_before: f.last_whatsapp_message_before.map(|t| t.0),
            whatsapp_user_id: f.whatsapp_user_id,
            has_phone_number: f.has_phone_number,
            business_phone_number_id: f.business_phone_number_id,
            messaging_free_form: f.messaging_free_form,
            marketing_allowed: f.marketing_allowed,
        }
    }
}

/// What contacts can be sorted by. Ties are broken by id; contacts that never messaged sort
/// last for `LAST_WHATSAPP_MESSAGE_AT`, and contacts without a phone number last for
/// `PHONE_NUMBER`, in both directions.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ContactOrderField {
    CreatedAt,
    UpdatedAt,
    LastWhatsappMessageAt,
    PhoneNumber,
}

/// Sort direction.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

/// A sort order.
#[derive(InputObject)]
pub struct ContactOrder {
    /// The field to sort by.
    pub field: ContactOrderField,
    /// The direction.
    pub direction: OrderDirection,
}

impl From<ContactOrder> for order::ContactOrder {
    fn from(o: ContactOrder) -> Self {
        let field = match o.field {
            ContactOrderField::CreatedAt => OrderField::CreatedAt,
            ContactOrderField::UpdatedAt => OrderField::UpdatedAt,
            ContactOrderField::LastWhatsappMessageAt => OrderField::LastWhatsappMessageAt,
            ContactOrderField::PhoneNumber => OrderField::PhoneNumber,
        };
        let direction = match o.direction {
            OrderDirection::Asc => order::Direction::Asc,
            OrderDirection::Desc => order::Direction::Desc,
        };
        Self { field, direction }
    }
}

/// A new contact, known by its phone number, its WhatsApp user id, or both.
#[derive(InputObject)]
pub struct CreateContactInput {
    /// E.164 or international format (`+56 9 1234 5678`), or national with `countryCode`.
    /// Decimal digits of any script (full-width `５`, Arabic-Indic `٥`) count as digits;
    /// control characters are refused. Required unless `whatsappUserId` is given
    /// (`BAD_USER_INPUT` otherwise).
    pub phone_number: Option<String>,
    /// An assigned ISO 3166-1 alpha-2 code that libphonenumber has numbering data for (so not
    /// `AC`, `TA` or `XK`), agreeing with the number's calling code. When absent, a new
    /// contact gets the region libphonenumber derives from the number (null when there is
    /// none, or it has no ISO code), and an upsert of a stored number keeps the stored code.
    pub country_code: Option<String>,
    /// String → string map.
    pub metadata: Option<MetadataMap>,
    /// When the contact last messaged us; at most 5 minutes in the future.
    pub last_whatsapp_message_at: Option<Timestamp>,
    /// The business-scoped user id (BSUID) Meta sends for the user, `CC.<1-128 letters and
    /// digits>` (`CC` an ISO 3166-1 alpha-2 code, upper case), e.g. `US.13491208655302741918`.
    /// Unique. `upsertContact` and `importContacts` match by it first, then by phone number;
    /// a BSUID and a number naming two different contacts are `CONFLICT` there (only
    /// `recordWhatsappInbound` merges contacts).
    pub whatsapp_user_id: Option<String>,
    /// The parent BSUID (spanning linked business portfolios), same format.
    pub parent_whatsapp_user_id: Option<String>,
    /// The user's WhatsApp username; trimmed, 1-256 characters. Not a key. A value written
    /// here yields to the next inbound event.
    pub whatsapp_username: Option<String>,
    /// The user's WhatsApp profile name; trimmed, 1-256 characters.
    pub whatsapp_profile_name: Option<String>,
}

impl From<CreateContactInput> for ContactInput {
    fn from(i: CreateContactInput) -> Self {
        Self {
            phone_number: i.phone_number,
            country_code: i.country_code,
            metadata: i.metadata.map(|m| m.0),
            last_whatsapp_message_at: i.last_whatsapp_message_at.map(|t| t.0),
            whatsapp_user_id: i.whatsapp_user_id,
            parent_whatsapp_user_id: i.parent_whatsapp_user_id,
            whatsapp_username: i.whatsapp_username,
            whatsapp_profile_name: i.whatsapp_profile_name,
            messaging: Default::default(),
        }
    }
}

/// Changes to a contact: an absent field is unchanged, an explicit `null` clears it.
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// A new number (international format, or national with `countryCode`). Null removes
    /// the number (and the country code) of a contact that has a `whatsappUserId`; for any
    /// other contact it is `BAD_USER_INPUT`, since every contact keeps an identity.
    pub phone_number: MaybeUndefined<String>,
    /// A new country code (the rule of `CreateContactInput.countryCode`); null clears it.
    /// Derived again when only the number changes.
    pub country_code: MaybeUndefined<String>,
    /// Replaces the whole map; null empties it. See `patchContactMetadata` to merge.
    pub metadata: MaybeUndefined<MetadataMap>,
    /// Sets the window of inbound events that named no business number to this time; null
    /// removes that window. `lastWhatsappMessageAt` is then the latest over all windows, so
    /// windows recorded for business numbers keep theirs.
    pub last_whatsapp_message_at: MaybeUndefined<Timestamp>,
}

fn change<T, U>(value: MaybeUndefined<T>, map: impl FnOnce(T) -> U) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(map(v))),
    }
}

impl From<UpdateContactInput> for ContactChanges {
    fn from(i: UpdateContactInput) -> Self {
        Self {
            phone_number: change(i.phone_number, |v| v),
            country_code: change(i.country_code, |v| v),
            metadata: change(i.metadata, |m| m.0),
            last_whatsapp_message_at: change(i.last_whatsapp_message_at, |t| t.0),
        }
    }
}
