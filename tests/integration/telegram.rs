//! The Telegram bot end to end: the real app (real redb, real queue) against the fake Bot
//! API. Updates go in through the webhook (or polling), jobs are drained by hand, and the
//! fake's log is what the customer would have seen.

use crate::fake_telegram::{Fail, FakeTelegram};
use crate::helpers::{SMALL, T0, assert_check, jobs_of_kind, pid, seed};
use lavka::app::{App, AppState, Parts};
use lavka::config::{Config, Secret};
use lavka::domain::{JobKind, JobState, OrderStatus};
use lavka::store::jobs::EnqueueOpts;
use lavka::store::{Clock, Store};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub const ANNA: i64 = 5_551_234_567;
pub const BOB: i64 = 5_551_000_002;
pub const ADMIN: i64 = 42;
pub const SUPPLIER_CHAT: i64 = 777;

pub struct TgApp {
    pub base: String,
    pub state: AppState,
    pub clock: Clock,
    pub fake: FakeTelegram,
    pub cancel: CancellationToken,
    pub dir: Arc<TempDir>,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub client: reqwest::Client,
}

/// Fast limits for functional tests; the limits test uses the defaults.
pub fn fast(c: &mut Config) {
    c.telegram_chat_interval_ms = 0;
    c.telegram_global_per_sec = 100_000;
    c.telegram_group_per_min = 100_000;
}

pub async fn spawn_tg(tweak: impl FnOnce(&mut Config)) -> TgApp {
    spawn_tg_in(Arc::new(tempfile::tempdir().unwrap()), None, tweak).await
}

pub async fn spawn_tg_in(
    dir: Arc<TempDir>,
    fake: Option<FakeTelegram>,
    tweak: impl FnOnce(&mut Config),
) -> TgApp {
    let fake = match fake {
        Some(f) => f,
        None => FakeTelegram::start().await,
    };
    let mut cfg = Config::for_tests(dir.path());
    cfg.telegram_token = Some(Secret::new("123456:TEST-token"));
    cfg.telegram_api_url = fake.base.clone();
    cfg.public_url = Some("https://shop.example.com".into());
    cfg.admin_ids = vec![ADMIN];
    cfg.telegram_poll_timeout_secs = 1;
    fast(&mut cfg);
    tweak(&mut cfg);
    let clock = Clock::manual(T0);
    fake.set_clock(clock.clone());
    // After a restart in the same process the previous store may still be closing (its
    // writer thread drops the database last): wait for it as a new process would not need to.
    let mut tries = 0;
    let app = loop {
        let parts = Parts { clock: Some(clock.clone()), ..Default::default() };
        match App::build(cfg.clone(), parts).await {
            Ok(app) => break app,
            Err(e) if tries < 100 && format!("{e:#}").contains("in use") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e:#}"),
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = app.state.clone();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.run(listener, cancel.clone()));
    TgApp { base, state, clock, fake, cancel, dir, server, client: reqwest::Client::new() }
}

pub fn user(id: i64, lang: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": "Anna", "language_code": lang})
}

pub fn message(update_id: i64, from: i64, lang: &str, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": update_id, "date": 1764150000,
        "chat": {"id": from, "type": "private", "first_name": "Anna"}, "from": user(from, lang), "text": text}})
}

pub fn press(update_id: i64, from: i64, data: &str) -> Value {
    json!({"update_id": update_id, "callback_query": {"id": format!("cq{update_id}"), "chat_instance": "1",
        "from": user(from, "en"), "data": data,
        "message": {"message_id": 1, "date": 1764150000, "chat": {"id": from, "type": "private", "first_name": "Anna"},
            "from": {"id": 7000000001i64, "is_bot": true, "first_name": "Shop"}, "text": "menu"}}})
}

/// The callback data of every button of a sent message.
pub fn buttons(msg: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for row in msg["reply_markup"]["inline_keyboard"].as_array().cloned().unwrap_or_default() {
        for b in row.as_array().cloned().unwrap_or_default() {
            if let Some(d) = b["callback_data"].as_str() {
                out.push(d.to_string());
            } else if let Some(u) = b["url"].as_str() {
                out.push(format!("url:{u}"));
            } else if let Some(u) = b["web_app"]["url"].as_str() {
                out.push(format!("web_app:{u}"));
            }
        }
    }
    out
}

impl TgApp {
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn secret(&self) -> String {
        self.state.telegram.as_ref().unwrap().webhook_secret().to_string()
    }

    pub async fn post_webhook(&self, secret: Option<&str>, body: &Value) -> u16 {
        let mut r = self.client.post(format!("{}/telegram/webhook", self.base)).json(body);
        if let Some(s) = secret {
            r = r.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        r.send().await.unwrap().status().as_u16()
    }

    /// Delivers an update through the webhook and runs the jobs it causes.
    pub async fn update(&self, u: Value) {
        assert_eq!(self.post_webhook(Some(&self.secret()), &u).await, 200);
        self.drain().await;
        let id = u["update_id"].as_i64().unwrap();
        for j in jobs_of_kind(
            self.store(),
            |k| matches!(k, JobKind::ProcessUpdate { update_id, .. } if *update_id == id),
        )
        .await
        {
            assert!(j.state != JobState::Dead && j.attempts == 0, "update {id} failed: {:?}", j.last_error);
        }
    }

    pub async fn drain(&self) -> usize {
        self.state.queue.drain().await.unwrap().len()
    }

    pub async fn stop(self) -> (Arc<TempDir>, FakeTelegram) {
        self.cancel.cancel();
        self.server.await.unwrap().unwrap();
        (self.dir, self.fake)
    }

    pub async fn credit(&self, user: i64, major: &str) {
        let amount = lavka::domain::Currency::RUB.parse_major(major).unwrap();
        self.store()
            .write(move |tx| {
                lavka::store::ledger::credit_balance(tx, user, amount, lavka::domain::Currency::RUB, "test")
            })
            .await
            .unwrap();
    }

    /// The newest order of a user.
    pub async fn last_order(&self, user: i64) -> lavka::domain::Order {
        let f = lavka::store::orders::OrderFilter { user: Some(user), limit: Some(1), ..Default::default() };
        self.store().orders(f).await.unwrap().into_iter().next().expect("an order")
    }
}

async fn process_update_jobs(store: &Store) -> usize {
    jobs_of_kind(store, |k| matches!(k, JobKind::ProcessUpdate { .. })).await.len()
}

/// Waits (up to `secs`) until polling has stored an update job; returns how many there are.
async fn polled_update_jobs(store: &Store, secs: u64) -> usize {
    for _ in 0..secs * 100 {
        let n = process_update_jobs(store).await;
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    0
}

// --- webhook and polling ---

#[tokio::test]
async fn a_webhook_call_without_the_right_secret_gets_401_and_stores_nothing() {
    let app = spawn_tg(|_| {}).await;
    let u = message(1, ANNA, "en", "/start");
    assert_eq!(app.post_webhook(None, &u).await, 401);
    assert_eq!(app.post_webhook(Some("wrong"), &u).await, 401);
    assert_eq!(app.post_webhook(Some(&format!("{}x", app.secret())), &u).await, 401);
    assert_eq!(process_update_jobs(app.store()).await, 0);
    assert_eq!(app.post_webhook(Some(&app.secret()), &json!({"no": "id"})).await, 400);
    assert_eq!(process_update_jobs(app.store()).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_webhook_is_registered_with_the_generated_secret_which_survives_a_restart() {
    let app = spawn_tg(|_| {}).await;
    let secret = app.secret();
    assert!(secret.len() >= 32);
    // setWebhook runs in the background at start.
    let mut set = Vec::new();
    for _ in 0..200 {
        set = app.fake.bodies("setwebhook");
        if !set.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(set[0]["url"], "https://shop.example.com/telegram/webhook");
    assert_eq!(set[0]["secret_token"], secret.as_str());
    assert!(set[0]["allowed_updates"].as_array().unwrap().iter().any(|u| u == "callback_query"));
    let (dir, fake) = app.stop().await;
    let again = spawn_tg_in(dir, Some(fake), |_| {}).await;
    assert_eq!(again.secret(), secret);
    again.stop().await;
}

#[tokio::test]
async fn the_same_update_twice_is_processed_once() {
    let app = spawn_tg(|_| {}).await;
    let u = message(10, ANNA, "en", "/help");
    assert_eq!(app.post_webhook(Some(&app.secret()), &u).await, 200);
    assert_eq!(app.post_webhook(Some(&app.secret()), &u).await, 200);
    assert_eq!(process_update_jobs(app.store()).await, 1);
    app.drain().await;
    assert_eq!(app.fake.texts_to(ANNA).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_acknowledged_update_is_processed_after_a_restart() {
    // Workers are off: the update is acknowledged (stored) and the process stops before any
    // processing — as a kill right after the 200 would leave it.
    let app = spawn_tg(|_| {}).await;
    assert_eq!(app.post_webhook(Some(&app.secret()), &message(20, ANNA, "ru", "/start")).await, 200);
    assert!(app.fake.texts_to(ANNA).is_empty());
    let (dir, fake) = app.stop().await;
    let again = spawn_tg_in(dir, Some(fake), |_| {}).await;
    again.drain().await;
    let texts = again.fake.texts_to(ANNA);
    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("Здравствуйте"), "{texts:?}");
    again.stop().await;
}

#[tokio::test]
async fn long_polling_feeds_the_same_job_path_and_keeps_its_offset() {
    let app = spawn_tg(|c| c.public_url = None).await;
    app.fake.push_update(message(500, ANNA, "en", "/help"));
    assert_eq!(polled_update_jobs(app.store(), 3).await, 1);
    assert_eq!(app.store().poll_offset().await.unwrap(), 501);
    app.drain().await;
    assert_eq!(app.fake.texts_to(ANNA).len(), 1);
    assert!(!app.fake.bodies("deletewebhook").is_empty());
    // No webhook route in polling mode.
    assert_eq!(app.post_webhook(Some("x"), &message(501, ANNA, "en", "/help")).await, 404);
    let (dir, fake) = app.stop().await;
    // Telegram sends the same update again (say the confirmation got lost): not re-processed.
    fake.push_update(message(500, ANNA, "en", "/help"));
    let again = spawn_tg_in(dir, Some(fake), |c| c.public_url = None).await;
    for _ in 0..100 {
        if again.fake.bodies("getupdates").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(process_update_jobs(again.store()).await, 1);
    again.stop().await;
}

#[tokio::test]
async fn long_polling_rides_out_telegram_5xx_and_loses_no_update() {
    let app = spawn_tg(|c| c.public_url = None).await;
    app.fake.fail_method("getupdates", Fail::Server(502, false));
    app.fake.fail_method("getupdates", Fail::Server(500, true));
    app.fake.push_update(message(700, ANNA, "en", "/help"));
    // Backoff 1 s then 2 s after the two failures.
    let n = polled_update_jobs(app.store(), 10).await;
    assert_eq!(n, 1, "calls: {:?}", app.fake.calls().iter().map(|c| (&c.method, c.ok)).collect::<Vec<_>>());
    assert!(app.fake.bodies("getupdates").len() >= 3);
    assert_eq!(app.store().poll_offset().await.unwrap(), 701);
    app.drain().await;
    assert_eq!(app.fake.texts_to(ANNA).len(), 1);
    app.stop().await;
}

// --- customers ---

#[tokio::test]
async fn start_greets_in_the_users_language_with_the_menu_and_the_mini_app() {
    let app = spawn_tg(|c| c.mini_app_url = Some("https://shop.example.com/app".into())).await;
    app.update(message(1, ANNA, "ru", "/start")).await;
    let m = app.fake.last_to(ANNA);
    assert!(m["text"].as_str().unwrap().contains("Здравствуйте"));
    assert_eq!(m["parse_mode"], "HTML");
    let b = buttons(&m);
    assert!(b.contains(&"c:0:0".to_string()), "{b:?}");
    assert!(b.contains(&"web_app:https://shop.example.com/app".to_string()), "{b:?}");
    app.update(message(2, BOB, "en", "/start")).await;
    assert!(app.fake.last_to(BOB)["text"].as_str().unwrap().contains("Hello"));
    // The user is remembered with their language and chat.
    let u = app.store().user(ANNA).await.unwrap().unwrap();
    assert_eq!(u.lang.as_deref(), Some("ru"));
    assert_eq!(app.store().telegram_user(ANNA).await.unwrap().chat_id, Some(ANNA));
    // /lang overrides Telegram's language.
    app.update(message(3, ANNA, "ru", "/lang en")).await;
    app.update(message(4, ANNA, "ru", "/help")).await;
    assert!(app.fake.last_to(ANNA)["text"].as_str().unwrap().contains("How to buy"));
    app.stop().await;
}

#[tokio::test]
async fn the_catalogue_pages_categories_and_products() {
    let app = spawn_tg(|_| {}).await;
    let mut products: Vec<Value> = (0..11)
        .map(|i| json!({"id": format!("soft-{i:02}"), "title": format!("Soft {i:02}"), "price": 10 + i, "category": "Software"}))
        .collect();
    products.push(json!({"id": "game", "title": "Game", "price": 5, "category": "Games"}));
    let stock: Vec<Value> =
        (0..11).map(|i| json!({"product_id": format!("soft-{i:02}"), "items": [format!("S{i}")]})).collect();
    seed(app.store(), &json!({"currency": "RUB", "products": products, "stock": stock}).to_string()).await;
    app.update(message(1, ANNA, "en", "/catalog")).await;
    let m = app.fake.last_to(ANNA);
    // Categories sorted by name: Games (1), Software (2); browsing replaces the message.
    assert_eq!(buttons(&m), vec!["~c:1:0", "~c:2:0"]);
    app.update(press(2, ANNA, "~c:2:0")).await;
    let page0 = buttons(&app.fake.last_to(ANNA));
    assert_eq!(page0.iter().filter(|b| b.starts_with("~p:")).count(), 8);
    assert!(page0.contains(&"~p:soft-00".to_string()));
    assert!(page0.contains(&"~c:2:1".to_string()), "{page0:?}");
    app.update(press(3, ANNA, "~c:2:1")).await;
    let page1 = buttons(&app.fake.last_to(ANNA));
    assert_eq!(page1.iter().filter(|b| b.starts_with("~p:")).count(), 3);
    assert!(page1.contains(&"~p:soft-10".to_string()));
    assert!(page1.contains(&"~c:2:0".to_string()) && page1.contains(&"~c:0:0".to_string()), "{page1:?}");
    // One message for the whole walk: the first, then edits of the pressed one.
    assert_eq!(app.fake.bodies("sendmessage").len(), 1);
    let edits = app.fake.bodies("editmessagetext");
    assert_eq!(edits.len(), 2);
    assert!(edits.iter().all(|e| e["message_id"] == 1 && e["chat_id"] == ANNA), "{edits:?}");
    // The card replaces the page too; its Buy answers with a new message (the card stays).
    app.update(press(4, ANNA, "~p:soft-10")).await;
    let card = app.fake.last_to(ANNA);
    assert_eq!(card["message_id"], 1);
    // "Back" returns to the page the product is listed on.
    assert_eq!(buttons(&card), vec!["b:soft-10", "~c:2:1"]);
    app.update(press(5, ANNA, "b:soft-10")).await;
    assert_eq!(app.fake.bodies("sendmessage").len(), 2);
    // A button on an old message Telegram will not edit: the answer comes as a new message.
    app.fake.fail_method("editmessagetext", Fail::BadRequest("message can't be edited"));
    app.update(press(6, ANNA, "~c:1:0")).await;
    assert_eq!(app.fake.bodies("sendmessage").len(), 3);
    assert!(buttons(&app.fake.last_to(ANNA)).contains(&"~p:game".to_string()));
    // Pressing what is already shown is fine ("message is not modified").
    app.fake.fail_method(
        "editmessagetext",
        Fail::BadRequest(
            "message is not modified: specified new message content and reply markup are exactly the same",
        ),
    );
    app.update(press(7, ANNA, "~c:1:0")).await;
    assert_eq!(app.fake.bodies("sendmessage").len(), 3);
    // Buttons of messages sent before in-place browsing still work (as new messages).
    app.update(press(8, ANNA, "c:2:0")).await;
    assert_eq!(app.fake.bodies("sendmessage").len(), 4);
    // Every button press is answered.
    assert_eq!(app.fake.bodies("answercallbackquery").len(), 7);
    app.stop().await;
}

#[tokio::test]
async fn the_product_card_shows_price_with_discount_and_stock_or_preorder_time() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "p:sale")).await;
    let m = app.fake.last_to(ANNA);
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("<s>99.90\u{a0}₽</s> <b>89.91\u{a0}₽</b> (−10%)"), "{text}");
    assert!(text.contains("In stock: 2"), "{text}");
    assert!(buttons(&m).contains(&"b:sale".to_string()));
    app.update(press(2, ANNA, "p:pre")).await;
    let m = app.fake.last_to(ANNA);
    assert!(m["text"].as_str().unwrap().contains("pre-order, delivered within 48 h"), "{m}");
    assert!(buttons(&m).contains(&"po:pre".to_string()));
    app.stop().await;
}

#[tokio::test]
async fn buy_reserves_and_offers_payment_then_the_balance_pays_and_the_item_is_delivered_once() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.credit(ANNA, "150").await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    assert_eq!(o.status, OrderStatus::Reserved);
    let offer = app.fake.last_to(ANNA);
    assert!(offer["text"].as_str().unwrap().contains(&format!("#{}", o.id)));
    assert!(offer["text"].as_str().unwrap().contains("100\u{a0}₽"), "{offer}");
    let b = buttons(&offer);
    assert!(b.contains(&format!("pb:{}", o.id)) && b.contains(&format!("x:{}", o.id)), "{b:?}");
    assert!(!b.iter().any(|b| b.contains("/pay/dev/")), "no dev link unless enabled: {b:?}");
    // A second press (or the update run again) shows the same reservation.
    app.update(press(2, ANNA, "b:key")).await;
    assert_eq!(app.last_order(ANNA).await.id, o.id);
    // Pay from balance → paid → the delivery job sends the key in a copyable block.
    app.update(press(3, ANNA, &format!("pb:{}", o.id))).await;
    let delivered = app.store().order(o.id).await.unwrap();
    assert_eq!(delivered.status, OrderStatus::Delivered);
    let msgs = app.fake.messages_to(ANNA);
    let delivery = msgs.iter().find(|m| m["text"].as_str().unwrap().contains("<code>K")).expect("a delivery");
    assert_eq!(delivery["parse_mode"], "HTML");
    assert!(delivered.delivery_message_id.is_some());
    assert_eq!(app.store().balance(ANNA).await.unwrap(), 5_000);
    // A second delivery attempt of the same order sends nothing.
    let before = app.fake.messages_to(ANNA).len();
    app.store()
        .write(move |tx| {
            lavka::store::jobs::enqueue(tx, JobKind::DeliverOrder { order_id: o.id }, EnqueueOpts::default())
        })
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.fake.messages_to(ANNA).len(), before);
    crate::helpers::assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test]
async fn the_delivery_message_id_is_the_one_telegram_returned() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.credit(ANNA, "100").await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    let n_before = app.fake.calls().iter().filter(|c| c.method == "sendmessage").count();
    app.update(press(2, ANNA, &format!("pb:{}", o.id))).await;
    // Message ids of the fake count up from 1000 over every sendMessage: the delivery is the
    // last one (the "paid" reply comes before it).
    let n_after = app.fake.calls().iter().filter(|c| c.method == "sendmessage").count();
    assert_eq!(n_after, n_before + 2);
    let id = app.store().order(o.id).await.unwrap().delivery_message_id.unwrap();
    assert_eq!(id, 1000 + n_after as i64 - 1);
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_outcome_is_unknown_is_never_sent_twice() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    let id = reserved_key_order(&app).await;
    // Paid, and a previous run set the mark and died before recording the outcome.
    app.store()
        .write(move |tx| {
            lavka::store::orders::pay_from_balance(tx, id, ANNA)?;
            lavka::store::telegram::begin_delivery(tx, id)
        })
        .await
        .unwrap();
    app.drain().await;
    assert!(app.fake.texts_to(ANNA).iter().all(|t| !t.contains("<code>")));
    let after = app.store().order(id).await.unwrap();
    assert_eq!(after.status, OrderStatus::Delivered);
    assert_eq!(after.delivery_message_id, None);
    // The admin is told and can resend by hand.
    assert!(app.fake.texts_to(ADMIN).iter().any(|t| t.contains(&format!("/redeliver {id}"))));
    app.update(message(5, ADMIN, "en", &format!("/redeliver {id}"))).await;
    assert_eq!(app.fake.texts_to(ANNA).iter().filter(|t| t.contains("<code>K")).count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_preorder_needs_consent_then_waits_for_payment() {
    let app = spawn_tg(|c| c.payments.dev_payments = Some(true)).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "po:pre")).await;
    let consent = app.fake.last_to(ANNA);
    assert!(consent["text"].as_str().unwrap().contains("48 h"));
    assert!(buttons(&consent).contains(&"pc:pre".to_string()));
    assert!(app.store().orders(Default::default()).await.unwrap().is_empty(), "no order before consent");
    app.update(press(2, ANNA, "pc:pre")).await;
    let o = app.last_order(ANNA).await;
    assert_eq!(o.status, OrderStatus::AwaitingPayment);
    let b = buttons(&app.fake.last_to(ANNA));
    assert!(
        b.contains(&format!(
            "url:https://shop.example.com/pay/{}?t={}",
            o.id,
            app.state.payments.token(o.id)
        )),
        "the payment page when a link provider is enabled: {b:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn free_text_goes_to_the_real_consultant_then_offer_payment_and_delivery() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.state.search.refresh().await.unwrap();
    app.credit(ANNA, "100").await;
    app.update(message(1, ANNA, "en", "key")).await;
    let m = app.fake.last_to(ANNA);
    assert!(m["text"].as_str().unwrap().contains("Key"), "{m}");
    assert!(buttons(&m).contains(&"b:key".to_string()), "{:?}", buttons(&m));
    // "buy key" reserves, and the same words again show the same order.
    app.update(message(2, ANNA, "en", "buy key")).await;
    let offer = app.fake.last_to(ANNA);
    let o = app.last_order(ANNA).await;
    assert_eq!(o.status, OrderStatus::Reserved);
    assert!(offer["text"].as_str().unwrap().contains(&format!("#{}", o.id)), "{offer}");
    app.update(message(3, ANNA, "en", "buy key")).await;
    assert_eq!(app.last_order(ANNA).await.id, o.id, "a repeated buy reuses the reservation");
    let b = buttons(&app.fake.last_to(ANNA));
    assert_eq!(b.last().unwrap(), &format!("x:{}", o.id), "cancel is the last button: {b:?}");
    app.update(press(4, ANNA, &format!("pb:{}", o.id))).await;
    app.drain().await;
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Delivered);
    assert_eq!(items_sent_to(&app, ANNA), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_long_message_is_split_under_telegrams_limit() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    let id = paid_preorder(&app, ANNA, "pre").await;
    let long: String = (0..900).map(|i| format!("line {i:04}\n")).collect();
    let content = long.clone();
    app.store()
        .write(move |tx| lavka::store::orders::fulfill_prepaid_order(tx, id, &content, None))
        .await
        .unwrap();
    app.drain().await;
    let msgs: Vec<Value> = app
        .fake
        .messages_to(ANNA)
        .into_iter()
        .filter(|m| m["text"].as_str().unwrap().contains("line "))
        .collect();
    assert!(msgs.len() >= 3, "{}", msgs.len());
    assert!(msgs.iter().all(|m| m["text"].as_str().unwrap().chars().count() <= 4096));
    let joined: String = msgs.iter().map(|m| m["text"].as_str().unwrap()).collect();
    for i in [0, 450, 899] {
        assert!(joined.contains(&format!("line {i:04}")), "line {i} is missing");
    }
    app.stop().await;
}

// --- limits and failures ---

#[tokio::test]
async fn a_429_reschedules_the_delivery_at_retry_after_and_it_later_succeeds() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.credit(ANNA, "100").await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    app.update(press(2, ANNA, &format!("pb:{}", o.id))).await;
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Delivered);
    // A second purchase whose delivery hits the limit.
    app.fake.fail(Some(ANNA), Fail::RetryAfter(7));
    let id2 = paid_key_order(&app).await;
    app.drain().await;
    assert_eq!(app.store().order(id2).await.unwrap().status, OrderStatus::Paid);
    let job = jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: id2 }).await.remove(0);
    assert_eq!(job.state, JobState::Ready);
    assert_eq!(job.run_at, app.store().now() + 7_000);
    assert_eq!(job.attempts, 0, "a rate limit is not a failure");
    app.clock.advance(Duration::from_secs(7));
    app.drain().await;
    assert_eq!(app.store().order(id2).await.unwrap().status, OrderStatus::Delivered);
    app.stop().await;
}

/// ANNA, credited enough, with a reserved `key`.
async fn reserved_key_order(app: &TgApp) -> u64 {
    app.credit(ANNA, "100").await;
    let o = app
        .store()
        .write(|tx| lavka::store::orders::reserve_product_for_purchase(tx, ANNA, &pid("key"), 1, 60_000))
        .await
        .unwrap();
    o.id
}

/// A paid order of ANNA's whose delivery job is queued (nothing run yet).
async fn paid_key_order(app: &TgApp) -> u64 {
    let id = reserved_key_order(app).await;
    app.store().write(move |tx| lavka::store::orders::pay_from_balance(tx, id, ANNA)).await.unwrap();
    id
}

fn items_sent_to(app: &TgApp, chat: i64) -> usize {
    app.fake.texts_to(chat).iter().filter(|t| t.contains("<code>")).count()
}

#[tokio::test]
async fn telegram_5xx_on_a_delivery_is_retried_with_backoff_and_delivered_once() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    // A gateway's HTML 502, then the Bot API's own JSON 500.
    app.fake.fail(Some(ANNA), Fail::Server(502, false));
    app.fake.fail(Some(ANNA), Fail::Server(500, true));
    let id = paid_key_order(&app).await;

    let job_of = || async {
        jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: id }).await.remove(0)
    };
    for (attempt, status) in [(1, "502"), (2, "500")] {
        app.drain().await;

        let job = job_of().await;
        assert_eq!(job.state, JobState::Ready, "retried, not given up: {job:?}");
        assert_eq!(job.attempts, attempt);
        assert!(job.last_error.as_deref().unwrap_or("").contains(status), "{job:?}");
        assert!(job.run_at > app.store().now(), "with a backoff");
        // Nothing sent means nothing marked: the retry sends.
        let o = app.store().order(id).await.unwrap();
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(items_sent_to(&app, ANNA), 0);
        app.clock.advance(Duration::from_secs(3600));
    }
    app.drain().await;
    let o = app.store().order(id).await.unwrap();
    assert_eq!(o.status, OrderStatus::Delivered);
    assert!(o.delivery_message_id.is_some());
    assert_eq!(items_sent_to(&app, ANNA), 1);
    assert_eq!(job_of().await.state, JobState::Done);
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("lavka_telegram_errors_total{kind=\"transient\"}"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_reply_hit_by_a_5xx_is_sent_when_the_update_runs_again() {
    let app = spawn_tg(|_| {}).await;
    app.fake.fail(Some(BOB), Fail::Server(503, false));
    assert_eq!(app.post_webhook(Some(&app.secret()), &message(1, BOB, "en", "/help")).await, 200);
    app.drain().await;
    let upd = || async {
        jobs_of_kind(app.store(), |k| matches!(k, JobKind::ProcessUpdate { update_id: 1, .. }))
            .await
            .remove(0)
    };
    let job = upd().await;
    assert_eq!((job.state, job.attempts), (JobState::Ready, 1), "{job:?}");
    assert!(app.fake.texts_to(BOB).is_empty());
    app.clock.advance(Duration::from_secs(3600));
    app.drain().await;
    assert_eq!(upd().await.state, JobState::Done);
    assert_eq!(app.fake.texts_to(BOB).len(), 1, "answered once: {:?}", app.fake.texts_to(BOB));
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_whose_answer_never_comes_is_not_repeated_and_the_admins_are_told() {
    let app = spawn_tg(|c| c.telegram_send_timeout_secs = 1).await;
    seed(app.store(), SMALL).await;
    // Telegram takes the message but its answer is lost (here: it comes after the timeout).
    app.fake.fail(Some(ANNA), Fail::SlowAnswer(Duration::from_secs(3)));
    let id = paid_key_order(&app).await;
    app.drain().await;
    let job = jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: id }).await.remove(0);
    assert_eq!(job.state, JobState::Ready, "{job:?}");
    assert!(job.last_error.as_deref().unwrap_or("").contains("timed out"), "{job:?}");
    app.clock.advance(Duration::from_secs(3600));
    app.drain().await;
    let o = app.store().order(id).await.unwrap();
    assert_eq!(o.status, OrderStatus::Delivered, "settled without a second send");
    assert_eq!(o.delivery_message_id, None);
    assert_eq!(items_sent_to(&app, ANNA), 1, "the customer got it once");
    assert!(app.fake.texts_to(ADMIN).iter().any(|t| t.contains(&format!("/redeliver {id}"))));
    app.stop().await;
}

#[tokio::test]
async fn a_paid_order_of_a_customer_who_blocked_the_bot_waits_alerts_the_admins_and_is_delivered_on_return() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.update(message(1, ANNA, "en", "/start")).await;
    app.fake.fail(Some(ANNA), Fail::Blocked);
    let id = paid_key_order(&app).await;
    app.drain().await;
    assert!(app.store().user(ANNA).await.unwrap().unwrap().unreachable);
    let job = jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: id }).await.remove(0);
    assert_eq!(job.state, JobState::Done, "not retried while the customer cannot be reached");
    let sends =
        app.fake.calls().iter().filter(|c| c.method == "sendmessage" && c.body["chat_id"] == ANNA).count();
    assert_eq!(sends, 2, "the greeting and one refused delivery");
    assert!(
        app.fake.texts_to(ADMIN).iter().any(|t| t.contains(&format!("#{id}")) && t.contains("заблокировал")),
        "the admins are told: {:?}",
        app.fake.texts_to(ADMIN)
    );
    assert_check(app.store()).await;
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Paid);
    // The customer comes back: the goods go out once.
    app.update(message(10, ANNA, "en", "hi again")).await;
    app.drain().await;
    let dj = jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: id }).await;
    assert_eq!(
        app.store().order(id).await.unwrap().status,
        OrderStatus::Delivered,
        "{dj:?} {:?}",
        app.fake.texts_to(ANNA)
    );
    assert_eq!(items_sent_to(&app, ANNA), 1);
    // A reply to a blocked user ends its update job quietly.
    app.fake.fail(Some(BOB), Fail::Blocked);
    app.update(message(2, BOB, "en", "/help")).await;
    assert!(app.store().user(BOB).await.unwrap().unwrap().unreachable);
    let upd = jobs_of_kind(app.store(), |k| matches!(k, JobKind::ProcessUpdate { update_id: 2, .. }))
        .await
        .remove(0);
    assert_eq!(upd.state, JobState::Done);
    // Writing to the bot again makes them reachable.
    app.update(message(3, BOB, "en", "/help")).await;
    assert!(!app.store().user(BOB).await.unwrap().unwrap().unreachable);
    app.stop().await;
}

#[tokio::test]
async fn a_429_storm_on_50_deliveries_delivers_all_and_the_log_keeps_the_limits() {
    // Default limits: 30 messages a second overall, one a second per chat.
    let app = spawn_tg(|c| {
        c.telegram_chat_interval_ms = 1000;
        c.telegram_global_per_sec = 30;
        c.telegram_group_per_min = 20;
    })
    .await;
    let items: Vec<String> = (0..50).map(|i| format!("ITEM-{i}")).collect();
    seed(
        app.store(),
        &json!({"currency": "RUB", "products": [{"id": "key", "title": "Key", "price": 1}],
            "stock": [{"product_id": "key", "items": items}]})
        .to_string(),
    )
    .await;
    let users: Vec<i64> = (0..50).map(|i| 9_000_000 + i).collect();
    for (i, &u) in users.iter().enumerate() {
        if i % 3 == 0 {
            app.fake.fail(Some(u), Fail::RetryAfter(1 + (i % 2) as u32));
        }
        app.credit(u, "1").await;
        app.store()
            .write(move |tx| {
                let o = lavka::store::orders::reserve_product_for_purchase(tx, u, &pid("key"), 1, 60_000)?;
                lavka::store::orders::pay_from_balance(tx, o.id, u)
            })
            .await
            .unwrap();
    }
    // The shop's clock moves in 50 ms steps; the sender books slots on it and the queue
    // runs each job at its slot.
    for _ in 0..400 {
        app.drain().await;
        app.clock.advance(Duration::from_millis(50));
    }
    for &u in &users {
        assert_eq!(app.fake.texts_to(u).len(), 1, "user {u} got exactly one delivery");
    }
    let sends: Vec<_> = app.fake.calls().into_iter().filter(|c| c.method == "sendmessage").collect();
    assert_eq!(sends.len(), 50 + 17);
    // Never more than 30 in any second, never two to one chat within a second; a 429's
    // chat is quiet for exactly its retry_after.
    let at = |c: &crate::fake_telegram::Call| c.clock_ms.unwrap();
    for (i, c) in sends.iter().enumerate() {
        let window = sends[i..].iter().take_while(|d| at(d) - at(c) < 1000).count();
        assert!(window <= 30, "{window} sends within one second");
        if let Some(next) = sends[i + 1..].iter().find(|d| d.body["chat_id"] == c.body["chat_id"]) {
            let gap = at(next) - at(c);
            if c.ok {
                assert!(gap >= 1000, "two sends to one chat {gap} ms apart");
            } else {
                let chat = c.body["chat_id"].as_i64().unwrap();
                let retry = 1000 * (1 + ((chat - 9_000_000) % 2));
                assert!(gap >= retry, "a 429 of {retry} ms was followed {gap} ms later");
                assert!(gap < retry + 1000, "a 429 of {retry} ms was waited {gap} ms");
            }
        }
    }
    let (first, last) = (at(&sends[0]), at(sends.last().unwrap()));
    // 67 sends at 30 a second: the whole storm takes about as long as the limits make it.
    assert!(last - first <= 4000, "the storm took {} ms of the shop's clock", last - first);
    crate::helpers::assert_check(app.store()).await;
    app.stop().await;
}

// --- suppliers ---

pub async fn paid_preorder(app: &TgApp, user: i64, product: &str) -> u64 {
    app.credit(user, "100").await;
    let p = pid(product);
    let o = app
        .store()
        .write(move |tx| {
            let o = lavka::store::orders::create_order_with_availability_check(
                tx,
                user,
                &p,
                1,
                lavka::domain::OrderKind::Prepaid,
                60_000,
            )?;
            lavka::store::orders::pay_from_balance(tx, o.id, user)
        })
        .await
        .unwrap();
    app.drain().await;
    o.order.id
}

const TWO_SUPPLIERS: &str = r#"{"currency": "RUB",
  "suppliers": [{"id": "sup", "name": "S", "telegram_chat_id": 777}, {"id": "other", "name": "O", "telegram_chat_id": 888}],
  "products": [{"id": "pre", "title": "Pre", "price": 50, "fulfillment_hours": 48, "supplier": "sup"},
               {"id": "pre2", "title": "Pre2", "price": 50, "fulfillment_hours": 48, "supplier": "other"}]}"#;

#[tokio::test]
async fn a_supplier_fulfils_their_own_order_and_not_anyone_elses() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), TWO_SUPPLIERS).await;
    let id = paid_preorder(&app, ANNA, "pre").await;
    let note = app.fake.last_to(SUPPLIER_CHAT);
    assert!(note["text"].as_str().unwrap().contains(&format!("#{id}")));
    assert!(app.fake.texts_to(ANNA).iter().any(|t| t.contains("Pre-order") || t.contains("Предзаказ")));
    // The other supplier can neither see nor fulfil it.
    app.update(message(1, 888, "en", &format!("/fulfill {id} FAKE"))).await;
    // Suppliers read their own language (the shop's default here).
    assert!(app.fake.last_to(888)["text"].as_str().unwrap().contains("не принят"));
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Prepaid);
    app.update(message(2, 888, "en", "/preorders")).await;
    assert!(!app.fake.last_to(888)["text"].as_str().unwrap().contains(&format!("#{id}")));
    app.update(message(3, SUPPLIER_CHAT, "en", "/preorders")).await;
    assert!(app.fake.last_to(SUPPLIER_CHAT)["text"].as_str().unwrap().contains(&format!("#{id}")));
    // Its own supplier can.
    app.update(message(4, SUPPLIER_CHAT, "en", &format!("/fulfill {id} CODE-<123>&"))).await;
    assert!(app.fake.last_to(SUPPLIER_CHAT)["text"].as_str().unwrap().contains("принят"));
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Delivered);
    assert!(app.fake.last_to(ANNA)["text"].as_str().unwrap().contains("<code>CODE-&lt;123&gt;&amp;</code>"));
    app.stop().await;
}

#[tokio::test]
async fn a_supplier_can_reply_to_the_notification_with_text_or_a_file() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), TWO_SUPPLIERS).await;
    let first = paid_preorder(&app, ANNA, "pre").await;
    let second = paid_preorder(&app, BOB, "pre").await;
    let notes = app.fake.texts_to(SUPPLIER_CHAT);
    let note = notes.iter().find(|t| t.contains(&format!("#{first}"))).unwrap().clone();
    let reply = json!({"update_id": 10, "message": {"message_id": 10, "date": 1764150000,
        "chat": {"id": SUPPLIER_CHAT, "type": "private", "first_name": "S"}, "from": user(SUPPLIER_CHAT, "ru"),
        "text": "ACCOUNT login:pass",
        "reply_to_message": {"message_id": 5, "date": 1764150000, "chat": {"id": SUPPLIER_CHAT, "type": "private", "first_name": "S"},
            "from": {"id": 7000000001i64, "is_bot": true, "first_name": "Shop"}, "text": note}}});
    app.update(reply).await;
    assert_eq!(app.store().order(first).await.unwrap().status, OrderStatus::Delivered);
    assert!(app.fake.last_to(ANNA)["text"].as_str().unwrap().contains("<code>ACCOUNT login:pass</code>"));
    // A text file with the order in the caption.
    app.fake.add_file("F1", b"LICENSE-FILE-LINE\n");
    let doc = json!({"update_id": 11, "message": {"message_id": 11, "date": 1764150000,
        "chat": {"id": SUPPLIER_CHAT, "type": "private", "first_name": "S"}, "from": user(SUPPLIER_CHAT, "ru"),
        "caption": format!("#{second}"),
        "document": {"file_id": "F1", "file_unique_id": "uF1", "file_name": "key.txt", "file_size": 18}}});
    app.update(doc).await;
    assert_eq!(app.store().order(second).await.unwrap().status, OrderStatus::Delivered);
    assert!(app.fake.last_to(BOB)["text"].as_str().unwrap().contains("LICENSE-FILE-LINE"));
    app.stop().await;
}

#[tokio::test]
async fn a_late_preorder_is_refunded_and_the_customer_told_the_new_balance() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), TWO_SUPPLIERS).await;
    let id = paid_preorder(&app, ANNA, "pre").await;
    app.clock.advance(Duration::from_secs(49 * 3600));
    app.state.queue.enqueue(JobKind::RefundLatePrepaid, EnqueueOpts::default()).await.unwrap();
    app.drain().await;
    assert_eq!(app.store().order(id).await.unwrap().status, OrderStatus::Refunded);
    let t = app.fake.last_to(ANNA)["text"].as_str().unwrap().to_string();
    assert!(t.contains(&format!("#{id}")) && t.contains("100\u{a0}₽"), "{t}");
    app.stop().await;
}

// --- admins ---

#[tokio::test]
async fn admin_commands_are_refused_for_everyone_else() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    for (i, cmd) in
        ["/stats", "/addstock key\nX1", "/refund 1", "/backup", "/broadcast hi", "/jobs"].iter().enumerate()
    {
        app.update(message(i as i64 + 1, ANNA, "en", cmd)).await;
        assert!(app.fake.last_to(ANNA)["text"].as_str().unwrap().contains("for the shop's admins"), "{cmd}");
    }
    assert_eq!(app.store().availability(pid("key")).await.unwrap().available, 3);
    assert!(app.fake.bodies("senddocument").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn admins_manage_stock_orders_jobs_and_backups_from_the_chat() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    app.update(message(1, ADMIN, "en", "/addstock key\nNEW-1\nNEW-2\nK1")).await;
    assert!(app.fake.last_to(ADMIN)["text"].as_str().unwrap().contains("Added 2, duplicates skipped 1"));
    app.update(message(2, ADMIN, "en", "/stock key")).await;
    assert!(app.fake.last_to(ADMIN)["text"].as_str().unwrap().contains("available 5"));
    app.credit(ANNA, "100").await;
    let o = app
        .store()
        .write(|tx| {
            let o = lavka::store::orders::reserve_product_for_purchase(tx, ANNA, &pid("key"), 1, 60_000)?;
            lavka::store::orders::pay_from_balance(tx, o.id, ANNA)
        })
        .await
        .unwrap()
        .order;
    app.drain().await;
    app.update(message(3, ADMIN, "en", &format!("/order {}", o.id))).await;
    let t = app.fake.last_to(ADMIN)["text"].as_str().unwrap().to_string();
    assert!(t.contains("delivered") && t.contains("<code>K1</code>"), "{t}");
    app.update(message(4, ADMIN, "en", &format!("/refund {} goodwill", o.id))).await;
    assert!(app.fake.last_to(ADMIN)["text"].as_str().unwrap().contains("refunded"));
    assert_eq!(app.store().order(o.id).await.unwrap().status, OrderStatus::Refunded);
    app.update(message(5, ADMIN, "en", "/stats")).await;
    assert!(app.fake.last_to(ADMIN)["text"].as_str().unwrap().contains("refunded: 1"));
    // A dead job is listed with a retry command that works.
    let dead = app
        .store()
        .write(|tx| {
            lavka::store::jobs::enqueue(tx, JobKind::DeliverOrder { order_id: 9999 }, EnqueueOpts::default())
        })
        .await
        .unwrap()
        .id;
    app.drain().await;
    assert_eq!(app.store().job(dead).await.unwrap().unwrap().state, JobState::Dead);
    app.update(message(6, ADMIN, "en", "/jobs")).await;
    assert!(app.fake.last_to(ADMIN)["text"].as_str().unwrap().contains(&format!("/retry_{dead}")));
    app.update(message(7, ADMIN, "en", &format!("/retry_{dead}"))).await;
    assert!(app.fake.texts_to(ADMIN).iter().any(|t| t.contains(&format!("Job #{dead}"))));
    app.update(message(8, ADMIN, "en", "/backup")).await;
    let docs = app.fake.bodies("senddocument");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["chat_id"], ADMIN);
    assert!(docs[0]["bytes"].as_u64().unwrap() > 1000);
    app.stop().await;
}

#[tokio::test]
async fn a_broadcast_reaches_every_reachable_customer_once_and_resumes_after_a_rate_limit() {
    let app = spawn_tg(|_| {}).await;
    let users: Vec<i64> = (1..=6).map(|i| 100 + i).collect();
    for &u in &users {
        app.store()
            .write(move |tx| lavka::store::ledger::ensure_user(tx, u, None).map(|_| ()))
            .await
            .unwrap();
    }
    // 106 blocked the bot long ago; 103 hits a rate limit; 105 blocks it now.
    app.store().write(|tx| lavka::store::telegram::set_unreachable(tx, 106, true)).await.unwrap();
    app.fake.fail(Some(103), Fail::RetryAfter(30));
    app.fake.fail(Some(105), Fail::Blocked);
    app.update(message(1, ADMIN, "en", "/broadcast Big sale today!")).await;
    assert!(app.fake.texts_to(ADMIN).iter().any(|t| t.contains("Broadcast #1")));
    assert_eq!(app.fake.texts_to(101), vec!["Big sale today!"]);
    assert!(app.fake.texts_to(104).is_empty(), "stopped at the rate limit");
    let b = app.store().broadcast(1).await.unwrap();
    assert_eq!(b.cursor, Some(102));
    app.clock.advance(Duration::from_secs(30));
    app.drain().await;
    for u in [101, 102, 103, 104, ADMIN] {
        assert_eq!(app.fake.texts_to(u).iter().filter(|t| *t == "Big sale today!").count(), 1, "user {u}");
    }
    assert!(app.fake.texts_to(106).is_empty());
    assert!(app.store().user(105).await.unwrap().unwrap().unreachable);
    let b = app.store().broadcast(1).await.unwrap();
    assert!(b.finished_at.is_some());
    assert_eq!((b.sent, b.unreachable), (5, 1));
    // The same command processed again does not start a second broadcast.
    let before = app.fake.calls().len();
    app.store()
        .write(|tx| lavka::store::telegram::create_broadcast(tx, "Big sale today!", "update:1").map(|_| ()))
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.fake.calls().len(), before);
    app.stop().await;
}

// --- measurement (not run by default) ---

async fn paid_orders(app: &TgApp, n: i64) {
    let items: Vec<String> = (0..n).map(|i| format!("ITEM-{i}")).collect();
    seed(
        app.store(),
        &json!({"currency": "RUB", "products": [{"id": "key", "title": "Key", "price": 1}],
            "stock": [{"product_id": "key", "items": items}]})
        .to_string(),
    )
    .await;
    for i in 0..n {
        let u = 9_000_000 + i;
        app.credit(u, "1").await;
        app.store()
            .write(move |tx| {
                let o = lavka::store::orders::reserve_product_for_purchase(tx, u, &pid("key"), 1, 60_000)?;
                lavka::store::orders::pay_from_balance(tx, o.id, u)
            })
            .await
            .unwrap();
    }
}

async fn drain_with(app: &TgApp, workers: usize) {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let q = app.state.queue.clone();
            tokio::spawn(async move { q.drain().await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: cargo test --test integration measure_ -- --ignored --nocapture"]
async fn measure_webhook_ack_latency_and_delivery_throughput() {
    let app = spawn_tg(|_| {}).await;
    let (posters, per) = (32, 64);
    let url = format!("{}/telegram/webhook", app.base);
    let secret = app.secret();
    let tasks: Vec<_> = (0..posters)
        .map(|p| {
            let (client, url, secret) = (app.client.clone(), url.clone(), secret.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in 0..per {
                    let u = message(1 + p * per + i, ANNA, "en", "/help");
                    let t = std::time::Instant::now();
                    let r = client
                        .post(&url)
                        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
                        .json(&u)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let t0 = std::time::Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let total = t0.elapsed();
    lat.sort();
    let pct = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!(
        "webhook: {} updates from {posters} concurrent posters in {total:?} ({:.0}/s); ack p50 {:?}, p99 {:?}, max {:?}",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
    assert_eq!(process_update_jobs(app.store()).await, (posters * per) as usize);
    app.stop().await;

    for (name, limited, n) in [("Telegram's limits (30/s)", true, 150), ("limits lifted", false, 600)] {
        let app = spawn_tg(|c| {
            if limited {
                c.telegram_global_per_sec = 30;
                c.telegram_chat_interval_ms = 1000;
            }
        })
        .await;
        paid_orders(&app, n).await;
        let t0 = std::time::Instant::now();
        drain_with(&app, 4).await;
        let took = t0.elapsed();
        let delivered = app.fake.calls().iter().filter(|c| c.method == "sendmessage" && c.ok).count();
        assert_eq!(delivered, n as usize);
        println!("deliveries, {name}: {n} in {took:?} ({:.0}/s), 4 workers", n as f64 / took.as_secs_f64());
        app.stop().await;
    }
}
