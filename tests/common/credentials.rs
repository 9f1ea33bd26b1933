//! The credentials of the authentication and attack tests: one read and one write API key,
//! and HS256 JWTs signed with a test secret, all accepted by [`authenticator`].

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use contacts_server::auth::{Authenticator, JwtSettings};

use super::{T0, TestApp, at};

pub const READ_KEY: &str = "read-key-0123456789abcdef0123456789abcdef";
pub const WRITE_KEY: &str = "write-key-0123456789abcdef0123456789abcdef";
pub const SECRET: &str = "the HS256 secret used by these tests, 32+ bytes";

/// Accepts [`READ_KEY`], [`WRITE_KEY`] and JWTs signed with [`SECRET`].
pub fn authenticator() -> Authenticator {
    let hashed =
        |key: &str, scope: &str| format!("{}:{scope}", hex::encode(Sha256::digest(key.as_bytes())));
    let jwt = JwtSettings {
        hs256_secret: Some(SECRET.into()),
        issuer: Some("https://issuer.example".into()),
        audience: Some("contacts-api".into()),
        scope_claim: "scope".into(),
        ..Default::default()
    };
    Authenticator::new(&[hashed(READ_KEY, "read"), hashed(WRITE_KEY, "write")], jwt).unwrap()
}

/// A JWT with `scope`, expiring `expires_in` seconds after the test clock's start, signed with
/// `secret` (a wrong one makes a forged token).
pub fn jwt_signed(secret: &str, scope: &str, expires_in: i64) -> String {
    let t0 = at(T0).timestamp();
    let claims = json!({
        "sub": "frontend-user", "iss": "https://issuer.example", "aud": "contacts-api",
        "exp": t0 + expires_in, "scope": scope,
    });
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

/// A server that requires these credentials, configured further by `configure`.
pub async fn secured(
    configure: impl FnOnce(contacts_server::http::AppState) -> contacts_server::http::AppState,
) -> TestApp {
    TestApp::start_configured(|state| configure(state.with_auth(authenticator()))).await
}

/// Every kind of credential a caller may present, for the attack tests' matrices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Credential {
    Nothing,
    WrongKey,
    ReadKey,
    WriteKey,
    ReadJwt,
    WriteJwt,
    ExpiredJwt,
    ForgedJwt,
}

impl Credential {
    pub const ALL: [Self; 8] = [
        Self::Nothing,
        Self::WrongKey,
        Self::ReadKey,
        Self::WriteKey,
        Self::ReadJwt,
        Self::WriteJwt,
        Self::ExpiredJwt,
        Self::ForgedJwt,
    ];

    /// The HTTP header carrying it.
    pub fn header(self) -> Option<(&'static str, String)> {
        let bearer = |token: String| Some(("authorization", format!("Bearer {token}")));
        let forged = "another secret of thirty-two bytes or more!";
        match self {
            Self::Nothing => None,
            Self::WrongKey => Some(("x-api-key", "wrong-key-0123456789abcdef0123456789".into())),
            Self::ReadKey => Some(("x-api-key", READ_KEY.into())),
            Self::WriteKey => Some(("x-api-key", WRITE_KEY.into())),
            Self::ReadJwt => bearer(jwt_signed(SECRET, "read", 3600)),
            Self::WriteJwt => bearer(jwt_signed(SECRET, "read write", 3600)),
            Self::ExpiredJwt => bearer(jwt_signed(SECRET, "read write", -3600)),
            Self::ForgedJwt => bearer(jwt_signed(forged, "read write", 3600)),
        }
    }

    /// The `connection_init` payload carrying it.
    pub fn payload(self) -> Value {
        match self.header() {
            None => json!({}),
            Some(("x-api-key", key)) => json!({ "apiKey": key }),
            Some((_, value)) => json!({ "Authorization": value }),
        }
    }
}
