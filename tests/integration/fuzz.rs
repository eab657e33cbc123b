//! Bounded fuzzing of everything that parses outside input: random and mutated inputs must
//! get a clear answer (never a panic, never a 5xx) and change nothing unless valid.
//! `LAVKA_FUZZ_CASES` raises the number of cases per target (default 200).

use crate::helpers::*;
use lavka::catalog;
use lavka::config::Secret;
use lavka::domain::Currency;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

fn cases() -> usize {
    std::env::var("LAVKA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// Draws `n` values from a strategy (no shrinking: this is fuzzing, failures print the input).
fn draw<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("order:1"),
            Just("paid"),
            Just("invoice_paid"),
            Just("RUB"),
            Just("100.00"),
            Just("/start")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("update_id".to_string()),
                    Just("message".to_string()),
                    Just("payload".to_string()),
                    Just("invoice_id".to_string()),
                    Just("status".to_string()),
                    Just("text".to_string()),
                    Just("chat".to_string()),
                    Just("from".to_string()),
                    Just("id".to_string()),
                    Just("amount".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mutations of a valid text: byte flips, cuts, duplications.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    (0..seed.len(), 0..4u8, any::<u8>(), 1..64usize).prop_map(move |(at, how, byte, len)| {
        let mut b = seed.as_bytes().to_vec();
        match how {
            0 => b[at] = byte,
            1 => b.truncate(at),
            2 => {
                let end = (at + len).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
            _ => {
                let end = (at + len).min(b.len());
                b.drain(at..end);
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_imports_never_panic_and_apply_all_or_nothing() {
    let t = test_store();
    let inputs: Vec<String> = draw(prop_oneof![mutated(SMALL), ".{0,200}"], cases());
    for text in inputs {
        if let Ok(cat) = catalog::parse_json(&text, Currency::RUB) {
            // Parsed: applying either works whole or fails whole; the store stays consistent.
            let _ = t.store.write(move |tx| catalog::apply(tx, &cat)).await;
            assert_check(&t.store).await;
        }
    }
    let csv_seed: &'static str =
        "id,title,price,category,fulfillment_hours\nkey,Key,100,Keys,\npre,Pre,50,Keys,48\n";
    for text in draw(prop_oneof![mutated(csv_seed), ".{0,200}"], cases()) {
        let _ = catalog::parse_products_csv(&text, "products.csv", Currency::RUB);
        let _ = catalog::parse_stock_csv(&text, "stock.csv");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telegram_webhook_and_update_processing_take_any_json() {
    let app = crate::telegram::spawn_tg(|_| {}).await;
    seed(app.store(), SMALL).await;
    let secret = app.secret();
    let bodies = draw(json_value(), cases());
    for (i, mut body) in bodies.into_iter().enumerate() {
        if i % 2 == 0
            && let Value::Object(m) = &mut body
        {
            // Half carry an update id, so they are stored and processed.
            m.insert("update_id".into(), json!(10_000 + i as i64));
        }
        let code = app.post_webhook(Some(&secret), &body).await;
        assert!([200, 400].contains(&code), "{code} for {body}");
    }
    // Processing whatever was stored: no panics, no stuck or dead jobs.
    app.drain().await;
    let dead = app.store().jobs_in_state(lavka::domain::JobState::Dead, 100).await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    let raw = app
        .client
        .post(format!("{}/telegram/webhook", app.base))
        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crypto_pay_webhook_takes_any_body_and_changes_nothing_unless_valid() {
    const TOKEN: &str = "1234:fuzz";
    let app = spawn_app_with(|c| c.payments.cryptopay_token = Secret::new(TOKEN)).await;
    seed(app.store(), SMALL).await;
    let (code, v) = app.post("/admin/api/orders", json!({"user_id": 1, "product_id": "key"})).await;
    assert_eq!(code, 201, "{v}");
    let valid = json!({"update_id": 1, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
        "payload": {"invoice_id": 77, "status": "paid", "fiat": "RUB", "amount": "100.00", "payload": "order:1"}})
    .to_string();
    let valid: &'static str = Box::leak(valid.into_boxed_str());
    let bodies: Vec<String> =
        draw(prop_oneof![mutated(valid), json_value().prop_map(|v| v.to_string()), ".{0,100}"], cases());
    for body in bodies {
        for signed in [true, false] {
            let sig = if signed {
                lavka::payments::cryptopay::sign(TOKEN, body.as_bytes())
            } else {
                "00".repeat(32)
            };
            let r = app
                .client
                .post(format!("{}/payments/cryptopay/webhook", app.base))
                .header("crypto-pay-api-signature", sig)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            assert!(code < 500, "{code} for {body:?}");
            if !signed {
                assert_eq!(code, 401);
            }
        }
    }
    // Whatever was accepted went through the store's rules: invariants hold.
    assert_check(app.store()).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_app_init_data_and_admin_bodies_get_clear_answers() {
    let app = spawn_app_with(|c| c.telegram_token = Some(Secret::new("123456:fuzz-token"))).await;
    seed(app.store(), SMALL).await;
    let seed_init: &'static str =
        "query_id=AAH&user=%7B%22id%22%3A5%2C%22first_name%22%3A%22A%22%7D&auth_date=1795694400&hash=0a0b";
    for init in draw(prop_oneof![mutated(seed_init), ".{0,120}"], cases()) {
        let r = app
            .client
            .get(format!("{}/api/orders", app.base))
            .header("authorization", format!("tma {init}"))
            .send()
            .await;
        // A header that is not valid HTTP is refused by the client itself; that is fine.
        if let Ok(r) = r {
            assert_eq!(r.status(), 401, "{init:?}");
        }
    }
    for body in draw(json_value(), cases()) {
        for path in ["/admin/api/orders", "/admin/api/import", "/admin/api/users/1/credit", "/admin/api/chat"]
        {
            let (code, v) = app.post(path, body.clone()).await;
            assert!(code < 500, "{path}: {code} {v} for {body}");
        }
        let r = app
            .client
            .put(format!("{}/admin/api/products/fuzz", app.base))
            .bearer_auth(&app.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{body}");
    }
    assert_check(app.store()).await;
    app.stop().await;
}
