//! Payments end to end: the dev provider, Crypto Pay against a fake server (invoice once,
//! signed webhooks, replays, concurrent duplicates, bad input, reconciliation).

use crate::helpers::*;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use lavka::config::Secret;
use lavka::domain::{JobKind, OrderStatus};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "1234:AAtesttoken";

/// Crypto Pay's assets and fiat currencies (API 1.5, help.send.tg/en/articles/10279948).
const ASSETS: &[&str] = &["USDT", "TON", "BTC", "ETH", "LTC", "BNB", "TRX", "USDC", "JET"];
const FIATS: &[&str] = &[
    "USD", "EUR", "RUB", "BYN", "UAH", "GBP", "CNY", "KZT", "UZS", "GEL", "TRY", "AMD", "THB", "INR", "BRL",
    "IDR", "AZN", "AED", "PLN", "ILS",
];

/// A stand-in for Crypto Pay that refuses what the real API documents as invalid, and says
/// why in `refused` (tests assert it stays empty).
#[derive(Default)]
struct FakeCryptoPay {
    invoices: Mutex<Vec<Value>>,
    created: Mutex<u32>,
    refused: Mutex<Vec<String>>,
}

fn is_decimal(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
        && s.bytes().any(|c| (b'1'..=b'9').contains(&c))
}

/// What `createInvoice` would refuse in `b`.
fn create_invoice_errors(b: &Value) -> Vec<String> {
    const PARAMS: &[&str] = &[
        "currency_type",
        "asset",
        "fiat",
        "accepted_assets",
        "amount",
        "description",
        "hidden_message",
        "paid_btn_name",
        "paid_btn_url",
        "swap_to",
        "payload",
        "allow_comments",
        "allow_anonymous",
        "expires_in",
    ];
    let Some(o) = b.as_object() else { return vec!["the body is not an object".into()] };
    let mut e: Vec<String> =
        o.keys().filter(|k| !PARAMS.contains(&k.as_str())).map(|k| format!("unknown {k}")).collect();
    if !is_decimal(&b["amount"]) {
        e.push(format!("amount must be a positive decimal string, got {}", b["amount"]));
    }
    match b["currency_type"].as_str().unwrap_or("crypto") {
        "crypto" => {
            if !ASSETS.contains(&b["asset"].as_str().unwrap_or("")) {
                e.push(format!("a crypto invoice needs an asset, got {}", b["asset"]));
            }
            if o.contains_key("fiat") || o.contains_key("accepted_assets") {
                e.push("fiat/accepted_assets belong to fiat invoices".into());
            }
        }
        "fiat" => {
            if !FIATS.contains(&b["fiat"].as_str().unwrap_or("")) {
                e.push(format!("a fiat invoice needs a fiat currency, got {}", b["fiat"]));
            }
            if o.contains_key("asset") {
                e.push("asset belongs to crypto invoices".into());
            }
            if let Some(a) = o.get("accepted_assets")
                && !a.as_str().is_some_and(|a| a.split(',').all(|x| ASSETS.contains(&x)))
            {
                e.push(format!("accepted_assets must list assets, got {a}"));
            }
        }
        other => e.push(format!("currency_type {other:?}")),
    }
    if b["description"].as_str().is_some_and(|d| d.chars().count() > 1024) {
        e.push("description over 1024 characters".into());
    }
    if b["payload"].as_str().is_some_and(|p| p.len() > 4096)
        || (o.contains_key("payload") && !b["payload"].is_string())
    {
        e.push("payload must be a string of at most 4 KB".into());
    }
    if o.contains_key("expires_in") && !b["expires_in"].as_u64().is_some_and(|x| (1..=2_678_400).contains(&x))
    {
        e.push(format!("expires_in must be 1-2678400, got {}", b["expires_in"]));
    }
    for k in ["allow_comments", "allow_anonymous"] {
        if o.contains_key(k) && !b[k].is_boolean() {
            e.push(format!("{k} must be a boolean"));
        }
    }
    e
}

fn refuse(s: &FakeCryptoPay, errors: Vec<String>) -> (axum::http::StatusCode, Json<Value>) {
    s.refused.lock().unwrap().extend(errors);
    (
        axum::http::StatusCode::BAD_REQUEST,
        Json(json!({"ok": false, "error": {"code": 400, "name": "INVALID_PARAMS"}})),
    )
}

async fn fake_cryptopay() -> (String, Arc<FakeCryptoPay>) {
    let st = Arc::new(FakeCryptoPay::default());
    async fn create(
        State(s): State<Arc<FakeCryptoPay>>,
        h: axum::http::HeaderMap,
        Json(b): Json<Value>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        if h.get("crypto-pay-api-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                Json(json!({"ok": false, "error": {"code": 401, "name": "UNAUTHORIZED"}})),
            );
        }
        let errors = create_invoice_errors(&b);
        if !errors.is_empty() {
            return refuse(&s, errors);
        }
        let mut n = s.created.lock().unwrap();
        *n += 1;
        let id = 1000 + *n;
        let mut inv = json!({"invoice_id": id, "hash": format!("IV{id}"), "status": "active",
            "currency_type": b["currency_type"], "amount": b["amount"], "payload": b["payload"],
            "description": b["description"], "created_at": "2026-11-26T12:00:00.000Z",
            "allow_comments": b["allow_comments"], "allow_anonymous": true,
            "bot_invoice_url": format!("https://t.me/CryptoBot?start=IV{id}"),
            "mini_app_invoice_url": format!("https://t.me/CryptoBot/app?startapp=invoice-IV{id}"),
            "web_app_invoice_url": format!("https://app.send.tg/invoices/IV{id}")});
        for k in ["asset", "fiat", "accepted_assets"] {
            if let Some(v) = b.get(k) {
                inv[k] = v.clone();
            }
        }
        s.invoices.lock().unwrap().push(inv.clone());
        (axum::http::StatusCode::OK, Json(json!({"ok": true, "result": inv})))
    }
    async fn list(
        State(s): State<Arc<FakeCryptoPay>>,
        Json(b): Json<Value>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        let mut errors: Vec<String> = b
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| {
                        !["asset", "fiat", "invoice_ids", "status", "offset", "count"].contains(&k.as_str())
                    })
                    .map(|k| format!("unknown {k}"))
                    .collect()
            })
            .unwrap_or_else(|| vec!["the body is not an object".into()]);
        let ids = b["invoice_ids"].as_str().unwrap_or_default();
        if !ids.split(',').all(|i| i.parse::<u64>().is_ok()) {
            errors.push(format!("invoice_ids must be comma-separated ids, got {}", b["invoice_ids"]));
        }
        if !["active", "paid"].contains(&b["status"].as_str().unwrap_or("paid")) {
            errors.push(format!("status {}", b["status"]));
        }
        if b.get("count").is_some_and(|c| !c.as_u64().is_some_and(|c| (1..=1000).contains(&c))) {
            errors.push(format!("count must be 1-1000, got {}", b["count"]));
        }
        if !errors.is_empty() {
            return refuse(&s, errors);
        }
        let ids: Vec<String> = ids.split(',').map(str::to_string).collect();
        let items: Vec<Value> = s
            .invoices
            .lock()
            .unwrap()
            .iter()
            .filter(|i| ids.contains(&i["invoice_id"].to_string()) && i["status"] == b["status"])
            .cloned()
            .collect();
        (axum::http::StatusCode::OK, Json(json!({"ok": true, "result": {"items": items}})))
    }
    let app = axum::Router::new()
        .route("/api/createInvoice", post(create))
        .route("/api/getInvoices", post(list))
        .with_state(st.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, st)
}

/// HMAC-SHA256 written out (RFC 2104) — independent of the production code's `hmac` crate.
fn signature(token: &str, body: &[u8]) -> String {
    let key = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), body].concat());
    hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
}

fn paid_update(invoice_id: i64, order: u64, amount: &str) -> String {
    update(json!({"invoice_id": invoice_id, "status": "paid", "currency_type": "fiat", "fiat": "RUB",
        "amount": amount, "payload": format!("order:{order}"), "paid_asset": "USDT", "paid_amount": "1.1"}))
}

/// An `invoice_paid` update carrying `invoice` (a paid invoice as the API documents it).
fn update(invoice: Value) -> String {
    let mut inv = json!({"hash": "IVhash", "created_at": "2026-11-26T11:50:00.000Z", "paid_at": "2026-11-26T12:00:00.000Z",
        "allow_comments": false, "allow_anonymous": true, "paid_anonymously": false,
        "bot_invoice_url": "https://t.me/CryptoBot?start=IVhash", "mini_app_invoice_url": "https://t.me/CryptoBot/app?startapp=invoice-IVhash",
        "web_app_invoice_url": "https://app.send.tg/invoices/IVhash"});
    for (k, v) in invoice.as_object().unwrap() {
        inv[k] = v.clone();
    }
    json!({"update_id": 1, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z", "payload": inv})
        .to_string()
}

async fn webhook(app: &TestApp, body: &str, sig: &str) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/payments/cryptopay/webhook", app.base))
        .header("crypto-pay-api-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn reserve(app: &TestApp, user: i64, product: &str) -> u64 {
    let (code, v) = app.post("/admin/api/orders", json!({"user_id": user, "product_id": product})).await;
    assert_eq!(code, 201, "{v}");
    v["order"]["id"].as_u64().unwrap()
}

#[test]
fn the_independent_hmac_matches_the_documented_vector() {
    let body = br#"{"update_id":1,"update_type":"invoice_paid","request_date":"2026-11-26T10:00:00.000Z","payload":{"invoice_id":42,"status":"paid","payload":"order:1"}}"#;
    assert_eq!(signature(TOKEN, body), "5d164660a3fc82f0a9d48595f0546600b1845ea1213fd663cb3608a90761a932");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cryptopay_invoice_once_signed_webhook_completes_replays_change_nothing() {
    let (url, fake) = fake_cryptopay().await;
    let app = spawn_app_with(|c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = url.clone();
    })
    .await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 7, "key").await;
    assert!(!app.state.payments.dev_enabled(), "a real provider turns the dev one off");
    let t = app.state.payments.token(id);
    let page = app.client.get(format!("{}/pay/{id}?t={t}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("CryptoBot") && !html.contains("/pay/dev/"), "{html}");
    assert_eq!(app.client.get(format!("{}/pay/{id}?t=wrong", app.base)).send().await.unwrap().status(), 404);
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for _ in 0..2 {
        let r = no_redirect.get(format!("{}/pay/{id}/cryptopay?t={t}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "https://t.me/CryptoBot?start=IV1001");
    }
    assert_eq!(*fake.created.lock().unwrap(), 1, "one invoice per order");
    assert_eq!(fake.invoices.lock().unwrap()[0]["amount"], "100.00");

    // A wrong signature changes nothing.
    let body = paid_update(1001, id, "100.00");
    let (code, _) = webhook(&app, &body, &signature("other-token", body.as_bytes())).await;
    assert_eq!(code, 401);
    let (code, _) = webhook(&app, &body, "").await;
    assert_eq!(code, 401);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);

    // 20 concurrent copies of the signed webhook: one completion, one delivery job.
    let sig = signature(TOKEN, body.as_bytes());
    let calls = (0..20).map(|_| webhook(&app, &body, &sig));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|(c, _)| *c == 200), "{results:?}");
    assert_eq!(results.iter().filter(|(_, v)| v["duplicate"] == false).count(), 1);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    let deliveries =
        jobs_of_kind(app.store(), |k| matches!(k, JobKind::DeliverOrder { order_id } if *order_id == id))
            .await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(app.store().payments(100).await.unwrap().len(), 1);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cryptopay_bad_webhooks_change_no_order() {
    let (url, _fake) = fake_cryptopay().await;
    let app = spawn_app_with(|c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = url.clone();
        c.body_limit_bytes = 64 * 1024;
    })
    .await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 8, "key").await;
    // Malformed JSON, correctly signed.
    let bad = "{not json";
    let (code, v) = webhook(&app, bad, &signature(TOKEN, bad.as_bytes())).await;
    assert_eq!(code, 400, "{v}");
    // An invoice for an order this shop does not have, or naming no order: the money was
    // taken, so it is kept as unmatched and answered 200 (Crypto Pay stops retrying).
    let body = paid_update(5, 999_999, "100.00");
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!((code, &v["reason"]), (200, &json!("unknown_order")), "{v}");
    let body = paid_update(6, id, "100.00").replace(&format!("order:{id}"), "something-else");
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!((code, &v["reason"]), (200, &json!("unknown_payload")), "{v}");
    // A huge body.
    let huge = "x".repeat(200 * 1024);
    let (code, _) = webhook(&app, &huge, &signature(TOKEN, huge.as_bytes())).await;
    assert_eq!(code, 413);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    assert!(app.store().payments(100).await.unwrap().is_empty());
    // The wrong amount: recorded as a mismatch, the order is not completed.
    let body = paid_update(7, id, "1.00");
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["outcome"], "mismatch");
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    let (code, list) = app.get("/admin/api/payments?outcome=mismatch").await;
    assert_eq!(code, 200);
    assert_eq!(list["payments"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        app.get("/admin/api/payments?outcome=applied").await.1["payments"].as_array().unwrap().len(),
        0
    );
    assert_eq!(app.get("/admin/api/payments?outcome=bogus").await.0, 400);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_completes_an_order_whose_webhook_was_lost() {
    let (url, fake) = fake_cryptopay().await;
    let app = spawn_app_with(|c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = url.clone();
    })
    .await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 9, "key").await;
    let other = reserve(&app, 10, "key").await;
    for o in [id, other] {
        let order = app.store().order(o).await.unwrap();
        app.state.payments.cryptopay_url(&order).await.unwrap();
    }
    assert_eq!(app.state.payments.reconcile().await.unwrap(), 0, "nothing paid yet");
    fake.invoices.lock().unwrap()[0]["status"] = json!("paid");
    assert_eq!(app.state.payments.reconcile().await.unwrap(), 1);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    assert_eq!(app.store().order(other).await.unwrap().status, OrderStatus::Reserved);
    assert_eq!(app.state.payments.reconcile().await.unwrap(), 0, "applied once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_provider_pays_in_demo_mode_and_is_refused_otherwise() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    assert!(app.state.payments.dev_enabled());
    let id = reserve(&app, 11, "key").await;
    // Without the order's link token the dev page shows and pays nothing.
    let bare = app.client.get(format!("{}/pay/dev/{id}", app.base)).send().await.unwrap();
    assert_eq!(bare.status(), 404);
    let forged = app
        .client
        .post(format!("{}/pay/dev/{id}?t=0123456789abcdef01234567", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    let t = app.state.payments.token(id);
    let page = app.client.get(format!("{}/pay/dev/{id}?t={t}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("100.00 ₽"));
    for _ in 0..2 {
        let r = app
            .client
            .post(format!("{}/pay/dev/{id}?t={t}", app.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    assert_eq!(app.store().payments(100).await.unwrap().len(), 1);
    assert_eq!(app.drain_jobs().await, 1);
    assert!(
        app.messenger
            .messages_to(11)
            .iter()
            .any(|m| m.contains("K1") || m.contains("K2") || m.contains("K3"))
    );
    // The consultant's offer links to the payment page.
    let me = lavka::shop::Customer::new(12, lavka::texts::Lang::En, lavka::shop::Door::Web);
    let r = app.state.shop.press(&me, &lavka::callback::Callback::Buy(pid("key"))).await.unwrap();
    let url = r.buttons.iter().flatten().find_map(|b| match &b.action {
        lavka::callback::ButtonAction::Url(u) => Some(u.clone()),
        _ => None,
    });
    assert!(url.expect("a pay link").starts_with(&format!("{}/pay/", app.base)));
    app.stop().await;

    let app = spawn_app_with(|c| c.payments.cryptopay_token = Secret::new(TOKEN)).await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 11, "key").await;
    assert_eq!(app.client.get(format!("{}/pay/dev/{id}", app.base)).send().await.unwrap().status(), 404);
    assert_eq!(app.client.post(format!("{}/pay/dev/{id}", app.base)).send().await.unwrap().status(), 404);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_top_ups_through_the_dev_provider_and_crypto_pay_credit_once() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let me = lavka::shop::Customer::new(21, lavka::texts::Lang::Ru, lavka::shop::Door::Web);
    let ask = app.state.shop.converse(&me, "пополнить баланс").await.unwrap();
    assert!(
        ask.buttons[0]
            .iter()
            .any(|b| b.action
                == lavka::callback::ButtonAction::Callback(lavka::callback::Callback::TopUp(500)))
    );
    let r = app.state.shop.converse(&me, "пополнить баланс на 500").await.unwrap();
    let url = match &r.buttons[0][0].action {
        lavka::callback::ButtonAction::Url(u) => u.clone(),
        other => panic!("{other:?}"),
    };
    assert!(url.contains("/pay/topup/21/50000/"), "{url}");
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("500.00 ₽"));
    let (path, query) = url.split_once('?').unwrap();
    let dev = format!("{path}/dev?{query}");
    for _ in 0..2 {
        assert_eq!(app.client.post(&dev).send().await.unwrap().status(), 200);
    }
    assert_eq!(app.store().balance(21).await.unwrap(), 50_000, "one link credits once");
    let forged = format!("{}/pay/topup/21/9999900/abc/dev?t=0000", app.base);
    assert_eq!(app.client.post(&forged).send().await.unwrap().status(), 404);
    assert_eq!(app.store().balance(21).await.unwrap(), 50_000);
    // The balance pays for a purchase.
    let buy = app.state.shop.press(&me, &lavka::callback::Callback::Buy(pid("key"))).await.unwrap();
    let order = buy.offer.unwrap().order_id;
    app.state.shop.press(&me, &lavka::callback::Callback::PayBalance(order)).await.unwrap();
    assert_eq!(app.store().order(order).await.unwrap().status, OrderStatus::Paid);
    assert_eq!(app.store().balance(21).await.unwrap(), 40_000);
    assert_check(app.store()).await;
    app.stop().await;

    // Crypto Pay: the invoice carries the top-up; the signed webhook credits once; a lost
    // webhook is found by reconciliation.
    let (cp_url, fake) = fake_cryptopay().await;
    let app = spawn_app_with(|c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = cp_url.clone();
    })
    .await;
    let link = app.state.payments.topup_url(22, 70_000);
    let (path, query) = link.split_once('?').unwrap();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect.get(format!("{path}/cryptopay?{query}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let inv = fake.invoices.lock().unwrap()[0].clone();
    assert!(inv["payload"].as_str().unwrap().starts_with("topup:22:"));
    assert_eq!(inv["amount"], "700.00");
    let body = json!({"update_id": 9, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
        "payload": {"invoice_id": inv["invoice_id"], "status": "paid", "fiat": "RUB", "amount": "700.00", "payload": inv["payload"]}})
    .to_string();
    let sig = signature(TOKEN, body.as_bytes());
    for _ in 0..3 {
        let (code, v) = webhook(&app, &body, &sig).await;
        assert_eq!(code, 200, "{v}");
    }
    assert_eq!(app.store().balance(22).await.unwrap(), 70_000);
    let second = app.state.payments.topup_url(23, 10_000);
    let (path, query) = second.split_once('?').unwrap();
    no_redirect.get(format!("{path}/cryptopay?{query}")).send().await.unwrap();
    fake.invoices.lock().unwrap()[1]["status"] = json!("paid");
    assert_eq!(app.state.payments.reconcile().await.unwrap(), 1);
    assert_eq!(app.store().balance(23).await.unwrap(), 10_000);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_balance_payments_never_overdraw() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    app.store()
        .write(|tx| {
            lavka::store::ledger::credit_balance(tx, 31, 15_000, lavka::domain::Currency::RUB, "gift")
        })
        .await
        .unwrap();
    let a = reserve(&app, 31, "key").await;
    let b = reserve(&app, 31, "key").await;
    let tries = (0..10).map(|i| {
        let store = app.store().clone();
        let order = if i % 2 == 0 { a } else { b };
        async move { store.write(move |tx| lavka::store::orders::pay_from_balance(tx, order, 31)).await }
    });
    let results = futures::future::join_all(tries).await;
    let ok: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(ok.len(), 1, "one of the two orders is paid, once: {results:?}");
    assert_eq!(app.store().balance(31).await.unwrap(), 5_000);
    let refused =
        results.iter().filter(|r| matches!(r, Err(lavka::Error::InsufficientBalance { .. }))).count();
    assert!(refused >= 1);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_after_the_reservation_lapsed_re_reserves_or_credits_the_balance() {
    let (url, _fake) = fake_cryptopay().await;
    let app = spawn_app_with(|c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = url.clone();
    })
    .await;
    // `both` has one item: the first lapsed order gets it back; the second finds none.
    seed(app.store(), SMALL).await;
    let first = reserve(&app, 41, "both").await;
    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    app.store().write(|tx| lavka::store::orders::expire_reservations(tx, 100)).await.unwrap();
    assert_eq!(app.store().order(first).await.unwrap().status, OrderStatus::Expired);
    let body = paid_update(2001, first, "70.00");
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["outcome"], "applied");
    assert_eq!(app.store().order(first).await.unwrap().status, OrderStatus::Paid, "re-reserved and paid");

    let second = reserve(&app, 42, "key").await;
    // Sell out `key` meanwhile (the two other items), then let the reservation lapse.
    reserve(&app, 43, "key").await;
    reserve(&app, 44, "key").await;
    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    app.store().write(|tx| lavka::store::orders::expire_reservations(tx, 100)).await.unwrap();
    reserve(&app, 45, "key").await;
    reserve(&app, 46, "key").await;
    reserve(&app, 47, "key").await;
    let body = paid_update(2002, second, "100.00");
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["outcome"], "credited_to_balance");
    assert_eq!(app.store().balance(42).await.unwrap(), 10_000, "the money is on the balance");
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_payment_for_a_sold_out_preorderable_product_offers_the_preorder() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let late = reserve(&app, 51, "both").await;
    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    app.store().write(|tx| lavka::store::orders::expire_reservations(tx, 100)).await.unwrap();
    reserve(&app, 52, "both").await; // the last item goes to someone else
    let r = app
        .client
        .post(format!("{}/pay/dev/{late}?t={}", app.base, app.state.payments.token(late)))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.store().balance(51).await.unwrap(), 7_000);
    app.drain_jobs().await;
    let sent = app.messenger.sent.lock().unwrap().clone();
    let notice = sent.iter().rev().find(|m| m.chat_id == 51).expect("a notice");
    let pre = notice.buttons.iter().flatten().any(|b| {
        b.action == lavka::callback::ButtonAction::Callback(lavka::callback::Callback::PreOrder(pid("both")))
    });
    assert!(pre, "{notice:?}");
    // Consent, then the credited money pays the pre-order.
    let me = lavka::shop::Customer::new(51, lavka::texts::Lang::En, lavka::shop::Door::Web);
    app.state.shop.press(&me, &lavka::callback::Callback::PreOrder(pid("both"))).await.unwrap();
    let offer = app
        .state
        .shop
        .press(&me, &lavka::callback::Callback::ConfirmPreOrder(pid("both")))
        .await
        .unwrap()
        .offer
        .unwrap();
    app.state.shop.press(&me, &lavka::callback::Callback::PayBalance(offer.order_id)).await.unwrap();
    assert_eq!(app.store().order(offer.order_id).await.unwrap().status, OrderStatus::Prepaid);
    assert_eq!(app.store().balance(51).await.unwrap(), 0);
    assert_check(app.store()).await;
    app.stop().await;
}

const ADMIN_CHAT: i64 = 900;

async fn cryptopay_app(url: &str, tweak: impl FnOnce(&mut lavka::config::Config)) -> TestApp {
    let url = url.to_string();
    spawn_app_with(move |c| {
        c.payments.cryptopay_token = Secret::new(TOKEN);
        c.payments.cryptopay_api_url = url;
        c.admin_ids = vec![ADMIN_CHAT];
        tweak(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_that_cannot_be_applied_are_kept_alerted_listed_and_answered_200() {
    let (url, _fake) = fake_cryptopay().await;
    let app = cryptopay_app(&url, |_| {}).await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 8, "key").await; // 100.00 RUB
    let order = format!("order:{id}");
    let crypto = |inv: i64, asset: &str, amount: &str| {
        json!({"invoice_id": inv, "status": "paid", "currency_type": "crypto", "asset": asset, "amount": amount,
            "paid_asset": asset, "paid_amount": amount, "payload": order.clone()})
    };
    let fiat = |inv: i64, code: &str, amount: &str, payload: &str| {
        json!({"invoice_id": inv, "status": "paid", "currency_type": "fiat", "fiat": code, "amount": amount,
            "accepted_assets": "USDT,TON,BTC", "paid_asset": "USDT", "paid_amount": "1.1", "payload": payload})
    };
    // (invoice, what the shop makes of it)
    let cases = [
        (crypto(3001, "USDT", "4.43"), "mismatch"),
        (crypto(3002, "BTC", "0.00012345"), "mismatch"),
        (fiat(3003, "TON", "1.5", &order), "unknown_currency"),
        (fiat(3004, "RUB", "100.00", "order:999999"), "unknown_order"),
        (fiat(3005, "RUB", "100.00", "someone-elses-app:17"), "unknown_payload"),
        (fiat(3006, "RUB", "100.001", &order), "bad_amount"),
        (fiat(3007, "RUB", "0", &order), "bad_amount"),
        (json!({"invoice_id": 3008, "status": "paid", "fiat": "RUB", "payload": order.clone()}), "malformed"),
    ];
    for round in 0..2 {
        for (inv, reason) in &cases {
            let body = update(inv.clone());
            let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
            assert_eq!(code, 200, "{inv}: {v}");
            assert_eq!(v["duplicate"], json!(round == 1), "{inv}: {v}");
            if *reason == "mismatch" {
                assert_eq!(v["outcome"], "mismatch", "{v}");
            } else {
                assert_eq!((&v["unmatched"], &v["reason"]), (&json!(true), &json!(reason)), "{v}");
            }
        }
    }
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved, "no case pays the order");
    assert_eq!(app.store().balance(8).await.unwrap(), 0, "crypto is not credited as roubles");
    // Everything is in the admin's list, once, with what was received.
    let (code, list) = app.get("/admin/api/payments").await;
    assert_eq!(code, 200);
    let unmatched = list["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), cases.len(), "{list}");
    let find = |inv: &str| unmatched.iter().find(|u| u["external_id"] == inv).unwrap().clone();
    let usdt = find("3001");
    assert_eq!(
        (&usdt["amount"], &usdt["currency"], &usdt["reason"]),
        (&json!("4.43"), &json!("USDT"), &json!("mismatch"))
    );
    assert_eq!((&usdt["order_id"], &usdt["user_id"]), (&json!(id), &json!(8)));
    assert_eq!(find("3002")["amount"], "0.00012345");
    assert_eq!(find("3005")["payload"], "someone-elses-app:17");
    assert_eq!(find("3008")["raw"]["invoice_id"], 3008);
    assert_eq!(list["payments"].as_array().unwrap().len(), 2, "the two mismatches are payments of the order");
    assert_eq!(app.get("/admin/api/stats").await.1["unmatched_payments"], cases.len());
    // The admins are told once per payment.
    app.drain_jobs().await;
    let alerts = app.messenger.messages_to(ADMIN_CHAT);
    assert_eq!(alerts.len(), cases.len(), "{alerts:#?}");
    assert!(
        alerts.iter().any(|a| a.contains("3004") && a.contains("order #999999 does not exist")),
        "{alerts:#?}"
    );
    assert!(alerts.iter().any(|a| a.contains("3001") && a.contains("USDT")), "{alerts:#?}");
    // `lavka check` holds (nothing is broken) and names each one as needing the owner.
    let report = app.store().check().await.unwrap();
    assert!(report.ok(), "{report}");
    let warning = report.warnings.iter().find(|w| w.contains("could not be applied")).expect("a warning");
    assert!(warning.starts_with(&format!("{} signed payment", cases.len())), "{warning}");
    assert!(warning.contains("3004"), "{warning}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_priced_in_usdt_invoices_in_usdt_and_a_crypto_webhook_pays_it() {
    let (url, fake) = fake_cryptopay().await;
    let app = cryptopay_app(&url, |c| c.currency = "USDT".into()).await;
    let cat = r#"{"currency": "USDT", "products": [{"id": "vpn", "title": "VPN", "price": "4.43"}],
        "stock": [{"product_id": "vpn", "items": ["V1", "V2"]}]}"#;
    let cat = lavka::catalog::parse_json(cat, lavka::domain::Currency::USDT).unwrap();
    app.store().write(move |tx| lavka::catalog::apply(tx, &cat)).await.unwrap();
    let id = reserve(&app, 61, "vpn").await;
    let o = app.store().order(id).await.unwrap();
    assert_eq!((o.amount, o.currency.as_str()), (4_430_000, "USDT"));
    let t = app.state.payments.token(id);
    let page =
        app.client.get(format!("{}/pay/{id}?t={t}", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("4.43 USDT"), "{page}");
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect.get(format!("{}/pay/{id}/cryptopay?t={t}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", fake.refused.lock().unwrap());
    let inv = fake.invoices.lock().unwrap()[0].clone();
    assert_eq!(
        (&inv["currency_type"], &inv["asset"], &inv["amount"]),
        (&json!("crypto"), &json!("USDT"), &json!("4.43"))
    );
    assert!(inv.get("fiat").is_none() && inv.get("accepted_assets").is_none(), "{inv}");
    // Crypto Pay may send numbers as JSON numbers.
    let body = update(
        json!({"invoice_id": inv["invoice_id"], "status": "paid", "currency_type": "crypto", "asset": "USDT",
        "amount": 4.43, "paid_asset": "USDT", "paid_amount": 4.43, "fee_asset": "USDT", "fee_amount": 0.13,
        "paid_usd_rate": 1.0, "payload": format!("order:{id}")}),
    );
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!((code, &v["outcome"]), (200, &json!("applied")), "{v}");
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    assert!(fake.refused.lock().unwrap().is_empty(), "{:?}", fake.refused.lock().unwrap());
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fiat_webhook_with_json_numbers_pays_the_order() {
    let (url, fake) = fake_cryptopay().await;
    let app = cryptopay_app(&url, |_| {}).await;
    seed(app.store(), SMALL).await;
    let id = reserve(&app, 62, "sale").await; // 89.91 RUB (99.90 − 10 %)
    let order = app.store().order(id).await.unwrap();
    app.state.payments.cryptopay_url(&order).await.unwrap();
    let inv = fake.invoices.lock().unwrap()[0].clone();
    assert_eq!(
        (&inv["currency_type"], &inv["fiat"], &inv["amount"]),
        (&json!("fiat"), &json!("RUB"), &json!("89.91"))
    );
    let body = update(
        json!({"invoice_id": inv["invoice_id"].to_string(), "status": "paid", "currency_type": "fiat",
        "fiat": "RUB", "amount": 89.91, "paid_asset": "TON", "paid_amount": 0.3, "paid_fiat_rate": 299.7,
        "payload": format!("order:{id}")}),
    );
    let (code, v) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!((code, &v["outcome"]), (200, &json!("applied")), "{v}");
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    assert!(fake.refused.lock().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_provider_is_off_in_a_public_shop_unless_set_and_then_warns_and_still_needs_the_link_token() {
    // A public URL (or a bot, see doors.rs) with nothing else: off.
    let app = spawn_app_with(|c| c.public_url = Some("https://shop.example.com".into())).await;
    seed(app.store(), SMALL).await;
    assert!(!app.state.payments.dev_enabled());
    let id = reserve(&app, 71, "key").await;
    let t = app.state.payments.token(id);
    assert_eq!(
        app.client.post(format!("{}/pay/dev/{id}?t={t}", app.base)).send().await.unwrap().status(),
        404
    );
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    assert_eq!(app.get("/admin/api/stats").await.1["warnings"], json!([]));
    app.stop().await;

    // Explicitly on in a public shop: a warning on the admin page (and in the log at start).
    let app = spawn_app_with(|c| {
        c.public_url = Some("https://shop.example.com".into());
        c.payments.dev_payments = Some(true);
    })
    .await;
    seed(app.store(), SMALL).await;
    assert!(app.state.payments.dev_enabled());
    let warnings = app.get("/admin/api/stats").await.1["warnings"].clone();
    assert_eq!(warnings[0]["code"], "dev_payments_public", "{warnings}");
    let page = reqwest::get(format!("{}/assets/admin.js", app.base)).await.unwrap().text().await.unwrap();
    assert!(page.contains("dev_payments_public"), "the admin page shows the warning");
    // Still only with the order's link token: without or with a wrong one, nothing changes.
    let id = reserve(&app, 72, "key").await;
    let other = reserve(&app, 73, "key").await;
    let wrong = app.state.payments.token(other);
    for q in ["".to_string(), "?t=".into(), format!("?t={wrong}"), "?t=0123456789abcdef01234567".into()] {
        for r in [
            app.client.get(format!("{}/pay/dev/{id}{q}", app.base)).send().await.unwrap(),
            app.client.post(format!("{}/pay/dev/{id}{q}", app.base)).send().await.unwrap(),
        ] {
            assert_eq!(r.status(), 404, "{q}");
        }
    }
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Reserved);
    assert!(app.store().payments(10).await.unwrap().is_empty());
    // Top-up dev links too: a forged token credits nothing.
    let link = app.state.payments.topup_url(72, 50_000);
    let (path, _) = link.split_once('?').unwrap();
    for q in ["", "?t=", "?t=000000000000000000000000"] {
        assert_eq!(app.client.post(format!("{path}/dev{q}")).send().await.unwrap().status(), 404, "{q}");
    }
    assert_eq!(app.store().balance(72).await.unwrap(), 0);
    // With the right token it pays (it is on, after all).
    let t = app.state.payments.token(id);
    let r = app.client.post(format!("{}/pay/dev/{id}?t={t}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    app.stop().await;
}
