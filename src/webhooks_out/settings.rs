//! What `WEBHOOK_URLS` and its companions configure, checked once at start-up.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Url;
use sha2::{Digest, Sha256};

/// The shortest secret accepted: a guessable one lets anyone forge deliveries.
pub const MIN_SECRET_BYTES: usize = 32;

/// How long a worker's lease lasts without renewal. Longer than any request may take
/// (`WEBHOOK_TIMEOUT_SECS` is at most 30), so a live holder always renews in time.
pub const LEASE: Duration = Duration::from_secs(60);

/// One endpoint changes are delivered to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Url,
    /// Hex SHA-256 of the URL: the endpoint's row in `webhook_positions`.
    pub key: String,
    /// `scheme://host:port`, for logs and the stored row (the path may hold a token).
    pub origin: String,
    /// The key's first 12 hex digits: the endpoint's metrics label.
    pub label: String,
}

impl Endpoint {
    /// `raw` as an endpoint: an absolute `http` or `https` URL with a host. Errors name the
    /// entry by its place (`number`, from 1), never by its text: a URL may hold a token.
    pub fn parse(raw: &str, number: usize) -> anyhow::Result<Self> {
        let url = Url::parse(raw.trim())
            .with_context(|| format!("WEBHOOK_URLS: entry {number} is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            bail!(
                "WEBHOOK_URLS: entry {number} ({}:) must be an http:// or https:// URL with a host",
                url.scheme()
            );
        }
        let key = hex::encode(Sha256::digest(url.as_str().as_bytes()));
        Ok(Self {
            origin: url.origin().ascii_serialization(),
            label: key[..12].to_owned(),
            key,
            url,
        })
    }
}

/// Outgoing webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub endpoints: Vec<Endpoint>,
    /// Signs every delivery (`Webhook-Signature`).
    pub secret: String,
    /// Most changes per delivery.
    pub batch_size: u64,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// The first retry waits up to this; each further one up to twice as long…
    pub backoff_base: Duration,
    /// …but never more than this.
    pub backoff_cap: Duration,
    /// How often an idle worker looks for changes no local event announced, and a waiting
    /// one for a lease another instance gave up.
    pub poll: Duration,
    pub lease: Duration,
}

impl WebhookSettings {
    /// Settings with the defaults for everything but the endpoints and the secret; `None`
    /// when no URL is given. Refuses a URL without a secret, a short secret, a bad URL.
    pub fn new(urls: &[String], secret: Option<&str>) -> anyhow::Result<Option<Self>> {
        let mut endpoints: Vec<Endpoint> = Vec::new();
        let entries = urls.iter().filter(|raw| !raw.trim().is_empty());
        for (index, raw) in entries.enumerate() {
            let endpoint = Endpoint::parse(raw, index + 1)?;
            if !endpoints.iter().any(|known| known.key == endpoint.key) {
                endpoints.push(endpoint);
            }
        }
        let secret = secret.map(str::trim).unwrap_or_default();
        if endpoints.is_empty() {
            return Ok(None);
        }
        if secret.is_empty() {
            bail!("WEBHOOK_URLS is set but WEBHOOK_SECRET is not: deliveries must be signed");
        }
        if secret.len() < MIN_SECRET_BYTES {
            bail!("WEBHOOK_SECRET must be at least {MIN_SECRET_BYTES} bytes");
        }
        Ok(Some(Self {
            endpoints,
            secret: secret.to_owned(),
            batch_size: 100,
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            lease: LEASE,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|url| (*url).to_owned()).collect()
    }

    #[test]
    fn urls_need_a_long_enough_secret() {
        assert!(WebhookSettings::new(&[], None).unwrap().is_none());
        let one = urls(&["https://hooks.example.com/in?token=x"]);
        let missing = WebhookSettings::new(&one, None).unwrap_err().to_string();
        assert!(missing.contains("WEBHOOK_SECRET"), "{missing}");
        assert!(WebhookSettings::new(&one, Some("short")).is_err());
        let settings = WebhookSettings::new(&one, Some(SECRET)).unwrap().unwrap();
        assert_eq!(settings.endpoints[0].origin, "https://hooks.example.com");
        assert_eq!(settings.endpoints[0].key.len(), 64);
    }

    #[test]
    fn bad_urls_are_refused_and_duplicates_kept_once() {
        for bad in ["not a url", "ftp://example.com/x", "mailto:a@example.com"] {
            let refused = WebhookSettings::new(&urls(&[bad]), Some(SECRET)).unwrap_err();
            assert!(refused.to_string().contains("WEBHOOK_URLS"), "{refused}");
        }
        let twice = urls(&["http://127.0.0.1:9/a", " http://127.0.0.1:9/a ", ""]);
        let settings = WebhookSettings::new(&twice, Some(SECRET)).unwrap().unwrap();
        assert_eq!(settings.endpoints.len(), 1);
    }
}
