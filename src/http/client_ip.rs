//! The caller's address, for rate limits and logs: the socket peer, or, when the peer is a
//! listed reverse proxy (`TRUSTED_PROXIES`), the address that proxy chain forwarded.
//!
//! Forwarding headers are read right to left, as the proxies appended to them: the first
//! address that is not itself a trusted proxy is the client. Whatever lies left of it was
//! written by the client and is ignored, so a caller cannot choose its own address.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, request::Parts},
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

/// The address a request is attributed to; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Which header the trusted proxies write. One only: a proxy passes the other through as
/// the client sent it, so reading both would let the client choose its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`
    Forwarded,
}

/// The reverse proxies whose forwarding header is believed; none by default.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies from `entries` (addresses or CIDR networks) writing `header`
    /// (`x-forwarded-for` or `forwarded`).
    pub fn parse(entries: &[String], header: &str) -> anyhow::Result<Self> {
        let networks = entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| anyhow::anyhow!("bad trusted proxy {entry:?}: not an IP or CIDR"))
            })
            .collect::<anyhow::Result<_>>()?;
        let header = match header.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            other => anyhow::bail!("bad trusted proxy header {other:?}"),
        };
        Ok(Self { networks, header })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        for hop in hops.iter().rev() {
            // A trusted proxy wrote something unreadable: the last address known is all
            // there is.
            let Some(ip) = hop else { return client };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// Sets [`ClientIp`] on every request (wraps the whole router).
pub async fn layer(
    State(proxies): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>();
    if let Some(ConnectInfo(peer)) = peer {
        let ip = proxies.client_ip(peer.ip(), request.headers());
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return Ok(*ip);
        }
        // Outside the layer (a router served without it): the peer itself.
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Self(peer.ip().to_canonical()))
    }
}

/// Every `X-Forwarded-For` entry, left to right, across repeated headers; `None` where an
/// entry is not an address.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(value) => value.split(',').map(node).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Every `Forwarded` element's `for=` address, left to right; `None` where it has none or
/// it is not an address (`unknown`, an obfuscated `_name`).
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| match value.to_str() {
            // A quote left open swallows whatever follows it, the proxies' own entries
            // included: such a value is unreadable as a whole.
            Ok(value) => match split_unquoted(value, ',') {
                Some(elements) => elements.into_iter().map(forwarded_for).collect(),
                None => vec![None],
            },
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` address of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    split_unquoted(element, ';')?.into_iter().find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| node(value))?
    })
}

/// `text` split at `separator`s outside double quotes (RFC 9110 quoted strings, with `\`
/// escapes); `None` when a quote is left open.
fn split_unquoted(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    (!quoted).then_some(parts)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:80`, possibly quoted.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok.then(|| ip.parse().ok()).flatten();
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    let (ip, port) = text.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(entries: &[&str], header: &str) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        TrustedProxies::parse(&entries, header).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("198.51.100.1"), &xff), ip("198.51.100.1"));
        let some = proxies(&["10.0.0.0/8"], "x-forwarded-for");
        assert_eq!(some.client_ip(ip("198.51.100.1"), &xff), ip("198.51.100.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"], "x-forwarded-for");
        // The client wrote "1.1.1.1" itself; 203.0.113.7 is what the first proxy saw.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 192.0.2.1")]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &chain), ip("203.0.113.7"));
        // Repeated headers are one list, in order.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.7"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &split), ip("203.0.113.7"));
        // Every hop a trusted proxy: the farthest one.
        let inside = headers(&[("x-forwarded-for", "10.0.0.5, 192.0.2.1")]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &inside), ip("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_ip(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn a_malformed_hop_stops_the_walk_at_the_last_known_address() {
        let trusted = proxies(&["10.0.0.0/8"], "x-forwarded-for");
        let garbage = headers(&[("x-forwarded-for", "203.0.113.7, not-an-ip")]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &garbage), ip("10.1.2.3"));
        let behind = headers(&[("x-forwarded-for", "10.0.0.9, 300.1.1.1, 10.0.0.5")]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &behind), ip("10.0.0.5"));
        // Garbage left of the client is the client's own and changes nothing.
        let left = headers(&[("x-forwarded-for", "junk, 203.0.113.7")]);
        assert_eq!(trusted.client_ip(ip("10.1.2.3"), &left), ip("203.0.113.7"));
    }

    #[test]
    fn ipv6_peers_hops_and_mapped_addresses() {
        let trusted = proxies(&["2001:db8::/32", "127.0.0.1"], "x-forwarded-for");
        let v6 = headers(&[("x-forwarded-for", "2a00:1450::1, [2001:db8::5]:443")]);
        assert_eq!(
            trusted.client_ip(ip("2001:db8::1"), &v6),
            ip("2a00:1450::1")
        );
        // A dual-stack socket reports IPv4 peers as mapped IPv6 addresses.
        let v4 = headers(&[("x-forwarded-for", "203.0.113.7:5555")]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), &v4),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn forwarded_for_with_quotes_ports_and_other_parameters() {
        let trusted = proxies(&["10.0.0.0/8"], "forwarded");
        let value =
            r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https;by="a,b", for=10.0.0.2"#;
        let forwarded = headers(&[("forwarded", value)]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.1"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        // A client's unclosed quote must not swallow the proxy's own entry after it.
        let open = headers(&[("forwarded", r#"for=7.7.7.7;x="y, for=1.1.1.1"#)]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &open), ip("10.0.0.1"));
        let escaped = headers(&[("forwarded", r#"for=7.7.7.7;x="a\"b", for=1.1.1.1"#)]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &escaped), ip("1.1.1.1"));
        let unknown = headers(&[("forwarded", "for=203.0.113.7, for=unknown")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &unknown), ip("10.0.0.1"));
        // The other header is the client's own when the proxies write `Forwarded`.
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &xff), ip("10.0.0.1"));
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), " ::1 ".into()], "forwarded").is_ok());
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()], "forwarded").is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()], "forwarded").is_err());
        assert!(TrustedProxies::parse(&[], "x-real-ip").is_err());
    }
}
