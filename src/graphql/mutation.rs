//! Mutation root: translation only; the rules live in `contacts`.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::{
    contact::Contact,
    inbound::RecordWhatsappInboundInput,
    inputs::{CreateContactInput, UpdateContactInput},
    parse_id, request_now,
    scalars::{MetadataMap, Timestamp},
    service,
};
use crate::contacts::{
    import::ImportReport, input::ContactInput, preferences::MarketingPreferenceInput,
};

pub struct MutationRoot;

/// The contact a mutation wrote.
#[derive(SimpleObject)]
pub struct ContactPayload {
    /// The contact as stored.
    contact: Contact,
}

/// What `deleteContact` removed.
#[derive(SimpleObject)]
pub struct DeleteContactPayload {
    /// The id of the deleted contact.
    deleted_contact_id: ID,
}

/// The contact an upsert wrote, and whether it was new.
#[derive(SimpleObject)]
pub struct UpsertContactPayload {
    /// The contact as stored.
    contact: Contact,
    /// True when the contact did not exist before.
    created: bool,
}

/// A row `importContacts` rejected.
#[derive(SimpleObject)]
pub struct ImportFailure {
    /// Position of the row in `contacts`, from 0.
    index: i32,
    /// The error code, as in `extensions.code`.
    code: String,
    /// Why the row was rejected.
    message: String,
}

/// The outcome of an import.
#[derive(SimpleObject)]
pub struct ImportContactsPayload {
    /// Rows that created a contact.
    created: i32,
    /// Rows that updated an existing contact.
    updated: i32,
    /// Rows equal to the stored contact: nothing written, no event.
    unchanged: i32,
    /// Rows that were rejected; the others were imported.
    failed: Vec<ImportFailure>,
}

impl From<ImportReport> for ImportContactsPayload {
    fn from(r: ImportReport) -> Self {
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let failed = r
            .failed
            .into_iter()
            .map(|f| ImportFailure {
                index: count(f.index),
                code: f.code.to_owned(),
                message: f.message,
            })
            .collect();
        Self {
            created: count(r.created),
            unchanged: count(r.unchanged),
            updated: count(r.updated),
            failed,
        }
    }
}

fn payload(ctx: &Context<'_>, row: entity::contact::Model) -> ContactPayload {
    ContactPayload {
        contact: Contact::new(row, request_now(ctx)),
    }
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a contact; `CONFLICT` if the number exists.
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new contact.")] input: CreateContactInput,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?.create(input.into()).await?;
        Ok(payload(ctx, row))
    }

    /// Changes a contact; `NOT_FOUND` if absent.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to change.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateContactInput,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?
            .update(parse_id(&id, "id")?, input.into())
            .await?;
        Ok(payload(ctx, row))
    }

    /// Deletes a contact; `NOT_FOUND` if absent.
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to delete.")] id: ID,
    ) -> Result<DeleteContactPayload> {
        let deleted = service(ctx)?.delete(parse_id(&id, "id")?).await?;
        Ok(DeleteContactPayload {
            deleted_contact_id: ID(deleted.to_string()),
        })
    }

    /// Creates or updates the contact with this phone number; absent fields keep stored values.
    async fn upsert_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact, found by `phoneNumber`.")] input: CreateContactInput,
    ) -> Result<UpsertContactPayload> {
        let (row, created) = service(ctx)?.upsert(input.into()).await?;
        Ok(UpsertContactPayload {
            contact: Contact::new(row, request_now(ctx)),
            created,
        })
    }

    /// Merges `set` into the metadata and removes `unset` keys, atomically.
    async fn patch_contact_metadata(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact to change.")] id: ID,
        #[graphql(desc = "Keys to add or overwrite.")] set: Option<MetadataMap>,
        #[graphql(desc = "Keys to remove; absent keys are ignored.")] unset: Option<Vec<String>>,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?
            .patch_metadata(parse_id(&id, "id")?, set.map(|m| m.0), unset)
            .await?;
        Ok(payload(ctx, row))
    }

    /// Records an inbound WhatsApp message: creates the contact if needed and moves
    /// `lastWhatsappMessageAt` forward (never backwards).
    async fn record_whatsapp_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The sender, in any format `createContact` accepts.")]
        phone_number: String,
        #[graphql(desc = "Needed when `phoneNumber` is national.")] country_code: Option<String>,
        #[graphql(desc = "When the message arrived; defaults to now; at most 5 minutes ahead.")]
        received_at: Option<Timestamp>,
    ) -> Result<ContactPayload> {
        let at = received_at.map(|t| t.0);
        let row = service(ctx)?
            .record_message(&phone_number, country_code.as_deref(), at)
            .await?;
        Ok(payload(ctx, row))
    }

    /// Records an inbound WhatsApp message or call, as a webhook worker receives it, with or
    /// without the sender's phone number: finds the contact by BSUID then phone number
    /// (creating it when neither finds one), fills in the identity it lacks, merges two
    /// contacts the event shows to be one person, and moves `lastWhatsappMessageAt` forward
    /// only. Retried internally when concurrent events for the same person race.
    /// `recordWhatsappMessage` remains the phone-number-only shorthand.
    async fn record_whatsapp_inbound(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The event.")] input: RecordWhatsappInboundInput,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?.record_inbound(input.into()).await?;
        Ok(payload(ctx, row))
    }

    /// Records that Meta replaced a user's BSUID (it does when the user changes phone
    /// number). The contact holding `previousWhatsappUserId` takes `whatsappUserId`; the old
    /// one is kept in `previousWhatsappUserIds`, so a late webhook carrying it still finds
    /// the contact. Every contact the change names (the holder of either BSUID, current or
    /// replaced, and of `phoneNumber`) is the same person: two or more are merged into the
    /// oldest (`MERGED` events), so a contact already holding the new BSUID is merged.
    /// `phoneNumber`, when given, becomes the contact's number. A user we have never seen
    /// becomes a new contact. Idempotent: a replay, or a change to a BSUID the contact has
    /// since left behind, changes nothing.
    async fn record_whatsapp_user_id_change(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The BSUID Meta replaced.")] previous_whatsapp_user_id: String,
        #[graphql(desc = "The BSUID that replaces it.")] whatsapp_user_id: String,
        #[graphql(
            desc = "The user's phone number, when the webhook carries it (E.164 or \
                          international format)."
        )]
        phone_number: Option<String>,
        #[graphql(desc = "When the change happened; defaults to now; at most 5 minutes \
                          ahead. Recorded as the time the old BSUID was replaced.")]
        at: Option<Timestamp>,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?
            .record_user_id_change(
                &previous_whatsapp_user_id,
                &whatsapp_user_id,
                phone_number.as_deref(),
                at.map(|t| t.0),
            )
            .await?;
        Ok(payload(ctx, row))
    }

    /// Records that the user stopped (`optedOut: true`) or resumed marketing messages, as
    /// Meta's `user_preferences` webhook says, for one business number or (without one) for
    /// all. The contact is found as `recordWhatsappInbound` finds it (BSUID, then phone
    /// number), created if needed; no window opens. The latest choice by `at` wins per
    /// number (an older one delivered late changes nothing); see `Contact.marketingOptedOut`
    /// for how a choice for all numbers and one for a number combine.
    async fn record_marketing_preference(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's number (E.164 or international format).")]
        phone_number: Option<String>,
        #[graphql(desc = "The user's BSUID.")] whatsapp_user_id: Option<String>,
        #[graphql(desc = "Meta's `phone_number_id`; omit for a choice about every number.")]
        business_phone_number_id: Option<String>,
        #[graphql(desc = "True: stop marketing messages; false: resume them.")] opted_out: bool,
        #[graphql(desc = "When the user chose; at most 5 minutes ahead.")] at: Timestamp,
    ) -> Result<ContactPayload> {
        let input = MarketingPreferenceInput {
            phone_number,
            whatsapp_user_id,
            business_phone_number_id,
            opted_out,
            at: at.0,
        };
        let row = service(ctx)?.record_marketing_preference(input).await?;
        Ok(payload(ctx, row))
    }

    /// Records that the business blocked (or unblocked) the user: nothing may be sent to a
    /// blocked contact (`Contact.messaging`). As Meta's block API, blocking needs an open
    /// window: `FAILED_PRECONDITION` when the user has not written or called in the last 24
    /// hours. Unblocking is always allowed; setting the current state changes nothing.
    async fn set_contact_blocked(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact.")] id: ID,
        #[graphql(desc = "True to block, false to unblock.")] blocked: bool,
    ) -> Result<ContactPayload> {
        let row = service(ctx)?
            .set_blocked(parse_id(&id, "id")?, blocked)
            .await?;
        Ok(payload(ctx, row))
    }

    /// Upserts up to 1,000 contacts by phone number; bad rows are reported, not fatal.
    async fn import_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 1,000 contacts.")] contacts: Vec<CreateContactInput>,
    ) -> Result<ImportContactsPayload> {
        let rows: Vec<ContactInput> = contacts.into_iter().map(Into::into).collect();
        Ok(service(ctx)?.import(rows).await?.into())
    }
}
