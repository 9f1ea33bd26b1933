//! Reading a delivery's body only when it may be Meta's. A request without a well-formed
//! `X-Hub-Signature-256` is refused from its head; so is an address past its limit of
//! signature failures. At most [`MAX_UNVERIFIED_BODIES`] bodies are read at once (each up to
//! [`MAX_BODY_BYTES`]), and the HMAC is computed as the bytes stream in, so unsigned or
//! forged uploads cannot hold more than that bound of memory.

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

/// Addresses remembered as refused; past it, the expired ones are dropped.
const MAX_REFUSED_ADDRESSES: usize = 10_000;

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
    /// The body broke off (the client went away, or the request timed out).
    Unreadable,
}

/// The bound on bodies being read, and the addresses refused for signature failures.
pub struct Intake {
    permits: Arc<Semaphore>,
    refused_until: Mutex<HashMap<String, Instant>>,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_UNVERIFIED_BODIES)),
            refused_until: Mutex::new(HashMap::new()),
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
        let _permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)?;
        let mut mac = Streaming::new(secret).ok_or(Refusal::Forged)?;
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
        if !mac.verify(&expected) {
            return Err(Refusal::Forged);
        }
        Ok(Bytes::from(bytes))
    }

    /// Remembers that `address` is refused for `wait`, so its next bodies are not read.
    pub fn refuse(&self, address: &str, wait: Duration) {
        let now = Instant::now();
        let Ok(mut refused) = self.refused_until.lock() else {
            return;
        };
        if refused.len() >= MAX_REFUSED_ADDRESSES {
            refused.retain(|_, until| *until > now);
        }
        refused.insert(address.to_owned(), now + wait);
    }

    fn refused_for(&self, address: &str) -> Option<Duration> {
        let refused = self.refused_until.lock().ok()?;
        let until = *refused.get(address)?;
        until.checked_duration_since(Instant::now())
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
