//! What Telegram times comes first, and no worker sleeps on Telegram's limits: a pre-checkout
//! query behind a burst, a button's answer, a chat's second message, a long message's
//! second part, an invoice and its text, a 429 — all against the fake Bot API, on the
//! shop's clock (moved by hand).

use crate::fake_telegram::Fail;
use crate::helpers::{SMALL, jobs_of_kind, seed};
use crate::telegram::{ADMIN, ANNA, TgApp, message, press, spawn_tg, user};
use lavka::domain::{JobKind, JobState, Lane};
use lavka::queue::RunOutcome;
use serde_json::{Value, json};
use std::time::Duration;

/// Telegram's own limits (one message a second per chat), Stars on.
async fn paced_shop() -> TgApp {
    let app = spawn_tg(|c| {
        c.telegram_chat_interval_ms = 1000;
        c.telegram_global_per_sec = 30;
        c.payments.stars_per_unit = 1.0;
    })
    .await;
    seed(app.store(), SMALL).await;
    app
}

fn pre_checkout(update_id: i64, from: i64, order: u64, stars: u32) -> Value {
    json!({"update_id": update_id, "pre_checkout_query": {"id": format!("pcq{update_id}"), "from": user(from, "en"),
        "currency": "XTR", "total_amount": stars, "invoice_payload": format!("order:{order}")}})
}

fn methods(app: &TgApp) -> Vec<String> {
    app.fake.calls().into_iter().map(|c| c.method).collect()
}

async fn ready_jobs(app: &TgApp, pred: impl Fn(&JobKind) -> bool) -> Vec<lavka::domain::JobRecord> {
    jobs_of_kind(app.store(), pred).await.into_iter().filter(|j| j.state == JobState::Ready).collect()
}

#[tokio::test]
async fn a_pre_checkout_behind_a_burst_of_sixty_commands_is_answered_first() {
    let app = paced_shop().await;
    app.update(press(1, ANNA, "b:key")).await;
    let order = app.last_order(ANNA).await;
    let before = app.fake.calls().len();
    let mut id = 100;
    for m in ["/start", "/help", "/catalog"] {
        for c in 0..20 {
            assert_eq!(
                app.post_webhook(Some(&app.secret()), &message(id, 6_000_000 + c, "en", m)).await,
                200
            );
            id += 1;
        }
    }
    assert_eq!(app.post_webhook(Some(&app.secret()), &pre_checkout(id, ANNA, order.id, 100)).await, 200);
    let urgent = ready_jobs(&app, |k| k.lane() == Lane::Urgent).await;
    assert_eq!(urgent.len(), 1, "the pre-checkout is the urgent lane's");
    // The next job any worker takes is the pre-checkout, though it arrived last.
    let ran = app.state.queue.run_once().await.unwrap();
    assert!(matches!(ran, RunOutcome::Ran { kind: "process_update", state: JobState::Done, .. }), "{ran:?}");
    assert_eq!(methods(&app)[before..], ["answerprecheckoutquery"]);
    assert_eq!(app.fake.bodies("answerprecheckoutquery")[0]["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn the_urgent_lane_answers_while_every_other_worker_is_busy() {
    let app = spawn_tg(|c| {
        c.workers = 1;
        c.urgent_workers = 1;
        c.payments.stars_per_unit = 1.0;
    })
    .await;
    seed(app.store(), SMALL).await;
    let order = app
        .store()
        .write(|tx| {
            lavka::store::orders::reserve_product_for_purchase(
                tx,
                ANNA,
                &lavka::domain::ProductId::parse("key")?,
                1,
                600_000,
            )
        })
        .await
        .unwrap();
    // The only general worker is held by a reply whose answer does not come.
    app.fake.fail(Some(7_000_001), Fail::SlowAnswer(Duration::from_secs(20)));
    assert_eq!(app.post_webhook(Some(&app.secret()), &message(1, 7_000_001, "en", "/help")).await, 200);
    for _ in 0..200 {
        if methods(&app).contains(&"sendmessage".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.post_webhook(Some(&app.secret()), &pre_checkout(2, ANNA, order.id, 100)).await, 200);
    for _ in 0..500 {
        if !app.fake.bodies("answerprecheckoutquery").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.fake.bodies("answerprecheckoutquery").len(), 1, "answered by the urgent lane");
    let help = ready_jobs(&app, |k| matches!(k, JobKind::ProcessUpdate { update_id: 1, .. })).await;
    assert_eq!(help.len(), 1, "the general worker is still on the slow reply");
    app.stop().await;
}

#[tokio::test]
async fn a_chats_next_messages_wait_in_the_queue_not_in_a_worker() {
    let app = paced_shop().await;
    for (i, m) in ["/start", "/help", "/orders"].iter().enumerate() {
        assert_eq!(app.post_webhook(Some(&app.secret()), &message(1 + i as i64, ANNA, "en", m)).await, 200);
    }
    app.drain().await;
    assert_eq!(app.fake.texts_to(ANNA).len(), 1, "one message a second");
    // The other two are scheduled for the chat's next slots, one second apart.
    let now = app.store().now();
    let mut waiting: Vec<i64> = ready_jobs(&app, |k| matches!(k, JobKind::ProcessUpdate { .. }))
        .await
        .iter()
        .map(|j| j.run_at - now)
        .collect();
    waiting.sort();
    assert_eq!(waiting, [1000, 2000]);
    app.clock.advance(Duration::from_secs(1));
    app.drain().await;
    assert_eq!(app.fake.texts_to(ANNA).len(), 2);
    app.clock.advance(Duration::from_secs(1));
    app.drain().await;
    let texts = app.fake.texts_to(ANNA);
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert_ne!(texts[0], texts[1]);
    app.stop().await;
}

#[tokio::test]
async fn a_long_message_resumes_at_its_second_part_and_never_repeats_the_first() {
    let app = paced_shop().await;
    let text = format!("{}\n{}", "a".repeat(4000), "b".repeat(3000));
    app.store()
        .write(move |tx| {
            lavka::store::jobs::enqueue(tx, JobKind::AlertAdmin { text: text.clone() }, Default::default())
                .map(|_| ())
        })
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.fake.texts_to(ADMIN).len(), 1);
    let alert = ready_jobs(&app, |k| matches!(k, JobKind::AlertAdmin { .. })).await;
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0].run_at, app.store().now() + 1000, "rescheduled for the chat's next slot");
    assert_eq!(alert[0].attempts, 0, "waiting is not failing");
    app.clock.advance(Duration::from_secs(1));
    app.drain().await;
    let parts = app.fake.texts_to(ADMIN);
    assert_eq!(parts.len(), 2, "each part once");
    assert!(
        parts[0].starts_with('a') && parts[1].starts_with('b'),
        "{:?}",
        parts.iter().map(|p| &p[..5]).collect::<Vec<_>>()
    );
    assert!(
        jobs_of_kind(app.store(), |k| matches!(k, JobKind::AlertAdmin { .. })).await[0].state
            == JobState::Done
    );
    assert_eq!(app.state.queue.remembered(), 0, "a finished job's memo is dropped");
    app.stop().await;
}

#[tokio::test]
async fn a_429_on_an_invoice_waits_exactly_retry_after_and_the_button_is_answered_once() {
    let app = paced_shop().await;
    app.update(press(1, ANNA, "b:key")).await;
    let o = app.last_order(ANNA).await;
    app.clock.advance(Duration::from_secs(5));
    app.fake.fail_method("sendinvoice", Fail::RetryAfter(3));
    assert_eq!(app.post_webhook(Some(&app.secret()), &press(2, ANNA, &format!("ps:{}", o.id))).await, 200);
    app.drain().await;
    let job = ready_jobs(&app, |k| matches!(k, JobKind::ProcessUpdate { update_id: 2, .. })).await.remove(0);
    assert_eq!(job.run_at, app.store().now() + 3000, "exactly retry_after");
    assert_eq!(job.attempts, 0);
    app.clock.advance(Duration::from_secs(3));
    app.drain().await;
    let ok_invoices = app.fake.calls().into_iter().filter(|c| c.method == "sendinvoice" && c.ok).count();
    assert_eq!(ok_invoices, 1);
    let answers: Vec<Value> = app.fake.bodies("answercallbackquery");
    assert_eq!(answers.iter().filter(|a| a["callback_query_id"] == "cq2").count(), 1, "{answers:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_answer_nobody_waits_for_any_more_is_skipped() {
    let app = paced_shop().await;
    assert_eq!(app.post_webhook(Some(&app.secret()), &press(1, ANNA, "cat:0:0")).await, 200);
    // Down for a minute: Telegram closed the button's query long ago.
    app.clock.advance(Duration::from_secs(60));
    app.drain().await;
    assert!(app.fake.bodies("answercallbackquery").is_empty());
    assert_eq!(app.fake.texts_to(ANNA).len(), 1, "the press itself is still handled");
    app.stop().await;
}
