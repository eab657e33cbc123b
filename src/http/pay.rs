//! Customer payment pages and provider webhooks.
//!
//! - `GET /pay/{order}?t=` — the order's payment page: amount, status, the enabled ways to pay.
//! - `GET /pay/{order}/cryptopay?t=` — creates (once) the Crypto Pay invoice, redirects to it.
//! - `GET /pay/dev/{order}?t=`, `POST /pay/dev/{order}?t=` — the dev provider (404 when
//!   disabled or without the order's link token).
//! - `POST /payments/cryptopay/webhook` — signature over the raw body first (401, nothing
//!   changed), then the invoice is applied idempotently; a paid invoice that cannot be
//!   applied is recorded as unmatched (admins alerted) and answered 200.

use super::error::ApiResult;
use crate::domain::{Money, Order, OrderId, OrderStatus};
use crate::error::Error;
use crate::payments::Applied;
use crate::payments::cryptopay::Invoice;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct Token {
    #[serde(default)]
    t: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str, refresh: bool) -> Html<String> {
    let meta = if refresh { r#"<meta http-equiv="refresh" content="5">"# } else { "" };
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">{meta}<title>{t}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}}
.card{{border:1px solid #ddd;border-radius:12px;padding:1rem 1.2rem}} .amount{{font-size:1.6rem;font-weight:600}}
a.btn,button{{display:block;width:100%;box-sizing:border-box;text-align:center;margin:.6rem 0;padding:.8rem;border-radius:10px;border:0;background:#2a7ae2;color:#fff;font-size:1rem;text-decoration:none;cursor:pointer}}
.muted{{color:#777;font-size:.9rem}} .ok{{color:#1a7f37;font-weight:600}}</style></head><body>{body}</body></html>"#,
        t = esc(title)
    ))
}

fn status_text(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Reserved | OrderStatus::AwaitingPayment => "Ожидает оплаты · awaiting payment",
        OrderStatus::Paid | OrderStatus::Ready => {
            "Оплачен, товар отправлен в чат · paid, the item is sent to your chat"
        }
        OrderStatus::Prepaid => "Оплачен, ждём поставщика · paid, waiting for the supplier",
        OrderStatus::Delivered => "Оплачен и выдан · paid and delivered",
        OrderStatus::Expired => "Срок оплаты истёк · expired",
        OrderStatus::Refunded => "Возвращён на баланс · refunded to balance",
    }
}

fn summary(o: &Order) -> String {
    format!(
        r#"<div class="card"><div class="muted">#{}</div><h2>{}</h2><div class="amount">{}</div><p class="{}">{}</p></div>"#,
        o.id,
        esc(&o.title),
        Money::new(o.amount, o.currency),
        if o.status.is_pending_payment() { "muted" } else { "ok" },
        status_text(o.status)
    )
}

/// The order of a signed payment link; a wrong token looks like a missing order.
async fn linked_order(s: &AppState, id: OrderId, token: &str) -> Result<Order, Error> {
    if !s.payments.check_token(id, token) {
        return Err(Error::not_found(format!("order {id}")));
    }
    s.store.order(id).await
}

/// The payment page of one order.
#[utoipa::path(get, path = "/pay/{order}", tag = "payments", params(("order" = u64, Path, description = "Order number"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 200, description = "The payment page", content_type = "text/html", body = String),
        (status = 404, description = "No such order, or a wrong token")))]
pub async fn pay_page(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    let o = linked_order(&s, id, &q.t).await?;
    let mut body = summary(&o);
    if o.status.is_pending_payment() {
        if s.payments.cryptopay().is_some() {
            body.push_str(&format!(r#"<a class="btn" href="/pay/{id}/cryptopay?t={}">Оплатить криптовалютой · Pay with crypto (CryptoBot)</a>"#, esc(&q.t)));
        }
        if s.payments.dev_enabled() {
            body.push_str(&format!(
                r#"<a class="btn" href="/pay/dev/{id}?t={}">Оплатить (демо) · Pay (demo)</a>"#,
                esc(&q.t)
            ));
        }
        body.push_str(
            r#"<p class="muted">Страница обновится после оплаты · this page updates after payment.</p>"#,
        );
    }
    Ok(page(s.payments.shop_name(), &body, o.status.is_pending_payment()).into_response())
}

/// Creates (once) the order's Crypto Pay invoice and sends the customer there.
#[utoipa::path(get, path = "/pay/{order}/cryptopay", tag = "payments", params(("order" = u64, Path, description = "Order number"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 303, description = "To the order's Crypto Pay invoice"),
        (status = 404, description = "No such order, a wrong token, or Crypto Pay is off"),
        (status = 409, description = "Not awaiting payment"), (status = 503, description = "Crypto Pay does not answer")))]
pub async fn pay_cryptopay(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    let o = linked_order(&s, id, &q.t).await?;
    let url = s.payments.cryptopay_url(&o).await?;
    Ok(Redirect::to(&url).into_response())
}

/// The dev provider's page: the order and a Pay button.
#[utoipa::path(get, path = "/pay/dev/{order}", tag = "payments", params(("order" = u64, Path, description = "Order number"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 200, description = "The dev provider's page", content_type = "text/html", body = String),
        (status = 404, description = "No such order, a wrong token, or dev payments are off")))]
pub async fn dev_page(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    if !s.payments.dev_enabled() {
        return Err(Error::not_found("dev payments").into());
    }
    // Like every payment page, it needs the order's link token: no order is shown to, or
    // paid by, someone who merely counts order numbers.
    let o = linked_order(&s, id, &q.t).await?;
    let mut body = format!(
        r#"<p class="muted">Демо-оплата: денег не списывается · demo payment, no money moves.</p>{}"#,
        summary(&o)
    );
    if o.status.is_pending_payment() {
        body.push_str(&format!(r#"<form method="post" action="/pay/dev/{id}?t={}"><button type="submit">Оплатить · Pay {}</button></form>"#, esc(&q.t), Money::new(o.amount, o.currency)));
    }
    Ok(page("Pay (demo)", &body, false).into_response())
}

/// The dev provider marks the order paid (idempotent).
#[utoipa::path(post, path = "/pay/dev/{order}", tag = "payments", params(("order" = u64, Path, description = "Order number"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 200, description = "Paid (a page; JSON with `Accept: application/json`)", content(
            (String = "text/html"), (Object = "application/json"))),
        (status = 404, description = "No such order, a wrong token, or dev payments are off"),
        (status = 409, description = "The order cannot take a payment")))]
pub async fn dev_pay(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    Query(q): Query<Token>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !s.payments.dev_enabled() {
        return Err(Error::not_found("dev payments").into());
    }
    linked_order(&s, id, &q.t).await?;
    let r = s.payments.pay_dev(id).await?;
    let wants_json =
        headers.get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Ok(
            Json(json!({"order": r.order, "outcome": r.outcome, "duplicate": r.duplicate})).into_response()
        );
    }
    Ok(page("Paid", &format!(r#"{}<p class="ok">Спасибо! · Thank you!</p>"#, summary(&r.order)), false)
        .into_response())
}

/// Crypto Pay's webhook.
#[utoipa::path(post, path = "/payments/cryptopay/webhook", tag = "payments", security(("cryptoPaySignature" = [])),
    request_body(content = Object, description = "A Crypto Pay update", content_type = "application/json"),
    responses((status = 200, description = "Applied (or a repeat, or not a payment)", body = Object),
        (status = 400, description = "Not a Crypto Pay update"), (status = 401, description = "A bad signature"),
        (status = 404, description = "Crypto Pay is off, or no such order"), (status = 409, description = "The order cannot take it")))]
pub async fn cryptopay_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(cp) = s.payments.cryptopay() else {
        return Err(Error::not_found("Crypto Pay payments").into());
    };
    let sig = headers.get("crypto-pay-api-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !cp.verify(&body, sig) {
        metrics::counter!("lavka_webhook_rejected_total", "provider" => "cryptopay", "reason" => "signature")
            .increment(1);
        tracing::warn!("Crypto Pay webhook with a bad signature refused");
        return Ok((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "unauthorized", "message": "bad signature"}})),
        )
            .into_response());
    }
    // Signed: Crypto Pay sent it and has taken the money. From here on a paid invoice is
    // applied or recorded as unmatched and answered 200 — a refusal would only make Crypto
    // Pay retry for days and the money stay unseen. Only a body that is not an update at
    // all is refused.
    let update: crate::payments::cryptopay::Update = serde_json::from_slice(&body).map_err(|e| {
        tracing::warn!(error = %e, "a signed Crypto Pay webhook that is not an update");
        Error::bad(format!("malformed Crypto Pay update: {e}"))
    })?;
    if update.update_type != "invoice_paid" {
        return Ok(Json(json!({"ok": true, "ignored": update.update_type})).into_response());
    }
    let applied = match serde_json::from_value::<Invoice>(update.payload.clone()) {
        Ok(inv) if inv.status != "paid" => {
            return Ok(Json(json!({"ok": true, "ignored": inv.status})).into_response());
        }
        Ok(inv) => s.payments.apply_cryptopay(&inv, &update.payload).await,
        Err(e) => {
            s.payments.cryptopay_unreadable(&update.payload, &body, format!("unreadable invoice: {e}")).await
        }
    };
    // What is left is our own failure (storage): 5xx, and Crypto Pay retries.
    let r = applied.inspect_err(|e| {
        metrics::counter!("lavka_webhook_rejected_total", "provider" => "cryptopay", "reason" => e.code()).increment(1);
    })?;
    let answer = match &r {
        Applied::Order(p) => {
            json!({"ok": true, "order": p.order.id, "outcome": p.outcome, "duplicate": p.duplicate})
        }
        Applied::Topup(t) => {
            json!({"ok": true, "topup_user": t.topup.user_id, "balance": t.balance, "duplicate": t.duplicate})
        }
        Applied::Unmatched(u) => {
            json!({"ok": true, "unmatched": true, "reason": u.unmatched.reason, "duplicate": u.duplicate})
        }
    };
    Ok(Json(answer).into_response())
}

/// The path of a top-up link: user, amount (minor units), nonce.
#[derive(Deserialize)]
pub struct TopupPath {
    user: i64,
    amount: i64,
    nonce: String,
}

fn check_topup(s: &AppState, p: &TopupPath, t: &str) -> Result<crate::domain::Currency, Error> {
    if p.amount <= 0 || p.nonce.len() > 64 || !s.payments.check_topup_token(p.user, p.amount, &p.nonce, t) {
        return Err(Error::not_found("top-up link"));
    }
    crate::domain::Currency::parse(&s.config.currency)
}

/// A top-up page: the amount and the enabled ways to pay it.
#[utoipa::path(get, path = "/pay/topup/{user}/{amount}/{nonce}", tag = "payments", params(("user" = i64, Path, description = "User id"), ("amount" = i64, Path, description = "Amount, minor units"), ("nonce" = String, Path, description = "The link nonce"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 200, description = "The top-up page", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid top-up link")))]
pub async fn topup_page(
    State(s): State<AppState>,
    Path(p): Path<TopupPath>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    let cur = check_topup(&s, &p, &q.t)?;
    let balance = s.store.balance(p.user).await?;
    let link = format!("/pay/topup/{}/{}/{}", p.user, p.amount, esc(&p.nonce));
    let mut body = format!(
        r#"<div class="card"><div class="muted">Пополнение баланса · balance top-up</div><div class="amount">{}</div><p class="muted">Сейчас на балансе · balance now: {}</p></div>"#,
        Money::new(p.amount, cur),
        Money::new(balance, cur)
    );
    if s.payments.cryptopay().is_some() {
        body.push_str(&format!(r#"<a class="btn" href="{link}/cryptopay?t={}">Оплатить криптовалютой · Pay with crypto (CryptoBot)</a>"#, esc(&q.t)));
    }
    if s.payments.dev_enabled() {
        body.push_str(&format!(r#"<form method="post" action="{link}/dev?t={}"><button type="submit">Пополнить (демо) · Top up (demo)</button></form>"#, esc(&q.t)));
    }
    Ok(page(s.payments.shop_name(), &body, false).into_response())
}

/// Creates (once per link) the Crypto Pay invoice of a top-up and redirects there.
#[utoipa::path(get, path = "/pay/topup/{user}/{amount}/{nonce}/cryptopay", tag = "payments", params(("user" = i64, Path, description = "User id"), ("amount" = i64, Path, description = "Amount, minor units"), ("nonce" = String, Path, description = "The link nonce"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 303, description = "To the top-up's Crypto Pay invoice"),
        (status = 404, description = "Not a valid top-up link, or Crypto Pay is off"),
        (status = 503, description = "Crypto Pay does not answer")))]
pub async fn topup_cryptopay(
    State(s): State<AppState>,
    Path(p): Path<TopupPath>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    let cur = check_topup(&s, &p, &q.t)?;
    let url = s.payments.cryptopay_topup_url(p.user, p.amount, &p.nonce, cur).await?;
    Ok(Redirect::to(&url).into_response())
}

/// The dev provider's top-up (demo mode only; once per link).
#[utoipa::path(post, path = "/pay/topup/{user}/{amount}/{nonce}/dev", tag = "payments", params(("user" = i64, Path, description = "User id"), ("amount" = i64, Path, description = "Amount, minor units"), ("nonce" = String, Path, description = "The link nonce"), ("t" = Option<String>, Query, description = "The link token")),
    responses((status = 200, description = "Topped up (once per link)", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid top-up link, or dev payments are off")))]
pub async fn topup_dev(
    State(s): State<AppState>,
    Path(p): Path<TopupPath>,
    Query(q): Query<Token>,
) -> ApiResult<Response> {
    let cur = check_topup(&s, &p, &q.t)?;
    let r = s.payments.pay_dev_topup(p.user, p.amount, &p.nonce, cur).await?;
    let body = format!(
        r#"<div class="card"><p class="ok">Баланс пополнен · balance topped up</p><div class="amount">{}</div></div>"#,
        Money::new(r.balance, cur)
    );
    Ok(page("Top-up", &body, false).into_response())
}
