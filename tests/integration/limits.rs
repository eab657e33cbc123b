//! What one customer may hold unpaid, in every door (web API, bot; the consultant's door is
//! in `consultant.rs`), checked in the store's write transaction; and the bound on demo-mode
//! customers one address may start.

use crate::helpers::*;
use crate::telegram::{ANNA, buttons, press, spawn_tg};
use serde_json::{Value, json};
use std::time::Duration;

/// `bulk`: 30 items at 10 ₽; `key` (3), `sale` (2); `pre` only to pre-order.
fn bulk_catalogue() -> String {
    let items: Vec<String> = (0..30).map(|i| format!("BULK-{i:02}")).collect();
    json!({"currency": "RUB",
        "products": [{"id": "bulk", "title": "Bulk", "price": 10}, {"id": "key", "title": "Key", "price": 100},
            {"id": "sale", "title": "Sale", "price": 50}, {"id": "pre", "title": "Pre", "price": 50, "fulfillment_hours": 48}],
        "stock": [{"product_id": "bulk", "items": items}, {"product_id": "key", "items": ["K1", "K2", "K3"]},
            {"product_id": "sale", "items": ["S1", "S2"]}]})
    .to_string()
}

/// A new demo customer: its cookie and id.
async fn customer(app: &TestApp) -> (String, i64) {
    let r = reqwest::Client::new().get(format!("{}/api/me", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r).unwrap();
    let me: Value = r.json().await.unwrap();
    (cookie, me["user_id"].as_i64().unwrap())
}

async fn order(app: &TestApp, cookie: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new().post(format!("{}/api/orders", app.base)).json(&body);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn available(app: &TestApp, product: &str) -> u64 {
    app.store().availability(pid(product)).await.unwrap().available
}

/// Live unpaid orders of `user` and the items they hold.
async fn holds(app: &TestApp, user: i64) -> (usize, usize) {
    let now = app.store().now();
    let f = lavka::store::orders::OrderFilter { user: Some(user), limit: Some(1000), ..Default::default() };
    let live: Vec<_> = app
        .store()
        .orders(f)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.status.is_pending_payment() && o.expires_at.is_some_and(|t| t > now))
        .collect();
    (live.len(), live.iter().map(|o| o.stock_item_ids.len()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_web_customer_holds_at_most_three_unpaid_orders_and_ten_items_and_a_refusal_changes_nothing() {
    let app = spawn_app().await;
    seed(app.store(), &bulk_catalogue()).await;
    let (me, _) = customer(&app).await;
    let (s, first) = order(&app, Some(&me), json!({"product_id": "bulk", "quantity": 10})).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(available(&app, "bulk").await, 20);
    // Ten items held: not one more, of any product.
    for body in [json!({"product_id": "key"}), json!({"product_id": "bulk", "quantity": 3})] {
        let (s, e) = order(&app, Some(&me), body).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "reservation_limit", "{e}");
    }
    assert_eq!((available(&app, "key").await, available(&app, "bulk").await), (3, 20));
    // Cancelled, the items are free again; then three orders is the most.
    let id = first["order"]["id"].as_u64().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/orders/{id}/cancel", app.base))
        .header("cookie", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for body in [
        json!({"product_id": "key"}),
        json!({"product_id": "sale"}),
        json!({"product_id": "pre", "preorder": true}),
    ] {
        let (s, o) = order(&app, Some(&me), body).await;
        assert_eq!(s, 201, "{o}");
    }
    let (s, e) = order(&app, Some(&me), json!({"product_id": "bulk"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("reservation_limit")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("at most 3 orders and 10 items"), "{e}");
    assert_eq!(available(&app, "bulk").await, 30);
    // Another customer is not affected.
    let (other, _) = customer(&app).await;
    assert_eq!(order(&app, Some(&other), json!({"product_id": "bulk"})).await.0, 201);
    // Lapsed reservations hold nothing: the customer may order again.
    app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(order(&app, Some(&me), json!({"product_id": "bulk"})).await.0, 201);
    // The shop page reads the refusal in the customer's language by its code.
    let i18n = reqwest::get(format!("{}/assets/i18n.js", app.base)).await.unwrap().text().await.unwrap();
    assert!(i18n.contains("err_reservation_limit"));
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_of_one_customer_never_pass_the_limits() {
    let app = spawn_app().await;
    seed(app.store(), &bulk_catalogue()).await;
    let (me, id) = customer(&app).await;
    // Ten requests at once, each a different quantity (so none reuses another's order).
    let tries = (1..=10).map(|q| order(&app, Some(&me), json!({"product_id": "bulk", "quantity": q})));
    let results = futures::future::join_all(tries).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert!(created >= 1, "{results:?}");
    assert!(
        results.iter().all(|(s, v)| *s == 201 || v["error"]["code"] == "reservation_limit"),
        "{results:?}"
    );
    let (orders, items) = holds(&app, id).await;
    assert_eq!(orders, created);
    assert!(orders <= 3 && items <= 10, "{orders} orders, {items} items");
    assert_eq!(available(&app, "bulk").await as usize, 30 - items);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_starts_a_bounded_number_of_demo_customers() {
    let app = spawn_app_with(|c| c.demo_sessions_per_ip_hour = 2).await;
    seed(app.store(), &bulk_catalogue()).await;
    // The tester's run: four cookie-less orders of ten, each a new customer.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (s, v) = order(&app, None, json!({"product_id": "bulk", "quantity": 10})).await;
        if s == 429 {
            assert_eq!(v["error"]["code"], "too_many_sessions", "{v}");
        }
        codes.push(s);
    }
    assert_eq!(codes, [201, 201, 429, 429]);
    assert_eq!(available(&app, "bulk").await, 10, "a third of the stock stays on sale");
    let r = reqwest::Client::new().get(format!("{}/api/me", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(session_cookie(&r).is_none(), "no session past the bound");
    // Behind the shop's own proxy (a loopback peer), the forwarded address is the client.
    let r = reqwest::Client::new()
        .get(format!("{}/api/me", app.base))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An hour later the address may start sessions again.
    app.clock.advance(Duration::from_secs(3601));
    let r = reqwest::Client::new().get(format!("{}/api/me", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test]
async fn the_bot_refuses_an_order_past_the_limit_and_lists_the_open_ones() {
    let app = spawn_tg(|c| c.max_open_orders = 2).await;
    seed(app.store(), SMALL).await;
    app.update(press(1, ANNA, "b:key")).await;
    let a = app.last_order(ANNA).await.id;
    app.update(press(2, ANNA, "b:sale")).await;
    let b = app.last_order(ANNA).await.id;
    app.update(press(3, ANNA, "b:both")).await;
    assert_eq!(app.last_order(ANNA).await.id, b, "no third order");
    let refusal = app.fake.last_to(ANNA);
    let text = refusal["text"].as_str().unwrap();
    assert!(text.contains("at most 2 orders and 10 items"), "{refusal}");
    let keys = buttons(&refusal);
    assert!(keys.contains(&format!("o:{a}")) && keys.contains(&format!("o:{b}")), "{keys:?}");
    assert_eq!(app.store().availability(pid("both")).await.unwrap().available, 1);
    // One cancelled: the next order goes through.
    app.update(press(4, ANNA, &format!("x:{a}"))).await;
    app.update(press(5, ANNA, "b:both")).await;
    let o = app.last_order(ANNA).await;
    assert_eq!((o.product_id.as_str(), o.status), ("both", lavka::domain::OrderStatus::Reserved));
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_check_shares_the_tables_an_earlier_operation_of_its_group_commit_opened() {
    // A group commit runs several operations in one transaction, whose tables stay open
    // between them: an order created first, then the limit check of the next — as when two
    // requests of a customer land in one batch. Done here in one operation, deterministically.
    let app = spawn_app().await;
    seed(app.store(), &bulk_catalogue()).await;
    let limits = lavka::store::orders::HoldLimits { max_orders: 3, max_items: 10 };
    let pid = lavka::domain::ProductId::parse("bulk").unwrap();
    let holds = app
        .store()
        .write(move |tx| {
            lavka::store::orders::reserve_product_for_purchase(tx, 42, &pid, 2, 900_000)?;
            lavka::store::orders::check_hold_limits(tx, 42, 8, true, limits)?;
            lavka::store::orders::open_holds(tx, 42)
        })
        .await
        .expect("the check reads the batch's open tables");
    assert_eq!(holds, (1, 2));
    app.stop().await;
}
