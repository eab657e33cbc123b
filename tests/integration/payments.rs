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

#[derive(Default)]
struct FakeCryptoPay {
    invoices: Mutex<Vec<Value>>,
    created: Mutex<u32>,
}

async fn fake_cryptopay() -> (String, Arc<FakeCryptoPay>) {
    let st = Arc::new(FakeCryptoPay::default());
    async fn create(
        State(s): State<Arc<FakeCryptoPay>>,
        h: axum::http::HeaderMap,
        Json(b): Json<Value>,
    ) -> Json<Value> {
        if h.get("crypto-pay-api-token").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
            return Json(json!({"ok": false, "error": {"code": 401, "name": "UNAUTHORIZED"}}));
        }
        let mut n = s.created.lock().unwrap();
        *n += 1;
        let inv = json!({"invoice_id": 1000 + *n, "status": "active", "currency_type": "fiat", "fiat": b["fiat"],
            "amount": b["amount"], "payload": b["payload"], "bot_invoice_url": format!("https://t.me/CryptoBot?start=IV{}", 1000 + *n)});
        s.invoices.lock().unwrap().push(inv.clone());
        Json(json!({"ok": true, "result": inv}))
    }
    async fn list(State(s): State<Arc<FakeCryptoPay>>, Json(b): Json<Value>) -> Json<Value> {
        let ids: Vec<String> =
            b["invoice_ids"].as_str().unwrap_or_default().split(',').map(str::to_string).collect();
        let items: Vec<Value> = s
            .invoices
            .lock()
            .unwrap()
            .iter()
            .filter(|i| ids.contains(&i["invoice_id"].to_string()) && i["status"] == b["status"])
            .cloned()
            .collect();
        Json(json!({"ok": true, "result": {"items": items}}))
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
    json!({"update_id": 1, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
        "payload": {"invoice_id": invoice_id, "status": "paid", "currency_type": "fiat", "fiat": "RUB",
                    "amount": amount, "payload": format!("order:{order}"), "paid_asset": "USDT", "paid_amount": "1.1"}})
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
async fn cryptopay_bad_webhooks_are_refused_without_changes() {
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
    // An invoice for an order this shop does not have.
    let body = paid_update(5, 999_999, "100.00");
    let (code, _) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!(code, 404);
    // A payload that names no order.
    let body = paid_update(6, id, "100.00").replace(&format!("order:{id}"), "something-else");
    let (code, _) = webhook(&app, &body, &signature(TOKEN, body.as_bytes())).await;
    assert_eq!(code, 400);
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
