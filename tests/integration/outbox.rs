//! Outbox mode (no bot token): a delivery's message is written to the store's outbox in the
//! same transaction that marks the order delivered, and `lavka check` proves that every
//! delivered order has its message. The kill -9 version is in `binary.rs`.

use crate::helpers::*;
use lavka::domain::{JobKind, OrderStatus};
use lavka::store::check::CheckOptions;
use lavka::store::jobs::EnqueueOpts;
use serde_json::json;

const OUTBOX: CheckOptions = CheckOptions { outbox: true };

/// A paid order of `key` (3 in stock), or of `sale` for users from 100 on.
async fn paid_order(app: &TestApp, user: i64) -> u64 {
    let product = if user < 100 { "key" } else { "sale" };
    let (code, v) = app.post("/admin/api/orders", json!({"user_id": user, "product_id": product})).await;
    assert_eq!(code, 201, "{v}");
    let id = v["order"]["id"].as_u64().unwrap();
    let (code, v) = app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await;
    assert_eq!(code, 200, "{v}");
    id
}

#[tokio::test]
async fn in_outbox_mode_the_delivery_and_its_message_are_one_commit() {
    let app = spawn_outbox_app().await;
    assert!(app.state.outbox_mode);
    seed(app.store(), SMALL).await;
    let id = paid_order(&app, 42).await;
    app.drain_jobs().await;

    let o = app.store().order(id).await.unwrap();
    assert_eq!(o.status, OrderStatus::Delivered);
    let msgs = app.store().outbox(100).await.unwrap();
    let m = msgs.iter().find(|m| m.order_id == Some(id)).expect("the delivery's message is in the outbox");
    assert_eq!(o.delivery_message_id, Some(m.id as i64), "the order names its message");
    assert_eq!(m.chat_id, 42);
    for item in app.store().deliverable(id).await.unwrap().contents {
        assert!(m.text.contains(&item), "the goods are in the message: {}", m.text);
    }
    // No delivery mark is left behind: nothing is in between that a crash could strand.
    let marks = app
        .store()
        .read_now(|rtx, _| {
            use redb::ReadableTableMetadata;
            Ok(rtx.open_table(lavka::store::schema::DELIVERY_MARKS)?.len()?)
        })
        .unwrap();
    assert_eq!(marks, 0);

    // A second run of the delivery (at-least-once) writes no second message.
    app.store()
        .write(move |tx| {
            lavka::store::jobs::enqueue(tx, JobKind::DeliverOrder { order_id: id }, EnqueueOpts::default())
                .map(|_| ())
        })
        .await
        .unwrap();
    app.drain_jobs().await;
    let again = app.store().outbox(100).await.unwrap();
    assert_eq!(again.iter().filter(|m| m.order_id == Some(id)).count(), 1);
    assert_eq!(again.iter().filter(|m| m.chat_id == 42).count(), 1, "{again:?}");

    let (code, v) = app.get("/admin/api/check").await;
    assert_eq!(code, 200);
    assert_eq!(v["ok"], true, "{v}");
    let r = app.store().check_with(OUTBOX).await.unwrap();
    assert!(r.ok() && r.warnings.is_empty(), "{r}");
    app.stop().await;
}

#[tokio::test]
async fn check_in_outbox_mode_reports_a_delivered_order_without_its_message() {
    let app = spawn_outbox_app().await;
    seed(app.store(), SMALL).await;
    // As the old two-commit delivery could leave it: delivered, no message, nobody told.
    let silent = paid_order(&app, 1).await;
    app.store().write(move |tx| lavka::store::orders::mark_delivered(tx, silent, None)).await.unwrap();
    // Delivered naming an outbox message that is not there.
    let missing = paid_order(&app, 2).await;
    app.store().write(move |tx| lavka::store::ledger::record_outbox(tx, 0, "older message")).await.unwrap();
    app.store()
        .write(move |tx| lavka::store::orders::mark_delivered_to(tx, missing, Some(99), true))
        .await
        .unwrap();
    // Delivered through a channel before the shop ran without one: a chat message id.
    let chat = paid_order(&app, 104).await;
    app.store().write(move |tx| lavka::store::orders::mark_delivered(tx, chat, Some(5))).await.unwrap();
    // A delivery of unknown outcome the admins were alerted about: a warning.
    let alerted = paid_order(&app, 3).await;
    app.store()
        .write(move |tx| lavka::store::telegram::settle_uncertain_delivery(tx, alerted, T0))
        .await
        .unwrap();

    let r = app.store().check_with(OUTBOX).await.unwrap();
    let has = |id: u64, what: &str| {
        r.violations.iter().any(|v| v.contains(&format!("order {id} ")) && v.contains(what))
    };
    assert!(has(silent, "no outbox message"), "{r}");
    assert!(has(missing, "outbox message 99 is not there"), "{r}");
    assert_eq!(r.violations.len(), 2, "{r}");
    assert!(r.warnings.iter().any(|w| w.contains(&format!("order {alerted} "))), "{r}");
    // The admin API checks with the mode the shop runs in.
    let (_, v) = app.get("/admin/api/check").await;
    assert_eq!(v["ok"], false, "{v}");
    // With a channel, an order without a message id is a send of unknown outcome (the bot's
    // own path alerts the admins); the one the outbox lost is reported either way.
    let r = app.store().check().await.unwrap();
    assert_eq!(r.violations.len(), 1, "{r}");
    assert!(r.violations[0].contains(&format!("order {missing} ")), "{r}");
    app.stop().await;
}
