//! Telegram Stars end to end against the fake Bot API: invoice, pre-checkout validation,
//! idempotent completion on `telegram_payment_charge_id`, mismatches, refunds to source.

use crate::helpers::{SMALL, T0, jobs_of_kind, seed};
use crate::telegram::{ADMIN, ANNA, BOB, TgApp, buttons, message, press, spawn_tg, user};
use lavka::domain::{JobKind, OrderStatus};
use serde_json::{Value, json};

async fn stars_shop() -> TgApp {
    let app = spawn_tg(|c| c.payments.stars_per_unit = 1.0).await;
    seed(app.store(), SMALL).await;
    app
}

fn pre_checkout(update_id: i64, from: i64, order: u64, stars: u32) -> Value {
    json!({"update_id": update_id, "pre_checkout_query": {"id": format!("pcq{update_id}"), "from": user(from, "en"),
        "currency": "XTR", "total_amount": stars, "invoice_payload": format!("order:{order}")}})
}

fn paid(update_id: i64, from: i64, order: u64, stars: u32, charge: &str) -> Value {
    let mut m = message(update_id, from, "en", "");
    m["message"].as_object_mut().unwrap().remove("text");
    m["message"]["successful_payment"] = json!({"currency": "XTR", "total_amount": stars,
        "invoice_payload": format!("order:{order}"), "telegram_payment_charge_id": charge, "provider_payment_charge_id": ""});
    m
}

fn last_answer(app: &TgApp) -> Value {
    app.fake.bodies("answerprecheckoutquery").pop().expect("an answer")
}

#[tokio::test]
async fn stars_invoice_pre_checkout_and_one_completion_per_charge() {
    let app = stars_shop().await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    let offer = buttons(&app.fake.last_to(ANNA));
    assert!(offer.contains(&format!("ps:{}", o.id)), "{offer:?}");
    app.update(press(2, ANNA, &format!("ps:{}", o.id))).await;
    let inv = app.fake.bodies("sendinvoice").pop().expect("an invoice");
    assert_eq!(inv["currency"], "XTR");
    assert_eq!(inv["prices"][0]["amount"], 100, "100.00 RUB × 1 Star");
    assert_eq!(inv["payload"], format!("order:{}", o.id));
    assert_eq!(inv["chat_id"], ANNA);

    // Pre-checkout: the right amount passes; a changed amount or another user's order does not.
    app.update(pre_checkout(3, ANNA, o.id, 99)).await;
    assert_eq!(last_answer(&app)["ok"], false);
    app.update(pre_checkout(4, BOB, o.id, 100)).await;
    assert_eq!(last_answer(&app)["ok"], false);
    app.update(pre_checkout(5, ANNA, o.id, 100)).await;
    assert_eq!(last_answer(&app)["ok"], true, "{}", last_answer(&app));

    // Payment, then the same charge again (a replayed update): one completion, one delivery.
    app.update(paid(6, ANNA, o.id, 100, "stxCHARGE1")).await;
    app.update(paid(7, ANNA, o.id, 100, "stxCHARGE1")).await;
    let order = app.store().order(o.id).await.unwrap();
    assert!(matches!(order.status, OrderStatus::Paid | OrderStatus::Delivered), "{:?}", order.status);
    assert_eq!(order.payment.as_ref().unwrap().external_id, "stxCHARGE1");
    assert_eq!(app.store().payments(100).await.unwrap().len(), 1);
    let deliveries =
        jobs_of_kind(app.store(), |k| matches!(k, JobKind::DeliverOrder { order_id } if *order_id == o.id))
            .await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(app.fake.texts_to(ANNA).iter().filter(|t| t.contains("<code>K")).count(), 1);
    // Paid orders do not pass pre-checkout again.
    app.update(pre_checkout(8, ANNA, o.id, 100)).await;
    assert_eq!(last_answer(&app)["ok"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_stars_payment_of_the_wrong_amount_is_recorded_not_completed() {
    let app = stars_shop().await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    app.update(paid(2, ANNA, o.id, 1, "stxLOW")).await;
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Reserved);
    let p = app.store().payments(100).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(format!("{:?}", p[0].outcome), "Mismatch");
    assert!(app.fake.texts_to(ANNA).last().unwrap().contains("Stars were returned"));
    let alerts = jobs_of_kind(app.store(), |k| matches!(k, JobKind::AlertAdmin { .. })).await;
    assert!(!alerts.is_empty(), "the admins hear about it");
    let refund = app.fake.bodies("refundstarpayment").pop().expect("the Stars go back");
    assert_eq!(refund["telegram_payment_charge_id"], "stxLOW");
    app.stop().await;
}

#[tokio::test]
async fn refund_to_the_original_stars_payment() {
    let app = stars_shop().await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    app.update(paid(2, ANNA, o.id, 100, "stxREFUND")).await;
    let url = format!("{}/admin/api/orders/{}/refund-source", app.base, o.id);
    let token = "test-admin-token-0123456789";
    let r = app.client.post(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let call = app.fake.bodies("refundstarpayment").pop().expect("refundStarPayment");
    assert_eq!(call["user_id"], ANNA);
    assert_eq!(call["telegram_payment_charge_id"], "stxREFUND");
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Refunded);
    assert_eq!(app.store().balance(ANNA).await.unwrap(), 0, "refunded to Stars, not to the balance");
    // Again: nothing more is refunded.
    let r = app.client.post(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.fake.bodies("refundstarpayment").len(), 1);
    // The same from the bot, by an admin; a balance-paid order is refused.
    app.credit(BOB, "500").await;
    app.update(press(3, BOB, "b:key")).await;
    let b = app.last_order(BOB).await;
    app.update(press(4, BOB, &format!("pb:{}", b.id))).await;
    app.update(message(5, ADMIN, "en", &format!("/refundstars {}", b.id))).await;
    assert!(app.fake.texts_to(ADMIN).last().unwrap().contains("not paid with Telegram Stars"));
    let r = app
        .client
        .post(format!("{}/admin/api/orders/{}/refund-source", app.base, b.id))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let check = app.store().check().await.unwrap();
    assert!(check.ok(), "{check}");
    app.stop().await;
}

#[tokio::test]
async fn without_stars_configured_no_stars_button_is_offered() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "b:key")).await;
    assert!(!buttons(&app.fake.last_to(ANNA)).iter().any(|b| b.starts_with("ps:")));
    app.stop().await;
}

#[tokio::test]
async fn the_mini_app_pays_with_stars_through_an_invoice_link() {
    use crate::web::{BOT_TOKEN, call, init_data};
    let app = stars_shop().await;
    let anna = format!("tma {}", init_data(BOT_TOKEN, ANNA, T0 / 1000 - 60));
    let bob = format!("tma {}", init_data(BOT_TOKEN, BOB, T0 / 1000 - 60));
    let post = reqwest::Method::POST;
    let (code, v) =
        call(&app.base, post.clone(), "/api/orders", Some(&anna), Some(json!({"product_id": "key"}))).await;
    assert_eq!(code, 201, "{v}");
    let id = v["order"]["id"].as_u64().unwrap();
    assert_eq!(v["order"]["stars"], 100, "the order shows its Stars price");
    // Stars are the shop's real provider: no free dev payment page next to them.
    assert!(v["order"]["pay_url"].is_null(), "{v}");
    let dev = reqwest::Client::new()
        .post(format!("{}/pay/dev/{}", app.base, v["order"]["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), 404);
    let path = format!("/api/orders/{id}/stars-invoice");
    // Someone else's order is not theirs to pay.
    let (code, _) = call(&app.base, post.clone(), &path, Some(&bob), None).await;
    assert_eq!(code, 404);
    let (code, v) = call(&app.base, post.clone(), &path, Some(&anna), None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["stars"], 100);
    assert_eq!(v["url"], format!("https://t.me/$invoice-order:{id}"));
    let link = app.fake.bodies("createinvoicelink").pop().expect("createInvoiceLink");
    assert_eq!((link["currency"].as_str(), link["prices"][0]["amount"].as_u64()), (Some("XTR"), Some(100)));
    assert_eq!(link["payload"], format!("order:{id}"));
    // Telegram then sends the same updates as for a chat invoice.
    app.update(pre_checkout(1, ANNA, id, 100)).await;
    assert_eq!(last_answer(&app)["ok"], true, "{}", last_answer(&app));
    app.update(paid(2, ANNA, id, 100, "stxMINIAPP")).await;
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Delivered);
    let (code, v) =
        call(&app.base, reqwest::Method::GET, &format!("/api/orders/{id}"), Some(&anna), None).await;
    assert_eq!(code, 200);
    assert!(v["stars"].is_null() && !v["contents"].as_array().unwrap().is_empty(), "{v}");
    // Paid now: no second invoice.
    let (code, _) = call(&app.base, post, &path, Some(&anna), None).await;
    assert_eq!(code, 409);
    app.stop().await;
}

#[tokio::test]
async fn without_stars_the_mini_app_is_told_so() {
    use crate::web::{BOT_TOKEN, call, init_data};
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    let anna = format!("tma {}", init_data(BOT_TOKEN, ANNA, T0 / 1000 - 60));
    let post = reqwest::Method::POST;
    let (_, v) =
        call(&app.base, post.clone(), "/api/orders", Some(&anna), Some(json!({"product_id": "key"}))).await;
    assert!(v["order"]["stars"].is_null(), "{v}");
    let id = v["order"]["id"].as_u64().unwrap();
    let (code, v) =
        call(&app.base, post, &format!("/api/orders/{id}/stars-invoice"), Some(&anna), None).await;
    assert_eq!(code, 409, "{v}");
    assert!(app.fake.bodies("createinvoicelink").is_empty());
    app.stop().await;
}
