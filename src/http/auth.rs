//! Who is calling the Mini App API.
//!
//! - Inside Telegram: `Authorization: tma <initData>`, checked with HMAC-SHA256 under
//!   `HMAC("WebAppData", bot_token)` (constant-time), or with Telegram's Ed25519 signature for
//!   this bot, and refused when `auth_date` is older than `mini_app_auth_max_age_secs`. A
//!   `tma` header is always checked strictly: it never falls back to anything else.
//! - In a plain browser, only in **demo mode** (the dev payment provider is enabled *and* no
//!   Telegram bot token is configured): a signed `lavka_session` cookie naming a local
//!   customer id, created on first use. Local ids are negative, so they never collide with
//!   Telegram user ids (always positive). Outside demo mode a request without valid
//!   `initData` gets 401. One client address starts at most `demo_sessions_per_ip_hour`
//!   new sessions an hour (429 past it; see [`super::demo`]).

use super::error::ApiError;
use crate::domain::UserId;
use crate::error::Error;
use crate::state::AppState;
use crate::texts::Lang;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie of plain-browser customers (demo mode).
pub const SESSION_COOKIE: &str = "lavka_session";

/// Telegram's Ed25519 public key for third-party `initData` validation (production).
pub const TELEGRAM_PUBLIC_KEY: &str = "e7bf03a2fa4602af4580703d88dda5bb59f32ed8b02a56c187fe7d34caed242d";

/// The customer behind a Mini App request.
#[derive(Clone, Debug, PartialEq)]
pub struct WebUser {
    pub id: UserId,
    pub first_name: Option<String>,
    /// Telegram's `language_code`, when known.
    pub language: Option<String>,
    /// Authenticated by Telegram `initData` (else: a demo-mode browser session).
    pub telegram: bool,
}

impl WebUser {
    pub fn lang(&self, default: Lang) -> Lang {
        Lang::pick(self.language.as_deref(), default)
    }
}

/// The `user` field of `initData`.
#[derive(Clone, Debug, Deserialize)]
pub struct InitUser {
    pub id: i64,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub language_code: Option<String>,
}

/// Validated `initData`.
#[derive(Clone, Debug)]
pub struct InitData {
    pub user: InitUser,
    /// Unix seconds.
    pub auth_date: i64,
}

/// Why `initData` was refused (logged, never shown in detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    BadSignature,
    Expired,
    NoUser,
}

fn pairs(raw: &str) -> Result<Vec<(String, String)>, Refused> {
    if raw.is_empty() || raw.len() > 8192 {
        return Err(Refused::Malformed);
    }
    let v: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let mut keys: Vec<&str> = v.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(Refused::Malformed);
    }
    Ok(v)
}

/// `key=value` lines sorted by key, without the fields in `skip`.
fn data_check_string(pairs: &[(String, String)], skip: &[&str]) -> String {
    let mut kept: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| !skip.contains(&k.as_str())).collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Checks the first-party HMAC (`hash`) of `initData` with the bot token.
pub fn hmac_valid(raw: &str, bot_token: &str) -> Result<bool, Refused> {
    let p = pairs(raw)?;
    let Some(hash) = field(&p, "hash") else { return Ok(false) };
    let Ok(given) = hex::decode(hash) else { return Ok(false) };
    let mut secret = HmacSha256::new_from_slice(b"WebAppData").expect("HMAC takes any key");
    secret.update(bot_token.as_bytes());
    let key = secret.finalize().into_bytes();
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(data_check_string(&p, &["hash"]).as_bytes());
    let want = mac.finalize().into_bytes();
    Ok(given.len() == want.len() && bool::from(want.as_slice().ct_eq(&given)))
}

/// Checks Telegram's Ed25519 `signature` of `initData` for bot `bot_id` (third-party
/// validation: needs no bot token). `public_key` is hex.
pub fn signature_valid(raw: &str, bot_id: u64, public_key: &str) -> Result<bool, Refused> {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let p = pairs(raw)?;
    let Some(sig) = field(&p, "signature") else { return Ok(false) };
    let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')) else {
        return Ok(false);
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else { return Ok(false) };
    let Ok(key) = hex::decode(public_key) else { return Ok(false) };
    let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else { return Ok(false) };
    let Ok(key) = VerifyingKey::from_bytes(&key) else { return Ok(false) };
    let msg = format!("{bot_id}:WebAppData\n{}", data_check_string(&p, &["hash", "signature"]));
    Ok(key.verify(msg.as_bytes(), &Signature::from_bytes(&sig)).is_ok())
}

/// Validates `initData` for the bot with `bot_token` at `now` (unix seconds): a valid HMAC or
/// Ed25519 signature, `auth_date` within `max_age_secs` (and not from the future beyond a
/// small clock skew), and a user.
pub fn validate(raw: &str, bot_token: &str, now: i64, max_age_secs: u64) -> Result<InitData, Refused> {
    let p = pairs(raw)?;
    let signed = hmac_valid(raw, bot_token)?
        || bot_token
            .split_once(':')
            .and_then(|(id, _)| id.parse::<u64>().ok())
            .is_some_and(|id| signature_valid(raw, id, TELEGRAM_PUBLIC_KEY).unwrap_or(false));
    if !signed {
        return Err(Refused::BadSignature);
    }
    let auth_date: i64 = field(&p, "auth_date").and_then(|d| d.parse().ok()).ok_or(Refused::Malformed)?;
    const SKEW: i64 = 300;
    if auth_date > now + SKEW || now.saturating_sub(auth_date) > max_age_secs as i64 {
        return Err(Refused::Expired);
    }
    let user: InitUser =
        field(&p, "user").and_then(|u| serde_json::from_str(u).ok()).ok_or(Refused::NoUser)?;
    if user.id <= 0 {
        return Err(Refused::NoUser);
    }
    Ok(InitData { user, auth_date })
}

/// Plain-browser sessions are allowed: the dev payment provider is on and there is no bot.
pub fn demo_mode(s: &AppState) -> bool {
    s.payments.dev_enabled() && s.config.telegram().is_none()
}

fn session_key(s: &AppState) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(s.admin_token.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(b"lavka web sessions v1");
    mac.finalize().into_bytes().to_vec()
}

fn session_mac(key: &[u8], id: UserId) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(id.to_string().as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The cookie value of session `id`: `<id>.<mac>`.
pub fn session_value(s: &AppState, id: UserId) -> String {
    format!("{id}.{}", session_mac(&session_key(s), id))
}

fn session_from_cookie(s: &AppState, headers: &HeaderMap) -> Option<UserId> {
    let key = session_key(s);
    for h in headers.get_all(header::COOKIE) {
        let Ok(h) = h.to_str() else { continue };
        for c in h.split(';') {
            let Some((name, value)) = c.trim().split_once('=') else { continue };
            if name != SESSION_COOKIE {
                continue;
            }
            let Some((id, mac)) = value.split_once('.') else { continue };
            let Ok(id) = id.parse::<UserId>() else { continue };
            let want = session_mac(&key, id);
            if id < 0 && want.len() == mac.len() && bool::from(want.as_bytes().ct_eq(mac.as_bytes())) {
                return Some(id);
            }
        }
    }
    None
}

/// The credentials of an `Authorization` header of `scheme` (schemes are case-insensitive,
/// RFC 9110 §11.1: `Bearer`, `bearer`, `TMA` all count).
pub fn credentials<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.trim_start().split_once(char::is_whitespace)?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim()).filter(|c| !c.is_empty())
}

/// Why a request gets no customer.
enum Refusal {
    Error(Error),
    /// This client started its share of demo sessions this hour.
    TooManySessions,
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

/// The result of identifying a request: the user, and a cookie to set for a new session.
fn identify(
    s: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> Result<(WebUser, Option<String>), Refusal> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(raw) = credentials(auth, "tma") {
        let Some(token) = s.config.telegram() else {
            tracing::debug!("initData sent, but no bot token is configured to check it");
            return Err(Error::Unauthorized.into());
        };
        let now = s.store.now() / 1000;
        return match validate(raw.trim(), token.expose(), now, s.config.mini_app_auth_max_age_secs) {
            Ok(d) => Ok((
                WebUser {
                    id: d.user.id,
                    first_name: d.user.first_name,
                    language: d.user.language_code,
                    telegram: true,
                },
                None,
            )),
            Err(why) => {
                metrics::counter!("lavka_miniapp_unauthorized_total", "reason" => format!("{why:?}"))
                    .increment(1);
                tracing::debug!(reason = ?why, "initData refused");
                Err(Error::Unauthorized.into())
            }
        };
    }
    if !demo_mode(s) {
        metrics::counter!("lavka_miniapp_unauthorized_total", "reason" => "Missing").increment(1);
        return Err(Error::Unauthorized.into());
    }
    if let Some(id) = session_from_cookie(s, headers) {
        return Ok((WebUser { id, first_name: None, language: None, telegram: false }, None));
    }
    // A new customer per cookie-less request: without a bound, one client could become
    // any number of customers and hold the whole stock.
    if !s.demo_sessions.allow(client, s.store.now()) {
        metrics::counter!("lavka_demo_sessions_refused_total").increment(1);
        return Err(Refusal::TooManySessions);
    }
    // A new local customer: a random negative id well inside JavaScript's exact integers.
    let id = -fastrand::i64(1..(1i64 << 50));
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000",
        session_value(s, id)
    );
    Ok((WebUser { id, first_name: None, language: None, telegram: false }, Some(cookie)))
}

/// Middleware of the customer API: puts the [`WebUser`] into the request's extensions, or
/// answers 401.
pub async fn require_user(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let client = super::demo::client_addr(peer, req.headers());
    match identify(&s, req.headers(), client) {
        Ok((user, cookie)) => {
            req.extensions_mut().insert(user);
            let mut resp = next.run(req).await;
            if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(Refusal::Error(e)) => ApiError(e).into_response(),
        Err(Refusal::TooManySessions) => {
            let mut r = super::error::error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                "too many new sessions from this address; try again later",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_schemes_are_case_insensitive() {
        assert_eq!(credentials("Bearer abc", "bearer"), Some("abc"));
        assert_eq!(credentials("bearer abc", "Bearer"), Some("abc"));
        assert_eq!(credentials("TMA  query_id=1", "tma"), Some("query_id=1"));
        assert_eq!(credentials("Basic abc", "bearer"), None);
        assert_eq!(credentials("Bearer", "bearer"), None);
        assert_eq!(credentials("Bearerabc", "bearer"), None);
    }

    /// The vector from the external-API reference (freshness not checked).
    const TOKEN: &str = "123456:TEST-token";
    const VECTOR: &str = "auth_date=1733584787&query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Test%22%7D&hash=e5f1206b27ddb80dc684b760405b5ac2f0dd16f9934a8718753160165d19953c";

    #[test]
    fn the_reference_vector_is_valid_and_any_change_breaks_it() {
        assert_eq!(hmac_valid(VECTOR, TOKEN), Ok(true));
        let d = validate(VECTOR, TOKEN, 1733584787 + 10, 3600).unwrap();
        assert_eq!(d.user.id, 279058397);
        assert_eq!(hmac_valid(VECTOR, "123456:other"), Ok(false));
        let forged = VECTOR.replace("279058397", "279058398");
        assert_eq!(hmac_valid(&forged, TOKEN), Ok(false));
        assert_eq!(validate(&forged, TOKEN, 1733584787, 3600).unwrap_err(), Refused::BadSignature);
        assert_eq!(validate(VECTOR, TOKEN, 1733584787 + 3601, 3600).unwrap_err(), Refused::Expired);
        assert_eq!(validate(VECTOR, TOKEN, 1733584787 - 3600, 3600).unwrap_err(), Refused::Expired);
        let no_hash = VECTOR.split("&hash=").next().unwrap();
        assert_eq!(validate(no_hash, TOKEN, 1733584787, 3600).unwrap_err(), Refused::BadSignature);
        let twice = format!("{VECTOR}&auth_date=1");
        assert_eq!(validate(&twice, TOKEN, 1733584787, 3600).unwrap_err(), Refused::Malformed);
        assert_eq!(validate("", TOKEN, 0, 3600).unwrap_err(), Refused::Malformed);
    }

    /// The public third-party vector (init-data-rs, bot 7342037359, production key).
    const THIRD_PARTY: &str = "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private&auth_date=1733584787&hash=2174df5b000556d044f3f020384e879c8efcab55ddea2ced4eb752e93e7080d6&signature=zL-ucjNyREiHDE8aihFwpfR9aggP2xiAo3NSpfe-p7IbCisNlDKlo7Kb6G4D0Ao2mBrSgEk4maLSdv6MLIlADQ";

    #[test]
    fn telegrams_ed25519_signature_is_checked() {
        assert_eq!(signature_valid(THIRD_PARTY, 7342037359, TELEGRAM_PUBLIC_KEY), Ok(true));
        assert_eq!(signature_valid(THIRD_PARTY, 7342037358, TELEGRAM_PUBLIC_KEY), Ok(false));
        let forged = THIRD_PARTY.replace("vdkfrost", "vdkfrosT");
        assert_eq!(signature_valid(&forged, 7342037359, TELEGRAM_PUBLIC_KEY), Ok(false));
        // Accepted by `validate` for that bot even without its token's HMAC.
        let d = validate(THIRD_PARTY, "7342037359:unknown", 1733584787, 60).unwrap();
        assert_eq!(d.user.language_code.as_deref(), Some("ru"));
        assert!(validate(THIRD_PARTY, "7342037358:unknown", 1733584787, 60).is_err());
    }
}
