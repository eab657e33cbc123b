//! One shop behind three doors: the behaviours that the bot, the web shop and the
//! consultant used to get differently, each driven through the real door (the binary's app
//! against the Bot API stand-in, the offline consultant, real redb and queue).

use crate::fake_telegram::Fail;
use crate::helpers::{SMALL, assert_check, jobs_of_kind, seed};
use crate::telegram::{ADMIN, ANNA, BOB, SUPPLIER_CHAT, TgApp, buttons, message, press, spawn_tg};
use lavka::domain::{JobKind, OrderStatus};
use lavka::store::jobs::EnqueueOpts;
use serde_json::{Value, json};
use std::time::Duration;

fn texts(app: &TgApp, chat: i64) -> Vec<String> {
    app.fake.texts_to(chat)
}

async fn orders_of(app: &TgApp, user: i64) -> Vec<lavka::domain::Order> {
    let f = lavka::store::orders::OrderFilter { user: Some(user), ..Default::default() };
    app.store().orders(f).await.unwrap()
}

#[tokio::test]
async fn a_buy_answered_under_a_429_storm_holds_one_item_per_customer() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.state.search.refresh().await.unwrap();
    // Every first answer is rate limited: the update job runs the use case again.
    for who in [ANNA, BOB] {
        app.fake.fail(Some(who), Fail::RetryAfter(1));
        app.fake.fail(Some(who), Fail::RetryAfter(1));
    }
    for (i, who) in [ANNA, BOB].into_iter().enumerate() {
        let u = message(100 + i as i64, who, "ru", "купить key");
        assert_eq!(app.post_webhook(Some(&app.secret()), &u).await, 200);
    }
    for _ in 0..4 {
        app.drain().await;
        app.clock.advance(Duration::from_secs(2));
    }
    app.drain().await;
    for who in [ANNA, BOB] {
        let live: Vec<_> =
            orders_of(&app, who).await.into_iter().filter(|o| o.status == OrderStatus::Reserved).collect();
        assert_eq!(live.len(), 1, "one reservation for {who}: {live:?}");
        assert!(texts(&app, who).iter().any(|t| t.contains(&format!("#{}", live[0].id))));
    }
    // The third customer still finds the last key.
    app.update(press(200, 5_551_000_003, "b:key")).await;
    assert_eq!(orders_of(&app, 5_551_000_003).await[0].status, OrderStatus::Reserved);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test]
async fn the_offer_puts_cancel_last_and_times_are_relative_in_the_readers_language() {
    let app = spawn_tg(|c| c.payments.dev_payments = Some(true)).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "b:key")).await;
    let ru = app.fake.last_to(ANNA);
    let text = ru["text"].as_str().unwrap();
    assert!(!text.contains("T") || !text.contains("Z"), "no raw UTC time: {text}");
    let b = buttons(&ru);
    assert!(b.last().unwrap().starts_with("x:"), "cancel last: {b:?}");
    assert!(b[0].starts_with("url:"), "paying comes first: {b:?}");
    let m = message(2, BOB, "ru", "/start");
    app.update(m).await;
    app.update(json_press(3, BOB, "ru", "b:key")).await;
    let t = app.fake.last_to(BOB)["text"].as_str().unwrap().to_string();
    assert!(t.contains("оплатите через 15 мин"), "{t}");
    assert!(t.contains("100\u{a0}₽"), "{t}");
    app.stop().await;
}

/// A button press from a user whose Telegram speaks `lang`.
fn json_press(update_id: i64, from: i64, lang: &str, data: &str) -> Value {
    let mut p = press(update_id, from, data);
    p["callback_query"]["from"]["language_code"] = json!(lang);
    p
}

#[tokio::test]
async fn admin_help_reaches_the_admin_whatever_its_angle_brackets() {
    let app = spawn_tg(|_| {}).await;
    app.update(message(1, ADMIN, "en", "/admin")).await;
    let t = app.fake.last_to(ADMIN)["text"].as_str().unwrap().to_string();
    assert!(t.contains("/addstock &lt;product&gt;"), "escaped by the renderer: {t}");
    let dead = jobs_of_kind(app.store(), |k| matches!(k, JobKind::ProcessUpdate { .. })).await;
    assert!(dead.iter().all(|j| j.state == lavka::domain::JobState::Done));
    app.stop().await;
}

#[tokio::test]
async fn refusals_reach_suppliers_in_their_own_language_never_as_internal_errors() {
    let cat = r#"{"currency": "RUB",
      "suppliers": [{"id": "ru", "name": "Р", "telegram_chat_id": 777},
                    {"id": "en", "name": "E", "telegram_chat_id": 888, "lang": "en"}],
      "products": [{"id": "pre", "title": "Pre", "price": 50, "fulfillment_hours": 48, "supplier": "ru"},
                   {"id": "pre2", "title": "Pre2", "price": 50, "fulfillment_hours": 48, "supplier": "en"}]}"#;
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), cat).await;
    let id = crate::telegram::paid_preorder(&app, ANNA, "pre").await;
    let id2 = crate::telegram::paid_preorder(&app, BOB, "pre2").await;
    assert!(texts(&app, 777).iter().any(|t| t.contains("Новый предзаказ")), "{:?}", texts(&app, 777));
    assert!(texts(&app, 888).iter().any(|t| t.contains("New pre-order")), "{:?}", texts(&app, 888));
    for i in 0..2 {
        app.update(message(10 + i, SUPPLIER_CHAT, "en", &format!("/fulfill {id} CODE"))).await;
    }
    let t = app.fake.last_to(SUPPLIER_CHAT)["text"].as_str().unwrap().to_string();
    assert_eq!(t, format!("Заказ #{id} не принят: он уже выполнен."));
    app.update(message(50, 888, "ru", &format!("/fulfill {id2}"))).await;
    assert!(app.fake.last_to(888)["text"].as_str().unwrap().starts_with("Usage: /fulfill"));
    app.stop().await;
}

#[tokio::test]
async fn a_paid_preorder_is_confirmed_once() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.credit(ANNA, "100").await;
    app.update(press(1, ANNA, "po:pre")).await;
    app.update(press(2, ANNA, "pc:pre")).await;
    let o = app.last_order(ANNA).await;
    let before = app.fake.messages_to(ANNA).len();
    app.update(press(3, ANNA, &format!("pb:{}", o.id))).await;
    app.drain().await;
    let after: Vec<String> = texts(&app, ANNA).into_iter().skip(before).collect();
    assert_eq!(after.len(), 1, "one confirmation: {after:?}");
    assert!(after[0].contains(&format!("Pre-order #{} is paid", o.id)), "{after:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_sticker_photo_or_voice_message_gets_a_short_answer() {
    let app = spawn_tg(|_| {}).await;
    for (i, (kind, body)) in [
        ("sticker", json!({"file_id": "S", "file_unique_id": "uS", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false})),
        ("voice", json!({"file_id": "V", "file_unique_id": "uV", "duration": 2})),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = message(1 + i as i64, ANNA, "ru", "");
        m["message"].as_object_mut().unwrap().remove("text");
        m["message"][kind] = body;
        app.update(m).await;
        let t = app.fake.last_to(ANNA)["text"].as_str().unwrap().to_string();
        assert!(t.contains("понимаю только текст"), "{kind}: {t}");
    }
    app.stop().await;
}

#[tokio::test]
async fn prices_read_as_a_russian_customer_expects_and_categories_in_english_for_english_readers() {
    let cat = r#"{"currency": "RUB", "products": [
        {"id": "w", "title": "Windows 11 Pro", "price": 2790, "category": "Программы", "category_en": "Software",
         "title_en": "Windows 11 Pro key"},
        {"id": "o", "title": "Office", "price": 4990.5, "category": "Программы", "category_en": "Software"},
        {"id": "g", "title": "Игра", "price": 100, "category": "Игры", "category_en": "Games"}],
      "stock": [{"product_id": "w", "items": ["W1"]}, {"product_id": "o", "items": ["O1"]}, {"product_id": "g", "items": ["G1"]}]}"#;
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), cat).await;
    app.update(json_press(1, ANNA, "ru", "c:2:0")).await;
    let m = app.fake.last_to(ANNA);
    let labels: Vec<String> = m["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap().to_string()))
        .collect();
    assert!(labels.contains(&"Windows 11 Pro — 2\u{a0}790\u{a0}₽".to_string()), "{labels:?}");
    assert!(labels.contains(&"Office — 4\u{a0}990,50\u{a0}₽".to_string()), "{labels:?}");
    app.update(json_press(2, BOB, "en", "c:0:0")).await;
    let cats = app.fake.last_to(BOB)["reply_markup"].to_string();
    assert!(cats.contains("Software (2)") && cats.contains("Games (1)"), "{cats}");
    app.update(json_press(3, BOB, "en", "p:w")).await;
    let card = app.fake.last_to(BOB)["text"].as_str().unwrap().to_string();
    assert!(card.contains("Windows 11 Pro key") && card.contains("2,790\u{a0}₽"), "{card}");
    app.stop().await;
}

#[tokio::test]
async fn a_late_refund_is_told_to_the_customer_the_supplier_and_the_admins_within_minutes() {
    let cat = r#"{"currency": "RUB",
      "suppliers": [{"id": "sup", "name": "Supplier", "telegram_chat_id": 777}],
      "products": [{"id": "fast", "title": "Fast", "price": 50, "fulfillment_minutes": 5, "supplier": "sup"}]}"#;
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), cat).await;
    let id = crate::telegram::paid_preorder(&app, ANNA, "fast").await;
    let o = app.store().order(id).await.unwrap();
    assert_eq!(o.deadline.unwrap() - o.paid_at.unwrap(), 5 * 60_000, "five minutes to deliver");
    app.clock.advance(Duration::from_secs(6 * 60));
    app.state.queue.enqueue(JobKind::RefundLatePrepaid, EnqueueOpts::default()).await.unwrap();
    app.drain().await;
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Refunded);
    assert!(texts(&app, ANNA).last().unwrap().contains("не выполнен вовремя"), "{:?}", texts(&app, ANNA));
    assert!(texts(&app, 777).last().unwrap().contains("не выполнен в срок"), "{:?}", texts(&app, 777));
    assert!(texts(&app, ADMIN).iter().any(|t| t.contains(&format!("#{id}")) && t.contains("Supplier")));
    // The sweep runs every minute.
    let every: Vec<(String, JobKind)> = lavka::queue::schedules("0 0 3 * * *");
    assert!(
        every.iter().any(|(cron, k)| *k == JobKind::RefundLatePrepaid && cron.split(' ').nth(1) == Some("*"))
    );
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test]
async fn a_second_stars_payment_for_a_paid_order_is_credited_and_said_so_truthfully() {
    let app = spawn_tg(|c| c.payments.stars_per_unit = 1.0).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    let paid = |update_id: i64, charge: &str| {
        let mut m = message(update_id, ANNA, "en", "");
        m["message"].as_object_mut().unwrap().remove("text");
        m["message"]["successful_payment"] = json!({"currency": "XTR", "total_amount": 100,
            "invoice_payload": format!("order:{}", o.id), "telegram_payment_charge_id": charge,
            "provider_payment_charge_id": ""});
        m
    };
    app.update(paid(2, "stxONE")).await;
    app.update(paid(3, "stxTWO")).await;
    app.drain().await;
    let all = texts(&app, ANNA).join("\n---\n");
    assert!(!all.contains("returned"), "the Stars were not returned: {all}");
    assert!(all.contains("already paid") && all.contains("credited to your balance"), "{all}");
    assert_eq!(all.matches("Your item").count(), 1, "delivered once: {all}");
    assert_eq!(app.store().balance(ANNA).await.unwrap(), 10_000);
    app.stop().await;
}

#[tokio::test]
async fn telegram_shows_typing_while_the_model_works() {
    let gemini = crate::fake_gemini::FakeGemini::start().await;
    *gemini.state.delay.lock().unwrap() = Some(Duration::from_millis(300));
    let url = gemini.url.clone();
    let app = spawn_tg(move |c| {
        c.ai.gemini_api_key = lavka::config::Secret::new(crate::fake_gemini::KEY);
        c.ai.gemini_base_url = url;
        c.ai.gemini_model = crate::fake_gemini::MODEL.into();
        c.ai.cache_min_tokens = 0;
    })
    .await;
    seed(app.store(), SMALL).await;
    gemini.then_ok(crate::fake_gemini::final_answer("", "show_products", Some("key")));
    app.update(message(1, ANNA, "en", "a key please")).await;
    let calls = app.fake.calls();
    let typing = calls.iter().position(|c| c.method == "sendchataction" && c.body["chat_id"] == ANNA);
    let reply = calls.iter().position(|c| c.method == "sendmessage" && c.body["chat_id"] == ANNA);
    assert!(typing.is_some() && typing < reply, "typing… before the answer");
    assert_eq!(calls[typing.unwrap()].body["action"], "typing");
    // With a key the consultant sells too: the model's offer → payment → delivery.
    app.credit(ANNA, "100").await;
    gemini.then_ok(crate::fake_gemini::final_answer("Good choice.", "offer_payment", Some("key")));
    app.update(message(2, ANNA, "en", "buy it")).await;
    let o = app.last_order(ANNA).await;
    assert_eq!(o.status, OrderStatus::Reserved);
    // "buy it" after one product was shown is the conversation's to answer (no model call).
    assert!(app.fake.last_to(ANNA)["text"].as_str().unwrap().contains(&format!("#{}", o.id)));
    app.update(press(3, ANNA, &format!("pb:{}", o.id))).await;
    app.drain().await;
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Delivered);
    assert!(texts(&app, ANNA).iter().any(|t| t.contains("<code>K")));
    app.stop().await;
}

#[tokio::test]
async fn a_shop_with_a_bot_gives_nothing_away_by_default() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    assert!(!app.state.payments.dev_enabled(), "no real provider, but a bot: the dev provider stays off");
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    let t = app.state.payments.token(o.id);
    let r = app.client.post(format!("{}/pay/dev/{}?t={t}", app.base, o.id)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Reserved);
    app.stop().await;
}
