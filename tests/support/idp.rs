//! A small OAuth 2.0 identity provider for the tests, on a std `TcpListener` thread at
//! 127.0.0.1: the real providers live on the internet, so this is the one simulated party.
//!
//! Endpoints: `GET /authorize` (auto-approves as `login_hint` and redirects with a code),
//! `POST /token` (authorization_code with PKCE S256 check, refresh_token, device_code,
//! client_credentials), `POST /device` (device authorization) and `POST /introspect` (RFC 7662,
//! what Dovecot's `oauth2` passdb asks). Tests steer it: expire access tokens, revoke refresh
//! tokens, change token lifetimes (also the refresh tokens' stated ones), and read how many
//! refreshes it served.
//!
//! App-only identities: `/token` also takes Google's JWT bearer grant of a registered service
//! account and client assertions of a registered client certificate (RFC 7523), checking
//! signature and claims as the real providers do (`tests/support/jwt_check.rs`) and recording
//! what it verified.
//!
//! Device flow: the first poll of a device code answers `authorization_pending`, the second
//! `slow_down`, the third gives tokens (the user "approved" meanwhile).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::jwt_check::{self, Jwt};

pub const CLIENT_ID: &str = "mailgate-test-client";
pub const CLIENT_SECRET: &str = "client-secret-Zq81";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const JWT_BEARER_CLIENT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const GMAIL_SCOPE: &str = "https://mail.google.com/";

#[derive(Default)]
struct State {
    /// code → (user, challenge, redirect_uri)
    codes: HashMap<String, (String, String, String)>,
    /// access token → (user, active)
    access: HashMap<String, (String, bool)>,
    /// refresh token → (user, revoked)
    refresh: HashMap<String, (String, bool)>,
    /// device code → (user, polls so far)
    devices: HashMap<String, (String, u32)>,
    refreshes: usize,
    introspections: usize,
    /// The user of each token introspected, in order (`?` for an unknown token).
    introspected: Vec<String>,
    /// Each token introspected, in order.
    introspected_tokens: Vec<String>,
    expires_in: u64,
    /// Refresh answers carry a new refresh token and revoke the one used (as Microsoft does).
    rotate: bool,
    /// Refresh tokens unused for longer than this are refused (`invalid_grant`), as Microsoft
    /// ends one unused for 90 days; `None`: they never expire.
    refresh_unused_lifetime: Option<std::time::Duration>,
    /// refresh token → when it was issued or last used.
    refresh_used: HashMap<String, std::time::Instant>,
    /// Refresh tokens end this many seconds after they are issued, however often they are
    /// used, and token answers say so (`refresh_token_expires_in`, as Google does for
    /// time-limited grants); `None`: they never end and answers do not say.
    refresh_lifetime: Option<u64>,
    /// refresh token → when it ends (with `refresh_lifetime`).
    refresh_ends: HashMap<String, std::time::Instant>,
    /// `GET /authorize` answers with a consent page whose `#allow` link leads back (the person
    /// clicks it on the provider's site, as at Google or Microsoft) instead of redirecting.
    consent_page: bool,
    /// Run once while the next refresh_token grant is served, before the answer goes out.
    on_refresh: Option<Box<dyn FnOnce() + Send>>,
    next: u64,
    /// Every request (line, form, Authorization header), for assertions on what was sent.
    requests: Vec<String>,
    /// Its own token endpoint: the audience assertions must name.
    token_url: String,
    /// Service accounts: client_email → RSA public key (PKCS#1 DER).
    service_accounts: HashMap<String, Vec<u8>>,
    /// The client's certificates: SHA-1 thumbprint (x5t) → RSA public key.
    client_certs: HashMap<String, Vec<u8>>,
    /// `jti`s of client assertions accepted (each is good once).
    jtis: HashSet<String>,
    /// Every assertion received, as sent.
    assertions: Vec<String>,
    /// JWT bearer grant requests, and the claims of the ones verified.
    jwt_grants: usize,
    grants_verified: Vec<Value>,
    /// Claims of the client assertions verified.
    clients_verified: Vec<Value>,
}

pub struct Idp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The user the device and client-credentials flows act for.
    pub default_user: String,
}

impl Idp {
    pub fn start(default_user: &str) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind idp");
        let addr = listener.local_addr().expect("idp addr");
        let state = Arc::new(Mutex::new(State {
            expires_in: 3600,
            token_url: format!("http://{addr}/token"),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, user) = (state.clone(), stop.clone(), default_user.to_owned());
        let thread = thread::spawn(move || {
            // Ends when `stop` is set (Drop connects once to wake the accept).
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, user) = (st.clone(), user.clone());
                thread::spawn(move || serve(conn, &st, &user));
            }
        });
        Idp {
            addr,
            state,
            stop,
            thread: Some(thread),
            default_user: default_user.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// refresh_token grants served so far (successful or not).
    pub fn refreshes(&self) -> usize {
        self.with(|s| s.refreshes)
    }

    pub fn introspections(&self) -> usize {
        self.with(|s| s.introspections)
    }

    /// Whose tokens were introspected (Dovecot checking a login), in order.
    pub fn introspected_users(&self) -> Vec<String> {
        self.with(|s| s.introspected.clone())
    }

    /// Each token introspected (Dovecot checking a login), in order.
    pub fn introspected_tokens(&self) -> Vec<String> {
        self.with(|s| s.introspected_tokens.clone())
    }

    /// Lifetime (`expires_in`) of access tokens issued from now on.
    pub fn set_expires_in(&self, secs: u64) {
        self.with(|s| s.expires_in = secs);
    }

    /// From now on every refresh rotates the refresh token: the answer has a new one and the
    /// one used is revoked (`invalid_grant` if used again).
    pub fn rotate_refresh_tokens(&self) {
        self.with(|s| s.rotate = true);
    }

    /// Runs `f` while the next refresh is served, after the provider accepted it and before
    /// the client has the answer (to break the client's disk at exactly that moment).
    pub fn on_next_refresh(&self, f: impl FnOnce() + Send + 'static) {
        self.with(|s| s.on_refresh = Some(Box::new(f)));
    }

    /// Every access token becomes inactive (introspection says `active: false`).
    pub fn expire_access_tokens(&self) {
        self.with(|s| s.access.values_mut().for_each(|v| v.1 = false));
    }

    /// Refresh tokens unused for longer than `lifetime` are refused from now on (the test
    /// shortens the lifetime, not the clock).
    pub fn set_refresh_unused_lifetime(&self, lifetime: std::time::Duration) {
        self.with(|s| s.refresh_unused_lifetime = Some(lifetime));
    }

    /// Refresh tokens issued from now on end `secs` after they are issued, and every token
    /// answer states the refresh token's time left (`refresh_token_expires_in`).
    pub fn set_refresh_token_expires_in(&self, secs: u64) {
        self.with(|s| s.refresh_lifetime = Some(secs));
    }

    /// `GET /authorize` shows a consent page with an `#allow` link instead of redirecting.
    pub fn ask_consent(&self) {
        self.with(|s| s.consent_page = true);
    }

    /// Every refresh token is revoked (`invalid_grant` from now on).
    pub fn revoke_refresh_tokens(&self) {
        self.with(|s| s.refresh.values_mut().for_each(|v| v.1 = true));
    }

    /// Issues an access token for `user` directly (no flow), as if it had been granted.
    pub fn issue_access_token(&self, user: &str) -> String {
        self.with(|s| {
            let t = fresh(s, "at");
            s.access.insert(t.clone(), (user.to_owned(), true));
            t
        })
    }

    /// Every token it ever issued (for "never in clear text / never logged" checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.with(|s| {
            s.access
                .keys()
                .chain(s.refresh.keys())
                .chain(s.devices.keys())
                .chain(s.codes.keys())
                .cloned()
                .collect()
        })
    }

    /// A service account whose assertions verify with `public_der` (PKCS#1 RSA public key).
    pub fn register_service_account(&self, client_email: &str, public_der: &[u8]) {
        self.with(|s| {
            s.service_accounts
                .insert(client_email.to_owned(), public_der.to_vec())
        });
    }

    /// A certificate of the client (thumbprint `x5t`, its key `public_der`) whose client
    /// assertions authenticate it.
    pub fn register_client_certificate(&self, x5t: &str, public_der: &[u8]) {
        self.with(|s| s.client_certs.insert(x5t.to_owned(), public_der.to_vec()));
    }

    /// JWT bearer grant requests so far (verified or not).
    pub fn jwt_grants(&self) -> usize {
        self.with(|s| s.jwt_grants)
    }

    /// The claims of every verified service account assertion.
    pub fn verified_grants(&self) -> Vec<Value> {
        self.with(|s| s.grants_verified.clone())
    }

    /// The claims of every verified client assertion.
    pub fn verified_client_assertions(&self) -> Vec<Value> {
        self.with(|s| s.clients_verified.clone())
    }

    /// Every assertion received, as sent (for "never logged" checks).
    pub fn assertions(&self) -> Vec<String> {
        self.with(|s| s.assertions.clone())
    }

    /// Request lines and form fields seen (for assertions on what mailgate sent).
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn json_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn error(code: &str) -> String {
    refuse(code, &format!("test idp says {code}"))
}

/// An OAuth error with the reason in `error_description`.
fn refuse(code: &str, why: &str) -> String {
    json_response(
        "400 Bad Request",
        &format!("{{\"error\":\"{code}\",\"error_description\":\"{why}\"}}"),
    )
}

fn serve(conn: TcpStream, state: &Mutex<State>, default_user: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    let mut authorization = String::new();
    // Header lines, bounded.
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0).min(1 << 20);
        }
        if lower.starts_with("authorization:") {
            authorization = line.trim().to_string();
        }
    }
    let mut body = vec![0u8; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests
        .push(format!("{method} {path} {query} {body} {authorization}"));
    let reply = match (method, path) {
        ("GET", "/authorize") => authorize(&mut st, &form(query)),
        ("POST", "/token") => token(&mut st, &form(&body), default_user),
        ("POST", "/device") => device(&mut st, default_user),
        ("POST", "/introspect") => introspect(&mut st, &form(&body)),
        _ => json_response("404 Not Found", "{}"),
    };
    drop(st);
    let _ = (&conn).write_all(reply.as_bytes());
    let _ = (&conn).flush();
}

fn fresh(st: &mut State, prefix: &str) -> String {
    st.next += 1;
    let random: u64 = rand::random();
    format!("{prefix}-{}-{random:016x}", st.next)
}

fn issue(st: &mut State, user: &str, with_refresh: bool) -> String {
    issue_stating(st, user, with_refresh, None)
}

/// [`issue`], the answer stating `refresh_left` seconds for the refresh token used (when no
/// new one is issued).
fn issue_stating(
    st: &mut State,
    user: &str,
    with_refresh: bool,
    refresh_left: Option<u64>,
) -> String {
    let access = fresh(st, "at");
    st.access.insert(access.clone(), (user.to_owned(), true));
    let mut refresh = if with_refresh {
        let r = fresh(st, "rt");
        st.refresh.insert(r.clone(), (user.to_owned(), false));
        let now = std::time::Instant::now();
        st.refresh_used.insert(r.clone(), now);
        if let Some(secs) = st.refresh_lifetime {
            st.refresh_ends
                .insert(r.clone(), now + Duration::from_secs(secs));
        }
        format!(",\"refresh_token\":\"{r}\"")
    } else {
        String::new()
    };
    let stated = if with_refresh {
        st.refresh_lifetime
    } else {
        refresh_left
    };
    if let Some(secs) = stated {
        refresh.push_str(&format!(",\"refresh_token_expires_in\":{secs}"));
    }
    json_response(
        "200 OK",
        &format!(
            "{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":{}{refresh},\"scope\":\"mail\"}}",
            st.expires_in
        ),
    )
}

fn authorize(st: &mut State, q: &HashMap<String, String>) -> String {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID
        || get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
    {
        return error("invalid_request");
    }
    let code = fresh(st, "code");
    st.codes.insert(
        code.clone(),
        (
            get("login_hint"),
            get("code_challenge"),
            get("redirect_uri"),
        ),
    );
    let location = format!(
        "{}?code={}&state={}",
        get("redirect_uri"),
        pct_encode(&code),
        pct_encode(&get("state"))
    );
    if st.consent_page {
        let href = location.replace('&', "&amp;").replace('"', "&quot;");
        let page = format!(
            "<!doctype html><title>Consent</title><a id=\"allow\" href=\"{href}\">Allow</a>"
        );
        return format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
    }
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

fn token(st: &mut State, f: &HashMap<String, String>, default_user: &str) -> String {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") == JWT_BEARER_GRANT {
        return jwt_grant(st, &get("assertion"));
    }
    let by_assertion = match client_assertion(st, f) {
        Ok(by_assertion) => by_assertion,
        Err(why) => return refuse("invalid_client", why),
    };
    if get("client_id") != CLIENT_ID {
        return error("invalid_client");
    }
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some((user, challenge, redirect)) = st.codes.remove(&get("code")) else {
                return error("invalid_grant");
            };
            let computed = URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA256,
                get("code_verifier").as_bytes(),
            ));
            if computed != challenge || redirect != get("redirect_uri") {
                return error("invalid_grant");
            }
            issue(st, &user, true)
        }
        "refresh_token" => {
            st.refreshes += 1;
            let token = get("refresh_token");
            let now = std::time::Instant::now();
            let expired = match (st.refresh_unused_lifetime, st.refresh_used.get(&token)) {
                (Some(lifetime), Some(used)) => now.duration_since(*used) > lifetime,
                _ => false,
            };
            let ends = st.refresh_ends.get(&token).copied();
            if expired || ends.is_some_and(|end| end <= now) {
                return error("invalid_grant");
            }
            st.refresh_used.insert(token, now);
            match st.refresh.get(&get("refresh_token")).cloned() {
                Some((user, false)) => {
                    if st.rotate {
                        st.refresh
                            .insert(get("refresh_token"), (user.clone(), true));
                    }
                    if let Some(f) = st.on_refresh.take() {
                        f();
                    }
                    let rotate = st.rotate;
                    let left = ends.map(|end| end.duration_since(now).as_secs());
                    issue_stating(st, &user, rotate, left)
                }
                _ => error("invalid_grant"),
            }
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let Some(entry) = st.devices.get_mut(&get("device_code")) else {
                return error("invalid_grant");
            };
            entry.1 += 1;
            match entry.1 {
                1 => error("authorization_pending"),
                2 => error("slow_down"),
                _ => {
                    let user = entry.0.clone();
                    st.devices.remove(&get("device_code"));
                    issue(st, &user, true)
                }
            }
        }
        "client_credentials" => {
            if !by_assertion && get("client_secret") != CLIENT_SECRET {
                return error("invalid_client");
            }
            issue(st, default_user, false)
        }
        _ => error("unsupported_grant_type"),
    }
}

/// A service account's grant (RFC 7523 2.1): signed by a registered service account, for a
/// mailbox (`sub`), the Gmail scope, this endpoint, at most an hour; tokens for `sub`.
fn jwt_grant(st: &mut State, assertion: &str) -> String {
    st.jwt_grants += 1;
    st.assertions.push(assertion.to_owned());
    let checked = Jwt::decode(assertion).and_then(|jwt| {
        let key = st
            .service_accounts
            .get(jwt.claim("iss"))
            .ok_or("iss is not a registered service account")?;
        jwt.verify(key)?;
        let (now, iat, exp) = (jwt_check::now(), jwt.time("iat"), jwt.time("exp"));
        match () {
            _ if jwt.claim("sub").is_empty() => Err("no sub"),
            _ if jwt.claim("scope") != GMAIL_SCOPE => Err("scope is not the Gmail scope"),
            _ if jwt.claim("aud") != st.token_url => Err("aud is not this token endpoint"),
            _ if exp <= now || iat > now + 60 => Err("not valid now"),
            _ if exp.saturating_sub(iat) > 3600 => Err("valid for more than an hour"),
            _ => Ok(jwt),
        }
    });
    match checked {
        Ok(jwt) => {
            st.grants_verified.push(jwt.claims.clone());
            let sub = jwt.claim("sub").to_owned();
            issue(st, &sub, false)
        }
        Err(why) => refuse("invalid_grant", why),
    }
}

/// A client assertion (RFC 7523 2.2), if the form has one: signed with a registered
/// certificate's key found by its thumbprint, for this client and this endpoint, unexpired,
/// its `jti` new. `Ok(false)`: none sent.
fn client_assertion(st: &mut State, f: &HashMap<String, String>) -> Result<bool, &'static str> {
    let Some(kind) = f.get("client_assertion_type") else {
        return Ok(false);
    };
    if kind != JWT_BEARER_CLIENT {
        return Err("unknown client_assertion_type");
    }
    if f.contains_key("client_secret") {
        return Err("both a client secret and an assertion");
    }
    let assertion = f.get("client_assertion").cloned().unwrap_or_default();
    st.assertions.push(assertion.clone());
    let jwt = Jwt::decode(&assertion)?;
    let key = st
        .client_certs
        .get(jwt.header_field("x5t"))
        .ok_or("x5t is not the thumbprint of a registered certificate")?;
    jwt.verify(key)?;
    let now = jwt_check::now();
    match () {
        _ if jwt.claim("iss") != CLIENT_ID || jwt.claim("sub") != CLIENT_ID => {
            Err("iss and sub must be the client id")
        }
        _ if jwt.claim("aud") != st.token_url => Err("aud is not this token endpoint"),
        _ if jwt.time("exp") <= now || jwt.time("nbf") > now + 60 => Err("not valid now"),
        _ if !st.jtis.insert(jwt.claim("jti").to_owned()) || jwt.claim("jti").is_empty() => {
            Err("jti seen before")
        }
        _ => {
            st.clients_verified.push(jwt.claims.clone());
            Ok(true)
        }
    }
}

fn device(st: &mut State, default_user: &str) -> String {
    let code = fresh(st, "dc");
    st.devices
        .insert(code.clone(), (default_user.to_owned(), 0));
    json_response(
        "200 OK",
        &format!(
            "{{\"device_code\":\"{code}\",\"user_code\":\"WDJB-MJHT\",\"verification_uri\":\"http://127.0.0.1/device\",\"expires_in\":120,\"interval\":1}}"
        ),
    )
}

fn introspect(st: &mut State, f: &HashMap<String, String>) -> String {
    st.introspections += 1;
    let token = f.get("token").cloned().unwrap_or_default();
    let user = st.access.get(&token).map_or("?".into(), |(u, _)| u.clone());
    st.introspected.push(user);
    st.introspected_tokens.push(token.clone());
    match st.access.get(&token) {
        Some((user, true)) => json_response(
            "200 OK",
            &format!("{{\"active\":true,\"username\":\"{user}\"}}"),
        ),
        _ => json_response("200 OK", "{\"active\":false}"),
    }
}
