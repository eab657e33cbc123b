//! The Mini App / web shop and the admin page: static files from `assets/web/`, embedded in
//! the binary. Served with an ETag (revalidated on every load, so an upgrade shows at once)
//! and, for the pages, a Content-Security-Policy that allows only this origin (plus
//! Telegram's WebApp script inside Telegram).

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {
        Asset { name: $name, mime: $mime, body: include_bytes!(concat!("../../assets/web/", $name)) }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("shop.js", "text/javascript; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("shop.css", "text/css; charset=utf-8"),
    asset!("admin.html", "text/html; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("admin.css", "text/css; charset=utf-8"),
];

const SHOP_CSP: &str = "default-src 'self'; script-src 'self' https://telegram.org; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'";
const ADMIN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Weak validators: the same content is served gzipped or not.
fn etags() -> &'static Vec<String> {
    static E: OnceLock<Vec<String>> = OnceLock::new();
    E.get_or_init(|| {
        ASSETS.iter().map(|a| format!("W/\"{}\"", hex::encode(&Sha256::digest(a.body)[..8]))).collect()
    })
}

/// `If-None-Match` (a list, or `*`) against an ETag, by weak comparison.
fn none_match(header: Option<&str>, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header.is_some_and(|h| h.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag)))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return super::error::ApiError(crate::Error::not_found("file")).into_response();
    };
    let (a, etag) = (&ASSETS[i], &etags()[i]);
    let mut resp = if none_match(headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()), etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, a.mime)], a.body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if a.name == "index.html" {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SHOP_CSP));
    } else if a.name == "admin.html" {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(ADMIN_CSP));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    resp
}

/// The shop page (`/`, `/app`, `/app/...`: the page routes in the browser).
#[utoipa::path(get, path = "/", tag = "pages", responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 304, description = "Not modified (`If-None-Match`)")))]
pub async fn shop_page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// The admin page (`/admin`).
#[utoipa::path(get, path = "/admin", tag = "pages", responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 304, description = "Not modified (`If-None-Match`)")))]
pub async fn admin_page(headers: HeaderMap) -> Response {
    serve("admin.html", &headers)
}

/// `/assets/{file}`.
#[utoipa::path(get, path = "/assets/{file}", tag = "pages", params(("file" = String, Path, description = "File name")),
    responses((status = 200, description = "A script or style sheet", content(
            (String = "text/javascript"), (String = "text/css"))),
        (status = 304, description = "Not modified (`If-None-Match`)"), (status = 404, description = "No such file")))]
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name.ends_with(".html") {
        return super::error::ApiError(crate::Error::not_found("file")).into_response();
    }
    serve(&name, &headers)
}

#[cfg(test)]
mod tests {
    use super::none_match;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let e = "W/\"abc\"";
        assert!(none_match(Some("W/\"abc\""), e));
        assert!(none_match(Some("\"abc\""), e));
        assert!(none_match(Some("\"x\", W/\"abc\""), e));
        assert!(none_match(Some("*"), e));
        assert!(!none_match(Some("W/\"abd\""), e));
        assert!(!none_match(None, e));
    }
}
