//! Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw request body,
//! keyed with the app secret. Checked before the body is parsed, in constant time (the
//! `hmac` crate compares MACs with `subtle`), so a forger learns nothing from timing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `header` (the `X-Hub-Signature-256` value, if any) signs `body` with `secret`.
pub fn is_valid(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> bool {
    let Some(hex_mac) = header.and_then(|value| value.strip_prefix(b"sha256=")) else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac.trim_ascii()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The MAC a well-formed header carries: `sha256=` and 64 hex digits. Anything else cannot
/// be a signature, so such a request is refused from its head, before its body is read.
pub fn parse_header(header: Option<&[u8]>) -> Option<[u8; 32]> {
    let hex_mac = header?.strip_prefix(b"sha256=")?.trim_ascii();
    let mut mac = [0u8; 32];
    hex::decode_to_slice(hex_mac, &mut mac).ok()?;
    Some(mac)
}

/// An HMAC-SHA256 computed as the body streams in, so a body is never hashed in a second pass.
pub struct Streaming(Hmac<Sha256>);

impl Streaming {
    /// `None` only for a key HMAC refuses, which it never does (any length is a key).
    pub fn new(secret: &[u8]) -> Option<Self> {
        Hmac::<Sha256>::new_from_slice(secret).ok().map(Self)
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// Whether the bytes seen carry `expected`, compared in constant time.
    pub fn verify(self, expected: &[u8; 32]) -> bool {
        self.0.verify_slice(expected).is_ok()
    }
}

/// The header value Meta would send for `body` (for tests and load tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; an empty MAC would never verify.
    let digest = Hmac::<Sha256>::new_from_slice(secret)
        .map(|mut mac| {
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        })
        .unwrap_or_default();
    format!("sha256={}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_mac_of_these_bytes_with_this_secret() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign(b"secret", body);
        assert!(is_valid(b"secret", Some(header.as_bytes()), body));
        assert!(!is_valid(b"other", Some(header.as_bytes()), body));
        assert!(!is_valid(b"secret", Some(header.as_bytes()), b"{}"));
        assert!(!is_valid(b"secret", None, body));
        let bare = header.trim_start_matches("sha256=");
        assert!(!is_valid(b"secret", Some(bare.as_bytes()), body));
        assert!(!is_valid(b"secret", Some(b"sha256=zz"), body));
        let short = &header[..header.len() - 2];
        assert!(!is_valid(b"secret", Some(short.as_bytes()), body));
    }

    #[test]
    fn a_header_is_well_formed_only_with_a_full_hex_mac() {
        let header = sign(b"secret", b"body");
        let mac = parse_header(Some(header.as_bytes())).expect("well formed");
        let mut streaming = Streaming::new(b"secret").expect("key");
        streaming.update(b"bo");
        streaming.update(b"dy");
        assert!(streaming.verify(&mac));
        assert!(parse_header(None).is_none());
        assert!(parse_header(Some(b"sha256=zz")).is_none());
        assert!(parse_header(Some(&header.as_bytes()[..header.len() - 2])).is_none());
        assert!(parse_header(Some(header.trim_start_matches("sha256=").as_bytes())).is_none());
    }

    #[test]
    fn matches_a_known_vector() {
        // RFC 4231 test case 2 (key "Jefe").
        let header = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            header,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
