//! The messaging-policy objects of a contact (`WhatsappWindow`, `MessagingPolicy`) and the
//! loader that reads their rows once for a whole page of contacts.

use std::{collections::HashMap, sync::Arc};

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use entity::{marketing_preference, whatsapp_window};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::scalars::Timestamp;
use crate::{
    contacts::{ContactService, policy, window, windows},
    error::AppResult,
};

/// The 24-hour window between one business number and the contact.
#[derive(SimpleObject)]
pub struct WhatsappWindow {
    /// Meta's `phone_number_id` of the business number; null for inbound events that named
    /// none (and for `lastWhatsappMessageAt` written by hand).
    business_phone_number_id: Option<String>,
    /// The latest inbound message or call on this number.
    last_inbound_at: Timestamp,
    /// True until exactly 24 hours after `lastInboundAt`.
    open: bool,
    /// `lastInboundAt + 24h`.
    expires_at: Timestamp,
}

impl WhatsappWindow {
    pub fn of(row: &entity::whatsapp_window::Model, now: DateTime<Utc>) -> Self {
        Self {
            business_phone_number_id: windows::public(&row.business_phone_number_id)
                .map(str::to_owned),
            last_inbound_at: Timestamp(row.last_inbound_at),
            open: window::is_open(Some(row.last_inbound_at), now),
            expires_at: Timestamp(row.last_inbound_at + window::WINDOW),
        }
    }
}

/// What may be sent to the contact now (from the same clock as the window).
#[derive(SimpleObject)]
pub struct MessagingPolicy {
    /// A free-form message: needs an open window and no block.
    free_form: bool,
    /// A template message: needs no block.
    template: bool,
    /// A marketing template: needs no block and no marketing opt-out.
    marketing_template: bool,
    /// Every rule that said no: `WINDOW_CLOSED`, `BLOCKED`, `MARKETING_OPT_OUT`.
    reasons: Vec<String>,
}

impl From<policy::MessagingPolicy> for MessagingPolicy {
    fn from(p: policy::MessagingPolicy) -> Self {
        Self {
            free_form: p.free_form,
            template: p.template,
            marketing_template: p.marketing_template,
            reasons: p.reasons.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}

/// The windows and marketing choices of the contacts one response shows together (a page,
/// or one contact), each kind read on first use for all of them: one query per page and
/// kind instead of one per contact, and none for a kind no field asked for.
#[derive(Default)]
pub struct MessagingLoader {
    ids: Vec<Uuid>,
    windows: OnceCell<HashMap<Uuid, Vec<whatsapp_window::Model>>>,
    preferences: OnceCell<HashMap<Uuid, Vec<marketing_preference::Model>>>,
}

impl MessagingLoader {
    pub fn for_contacts(ids: Vec<Uuid>) -> Arc<Self> {
        Arc::new(Self {
            ids,
            ..Self::default()
        })
    }

    /// The windows of `id` (one of the loader's contacts), newest first.
    pub async fn windows_of(
        &self,
        service: &ContactService,
        id: Uuid,
    ) -> AppResult<&[whatsapp_window::Model]> {
        let all = self
            .windows
            .get_or_try_init(|| service.windows_of(&self.ids))
            .await?;
        Ok(all.get(&id).map_or(&[], Vec::as_slice))
    }

    /// The marketing choices of `id` (one of the loader's contacts).
    pub async fn preferences_of(
        &self,
        service: &ContactService,
        id: Uuid,
    ) -> AppResult<&[marketing_preference::Model]> {
        let all = self
            .preferences
            .get_or_try_init(|| service.preferences_of(&self.ids))
            .await?;
        Ok(all.get(&id).map_or(&[], Vec::as_slice))
    }
}
