//! Reading a delivery's body only when it may be Meta's. A request without a well-formed
//! `X-Hub-Signature-256` is refused from its head; so is an address past its limit of
//! signature failures. At most [`MAX_UNVERIFIED_BODIES`] bodies are read at once (each up to
//! [`MAX_BODY_BYTES`]), at most [`MAX_BODIES_PER_ADDRESS`] of them from one address, each
//! within [`BODY_DEADLINE`], and the HMAC is computed as the bytes stream in, so unsigned or
//! forged uploads cannot hold more than that bound of memory, nor all the places.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, header},
};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::signature::{self, Streaming};

/// The largest delivery accepted. Meta documents webhook payloads of up to 3 MB; anything
/// larger is not Meta's and is refused (413) before any of it is read, when its
/// `Content-Length` says so, or as soon as the bytes read pass it.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Bodies read (and not yet verified) at once; beyond, a delivery is 503 at once. Meta's
/// bodies are small and read in milliseconds, so its deliveries seldom hold more than a few;
/// the bound caps what unverified uploads can hold at 16 × 3 MiB.
pub const MAX_UNVERIFIED_BODIES: usize = 16;

/// Bodies one address may have read at once; beyond, 503 for that address only, so a client
/// without the secret cannot hold all [`MAX_UNVERIFIED_BODIES`] places and keep Meta out.
pub const MAX_BODIES_PER_ADDRESS: usize = 4;

/// The time a body has to arrive whole. Meta's bodies are small and sent at once; a slower one
/// is refused (400) and counts toward the address's signature failures.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Addresses remembered as refused; when full (after dropping the expired ones), a further
/// address is not remembered: its bodies are then read and refused by the limit after them.
const MAX_REFUSED_ADDRESSES: usize = 10_000;

/// How often the expired refusals are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Why a body was not read, or not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// No `X-Hub-Signature-256`, or not `sha256=` and 64 hex digits.
    Unsigned,
    /// The address is past its signature failures for this long.
    Limited(Duration),
    /// [`MAX_UNVERIFIED_BODIES`] are being read.
    Busy,
    TooLarge,
    /// The body does not carry the signature.
    Forged,
    /// The body broke off (the client went away).
    Unreadable,
    /// The body did not arrive whole within [`BODY_DEADLINE`].
    TimedOut,
    /// The address already has [`MAX_BODIES_PER_ADDRESS`] bodies being read.
    AddressBusy,
}

impl Refusal {
    /// Whether the refusal counts toward the address's signature failures: every upload that
    /// was not shown to carry Meta's signature (unsigned, forged, abandoned, too large, late).
    pub fn is_unverified(&self) -> bool {
        matches!(
            self,
            Self::Unsigned | Self::Forged | Self::TooLarge | Self::Unreadable | Self::TimedOut
        )
    }
}

/// The bound on bodies being read, and the addresses refused for signature failures.
pub struct Intake {
    permits: Arc<Semaphore>,
    refused: Mutex<Refused>,
    /// Bodies being read per address (an address is removed when it has none).
    reading: Arc<Mutex<HashMap<String, usize>>>,
}

/// The addresses refused until a time, and when the expired ones were last dropped.
struct Refused {
    until: HashMap<String, Instant>,
    swept: Instant,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_UNVERIFIED_BODIES)),
            refused: Mutex::new(Refused {
                until: HashMap::new(),
                swept: Instant::now(),
            }),
            reading: Arc::default(),
        }
    }
}

/// One of an address's places; given back when dropped (also when the handler is cancelled).
struct AddressPlace {
    reading: Arc<Mutex<HashMap<String, usize>>>,
    address: String,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let Ok(mut reading) = self.reading.lock() else {
            return;
        };
        if let Some(count) = reading.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                reading.remove(&self.address);
            }
        }
    }
}

impl Intake {
    /// The body, once it carries its signature under `secret`. `address` is the client's
    /// rate-limit key: one refused for signature failures is refused again before its body.
    pub async fn read_signed(
        &self,
        secret: &[u8],
        headers: &HeaderMap,
        body: Body,
        address: &str,
    ) -> Result<Bytes, Refusal> {
        let header = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
        let expected = signature::parse_header(header).ok_or(Refusal::Unsigned)?;
        if let Some(wait) = self.refused_for(address) {
            return Err(Refusal::Limited(wait));
        }
        let declared = content_length(headers);
        if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
            return Err(Refusal::TooLarge);
        }
        let _place = self.address_place(address)?;
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)?;
        let mut mac = Streaming::new(secret).ok_or(Refusal::Forged)?;
        let read = read_body(body, declared, &mut mac);
        let bytes = tokio::time::timeout(BODY_DEADLINE, read)
            .await
            .map_err(|_| Refusal::TimedOut)??;
        if !mac.verify(&expected) {
            return Err(Refusal::Forged);
        }
        Ok(Bytes::from(bytes))
    }

    /// A place for one more body of `address`, or [`Refusal::AddressBusy`].
    fn address_place(&self, address: &str) -> Result<AddressPlace, Refusal> {
        let mut reading = self.reading.lock().map_err(|_| Refusal::Busy)?;
        let count = reading.entry(address.to_owned()).or_insert(0);
        if *count >= MAX_BODIES_PER_ADDRESS {
            return Err(Refusal::AddressBusy);
        }
        *count += 1;
        Ok(AddressPlace {
            reading: self.reading.clone(),
            address: address.to_owned(),
        })
    }

    /// Remembers that `address` is refused for `wait`, so its next bodies are not read.
    pub fn refuse(&self, address: &str, wait: Duration) {
        let now = Instant::now();
        let Ok(mut refused) = self.refused.lock() else {
            return;
        };
        if refused.until.len() >= MAX_REFUSED_ADDRESSES || now >= refused.swept + SWEEP_EVERY {
            refused.until.retain(|_, until| *until > now);
            refused.swept = now;
        }
        let known = refused.until.contains_key(address);
        if known || refused.until.len() < MAX_REFUSED_ADDRESSES {
            refused.until.insert(address.to_owned(), now + wait);
        }
    }

    fn refused_for(&self, address: &str) -> Option<Duration> {
        let refused = self.refused.lock().ok()?;
        let until = *refused.until.get(address)?;
        until.checked_duration_since(Instant::now())
    }
}

/// The body's bytes, fed to `mac` as they arrive; at most [`MAX_BODY_BYTES`].
async fn read_body(
    body: Body,
    declared: Option<usize>,
    mac: &mut Streaming,
) -> Result<Vec<u8>, Refusal> {
    // Reserved, not touched: memory is taken only as bytes arrive.
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Refusal::Unreadable)?;
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Refusal::TooLarge);
        }
        mac.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
