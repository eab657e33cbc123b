//! The Mini App / web shop API and pages: initData authentication (signed here with an
//! independent HMAC, as Telegram would), demo-mode browser sessions, own orders only,
//! reservations, the consultant over HTTP, the OpenAPI document and the admin sales stats.

use crate::helpers::{SMALL, T0, TestApp, pid, seed, session_cookie, spawn_app, spawn_app_with};
use crate::telegram::spawn_tg;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub const BOT_TOKEN: &str = "123456:TEST-token";

/// `initData` for `user_id` signed with `token` at `auth_date` (unix seconds): the algorithm
/// from Telegram's documentation, written here independently of the app's validator.
pub fn init_data(token: &str, user_id: i64, auth_date: i64) -> String {
    let user = json!({"id": user_id, "first_name": "Anna", "language_code": "en"}).to_string();
    let fields = [
        ("auth_date", auth_date.to_string()),
        ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc".into()),
        ("user", user),
    ];
    let check = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n");
    let mut secret = Hmac::<Sha256>::new_from_slice(b"WebAppData").unwrap();
    secret.update(token.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.finalize().into_bytes()).unwrap();
    mac.update(check.as_bytes());
    let hash = hex::encode(mac.finalize().into_bytes());
    let mut q: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", utf8_percent(v))).collect();
    q.push(format!("hash={hash}"));
    q.join("&")
}

fn utf8_percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    call(base, reqwest::Method::GET, path, auth, None).await
}

async fn post(base: &str, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    call(base, reqwest::Method::POST, path, auth, Some(body)).await
}

#[tokio::test]
async fn mini_app_requests_need_valid_fresh_init_data() {
    let app = spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    let now = T0 / 1000;
    let anna = format!("tma {}", init_data(BOT_TOKEN, 5_551_234_567, now - 60));

    let (s, me) = get(&app.base, "/api/me", Some(&anna)).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user_id"], 5_551_234_567i64);
    assert_eq!(me["telegram"], true);
    assert_eq!(me["lang"], "en");

    // Missing: with a bot configured there are no browser sessions.
    let (s, body) = get(&app.base, "/api/me", None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    // Signed with another token.
    let other = format!("tma {}", init_data("123456:another-token", 5_551_234_567, now - 60));
    assert_eq!(get(&app.base, "/api/orders", Some(&other)).await.0, 401);
    // Forged: the user id changed after signing.
    let forged = anna.replace("5551234567", "5551234568");
    assert_ne!(forged, anna);
    assert_eq!(get(&app.base, "/api/orders", Some(&forged)).await.0, 401);
    // Expired: older than the default window of 24 hours.
    let old = format!("tma {}", init_data(BOT_TOKEN, 5_551_234_567, now - 24 * 3600 - 1));
    assert_eq!(get(&app.base, "/api/orders", Some(&old)).await.0, 401);
    // A bearer token (even the admin's) is not initData.
    assert_eq!(get(&app.base, "/api/me", Some("Bearer test-admin-token-0123456789")).await.0, 401);
    // Refused for writes too, and nothing was reserved.
    let (s, _) = post(&app.base, "/api/orders", Some(&forged), json!({"product_id": "key"})).await;
    assert_eq!(s, 401);
    assert_eq!(app.store().availability(pid("key")).await.unwrap().available, 3);
    // The catalogue itself is public.
    assert_eq!(get(&app.base, "/api/products", None).await.0, 200);
}

#[tokio::test]
async fn a_customer_sees_only_their_own_orders_and_the_goods_once_paid() {
    // A bot shop gives nothing away by default: the demo provider is switched on explicitly.
    let app = spawn_tg(|c| c.payments.dev_payments = Some(true)).await;
    seed(app.store(), SMALL).await;
    let now = T0 / 1000;
    let anna = format!("tma {}", init_data(BOT_TOKEN, 5_551_234_567, now));
    let bob = format!("tma {}", init_data(BOT_TOKEN, 5_551_000_002, now));

    let (s, created) = post(&app.base, "/api/orders", Some(&anna), json!({"product_id": "key"})).await;
    assert_eq!(s, 201, "{created}");
    let id = created["order"]["id"].as_u64().unwrap();
    assert_eq!(created["order"]["status"], "reserved");
    assert!(created["order"]["pay_url"].as_str().unwrap().contains(&format!("/pay/{id}?t=")));
    assert!(created["order"]["contents"].is_null());

    assert_eq!(get(&app.base, &format!("/api/orders/{id}"), Some(&bob)).await.0, 404);
    let (_, bobs) = get(&app.base, "/api/orders", Some(&bob)).await;
    assert_eq!(bobs["orders"].as_array().unwrap().len(), 0);
    assert_eq!(post(&app.base, &format!("/api/orders/{id}/cancel"), Some(&bob), json!({})).await.0, 404);

    let (s, o) = get(&app.base, &format!("/api/orders/{id}"), Some(&anna)).await;
    assert_eq!(s, 200);
    assert!(o["contents"].is_null(), "no goods before payment: {o}");

    // Paid (as the bank transfer confirmation does): the owner now sees the key.
    let r = reqwest::Client::new()
        .post(format!("{}/admin/api/orders/{id}/confirm-payment", app.base))
        .bearer_auth("test-admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, o) = get(&app.base, &format!("/api/orders/{id}"), Some(&anna)).await;
    assert_eq!(o["status"], "paid");
    assert_eq!(o["contents"], json!(["K1"]));
    assert!(o["pay_url"].is_null());
    assert_eq!(get(&app.base, &format!("/api/orders/{id}"), Some(&bob)).await.0, 404);
    let (_, list) = get(&app.base, "/api/orders", Some(&anna)).await;
    assert_eq!(list["orders"][0]["id"], id);
}

#[tokio::test]
async fn browser_sessions_exist_only_in_demo_mode() {
    // Demo mode: dev payments on (no real provider) and no bot.
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let c = reqwest::Client::new();
    let r = c.get(format!("{}/api/me", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r).expect("a session cookie");
    let me: Value = r.json().await.unwrap();
    let id = me["user_id"].as_i64().unwrap();
    assert!(id < 0, "local ids never collide with Telegram's: {id}");
    assert_eq!(me["telegram"], false);
    assert_eq!(me["demo_payments"], true);

    // The cookie keeps the customer; their order is theirs.
    let r = c
        .post(format!("{}/api/orders", app.base))
        .header("cookie", &cookie)
        .json(&json!({"product_id": "key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(session_cookie(&r).is_none(), "no new session for a known one");
    let order: Value = r.json().await.unwrap();
    let oid = order["order"]["id"].as_u64().unwrap();
    assert_eq!(app.store().order(oid).await.unwrap().user_id, id);

    // A tampered cookie is a stranger: a new session, and the order is not theirs.
    let tampered = cookie.replace(&id.to_string(), &(id - 1).to_string());
    let r = c.get(format!("{}/api/orders/{oid}", app.base)).header("cookie", &tampered).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(session_cookie(&r).is_some());
    // initData cannot be checked without a bot token: refused, never a session instead.
    let r = c
        .get(format!("{}/api/me", app.base))
        .header("authorization", "tma auth_date=1&hash=00")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;

    // Not demo mode: the dev provider is off.
    let app = spawn_app_with(|c| c.payments.dev_payments = Some(false)).await;
    assert_eq!(get(&app.base, "/api/me", None).await.0, 401);
    let r = c.get(format!("{}/api/me", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(session_cookie(&r).is_none());
    app.stop().await;
}

async fn session(app: &TestApp) -> String {
    let r = reqwest::Client::new().get(format!("{}/api/me", app.base)).send().await.unwrap();
    session_cookie(&r).unwrap()
}

async fn with_cookie(
    app: &TestApp,
    cookie: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r =
        reqwest::Client::new().request(method, format!("{}{path}", app.base)).header("cookie", cookie);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn posting_an_order_reserves_stock_or_a_consented_pre_order() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let me = session(&app).await;
    let post = reqwest::Method::POST;

    let (s, o) =
        with_cookie(&app, &me, post.clone(), "/api/orders", Some(json!({"product_id": "sale"}))).await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["order"]["amount"], 8991, "the discounted price (99.90 - 10%)");
    assert!(o["order"]["expires_at"].is_string());
    assert_eq!(app.store().availability(pid("sale")).await.unwrap().available, 1);

    // Out of stock without consent: 409, nothing created; with consent: a prepaid order.
    let (s, e) =
        with_cookie(&app, &me, post.clone(), "/api/orders", Some(json!({"product_id": "pre"}))).await;
    assert_eq!(s, 409, "{e}");
    let (s, o) = with_cookie(
        &app,
        &me,
        post.clone(),
        "/api/orders",
        Some(json!({"product_id": "pre", "preorder": true})),
    )
    .await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["order"]["kind"], "prepaid");
    assert_eq!(o["order"]["status"], "awaiting_payment");
    // Inactive and unknown products are not sold.
    assert_eq!(
        with_cookie(&app, &me, post.clone(), "/api/orders", Some(json!({"product_id": "off"}))).await.0,
        409
    );
    assert_eq!(
        with_cookie(&app, &me, post.clone(), "/api/orders", Some(json!({"product_id": "nope"}))).await.0,
        404
    );
    assert_eq!(get(&app.base, "/api/products/off", None).await.0, 404);

    // Cancel gives the item back.
    let (_, o) =
        with_cookie(&app, &me, post.clone(), "/api/orders", Some(json!({"product_id": "both"}))).await;
    let id = o["order"]["id"].as_u64().unwrap();
    assert_eq!(app.store().availability(pid("both")).await.unwrap().available, 0);
    let (s, c) = with_cookie(&app, &me, post.clone(), &format!("/api/orders/{id}/cancel"), None).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(app.store().availability(pid("both")).await.unwrap().available, 1);

    // The catalogue shows live stock, discounts and pre-orders.
    let (_, cat) = get(&app.base, "/api/products", None).await;
    let find =
        |id: &str| cat["products"].as_array().unwrap().iter().find(|p| p["id"] == id).cloned().unwrap();
    assert_eq!(find("sale")["available"], 1);
    assert_eq!(find("sale")["final_price_text"], "89,91\u{a0}₽");
    assert_eq!(find("pre")["state"], "preorder");
    assert_eq!(find("pre")["fulfillment_hours"], 48);
    assert!(cat["products"].as_array().unwrap().iter().all(|p| p["id"] != "off"));
    app.stop().await;
}

#[tokio::test]
async fn the_chat_endpoint_is_the_consultant_and_its_buy_button_reserves() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    app.state.search.refresh().await.unwrap();
    let me = session(&app).await;
    let post = reqwest::Method::POST;
    let (s, r) = with_cookie(&app, &me, post.clone(), "/api/chat", Some(json!({"text": "key"}))).await;
    assert_eq!(s, 200, "{r}");
    let buy = r["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().clone())
        .find_map(|b| b["callback"].as_str().filter(|c| c.starts_with("b:")).map(String::from))
        .expect("a Buy button");
    let (s, r) = with_cookie(&app, &me, post.clone(), "/api/chat", Some(json!({"button": buy}))).await;
    assert_eq!(s, 200, "{r}");
    let oid = r["offer"]["order_id"].as_u64().expect("an offer");
    let pay = r["buttons"][0][0]["url"].as_str().expect("a payment link");
    assert!(pay.contains(&format!("/pay/{oid}?t=")));
    // The offer's order is this customer's.
    let (s, o) = with_cookie(&app, &me, reqwest::Method::GET, &format!("/api/orders/{oid}"), None).await;
    assert_eq!((s, o["status"].as_str()), (200, Some("reserved")));
    let (s, _) = with_cookie(&app, &me, post.clone(), "/api/chat", Some(json!({"button": "zz:1"}))).await;
    assert_eq!(s, 400);
    let (s, _) = with_cookie(&app, &me, post, "/api/chat", Some(json!({}))).await;
    assert_eq!(s, 400);
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_the_shop_routes() {
    let app = spawn_app().await;
    let (s, doc) = get(&app.base, "/api/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/products",
        "/api/products/{id}",
        "/api/search",
        "/api/orders",
        "/api/orders/{id}",
        "/api/me",
        "/api/chat",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(paths["/api/orders"]["post"].is_object());
    assert!(doc["components"]["schemas"]["OrderView"].is_object());
    assert!(doc["components"]["securitySchemes"]["initData"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn the_pages_are_served_from_the_binary() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    for (path, kind, needle) in [
        ("/", "text/html", "/assets/shop.js"),
        ("/app/p/key", "text/html", "/assets/shop.js"),
        ("/admin", "text/html", "/assets/admin.js"),
        ("/assets/shop.js", "text/javascript", "initData"),
        ("/assets/admin.css", "text/css", "chart"),
    ] {
        let r = c.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(r.text().await.unwrap().contains(needle), "{path}");
        let again = c.get(format!("{}{path}", app.base)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // Gzipped for clients that ask, and the same script once unpacked.
    let plain = c.get(format!("{}/assets/shop.js", app.base)).send().await.unwrap().bytes().await.unwrap();
    let r =
        c.get(format!("{}/assets/shop.js", app.base)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let packed = r.bytes().await.unwrap();
    assert!(packed.len() * 2 < plain.len(), "{} of {} bytes", packed.len(), plain.len());
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut unpacked).unwrap();
    assert_eq!(unpacked, plain);
    let admin = c.get(format!("{}/admin", app.base)).send().await.unwrap();
    assert!(admin.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(c.get(format!("{}/assets/nope.js", app.base)).send().await.unwrap().status(), 404);
    assert_eq!(c.get(format!("{}/assets/index.html", app.base)).send().await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn admin_sales_are_counted_per_day_of_payment() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    for _ in 0..2 {
        let (s, o) = app.post("/admin/api/orders", json!({"user_id": 42, "product_id": "key"})).await;
        assert_eq!(s, 201);
        let id = o["order"]["id"].as_u64().unwrap();
        assert_eq!(app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await.0, 200);
    }
    // One more, refunded; and an unpaid one that does not count.
    let (_, o) = app.post("/admin/api/orders", json!({"user_id": 42, "product_id": "sale"})).await;
    let id = o["order"]["id"].as_u64().unwrap();
    app.post(&format!("/admin/api/orders/{id}/confirm-payment"), json!({})).await;
    assert_eq!(app.post(&format!("/admin/api/orders/{id}/refund"), json!({})).await.0, 200);
    app.post("/admin/api/orders", json!({"user_id": 42, "product_id": "both"})).await;

    let (s, r) = app.get("/admin/api/sales?days=7").await;
    assert_eq!(s, 200, "{r}");
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    let today = days.last().unwrap();
    assert_eq!(today["date"], "2026-11-26");
    assert_eq!(today["orders"], 2);
    assert_eq!(today["refunded"], 1);
    assert_eq!(today["revenue"]["RUB"], 20000);
    assert!(days[..6].iter().all(|d| d["orders"] == 0));
    // Unauthenticated: refused like the rest of the admin API.
    assert_eq!(get(&app.base, "/admin/api/sales", None).await.0, 401);
    app.stop().await;
}
