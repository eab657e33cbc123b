//! Upgrades: a data directory written by an older Lavka opens in this one and keeps working.
//! Each fixture under `tests/fixtures/upgrade/` was written by the binary of the commit it is
//! named after (`scripts/make-upgrade-fixture.sh`), with orders in every state that binary
//! could leave them. Its records are JSON (this version writes the hot ones in a binary form
//! and reads both), so the risks are a field this version requires that an old record lacks,
//! a renamed enum value, or a table whose key type changed; any of them fails here.

use crate::helpers::*;
use lavka::domain::{JobKind, OrderStatus};
use lavka::store::jobs::EnqueueOpts;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade");

fn fixture(name: &str) -> (tempfile::TempDir, Value) {
    let src = Path::new(FIXTURES).join(name);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("lavka.redb"), dir.path().join("lavka.redb")).unwrap();
    let meta = serde_json::from_str(&std::fs::read_to_string(src.join("orders.json")).unwrap()).unwrap();
    (dir, meta)
}

async fn status(app: &TestApp, id: u64) -> OrderStatus {
    app.store().order(id).await.unwrap().status
}

/// The balance, after the user's record and ledger were read through the admin API.
async fn balance(app: &TestApp, user: i64) -> i64 {
    let (code, v) = app.get(&format!("/admin/api/users/{user}")).await;
    assert_eq!(code, 200, "{v}");
    app.store().balance(user).await.unwrap()
}

#[tokio::test]
async fn a_data_dir_of_the_first_release_opens_and_keeps_selling() {
    let (dir, ids) = fixture("v1-394ac3a");
    let id = |k: &str| ids[k].as_u64().unwrap_or_else(|| panic!("{k} in orders.json"));
    // An hour after it was written: the reservation left behind has lapsed.
    let now = ids["written_at"].as_i64().unwrap() + 3_600_000;
    let app = spawn_app_in(dir, now, |_| {}).await;
    assert_check(app.store()).await;

    // Every record reads through this version's API.
    let (code, v) = app.get("/admin/api/orders?limit=1000").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["orders"].as_array().unwrap().len(), 7, "{v}");
    for (name, want) in [
        ("delivered", OrderStatus::Delivered),
        ("refunded", OrderStatus::Refunded),
        ("fulfilled", OrderStatus::Delivered),
        ("waiting", OrderStatus::Prepaid),
        ("reserved", OrderStatus::Reserved),
        ("queued_delivery", OrderStatus::Paid),
    ] {
        let (code, v) = app.get(&format!("/admin/api/orders/{}", id(name))).await;
        assert_eq!(code, 200, "{name}: {v}");
        assert_eq!(status(&app, id(name)).await, want, "{name}");
    }
    for path in ["/admin/api/products", "/admin/api/payments", "/admin/api/jobs", "/admin/api/stats"] {
        let (code, v) = app.get(path).await;
        assert_eq!(code, 200, "{path}: {v}");
    }
    let (_, v) = app.get("/admin/api/products").await;
    assert_eq!(v["products"].as_array().unwrap().len(), 31);
    // The refund, the short payment and the manual credit are on the balances.
    let refunded = app.store().order(id("refunded")).await.unwrap();
    assert_eq!(balance(&app, 1002).await, refunded.amount);
    assert_eq!(balance(&app, 1005).await, 10_000, "the short payment was credited");
    assert_eq!(balance(&app, 1006).await, 77_700, "the manual credit");

    // The delivery the old binary queued runs here, once.
    app.drain_jobs().await;
    assert_eq!(status(&app, id("queued_delivery")).await, OrderStatus::Delivered);
    let to_buyer = app.messenger.messages_to(1008);
    assert_eq!(to_buyer.len(), 1, "{to_buyer:?}");
    // The lapsed reservation expires and its item goes back on sale.
    app.store()
        .write(|tx| {
            lavka::store::jobs::enqueue(tx, JobKind::ExpireReservations, EnqueueOpts::default()).map(|_| ())
        })
        .await
        .unwrap();
    app.drain_jobs().await;
    assert_eq!(status(&app, id("reserved")).await, OrderStatus::Expired);
    // The waiting pre-order is fulfilled by this version's code.
    let (code, v) =
        app.post(&format!("/admin/api/orders/{}/fulfill", id("waiting")), json!({"content": "PS-KEY"})).await;
    assert_eq!(code, 200, "{v}");
    app.drain_jobs().await;
    assert_eq!(status(&app, id("waiting")).await, OrderStatus::Delivered);
    assert!(app.messenger.messages_to(1004).iter().any(|m| m.contains("PS-KEY")));

    // A new sale on the old catalogue, and the old orders are still where they were.
    let (code, v) = app.post("/admin/api/orders", json!({"user_id": 2001, "product_id": "win11-home"})).await;
    assert_eq!(code, 201, "{v}");
    let new_id = v["order"]["id"].as_u64().unwrap();
    assert!(new_id > id("queued_delivery"), "ids continue after the old ones");
    let (code, v) = app.post(&format!("/admin/api/orders/{new_id}/confirm-payment"), json!({})).await;
    assert_eq!(code, 200, "{v}");
    app.drain_jobs().await;
    assert_eq!(status(&app, new_id).await, OrderStatus::Delivered);
    // Search indexes the old catalogue on open.
    let r = app.client.get(format!("{}/api/search?q=windows", app.base)).send().await.unwrap();
    let found: Value = r.json().await.unwrap();
    assert!(found.to_string().contains("win11"), "{found}");
    app.clock.advance(Duration::from_secs(1));
    assert_check(app.store()).await;
    app.stop().await;
}

/// The stored bytes of order `id`.
fn raw_order(app: &TestApp, id: u64) -> Vec<u8> {
    app.store()
        .read_now(move |rtx, _| {
            Ok(rtx.open_table(lavka::store::schema::ORDERS)?.get(id)?.expect("order").value().to_vec())
        })
        .unwrap()
}

#[tokio::test]
async fn a_json_era_record_still_reads_and_is_written_back_in_the_binary_form() {
    let (dir, ids) = fixture("v1-394ac3a");
    let id = |k: &str| ids[k].as_u64().unwrap();
    let now = ids["written_at"].as_i64().unwrap() + 3_600_000;
    let app = spawn_app_in(dir, now, |_| {}).await;
    let (queued, delivered) = (id("queued_delivery"), id("delivered"));
    let before = raw_order(&app, queued);
    assert_eq!(before.first(), Some(&b'{'), "the fixture's records are JSON");
    let (code, v) = app.get(&format!("/admin/api/orders/{queued}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["order"]["status"], "paid");

    // Its delivery rewrites it: binary now, and it reads back the same through the API.
    app.drain_jobs().await;
    let after = raw_order(&app, queued);
    assert!(lavka::store::codec::is_binary(&after), "rewritten in the binary form");
    assert!(after.len() < before.len(), "{} bytes, was {}", after.len(), before.len());
    let (_, v2) = app.get(&format!("/admin/api/orders/{queued}")).await;
    assert_eq!(v2["order"]["status"], "delivered");
    for field in ["id", "user_id", "product_id", "title", "amount", "currency", "stock_item_ids", "payment"] {
        assert_eq!(v2["order"][field], v["order"][field], "{field}");
    }
    // A record nobody wrote since stays JSON, and the two forms live side by side.
    assert_eq!(raw_order(&app, delivered).first(), Some(&b'{'));
    assert_check(app.store()).await;
    let dump = lavka::store::codec::to_json::<lavka::domain::Order>(&after).unwrap();
    assert_eq!(dump["status"], "delivered", "a dump shows JSON whatever the stored form");
    app.stop().await;
}
