//! The real `lavka` binary: SIGKILL during concurrent writes, then restart and check; the
//! CLI's import, check, backup and healthcheck against files and a running server.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "crash-test-admin-token-0123";
const BIN: &str = env!("CARGO_BIN_EXE_lavka");

const CRYPTO_TOKEN: &str = "crash:crypto-token";
const TG_SECRET: &str = "crash-webhook-secret";

fn lavka(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(dir)
        .env("LAVKA_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .env("LAVKA_SEMANTIC_SEARCH", "false")
        .current_dir(dir)
        .stdin(Stdio::null());
    c
}

struct Server {
    child: Child,
    base: String,
}

fn start(dir: &Path) -> Server {
    start_with(dir, &[])
}

#[allow(clippy::zombie_processes)] // the returned Server is killed and waited by its owner
fn start_with(dir: &Path, env: &[(&str, String)]) -> Server {
    let addr_file = dir.join("lavka.addr");
    let _ = std::fs::remove_file(&addr_file);
    let mut child = lavka(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LAVKA_SCHEDULER", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file)
            && s.ends_with('\n')
        {
            return Server { child, base: s.trim().to_string() };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn catalogue(dir: &Path, items: usize) -> PathBuf {
    let stock: Vec<String> = (0..items).map(|i| format!("CRASH-KEY-{i:06}")).collect();
    let cat = json!({
        "currency": "RUB",
        "products": [{"id": "key", "title": "Key", "price": 10}, {"id": "pre", "title": "Pre", "price": 5, "fulfillment_hours": 24}],
        "stock": [{"product_id": "key", "items": stock}]
    });
    let path = dir.join("catalog.json");
    std::fs::write(&path, cat.to_string()).unwrap();
    path
}

#[derive(Default)]
struct Acked {
    /// Orders whose creation was answered 201.
    created: Vec<u64>,
    /// Orders whose payment (manual, dev provider or signed Crypto Pay webhook) was answered 200.
    paid: Vec<u64>,
    /// Telegram updates the webhook answered 200.
    updates: Vec<i64>,
}

/// The server with the providers and the bot on (against the fake Bot API), as in a shop.
fn shop_env(telegram: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LAVKA_PAYMENTS__CRYPTOPAY_TOKEN", CRYPTO_TOKEN.into()),
        ("LAVKA_PAYMENTS__DEV_PAYMENTS", "true".into()),
        ("LAVKA_PAYMENTS__RECONCILE_SECS", "0".into()),
        ("LAVKA_TELEGRAM_TOKEN", "123456:crash-test".into()),
        ("LAVKA_TELEGRAM_API_URL", telegram.into()),
        ("LAVKA_PUBLIC_URL", "https://shop.example.com".into()),
        ("LAVKA_TELEGRAM_WEBHOOK_SECRET", TG_SECRET.into()),
        // The fake Bot API has no limits; the real ones would make the final drain minutes long.
        ("LAVKA_TELEGRAM_GLOBAL_PER_SEC", "100000".into()),
        ("LAVKA_TELEGRAM_CHAT_INTERVAL_MS", "0".into()),
    ]
}

/// Pays an order one of three ways, by the order id: manual confirmation, the dev provider,
/// or a signed Crypto Pay webhook.
async fn pay(client: &reqwest::Client, base: &str, id: u64, amount: &str, token: &str) -> Option<bool> {
    let r = match id % 3 {
        0 => {
            client
                .post(format!("{base}/admin/api/orders/{id}/confirm-payment"))
                .bearer_auth(TOKEN)
                .json(&json!({}))
                .send()
                .await
        }
        1 => {
            client
                .post(format!("{base}/pay/dev/{id}?t={token}"))
                .header("accept", "application/json")
                .send()
                .await
        }
        _ => {
            let body = json!({"update_id": id, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
                "payload": {"invoice_id": 900_000 + id, "status": "paid", "fiat": "RUB", "amount": amount, "payload": format!("order:{id}")}})
            .to_string();
            let sig = lavka::payments::cryptopay::sign(CRYPTO_TOKEN, body.as_bytes());
            client
                .post(format!("{base}/payments/cryptopay/webhook"))
                .header("crypto-pay-api-signature", sig)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        }
    };
    match r {
        Ok(r) => Some(r.status().is_success()),
        Err(_) => None,
    }
}

async fn drive(base: String, stop_at: Instant, worker: i64) -> Acked {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut acked = Acked::default();
    let mut n = 0i64;
    while Instant::now() < stop_at {
        n += 1;
        let kind = if n % 5 == 0 { "prepaid" } else { "instant" };
        let product = if kind == "prepaid" { "pre" } else { "key" };
        let r = client
            .post(format!("{base}/admin/api/orders"))
            .bearer_auth(TOKEN)
            .json(&json!({"user_id": worker * 1000 + n, "product_id": product, "kind": kind}))
            .send()
            .await;
        let Ok(r) = r else { break };
        if r.status().as_u16() != 201 {
            continue;
        }
        let Ok(v) = r.json::<serde_json::Value>().await else { break };
        let id = v["order"]["id"].as_u64().unwrap();
        acked.created.push(id);
        let amount = if product == "pre" { "5.00" } else { "10.00" };
        // The order's payment link, as the owner would send it to the customer.
        let token = v["pay_url"].as_str().and_then(|u| u.split_once("?t=")).map(|(_, t)| t.to_string());
        match pay(&client, &base, id, amount, &token.unwrap_or_default()).await {
            Some(true) => acked.paid.push(id),
            Some(false) => {}
            None => break,
        }
        // A customer's message to the bot, through the webhook (every fourth round).
        if n % 4 != 0 {
            continue;
        }
        let update_id = worker * 1_000_000 + n;
        let from = worker * 1000 + n;
        let update = json!({"update_id": update_id, "message": {"message_id": n, "date": 1764150000,
            "chat": {"id": from, "type": "private", "first_name": "C"},
            "from": {"id": from, "is_bot": false, "first_name": "C", "language_code": "en"}, "text": "/orders"}});
        let r = client
            .post(format!("{base}/telegram/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", TG_SECRET)
            .json(&update)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => acked.updates.push(update_id),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    acked
}

fn check_ok(dir: &Path) {
    let out = lavka(dir).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "lavka check failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_concurrent_writes_restarts_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue(dir.path(), 4000);
    let out = lavka(dir.path()).arg("import").arg(&cat).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cycles: usize = std::env::var("LAVKA_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let fake = crate::fake_telegram::FakeTelegram::start().await;
    let env = shop_env(&fake.base);
    let mut all = Acked::default();
    for cycle in 0..cycles {
        let mut server = start_with(dir.path(), &env);
        let run_for = Duration::from_millis(300 + fastrand::u64(0..500));
        let stop_at = Instant::now() + Duration::from_secs(10);
        let tasks: Vec<_> = (0..8)
            .map(|w| tokio::spawn(drive(server.base.clone(), stop_at, (cycle * 8 + w) as i64 + 1)))
            .collect();
        tokio::time::sleep(run_for).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for t in tasks {
            let a = t.await.unwrap();
            all.created.extend(a.created);
            all.paid.extend(a.paid);
            all.updates.extend(a.updates);
        }
        check_ok(dir.path());
    }
    assert!(!all.paid.is_empty() && !all.updates.is_empty(), "the load did not get going");
    // Everything acknowledged survived the kills.
    let server = start_with(dir.path(), &env);
    let client = reqwest::Client::new();
    for id in &all.created {
        let r = client
            .get(format!("{}/admin/api/orders/{id}", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "acknowledged order {id} is gone");
    }
    let get = |path: String| {
        let req = client.get(format!("{}{path}", server.base)).bearer_auth(TOKEN);
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    for id in &all.paid {
        let v = get(format!("/admin/api/orders/{id}")).await;
        let st = v["order"]["status"].as_str().unwrap();
        assert!(["paid", "delivered", "prepaid"].contains(&st), "acknowledged payment of {id} lost: {st}");
    }
    let chk = get("/admin/api/check".into()).await;
    assert_eq!(chk["ok"], true, "{chk}");
    // The workers finish what was acknowledged: every update is answered, every paid order's
    // goods go out — and no item is ever sent twice.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = get("/admin/api/stats".into()).await;
        if stats["jobs"]["ready"].as_u64() == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not drain: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answered: std::collections::HashSet<i64> =
        fake.bodies("sendmessage").iter().filter_map(|b| b["chat_id"].as_i64()).collect();
    let lost: Vec<i64> = all
        .updates
        .iter()
        .filter(|u| !answered.contains(&(**u % 1_000_000 + (**u / 1_000_000) * 1000)))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged updates were never answered: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let mut sent_keys: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for b in fake.bodies("sendmessage") {
        let text = b["text"].as_str().unwrap_or_default();
        for key in text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("CRASH-KEY-"))
        {
            *sent_keys.entry(key.to_string()).or_default() += 1;
        }
    }
    let twice: Vec<_> = sent_keys.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "items sent twice: {twice:?}");
    let stats = get("/admin/api/stats".into()).await;
    // A kill between the delivery mark and the send leaves an order recorded as delivered
    // with its message possibly unsent (the admins are alerted; `/redeliver` resends): counted.
    let delivered = stats["orders"]["delivered"].as_u64().unwrap_or(0) as usize;
    eprintln!(
        "crash suite: {cycles} kills, {} orders, {} payments, {} updates acknowledged (all answered); \
         {} items sent once each, none twice; {} deliveries in the send window (admins alerted); orders {}",
        all.created.len(),
        all.paid.len(),
        all.updates.len(),
        sent_keys.len(),
        delivered.saturating_sub(sent_keys.len()),
        stats["orders"]
    );
    stop(server);
}

/// The server as a shop without a bot token runs it: messages go to the store's outbox.
fn outbox_env() -> Vec<(&'static str, String)> {
    vec![
        ("LAVKA_PAYMENTS__CRYPTOPAY_TOKEN", CRYPTO_TOKEN.into()),
        ("LAVKA_PAYMENTS__DEV_PAYMENTS", "true".into()),
        ("LAVKA_PAYMENTS__RECONCILE_SECS", "0".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_in_outbox_mode_never_leaves_a_delivered_order_without_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue(dir.path(), 3000);
    let out = lavka(dir.path()).arg("import").arg(&cat).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cycles: usize = std::env::var("LAVKA_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let env = outbox_env();
    let mut paid = 0;
    for cycle in 0..cycles {
        let mut server = start_with(dir.path(), &env);
        let stop_at = Instant::now() + Duration::from_secs(10);
        let tasks: Vec<_> = (0..6)
            .map(|w| tokio::spawn(drive(server.base.clone(), stop_at, (cycle * 6 + w) as i64 + 1)))
            .collect();
        // The workers deliver right behind the payments, so the kills land among deliveries.
        tokio::time::sleep(Duration::from_millis(300 + fastrand::u64(0..500))).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for t in tasks {
            paid += t.await.unwrap().paid.len();
        }
        // `lavka check` without a bot token checks the outbox rule too.
        check_ok(dir.path());
    }
    assert!(paid > 0, "the load did not get going");
    let server = start_with(dir.path(), &env);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let req = client.get(format!("{}{path}", server.base)).bearer_auth(TOKEN);
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while get("/admin/api/stats").await["jobs"]["ready"].as_u64() != Some(0) {
        assert!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = get("/admin/api/stats").await;
    let delivered = stats["orders"]["delivered"].as_u64().unwrap_or(0);
    assert!(delivered > 0, "{stats}");
    let chk = get("/admin/api/check").await;
    assert_eq!(chk["ok"], true, "{chk}");
    stop(server);
    let out = lavka(dir.path()).args(["check", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    let strays: Vec<_> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w.as_str().unwrap_or_default().contains("outbox"))
        .collect();
    assert!(strays.is_empty(), "every delivered order has its message: {strays:?}");
    eprintln!(
        "outbox crash suite: {cycles} kills, {paid} payments, {delivered} orders delivered, each with its message"
    );
}

fn stop(mut s: Server) {
    let _ = Command::new("kill").arg("-TERM").arg(s.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if s.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = s.child.kill();
    panic!("server did not stop on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_check_and_healthcheck_work_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue(dir.path(), 50);
    assert!(lavka(dir.path()).arg("import").arg(&cat).status().unwrap().success());
    let server = start(dir.path());
    // Writes keep going while the backup is taken.
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let load = tokio::spawn(drive(server.base.clone(), stop_at, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backups = dir.path().join("out");
    let out = lavka(dir.path()).arg("backup").arg(&backups).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(file.starts_with(&backups) && file.exists(), "{file:?}");
    let out = lavka(dir.path()).arg("check").arg("--file").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // Check through the server (the database is held by it).
    check_ok(dir.path());
    assert!(lavka(dir.path()).arg("healthcheck").status().unwrap().success());
    load.await.unwrap();
    // Import through the running server.
    let extra = dir.path().join("extra.csv");
    std::fs::write(&extra, "product_id,content\nkey,EXTRA-1\n").unwrap();
    let out = lavka(dir.path()).arg("import").arg(&extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"stock_added\": 1"));
    stop(server);
    assert!(!lavka(dir.path()).arg("healthcheck").status().unwrap().success());
    // The restored snapshot is a working shop.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("lavka.redb")).unwrap();
    check_ok(restored.path());
    let s2 = start(restored.path());
    let r = reqwest::Client::new()
        .get(format!("{}/admin/api/products", s2.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    stop(s2);
}

#[test]
fn import_of_a_bad_file_fails_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/bad_price/products.csv");
    let out = lavka(dir.path()).arg("import").arg(&fixture).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn check_reports_a_broken_invariant_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue(dir.path(), 3);
    assert!(lavka(dir.path()).arg("import").arg(&cat).status().unwrap().success());
    check_ok(dir.path());
    {
        let db = redb::Database::open(dir.path().join("lavka.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<i64, i64> = redb::TableDefinition::new("balances");
            tx.open_table(def).unwrap().insert(5, 999).unwrap();
        }
        tx.commit().unwrap();
    }
    let out = lavka(dir.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user 5 balance 999 but ledger sums to 0"), "{text}");
}

#[test]
fn a_database_from_a_newer_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cat = catalogue(dir.path(), 3);
    assert!(lavka(dir.path()).arg("import").arg(&cat).status().unwrap().success());
    {
        let db = redb::Database::open(dir.path().join("lavka.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            tx.open_table(def).unwrap().insert("schema_version", b"99".as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let out = lavka(dir.path()).arg("check").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer Lavka"), "{err}");
}

#[test]
fn lavka_chat_finds_buys_with_the_dev_provider_and_shows_the_item() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut child = lavka(dir.path())
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ask, press Buy (button 1), press Pay (button 1 of the offer).
    child.stdin.take().unwrap().write_all("нужны шаблоны для презентации\n1\n1\n".as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Шаблоны презентаций"), "{text}");
    assert!(text.contains("К оплате"), "an offer: {text}");
    assert!(text.contains("paid with the dev provider"), "{text}");
    assert!(
        text.contains("Ваш товар") && text.contains("https://files.example.com/demo/ppt-"),
        "the item: {text}"
    );
    assert!(!text.contains("<code>"), "terminal text, not HTML: {text}");
}
