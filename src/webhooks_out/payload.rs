//! What a delivery carries: the JSON body, its signature and the retry schedule. Pure
//! functions, so the contract receivers rely on is tested here.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use entity::contact;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::contacts::{change_cursor, changelog::LoggedChange};

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The header naming the delivery (the same on every retry of one batch).
pub const ID_HEADER: &str = "webhook-id";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Change<'a> {
    /// The same for a change on every delivery, retry and instance: `change-<position>`.
    idempotency_key: String,
    position: i64,
    /// A `contactChanges(after:)` cursor.
    cursor: String,
    kind: &'static str,
    contact_id: Uuid,
    merged_contact_id: Option<Uuid>,
    contact: Option<Contact<'a>>,
    at: String,
}

/// The contact as the change left it, named as the GraphQL `Contact` names its fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Contact<'a> {
    id: Uuid,
    phone_number: Option<&'a str>,
    country_code: Option<&'a str>,
    last_whatsapp_message_at: Option<String>,
    metadata: &'a serde_json::Value,
    created_at: String,
    updated_at: String,
    whatsapp_user_id: Option<&'a str>,
    parent_whatsapp_user_id: Option<&'a str>,
    whatsapp_username: Option<&'a str>,
    whatsapp_profile_name: Option<&'a str>,
    blocked: bool,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl<'a> From<&'a contact::Model> for Contact<'a> {
    fn from(row: &'a contact::Model) -> Self {
        Self {
            id: row.id,
            phone_number: row.phone_number.as_deref(),
            country_code: row.country_code.as_deref(),
            last_whatsapp_message_at: row.last_whatsapp_message_at.map(time),
            metadata: &row.metadata,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            whatsapp_user_id: row.whatsapp_user_id.as_deref(),
            parent_whatsapp_user_id: row.parent_whatsapp_user_id.as_deref(),
            whatsapp_username: row.whatsapp_username.as_deref(),
            whatsapp_profile_name: row.whatsapp_profile_name.as_deref(),
            blocked: row.blocked,
        }
    }
}

/// The idempotency key of the change at `position`.
pub fn idempotency_key(position: i64) -> String {
    format!("change-{position}")
}

/// Most bytes in a request body, unless its first change alone is bigger (50 keys of 500
/// escaped characters make about 150 KB): receivers' body limits are often 1 MiB (nginx's
/// default) or less, and a batch refused for its size would be retried, and refused, forever.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

fn change_of(logged: &LoggedChange) -> Change<'_> {
    Change {
        idempotency_key: idempotency_key(logged.position),
        position: logged.position,
        cursor: change_cursor::encode(logged.position),
        kind: logged.change.kind.name(),
        contact_id: logged.change.contact_id,
        merged_contact_id: logged.change.merged_contact_id,
        contact: logged.contact.as_ref().map(Contact::from),
        at: time(logged.change.at),
    }
}

/// The JSON body `{"changes": [...]}` delivering the first of `changes` (in log order) that
/// fit in `max_bytes`, at least one; and how many it holds.
pub fn body_within(
    changes: &[LoggedChange],
    max_bytes: usize,
) -> serde_json::Result<(Vec<u8>, usize)> {
    const OPEN: &[u8] = b"{\"changes\":[";
    const CLOSE: &[u8] = b"]}";
    let mut body = OPEN.to_vec();
    let mut taken = 0;
    for logged in changes {
        let change = serde_json::to_vec(&change_of(logged))?;
        let comma = usize::from(taken > 0);
        if taken > 0 && body.len() + comma + change.len() + CLOSE.len() > max_bytes {
            break;
        }
        if taken > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&change);
        taken += 1;
    }
    body.extend_from_slice(CLOSE);
    Ok((body, taken))
}

/// The delivery id of a batch: its first and last positions, so a retry keeps it.
pub fn delivery_id(first: i64, last: i64) -> String {
    format!("changes-{first}-{last}")
}

/// `Webhook-Signature` for `body` sent at unix second `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before retry number `attempt` (0 for the first retry): "full jitter", a random
/// time up to `min(cap, base × 2^attempt)`, so receivers coming back are not hit by every
/// sender at once. `random` maps an upper bound in milliseconds to a value in `0..=bound`.
pub fn backoff(
    base: Duration,
    cap: Duration,
    attempt: u32,
    random: impl FnOnce(u64) -> u64,
) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.min(31)))
        .min(cap);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random(ceiling_ms).min(ceiling_ms).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme() {
        // echo -n '1700000000.{"changes":[]}' | openssl dgst -sha256 -hmac key
        let signed = signature("key", 1_700_000_000, br#"{"changes":[]}"#);
        assert_eq!(
            signed,
            "t=1700000000,v1=64964550fbbf2d03a2a9fd5c80beb1706ff3f052a6d896606fe408ee0a6b72d5"
        );
        assert_ne!(
            signed,
            signature("other", 1_700_000_000, br#"{"changes":[]}"#)
        );
        assert_ne!(
            signed,
            signature("key", 1_700_000_001, br#"{"changes":[]}"#)
        );
    }

    #[test]
    fn backoff_doubles_under_the_cap_with_full_jitter() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        let most = |attempt| backoff(base, cap, attempt, |bound| bound);
        assert_eq!(most(0), Duration::from_millis(100));
        assert_eq!(most(2), Duration::from_millis(400));
        assert_eq!(most(4), cap);
        assert_eq!(most(u32::MAX), cap);
        assert_eq!(backoff(base, cap, 3, |_| 0), Duration::from_millis(1));
        assert!(
            backoff(base, cap, 3, |bound| fastrand::u64(0..=bound)) <= Duration::from_millis(800)
        );
    }
}
