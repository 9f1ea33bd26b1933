//! `RecordWhatsappInboundInput` and `WhatsappInboundKind`, translated into the domain's
//! inbound event.

use async_graphql::{Enum, InputObject};

use super::scalars::Timestamp;
use crate::contacts::inbound::{InboundInput, InboundKind};

/// What reached the business. Both open and refresh the 24-hour window (Meta: a user's
/// message or call does), so both move `lastWhatsappMessageAt`, which is the time of the
/// last inbound event of either kind.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum WhatsappInboundKind {
    /// A message.
    #[default]
    Message,
    /// A voice or video call from the user.
    Call,
}

/// One inbound webhook event. Give `phoneNumber`, `whatsappUserId` or both
/// (`BAD_USER_INPUT` on `phoneNumber` when neither).
///
/// The contact is found by `whatsappUserId` (current, or replaced by an identity change),
/// then by `phoneNumber`, and created when neither finds one. Found by one identity and
/// carrying the other, the contact gains the one it lacks; a stored phone number or BSUID is
/// never overwritten by an event (a BSUID found with a number that belongs to no one keeps
/// its stored number; `updateContact` and `recordWhatsappUserIdChange` change identities).
/// When the BSUID and the number name two different contacts they are merged into the older
/// (`MERGED` event; see `ContactEvent.mergedContactId`), which then holds the two identities
/// this event names, the user's current ones: a BSUID it held before stays findable among
/// `previousWhatsappUserIds`; a phone number it held before is released (a contact has one).
#[derive(InputObject, Default)]
pub struct RecordWhatsappInboundInput {
    /// The sender's number, in any format `createContact` accepts; Meta leaves it out for
    /// users who hide it behind a username.
    pub phone_number: Option<String>,
    /// Needed when `phoneNumber` is national; only with `phoneNumber`.
    pub country_code: Option<String>,
    /// The sender's BSUID (`CC.<1-128 letters and digits>`).
    pub whatsapp_user_id: Option<String>,
    /// The sender's parent BSUID, when Meta sends one; recorded like the names.
    pub parent_whatsapp_user_id: Option<String>,
    /// The sender's username. Updated only by an event at least as recent as the one that
    /// last set the names (late deliveries never roll it back).
    pub username: Option<String>,
    /// The sender's profile name; the same rule as `username`.
    pub profile_name: Option<String>,
    /// A message (default) or a call.
    #[graphql(default)]
    pub kind: WhatsappInboundKind,
    /// When the event happened; defaults to now; at most 5 minutes ahead.
    /// `lastWhatsappMessageAt` becomes the later of it and the stored value.
    pub received_at: Option<Timestamp>,
    /// Meta's `phone_number_id` of the business number that was reached (ASCII digits, at
    /// most 32): the event opens or refreshes the window of that number
    /// (`Contact.whatsappWindows`); without one, the window of events that named none.
    pub business_phone_number_id: Option<String>,
}

impl From<RecordWhatsappInboundInput> for InboundInput {
    fn from(i: RecordWhatsappInboundInput) -> Self {
        Self {
            phone_number: i.phone_number,
            country_code: i.country_code,
            whatsapp_user_id: i.whatsapp_user_id,
            parent_whatsapp_user_id: i.parent_whatsapp_user_id,
            username: i.username,
            profile_name: i.profile_name,
            kind: match i.kind {
                WhatsappInboundKind::Message => InboundKind::Message,
                WhatsappInboundKind::Call => InboundKind::Call,
            },
            received_at: i.received_at.map(|t| t.0),
            business_phone_number_id: i.business_phone_number_id,
        }
    }
}
