//! What keeps other sites from driving the tab: the `Host` check (against DNS rebinding), the
//! session cookie and its CSRF token (an HMAC of the session id under a per-process key), the
//! `Origin` check, and the headers every response carries.
//!
//! - **DNS rebinding.** A page on `evil.example` whose name is re-pointed at 127.0.0.1 talks to
//!   this server as a same-origin page of `evil.example`: it can read the page (and its token) and
//!   post forms. Its requests carry `Host: evil.example:PORT`, so a request whose `Host` is neither
//!   the bind address, `localhost` on a loopback bind, nor a configured name is refused.
//! - **CSRF.** The session cookie (`HttpOnly`, `SameSite=Strict`) holds a random session id; the
//!   form token is `HMAC-SHA256(key, session id)` with a key drawn at start and never sent. A
//!   client that sets its own cookie cannot compute the matching token, so a self-chosen
//!   cookie plus a field equal to it is refused. A restart draws a new key: old pages must reload.
//! - **Origin.** When a browser says where a POST comes from, it must be this host; that refusal
//!   has its own message, since reloading does not fix it.

use std::net::{IpAddr, SocketAddr};

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, HOST, ORIGIN, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use sha2::{Digest, Sha256};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "selfmon_session";
/// Name of the CSRF form field.
pub const CSRF_FIELD: &str = "csrf_token";

/// The policy every response carries: only this origin's scripts, styles, images and
/// connections (the SSE stream); no framing; forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Which `Host` header values address this server.
#[derive(Debug, Clone)]
pub struct HostGuard {
    bind: SocketAddr,
    names: Vec<String>,
}

impl HostGuard {
    /// Accepts the bind address itself, `localhost` and loopback literals when bound to loopback
    /// (or to every interface), and `names` (lower-case, any port: a reverse proxy in front may
    /// use its own).
    pub fn new(bind: SocketAddr, names: &[String]) -> Self {
        HostGuard {
            bind,
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header value is meant for this server.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_host_port(host_header) else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.names.contains(&host) {
            return true;
        }
        if port.unwrap_or(80) != self.bind.port() {
            return false;
        }
        let bound = self.bind.ip();
        let local = bound.is_loopback() || bound.is_unspecified();
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            // An address literal cannot be re-pointed by DNS.
            Ok(ip) => ip == bound || bound.is_unspecified() || (local && ip.is_loopback()),
            Err(_) => local && host == "localhost",
        }
    }
}

/// `name[:port]` or `[v6][:port]`; `None` when the port is not a number.
fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (&value[..end + 2], port)
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// The request's `Host` header as text, if it has one.
pub fn host_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(HOST).and_then(|h| h.to_str().ok())
}

/// The per-process key CSRF tokens are computed under.
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A fresh random key (from the OS generator, through `uuid`).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        SessionKey(key)
    }

    /// The CSRF token of a session: hex `HMAC-SHA256(key, "csrf:" + session id)`.
    pub fn token(&self, session_id: &str) -> String {
        hex(&hmac_sha256(
            &self.0,
            format!("csrf:{session_id}").as_bytes(),
        ))
    }

    /// Whether `token` is this session's token (constant time).
    pub fn verify(&self, session_id: &str, token: &str) -> bool {
        constant_time_eq(self.token(session_id).as_bytes(), token.as_bytes())
    }
}

/// HMAC (RFC 2104) over SHA-256, on the `sha2` the workspace already builds.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session id from the cookie, if present and well formed.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The request's session id, and a `Set-Cookie` value when a new session had to be started.
pub fn session(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match session_cookie(headers) {
        Some(id) => (id, None),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
            (id, HeaderValue::from_str(&cookie).ok())
        }
    }
}

/// What the `Origin` header says about a POST.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` (a non-browser client), or this host.
    Ok,
    /// Another site; the header's value.
    Foreign(String),
}

/// Checks `Origin` (when present) against the request's own `Host`. `Origin: null` (privacy
/// settings, sandboxed frames) says nothing either way; the token still decides.
pub fn check_origin(headers: &HeaderMap) -> OriginCheck {
    let Some(origin) = headers.get(ORIGIN).filter(|o| o.as_bytes() != b"null") else {
        return OriginCheck::Ok;
    };
    let origin = origin.to_str().unwrap_or("(not text)");
    let same = host_header(headers).is_some_and(|h| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(h))
    });
    if same {
        OriginCheck::Ok
    } else {
        OriginCheck::Foreign(origin.to_string())
    }
}

/// Adds the security headers to a response (every response goes through this).
pub fn add_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own form posts.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_token_verifies_only_for_its_own_session() {
        let key = SessionKey::random();
        let t = key.token("aaaa");
        assert!(key.verify("aaaa", &t));
        assert!(!key.verify("aaab", &t));
        assert!(!key.verify("aaaa", "aaaa"));
        assert!(!SessionKey::random().verify("aaaa", &t));
    }

    #[test]
    fn host_guard_accepts_the_bind_address_and_named_hosts_only() {
        let loopback: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        let g = HostGuard::new(loopback, &["cidx.example.org".to_string()]);
        for ok in [
            "127.0.0.1:8088",
            "localhost:8088",
            "LOCALHOST:8088",
            "[::1]:8088",
            "cidx.example.org",
            "cidx.example.org:443",
        ] {
            assert!(g.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:8088",
            "evil.example",
            "127.0.0.1:9999",
            "localhost",
            "10.0.0.5:8088",
            "",
            "localhost:notaport",
            "cidx.example.org.evil.example",
        ] {
            assert!(!g.allows(refused), "{refused}");
        }
        let lan: SocketAddr = "10.0.0.5:80".parse().unwrap();
        let g = HostGuard::new(lan, &[]);
        assert!(g.allows("10.0.0.5"));
        assert!(!g.allows("localhost"), "not bound to loopback");
        assert!(!g.allows("127.0.0.1"));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
