//! Credentials: API keys for services (stored as SHA-256 hashes, compared in constant time)
//! and JWTs for frontends (HS256 secret, or RS256/ES256 public key). Both carry a scope.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a credential allows: `Read` runs queries and subscriptions, `Write` also mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// Who is calling. `id` names the caller in rate limits and logs, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub scope: Scope,
    /// When the credential stops being valid (a JWT's `exp`); API keys do not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Id of everyone, when the server has no credentials configured.
    pub const ANONYMOUS: &str = "anonymous";

    /// Everyone, when the server has no credentials configured (loopback only by default).
    pub fn anonymous() -> Self {
        Self {
            id: Self::ANONYMOUS.to_owned(),
            scope: Scope::Write,
            expires_at: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.id == Self::ANONYMOUS
    }
}

/// Why credentials were refused. Deliberately vague towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// None were sent, while the server requires them.
    Missing,
    /// Malformed, unknown, expired, not yet valid, or for another audience or issuer.
    Invalid,
}

struct ApiKey {
    sha256: [u8; 32],
    scope: Scope,
    id: String,
}

struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    scope_claim: String,
}

/// How JWTs are checked.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    pub hs256_secret: Option<String>,
    pub public_key_pem: Option<Vec<u8>>,
    /// `RS256` or `ES256`, for `public_key_pem`.
    pub algorithm: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub scope_claim: String,
}

/// Checks credentials; empty (no keys, no JWT) means the server runs unauthenticated.
#[derive(Default)]
pub struct Authenticator {
    api_keys: Vec<ApiKey>,
    jwt: Option<JwtVerifier>,
}

/// Tolerated clock skew between the token's signer and this server, for `exp` and `nbf`: a
/// token is refused from `exp + 30 s` on, and accepted from `nbf - 30 s` (SECURITY.md).
pub const JWT_LEEWAY_SECS: i64 = 30;

impl Authenticator {
    /// `api_keys` entries are `SHA256HEX:scope`.
    pub fn new(api_keys: &[String], jwt: JwtSettings) -> anyhow::Result<Self> {
        let api_keys = api_keys
            .iter()
            .map(|entry| parse_api_key(entry))
            .collect::<anyhow::Result<_>>()?;
        let jwt = jwt_verifier(jwt)?;
        Ok(Self { api_keys, jwt })
    }

    /// True when credentials are configured, so every API request must carry one.
    pub fn is_enabled(&self) -> bool {
        !self.api_keys.is_empty() || self.jwt.is_some()
    }

    /// Checks a presented token: a JWT (three dot-separated parts) or an API key.
    pub fn authenticate(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, AuthError> {
        if self.jwt.is_some() && token.split('.').count() == 3 {
            return self.verify_jwt(token, now);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every stored hash is compared, in constant time, so timing tells nothing.
        let mut found = None;
        for key in &self.api_keys {
            if bool::from(key.sha256.ct_eq(&digest)) {
                found = Some(Principal {
                    id: key.id.clone(),
                    scope: key.scope,
                    expires_at: None,
                });
            }
        }
        found.ok_or(AuthError::Invalid)
    }

    fn verify_jwt(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, AuthError> {
        let verifier = self.jwt.as_ref().ok_or(AuthError::Invalid)?;
        let claims = jsonwebtoken::decode::<Value>(token, &verifier.key, &verifier.validation)
            .map_err(|_| AuthError::Invalid)?
            .claims;
        // Times are checked against the service clock, like everything else time-based.
        let now = now.timestamp();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(AuthError::Invalid)?;
        if now >= exp + JWT_LEEWAY_SECS {
            return Err(AuthError::Invalid);
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| now + JWT_LEEWAY_SECS < nbf)
        {
            return Err(AuthError::Invalid);
        }
        let scope = scope_of(claims.get(&verifier.scope_claim)).ok_or(AuthError::Invalid)?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("anonymous");
        Ok(Principal {
            id: format!("jwt:{subject}"),
            scope,
            expires_at: DateTime::from_timestamp(exp + JWT_LEEWAY_SECS, 0),
        })
    }
}

/// The highest scope named by the claim: a space-separated string or an array of strings.
fn scope_of(claim: Option<&Value>) -> Option<Scope> {
    let names: Vec<&str> = match claim? {
        Value::String(text) => text.split_whitespace().collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    names.into_iter().filter_map(Scope::parse).max()
}

fn parse_api_key(entry: &str) -> anyhow::Result<ApiKey> {
    let (hash, scope) = entry
        .trim()
        .split_once(':')
        .context("an API key is SHA256HEX:read or SHA256HEX:write")?;
    let bytes = hex::decode(hash.trim()).context("an API key hash is 64 hex digits")?;
    let sha256: [u8; 32] = bytes
        .try_into()
        .ok()
        .context("an API key hash is 64 hex digits")?;
    let scope = Scope::parse(scope.trim()).context("an API key scope is read or write")?;
    // The first 8 hex digits identify the key in logs and rate limits without revealing it.
    Ok(ApiKey {
        sha256,
        scope,
        id: format!("key:{}", &hash.trim()[..8]),
    })
}

fn jwt_verifier(settings: JwtSettings) -> anyhow::Result<Option<JwtVerifier>> {
    let (key, algorithm) = match (&settings.hs256_secret, &settings.public_key_pem) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            bail!("configure either a JWT HS256 secret or a public key, not both")
        }
        (Some(secret), None) => {
            if secret.len() < 32 {
                bail!("the JWT HS256 secret must be at least 32 bytes");
            }
            (
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            )
        }
        (None, Some(pem)) => match settings.algorithm.as_deref().unwrap_or("RS256") {
            "RS256" => (
                DecodingKey::from_rsa_pem(pem).context("reading the RS256 public key")?,
                Algorithm::RS256,
            ),
            "ES256" => (
                DecodingKey::from_ec_pem(pem).context("reading the ES256 public key")?,
                Algorithm::ES256,
            ),
            other => bail!("unsupported JWT algorithm {other}; use RS256 or ES256"),
        },
    };
    let mut validation = Validation::new(algorithm);
    // exp and nbf are checked against the service clock in `verify_jwt`.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    // jsonwebtoken checks `iss` and `aud` only when the token carries them, so a configured
    // issuer or audience must also be listed as required: configured means required.
    let mut required = vec!["exp"];
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    Ok(Some(JwtVerifier {
        key,
        validation,
        scope_claim: settings.scope_claim,
    }))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "an HS256 secret of at least thirty-two bytes";

    fn key_entry(key: &str, scope: &str) -> String {
        format!("{}:{scope}", hex::encode(Sha256::digest(key.as_bytes())))
    }

    fn jwt_auth() -> Authenticator {
        let settings = JwtSettings {
            hs256_secret: Some(SECRET.into()),
            issuer: Some("issuer".into()),
            audience: Some("contacts".into()),
            scope_claim: "scope".into(),
            ..Default::default()
        };
        Authenticator::new(&[], settings).unwrap()
    }

    fn token(claims: Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn api_keys_match_by_hash_with_their_scope() {
        let auth = Authenticator::new(
            &[key_entry("r-key", "read"), key_entry("w-key", "write")],
            JwtSettings::default(),
        )
        .unwrap();
        assert!(auth.is_enabled());
        assert_eq!(
            auth.authenticate("r-key", Utc::now()).unwrap().scope,
            Scope::Read
        );
        assert_eq!(
            auth.authenticate("w-key", Utc::now()).unwrap().scope,
            Scope::Write
        );
        assert_eq!(
            auth.authenticate("other", Utc::now()),
            Err(AuthError::Invalid)
        );
        assert!(
            !auth
                .authenticate("w-key", Utc::now())
                .unwrap()
                .id
                .contains("w-key")
        );
    }

    #[test]
    fn bad_api_key_entries_are_refused_at_start_up() {
        for entry in ["nocolon", "abcd:read", &key_entry("k", "admin")] {
            assert!(
                Authenticator::new(&[entry.to_owned()], JwtSettings::default()).is_err(),
                "{entry}"
            );
        }
    }

    #[test]
    fn jwt_claims_are_checked_against_the_given_now() {
        let auth = jwt_auth();
        let now = Utc::now();
        let at = now.timestamp();
        let good = json!({ "sub": "ana", "iss": "issuer", "aud": "contacts", "exp": at + 600, "scope": "read write" });
        assert_eq!(
            auth.authenticate(&token(good.clone()), now).unwrap(),
            Principal {
                id: "jwt:ana".into(),
                scope: Scope::Write,
                expires_at: DateTime::from_timestamp(at + 600 + JWT_LEEWAY_SECS, 0),
            }
        );
        let cases = [
            json!({ "iss": "issuer", "aud": "contacts", "exp": at - 600, "scope": "read" }),
            json!({ "iss": "issuer", "aud": "contacts", "exp": at + 600, "nbf": at + 600, "scope": "read" }),
            json!({ "iss": "issuer", "aud": "other", "exp": at + 600, "scope": "read" }),
            json!({ "iss": "someone", "aud": "contacts", "exp": at + 600, "scope": "read" }),
            json!({ "iss": "issuer", "aud": "contacts", "scope": "read" }),
            json!({ "iss": "issuer", "aud": "contacts", "exp": at + 600, "scope": "admin" }),
        ];
        for claims in cases {
            assert_eq!(
                auth.authenticate(&token(claims.clone()), now),
                Err(AuthError::Invalid),
                "{claims}"
            );
        }
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"another secret, also thirty-two bytes"),
        )
        .unwrap();
        assert_eq!(auth.authenticate(&forged, now), Err(AuthError::Invalid));
    }

    #[test]
    fn configured_issuer_and_audience_are_required() {
        let auth = jwt_auth();
        let now = Utc::now();
        let exp = now.timestamp() + 600;
        let refused = [
            json!({ "aud": "contacts", "exp": exp, "scope": "write" }),
            json!({ "iss": "issuer", "exp": exp, "scope": "write" }),
            json!({ "exp": exp, "scope": "write" }),
            json!({ "iss": "someone", "aud": "other", "exp": exp, "scope": "write" }),
            // A claim of the wrong type is not there at all.
            json!({ "iss": 7, "aud": "contacts", "exp": exp, "scope": "write" }),
            json!({ "iss": "issuer", "aud": 7, "exp": exp, "scope": "write" }),
        ];
        for claims in refused {
            assert_eq!(
                auth.authenticate(&token(claims.clone()), now),
                Err(AuthError::Invalid),
                "{claims}"
            );
        }
        let both = json!({ "iss": "issuer", "aud": ["contacts"], "exp": exp, "scope": "write" });
        assert_eq!(
            auth.authenticate(&token(both), now).unwrap().scope,
            Scope::Write
        );
    }

    #[test]
    fn without_issuer_or_audience_settings_neither_claim_is_needed() {
        let settings = JwtSettings {
            hs256_secret: Some(SECRET.into()),
            scope_claim: "scope".into(),
            ..Default::default()
        };
        let auth = Authenticator::new(&[], settings).unwrap();
        let now = Utc::now();
        let claims = json!({ "exp": now.timestamp() + 600, "scope": "read" });
        assert_eq!(
            auth.authenticate(&token(claims), now).unwrap().scope,
            Scope::Read
        );
        let no_exp = json!({ "scope": "read" });
        assert_eq!(
            auth.authenticate(&token(no_exp), now),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn exp_and_nbf_allow_exactly_the_documented_leeway() {
        let auth = jwt_auth();
        let now = Utc::now();
        let at = now.timestamp();
        let claims = |exp: i64, nbf: i64| {
            token(
                json!({ "iss": "issuer", "aud": "contacts", "exp": exp, "nbf": nbf, "scope": "read" }),
            )
        };
        let leeway = JWT_LEEWAY_SECS;
        assert!(auth.authenticate(&claims(at - leeway + 1, at), now).is_ok());
        assert!(auth.authenticate(&claims(at - leeway, at), now).is_err());
        assert!(
            auth.authenticate(&claims(at + 600, at + leeway), now)
                .is_ok()
        );
        assert!(
            auth.authenticate(&claims(at + 600, at + leeway + 1), now)
                .is_err()
        );
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        let settings = JwtSettings {
            hs256_secret: Some("short".into()),
            ..Default::default()
        };
        assert!(Authenticator::new(&[], settings).is_err());
    }
}
