//! The admin API over real HTTP: auth, products, stock, orders, payments, jobs, backup.

use crate::helpers::*;
use lavka::messenger::SendError;
use serde_json::json;

#[tokio::test]
async fn the_admin_api_refuses_missing_or_wrong_tokens() {
    let app = spawn_app().await;
    let url = format!("{}/admin/api/products", app.base);
    let none = app.client.get(&url).send().await.unwrap();
    assert_eq!(none.status().as_u16(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = app.client.get(&url).bearer_auth("test-admin-token-0123456780").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let (ok, _) = app.get("/admin/api/products").await;
    assert_eq!(ok, 200);
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn products_and_stock_are_managed_through_the_api() {
    let app = spawn_app().await;
    let (st, v) = app
        .client
        .put(format!("{}/admin/api/products/vpn-1y", app.base))
        .bearer_auth(&app.token)
        .json(&json!({"title": "VPN на год", "price": "1490.50", "category": "Подписки", "tags": ["vpn"]}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(st, 201);
    let v: serde_json::Value = v.json().await.unwrap();
    assert_eq!(v["product"]["price"], 149_050);

    let r = app
        .client
        .post(format!("{}/admin/api/products/vpn-1y/stock", app.base))
        .bearer_auth(&app.token)
        .body("CODE-1\nCODE-2\n\nCODE-2\n")
        .send()
        .await
        .unwrap();
    let added: serde_json::Value = r.json().await.unwrap();
    assert_eq!(added, json!({"added": 2, "duplicates": 1}));
    let (_, p) = app.get("/admin/api/products/vpn-1y").await;
    assert_eq!(p["availability"]["available"], 2);

    let (st, _) = app.post("/admin/api/products/vpn-1y/deactivate", json!({})).await;
    assert_eq!(st, 200);
    let (st, v) = app.post("/admin/api/orders", json!({"user_id": 1, "product_id": "vpn-1y"})).await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = app.post("/admin/api/products/nope/stock", json!({"items": ["x"]})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, v) =
        app.post("/admin/api/orders", json!({"user_id": 1, "product_id": "vpn-1y", "extra": 1})).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["code"], "bad_input");
    app.stop().await;
}

#[tokio::test]
async fn a_manual_sale_confirmed_twice_is_delivered_once() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let (st, v) = app.post("/admin/api/orders", json!({"user_id": 55, "product_id": "key"})).await;
    assert_eq!(st, 201, "{v}");
    let id = v["order"]["id"].as_u64().unwrap();
    let path = format!("/admin/api/orders/{id}/confirm-payment");
    let (st, first) = app.post(&path, json!({"reference": "bank-77"})).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["outcome"], "applied");
    let (_, second) = app.post(&path, json!({"reference": "bank-77"})).await;
    assert_eq!(second["duplicate"], true);
    app.drain_jobs().await;
    assert_eq!(app.messenger.messages_to(55).len(), 1);
    let (_, o) = app.get(&format!("/admin/api/orders/{id}")).await;
    assert_eq!(o["order"]["status"], "delivered");
    let (_, list) = app.get("/admin/api/orders?status=delivered").await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let (_, list) = app.get("/admin/api/orders?user=55").await;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let (st, _) = app.get("/admin/api/orders?status=weird").await;
    assert_eq!(st, 400);

    let (_, r) =
        app.post(&format!("/admin/api/orders/{id}/refund"), json!({"reason": "customer asked"})).await;
    assert_eq!(r["balance"], 10_000);
    let (_, u) = app.get("/admin/api/users/55").await;
    assert_eq!(u["balance"], 10_000);
    let (_, chk) = app.get("/admin/api/check").await;
    assert_eq!(chk["ok"], true, "{chk}");
    app.stop().await;
}

#[tokio::test]
async fn pre_orders_are_fulfilled_and_extended_through_the_api() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let (_, v) =
        app.post("/admin/api/orders", json!({"user_id": 9, "product_id": "pre", "kind": "prepaid"})).await;
    let id = v["order"]["id"].as_u64().unwrap();
    app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await;
    let (st, e) = app.post(&format!("/admin/api/orders/{id}/extend"), json!({"hours": 24})).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["order"]["deadline"], T0 + 72 * 3_600_000);
    let (st, f) =
        app.post(&format!("/admin/api/orders/{id}/fulfill"), json!({"content": "ACCOUNT: a / b"})).await;
    assert_eq!(st, 200, "{f}");
    app.drain_jobs().await;
    let msgs = app.messenger.messages_to(9);
    assert!(msgs.iter().any(|m| m.contains("ACCOUNT: a / b")), "{msgs:?}");
    app.stop().await;
}

#[tokio::test]
async fn dead_jobs_are_listed_and_retried() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let (_, v) = app.post("/admin/api/orders", json!({"user_id": 3, "product_id": "key"})).await;
    let id = v["order"]["id"].as_u64().unwrap();
    app.messenger.fail_with(SendError::Rejected("chat not found".into()));
    app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await;
    app.drain_jobs().await;
    let (_, dead) = app.get("/admin/api/jobs?state=dead").await;
    let dead = dead["jobs"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["kind"]["kind"], "deliver_order");
    let job = dead[0]["id"].as_u64().unwrap();
    let (st, _) = app.post(&format!("/admin/api/jobs/{job}/retry"), json!({})).await;
    assert_eq!(st, 200);
    app.drain_jobs().await;
    assert_eq!(app.messenger.messages_to(3).len(), 1);
    let (_, chk) = app.get("/admin/api/check").await;
    assert_eq!(chk["ok"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_blocked_customer_is_marked_unreachable() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let (_, v) = app.post("/admin/api/orders", json!({"user_id": 4, "product_id": "key"})).await;
    let id = v["order"]["id"].as_u64().unwrap();
    app.messenger.fail_with(SendError::Unreachable);
    app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await;
    app.drain_jobs().await;
    assert!(app.store().user(4).await.unwrap().unwrap().unreachable);
    app.stop().await;
}

#[tokio::test]
async fn a_backup_downloads_a_database_that_passes_check() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    app.post("/admin/api/orders", json!({"user_id": 4, "product_id": "key"})).await;
    let r = app
        .client
        .get(format!("{}/admin/api/backup", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bytes = r.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.redb");
    std::fs::write(&path, &bytes).unwrap();
    let report = lavka::store::backup::check_file(&path).unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.orders, 1);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with(|c| c.body_limit_bytes = 1024).await;
    seed(app.store(), SMALL).await;
    let r = app
        .client
        .post(format!("{}/admin/api/products/key/stock", app.base))
        .bearer_auth(&app.token)
        .body("X".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(app.store().availability(pid("key")).await.unwrap().available, 3);
    app.stop().await;
}

#[tokio::test]
async fn metrics_expose_orders_and_queue_depth() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    app.post("/admin/api/orders", json!({"user_id": 4, "product_id": "key"})).await;
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("lavka_orders{status=\"reserved\"} 1"), "{text}");
    assert!(text.contains("lavka_jobs{state=\"ready\"}"), "{text}");
    app.stop().await;
}
