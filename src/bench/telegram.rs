//! `lavka bench telegram`: the real server (`lavka serve`, a child process, default
//! settings) against the local Bot API stand-in ([`super::bot_api`]), which enforces
//! Telegram's limits. `customers` chats each send `messages` commands (/start, /help,
//! /catalog, in turn) by webhook, all at once, while `payers` more customers pay with Stars
//! (their pre-checkout queries arrive behind the whole burst). It prints the time to the
//! last reply against the floor the limits allow, reply and pre-checkout latencies, sends
//! per second, and what Telegram would have refused.

use super::bot_api::{BotApiStandIn, PRE_CHECKOUT_DEADLINE};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin-token-0123456789";
const SECRET: &str = "bench-webhook-secret";
/// The customers' chat ids start here; the payers' follow.
const FIRST_CHAT: i64 = 710_000_000;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    ms(sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1])
}

fn command_update(id: i64, chat: i64, text: &str) -> Value {
    json!({"update_id": id, "message": {"message_id": id, "date": 1764150000,
        "chat": {"id": chat, "type": "private", "first_name": "C"},
        "from": {"id": chat, "is_bot": false, "first_name": "C", "language_code": "en"}, "text": text}})
}

pub async fn telegram(customers: usize, messages: usize, payers: usize) -> anyhow::Result<Value> {
    anyhow::ensure!(customers > 0 && messages > 0, "--customers and --messages must be above 0");
    let tg = BotApiStandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let items: Vec<String> = (0..payers.max(1)).map(|i| format!("TG-BENCH-{i:06}")).collect();
    let cat = json!({"currency": "RUB", "products": [
            {"id": "bench-key", "title": "Bench key", "price": 100, "category": "Keys"},
            {"id": "bench-course", "title": "Bench course", "price": 250, "category": "Courses"}],
        "stock": [{"product_id": "bench-key", "items": items}]});
    let cat_path = dir.path().join("bench-catalog.json");
    std::fs::write(&cat_path, cat.to_string())?;
    let env = [
        ("LAVKA_ADMIN_TOKEN", ADMIN.to_string()),
        ("LAVKA_SEMANTIC_SEARCH", "false".to_string()),
        ("LAVKA_DEMO_CATALOG", "false".to_string()),
        ("LAVKA_TELEGRAM_TOKEN", "123456:bench".to_string()),
        ("LAVKA_TELEGRAM_API_URL", tg.base.clone()),
        ("LAVKA_PUBLIC_URL", "https://shop.example.com".to_string()),
        ("LAVKA_TELEGRAM_WEBHOOK_SECRET", SECRET.to_string()),
        ("LAVKA_PAYMENTS__STARS_PER_UNIT", "1".to_string()),
        ("RUST_LOG", "error".to_string()),
    ];
    super::import_child(dir.path(), &env, &cat_path)?;
    let (mut server, base) = super::serve_child(dir.path(), &env).await?;
    let result = drive(&tg, &base, customers, messages, payers).await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

async fn drive(
    tg: &BotApiStandIn,
    base: &str,
    customers: usize,
    messages: usize,
    payers: usize,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    // The payers' orders, reserved before the burst.
    let mut invoices = Vec::new();
    for p in 0..payers {
        let user = FIRST_CHAT + (customers + p) as i64;
        let r = client
            .post(format!("{base}/admin/api/orders"))
            .bearer_auth(ADMIN)
            .json(&json!({"user_id": user, "product_id": "bench-key"}))
            .send()
            .await?;
        let v: Value = r.json().await?;
        let id = v["order"]["id"].as_u64().ok_or_else(|| anyhow::anyhow!("no order: {v}"))?;
        invoices.push((user, id, v["order"]["amount"].as_i64().unwrap_or(0) / 100));
    }
    // Every update, as Telegram sends them: a chat's in order, chats side by side (up to 40
    // connections, Telegram's default `max_connections`); the pre-checkouts come last.
    let commands = ["/start", "/help", "/catalog"];
    let mut updates: Vec<(Option<String>, Value)> = Vec::new();
    let mut id = 1;
    for m in 0..messages {
        for c in 0..customers {
            updates.push((None, command_update(id, FIRST_CHAT + c as i64, commands[m % commands.len()])));
            id += 1;
        }
    }
    for (user, order, stars) in &invoices {
        let q = format!("pcq-{order}");
        updates.push((Some(q.clone()), json!({"update_id": id, "pre_checkout_query": {"id": q,
            "from": {"id": user, "is_bot": false, "first_name": "P", "language_code": "en"},
            "currency": "XTR", "total_amount": stars, "invoice_payload": crate::payments::stars::payload(*order)}})));
        id += 1;
    }
    let started = Instant::now();
    let posted: std::sync::Arc<std::sync::Mutex<Vec<(i64, Instant)>>> = Default::default();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(
        updates.into_iter().collect::<std::collections::VecDeque<_>>(),
    ));
    let mut posters = Vec::new();
    for _ in 0..40 {
        let (client, queue, posted, tg) = (client.clone(), queue.clone(), posted.clone(), tg.clone());
        let url = format!("{base}/telegram/webhook");
        posters.push(tokio::spawn(async move {
            loop {
                let Some((query, u)) = queue.lock().expect("queue lock").pop_front() else {
                    return anyhow::Ok(());
                };
                if let Some(q) = &query {
                    tg.issued(q);
                }
                let chat = u.pointer("/message/chat/id").and_then(Value::as_i64);
                let at = Instant::now();
                let r = client
                    .post(&url)
                    .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                    .json(&u)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "webhook answered {}", r.status());
                if let Some(c) = chat {
                    posted.lock().expect("posted lock").push((c, at));
                }
            }
        }));
    }
    for p in posters {
        p.await??;
    }
    let posting = started.elapsed();
    // The floor: 30 a second overall, and a chat's messages a second apart — so the chat
    // whose first message goes last (the first messages of the chats spread over
    // (chats - 1) / 30 s, at most a second) has its last one that much later.
    let total = customers * messages;
    let first_round = (customers.min(30) - 1) as f64 / 30.0;
    let floor = Duration::from_secs_f64(((total - 1) as f64 / 30.0).max((messages - 1) as f64 + first_round));
    let deadline = started + floor * 3 + Duration::from_secs(60);
    let queries: Vec<String> = invoices.iter().map(|(_, o, _)| format!("pcq-{o}")).collect();
    loop {
        let replies_done = (0..customers).all(|c| tg.count_to(FIRST_CHAT + c as i64) >= messages);
        if replies_done && queries.iter().all(|q| tg.answered(q)) {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = tg.seen();
    // Reply k to a chat answers its k-th update.
    let mut posted_by_chat: std::collections::HashMap<i64, Vec<Instant>> = Default::default();
    for (c, at) in posted.lock().expect("posted lock").iter() {
        posted_by_chat.entry(*c).or_default().push(*at);
    }
    for v in posted_by_chat.values_mut() {
        v.sort();
    }
    let mut reply_lat = Vec::new();
    let mut by_chat: std::collections::HashMap<i64, usize> = Default::default();
    let mut last_reply = started;
    let mut replies = 0;
    for t in &seen.taken {
        if t.chat < FIRST_CHAT || t.chat >= FIRST_CHAT + customers as i64 {
            continue;
        }
        replies += 1;
        last_reply = last_reply.max(t.at);
        let k = by_chat.entry(t.chat).or_default();
        if let Some(p) = posted_by_chat.get(&t.chat).and_then(|v| v.get(*k)) {
            reply_lat.push(t.at.duration_since(*p));
        }
        *k += 1;
    }
    reply_lat.sort();
    let mut pcq: Vec<Duration> = queries.iter().filter_map(|q| seen.answer_latency.get(q).copied()).collect();
    pcq.sort();
    let to_last = last_reply.duration_since(started);
    let peak = {
        let times: Vec<Instant> = seen.taken.iter().map(|t| t.at).collect();
        (0..times.len())
            .map(|i| {
                times[i..].iter().take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1)).count()
            })
            .max()
            .unwrap_or(0)
    };
    Ok(json!({
        "customers": customers,
        "messages_each": messages,
        "payers": payers,
        "replies": replies,
        "replies_expected": total,
        "posting_s": secs(posting),
        "time_to_last_reply_s": secs(to_last),
        "floor_s": secs(floor),
        "over_floor_pct": if floor.is_zero() { 0.0 } else { ((to_last.as_secs_f64() / floor.as_secs_f64() - 1.0) * 1000.0).round() / 10.0 },
        "reply_p50_ms": pct(&reply_lat, 0.5),
        "reply_p99_ms": pct(&reply_lat, 0.99),
        "reply_max_ms": pct(&reply_lat, 1.0),
        "pre_checkout_answered": pcq.len(),
        "pre_checkout_p50_ms": pct(&pcq, 0.5),
        "pre_checkout_p99_ms": pct(&pcq, 0.99),
        "pre_checkout_max_ms": pct(&pcq, 1.0),
        "pre_checkout_late": seen.late.len() + queries.len().saturating_sub(pcq.len()),
        "pre_checkout_deadline_s": PRE_CHECKOUT_DEADLINE.as_secs(),
        "sends_per_sec": if to_last.is_zero() { 0.0 } else { (seen.taken.len() as f64 / to_last.as_secs_f64() * 10.0).round() / 10.0 },
        "sends_in_busiest_second": peak,
        "limit_violations": seen.violations.len(),
        "bad_requests": seen.bad_requests.len(),
        "first_problems": seen.violations.iter().chain(seen.bad_requests.iter()).take(5).collect::<Vec<_>>(),
    }))
}
