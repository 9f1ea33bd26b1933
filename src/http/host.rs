//! DNS rebinding guard: without credentials, only requests naming this server are served.
//!
//! A web page on `attacker.example` can make its name resolve to 127.0.0.1 and then call a
//! loopback server as its own origin; the browser still sends `Host: attacker.example`. So
//! while no credentials are configured, a request is served only when its `Host` is an IP
//! address (rebinding needs a name), `localhost` or a `*.localhost` name (browsers resolve
//! them to loopback themselves), or a name listed in `ALLOWED_HOSTS`. With credentials
//! configured, any `Host` is served: a foreign page does not have them.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, uri::Authority},
    middleware::Next,
    response::Response,
};

use super::negotiate::{Format, error_response};

/// Which `Host` values are served.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Credentials are configured: every `Host` is served.
    any: bool,
    /// `ALLOWED_HOSTS`, lowercase, without a trailing dot.
    names: Arc<[String]>,
}

impl HostPolicy {
    /// Any host when `authenticated`; otherwise IP literals, localhost and `names`.
    pub fn new(authenticated: bool, names: &[String]) -> Self {
        Self {
            any: authenticated,
            names: names.iter().filter_map(|name| normalise(name)).collect(),
        }
    }

    /// Whether a request whose `Host` is `host` (`None`: not given) is served.
    pub fn allows(&self, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        // Browsers always send `Host`; a request without one is no rebinding attack.
        let Some(host) = host else { return true };
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        let Some(name) = normalise(authority.host()) else {
            return false;
        };
        is_ip_literal(&name) || is_localhost(&name) || self.names.contains(&name)
    }
}

/// Refuses requests whose `Host` the policy does not serve, with 421 Misdirected Request.
pub async fn layer(State(policy): State<HostPolicy>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        // Not text: refused, as an empty name.
        .map(|value| value.to_str().unwrap_or_default())
        .or_else(|| request.uri().authority().map(Authority::as_str));
    if policy.allows(host) {
        return next.run(request).await;
    }
    error_response(
        crate::error::ErrorCode::MisdirectedRequest,
        Format::Json,
        "this server does not answer for that Host; without credentials it answers only for \
         localhost, IP addresses and ALLOWED_HOSTS",
    )
}

fn normalise(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

fn is_ip_literal(name: &str) -> bool {
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => name.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(names: &[&str]) -> HostPolicy {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        HostPolicy::new(false, &names)
    }

    #[test]
    fn without_credentials_only_local_names_addresses_and_listed_hosts() {
        let policy = policy(&["API.Example.com."]);
        for served in [
            "localhost",
            "localhost:8000",
            "LOCALHOST.",
            "app.localhost:3000",
            "127.0.0.1:8000",
            "[::1]:8000",
            "192.168.1.5",
            "api.example.com",
            "api.example.com:443",
        ] {
            assert!(policy.allows(Some(served)), "{served} refused");
        }
        for refused in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "example.com",
            "",
            "a b",
        ] {
            assert!(!policy.allows(Some(refused)), "{refused} served");
        }
        assert!(policy.allows(None));
    }

    #[test]
    fn with_credentials_any_host() {
        assert!(HostPolicy::new(true, &[]).allows(Some("evil.example")));
    }
}
