//! Inbound WhatsApp events (a message or a call) from a webhook worker: the sender is found
//! by BSUID, then phone number; the missing identity is filled in; two contacts the event
//! proves to be one person are merged; the window and the names move forward only.

use chrono::{DateTime, Utc};
use entity::contact::{ActiveModel, Model};
use sea_orm::{ActiveModelTrait, DatabaseTransaction, IntoActiveModel};
use uuid::Uuid;

use super::{
    bsuid::{WhatsappFields, WhatsappIds},
    clock::to_storage_precision,
    identity,
    input::{self, NewContact},
    merge,
    phone::{self, ParsedPhone, PhoneFields},
    service::{ContactService, change, merged},
    windows,
    writes::{contact_row, touched},
};
use crate::{
    error::{AppError, AppResult},
    events::{ChangeKind, ContactChange},
};

/// What reached the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboundKind {
    #[default]
    Message,
    Call,
}

/// `RecordWhatsappInboundInput` as sent.
#[derive(Debug, Clone, Default)]
pub struct InboundInput {
    pub phone_number: Option<String>,
    pub country_code: Option<String>,
    pub whatsapp_user_id: Option<String>,
    pub parent_whatsapp_user_id: Option<String>,
    pub username: Option<String>,
    pub profile_name: Option<String>,
    pub kind: InboundKind,
    pub received_at: Option<DateTime<Utc>>,
    pub business_phone_number_id: Option<String>,
}

/// A validated event: who, when, on which business number, and whether it opens the window
/// (a message or a call does; a marketing preference only finds or creates the contact).
#[derive(Debug, Clone)]
pub(crate) struct InboundEvent {
    phone: Option<ParsedPhone>,
    whatsapp: WhatsappIds,
    at: DateTime<Utc>,
    /// The window's key: the business number, or [`windows::UNNAMED`].
    business_number: String,
    opens_window: bool,
}

impl InboundEvent {
    pub(crate) fn parse(input: InboundInput, now: DateTime<Utc>) -> AppResult<Self> {
        let whatsapp = WhatsappIds::parse(
            [
                input.whatsapp_user_id,
                input.parent_whatsapp_user_id,
                input.username,
                input.profile_name,
            ],
            &WhatsappFields {
                user_id: "input.whatsappUserId".into(),
                parent_user_id: "input.parentWhatsappUserId".into(),
                username: "input.username".into(),
                profile_name: "input.profileName".into(),
            },
        )?;
        let fields = PhoneFields {
            phone_number: "input.phoneNumber",
            country_code: "input.countryCode",
        };
        let phone = match (&input.phone_number, &input.country_code) {
            (Some(raw), country) => Some(phone::parse_phone(raw, country.as_deref(), fields)?),
            (None, Some(_)) => {
                return Err(AppError::validation(
                    "input.countryCode",
                    "countryCode needs a phoneNumber",
                ));
            }
            (None, None) => None,
        };
        if phone.is_none() && whatsapp.user_id.is_none() {
            return Err(AppError::validation(
                "input.phoneNumber",
                "an inbound event needs a phoneNumber, a whatsappUserId or both",
            ));
        }
        let business_number = input
            .business_phone_number_id
            .map(|id| windows::parse_business_number(&id, "input.businessPhoneNumberId"))
            .transpose()?
            .unwrap_or_default();
        let at = match input.received_at {
            Some(at) => input::message_time(at, now, "input.receivedAt")?,
            None => to_storage_precision(now),
        };
        Ok(Self {
            phone,
            whatsapp,
            at,
            business_number,
            opens_window: true,
        })
    }

    /// An event that only names the user (found or created as a message would find them)
    /// and opens no window.
    pub(crate) fn identifying(
        phone: Option<ParsedPhone>,
        user_id: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            phone,
            whatsapp: WhatsappIds {
                user_id,
                ..WhatsappIds::default()
            },
            at,
            business_number: windows::UNNAMED.to_owned(),
            opens_window: false,
        }
    }
}

impl ContactService {
    /// Records an inbound message or call (both open and refresh the window), in one
    /// transaction, retried when a concurrent writer of the same person wins a race.
    pub async fn record_inbound(&self, input: InboundInput) -> AppResult<Model> {
        let now = self.now();
        let event = InboundEvent::parse(input, now)?;
        identity::retrying_write_races(|| self.record_inbound_once(&event, now)).await
    }

    async fn record_inbound_once(
        &self,
        event: &InboundEvent,
        now: DateTime<Utc>,
    ) -> AppResult<Model> {
        let txn = self.begin_write().await?;
        let mut changes = Vec::new();
        let row = self.apply_inbound(&txn, event, now, &mut changes).await?;
        self.commit_announcing(txn, &changes).await?;
        Ok(row)
    }

    /// The work of one event inside the caller's transaction: the contact found (merging two
    /// the event joins) or created, completed, and its window moved; the changes to announce
    /// are pushed onto `changes`.
    pub(crate) async fn apply_inbound(
        &self,
        txn: &DatabaseTransaction,
        event: &InboundEvent,
        now: DateTime<Utc>,
        changes: &mut Vec<ContactChange>,
    ) -> AppResult<Model> {
        let announced = changes.len();
        let e164 = event.phone.as_ref().map(|p| p.e164.as_str());
        let found = identity::find(txn, event.whatsapp.user_id.as_deref(), e164).await?;
        let current = match (found.by_user_id, found.by_phone) {
            (Some(a), Some(b)) if a.id != b.id => {
                let (survivor, absorbed) = merge::survivor_first(a, b);
                changes.push(merged(survivor.id, absorbed.id, now));
                let original = survivor.clone();
                let combined = merge::absorb(txn, survivor, absorbed, now).await?;
                let combined = merge::take_current_identities(
                    txn,
                    combined,
                    event.whatsapp.user_id.as_deref(),
                    event.phone.as_ref(),
                    now,
                )
                .await?;
                Some((original, combined))
            }
            (Some(a), _) | (None, Some(a)) => Some((a.clone(), a)),
            (None, None) => None,
        };
        let mut row = match current {
            Some((stored, combined)) => {
                let wanted = applied(combined, event, now);
                if wanted == stored {
                    stored
                } else {
                    if changes.len() == announced {
                        changes.push(change(ChangeKind::Updated, wanted.id, now));
                    }
                    wanted.into_active_model().reset_all().update(txn).await?
                }
            }
            None => {
                let row = created(event, now).insert(txn).await?;
                changes.push(change(ChangeKind::Created, row.id, now));
                row
            }
        };
        let moved = event.opens_window
            && windows::advance(txn, row.id, &event.business_number, event.at).await?;
        // A later message on one number than its window had, but not the latest overall:
        // only the window changed, and that is a change of the contact.
        if moved && changes.len() == announced {
            row = touched(txn, row.id, now).await?;
            changes.push(change(ChangeKind::Updated, row.id, now));
        }
        Ok(row)
    }
}

/// A new contact from the event.
fn created(event: &InboundEvent, now: DateTime<Utc>) -> ActiveModel {
    let contact = NewContact {
        phone: event.phone.clone(),
        whatsapp: event.whatsapp.clone(),
        metadata: None,
        last_whatsapp_message_at: event.opens_window.then_some(event.at),
        messaging: Default::default(),
    };
    let row = contact_row(&contact, Uuid::now_v7(), now, now);
    Model {
        whatsapp_identity_seen_at: event.opens_window.then_some(event.at),
        ..row
    }
    .into_active_model()
    .reset_all()
}

/// `row` after the event: missing identities filled in, the message time and the names
/// moved forward only. `updated_at` changes only when something else does.
fn applied(row: Model, event: &InboundEvent, now: DateTime<Utc>) -> Model {
    let mut next = row.clone();
    if next.phone_number.is_none()
        && let Some(phone) = &event.phone
    {
        next.phone_number = Some(phone.e164.clone());
        next.country_code = phone.country_code.clone();
    }
    if next.whatsapp_user_id.is_none() {
        next.whatsapp_user_id = event.whatsapp.user_id.clone();
    }
    if event.opens_window {
        next.last_whatsapp_message_at = next.last_whatsapp_message_at.max(Some(event.at));
    }
    // An event that only identifies the user carries no names, so it leaves them and their
    // time alone.
    let names_current = event.opens_window
        && next
            .whatsapp_identity_seen_at
            .is_none_or(|seen| event.at >= seen);
    if names_current {
        let ids = &event.whatsapp;
        let keep =
            |given: &Option<String>, stored: &Option<String>| given.clone().or(stored.clone());
        next.parent_whatsapp_user_id = keep(&ids.parent_user_id, &next.parent_whatsapp_user_id);
        next.whatsapp_username = keep(&ids.username, &next.whatsapp_username);
        next.whatsapp_profile_name = keep(&ids.profile_name, &next.whatsapp_profile_name);
        next.whatsapp_identity_seen_at = Some(event.at);
    }
    if next != row {
        next.updated_at = now;
    }
    next
}
