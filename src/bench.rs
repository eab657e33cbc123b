//! `lavka bench`: built-in benchmarks on fresh temporary stores with durable commits. They
//! print numbers; tests never assert on them.

pub mod bot_api;
pub mod conversations;
pub mod gemini_shape;
pub mod standin;
mod telegram;

pub use telegram::telegram;

use crate::domain::{Currency, JobKind, JobRecord, Product, ProductId, StockItem, StockState};
use crate::queue::{Handler, JobError, Queue, QueueOptions, RunOutcome};
use crate::store::jobs::{EnqueueOpts, enqueue};
use crate::store::orders::{Payment, complete_purchase, reserve_product_for_purchase};
use crate::store::products::{add_stock, upsert_product};
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Milliseconds for one small synchronous write (8 KiB + fdatasync), averaged over 50.
pub fn fsync_ms(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let Ok(mut f) = std::fs::File::create(&path) else {
        return -1.0;
    };
    let buf = [0u8; 8192];
    let t = Instant::now();
    for _ in 0..50 {
        if f.write_all(&buf).and_then(|_| f.sync_data()).is_err() {
            return -1.0;
        }
    }
    let _ = std::fs::remove_file(&path);
    t.elapsed().as_secs_f64() * 1000.0 / 50.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The one product the store and payment benchmarks sell: 100.00 RUB.
fn bench_product(id: &ProductId) -> Product {
    Product {
        id: id.clone(),
        title: "Bench key".into(),
        description: String::new(),
        category: "Bench".into(),
        tags: Vec::new(),
        price: 10_000,
        currency: Currency::RUB,
        discount_percent: 0,
        discount_until: None,
        fulfillment_hours: None,
        fulfillment_minutes: None,
        en: None,
        supplier: None,
        active: true,
        updated_at: 0,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Concurrent reserve → complete purchases for `seconds` by `buyers` tasks.
pub async fn store(buyers: usize, seconds: u64, gather_us: u64) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let fsync_before = fsync_ms(dir.path());
    let opts = StoreOptions { gather: Duration::from_micros(gather_us), ..StoreOptions::default() };
    let store = Store::open(&dir.path().join("bench.redb"), opts)?;
    let pid = ProductId::parse("bench-key")?;
    let product = bench_product(&pid);
    store.write(move |tx| upsert_product(tx, product.clone())).await?;
    // Enough stock that buyers never run out: well above the fastest rate seen.
    let items = (seconds * 20_000).clamp(20_000, 2_000_000);
    let mut next = 0u64;
    while next < items {
        let chunk: Vec<String> = (next..(next + 5000).min(items)).map(|i| format!("KEY-{i:09}")).collect();
        next += chunk.len() as u64;
        let p = pid.clone();
        store.write(move |tx| add_stock(tx, &p, &chunk)).await?;
    }
    let stats = store.writer_stats();
    let before = WriterSnapshot::of(&stats);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for b in 0..buyers {
        let store = store.clone();
        let pid = pid.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let p = pid.clone();
                let user = b as i64 + 1;
                let order =
                    store.write(move |tx| reserve_product_for_purchase(tx, user, &p, 1, 900_000)).await?;
                let pay = Payment {
                    provider: "bench".into(),
                    external_id: format!("{b}-{n}"),
                    amount: order.amount,
                    currency: order.currency,
                };
                let oid = order.id;
                store.write(move |tx| complete_purchase(tx, oid, &pay)).await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                n += 1;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let run = WriterSnapshot::of(&stats).minus(&before);
    lat.sort_by(|a, b| a.total_cmp(b));
    let report = store.check().await?;
    let p = pid.clone();
    let sold_items: Vec<StockItem> = store.stock_items(p).await?;
    let sold = sold_items.iter().filter(|i| i.state == StockState::Sold).count();
    let oversold =
        sold.saturating_sub(lat.len()) + report.violations.iter().filter(|v| v.contains("several")).count();
    let fsync_after = fsync_ms(dir.path());
    let (ops, commits) = (run.ops.max(1) as f64, run.commits.max(1) as f64);
    Ok(json!({
        "buyers": buyers,
        "gather_us": gather_us,
        "seconds": round2(elapsed),
        "purchases": lat.len(),
        "purchases_per_sec": (lat.len() as f64 / elapsed).round(),
        "p50_ms": round2(percentile(&lat, 0.5)),
        "p99_ms": round2(percentile(&lat, 0.99)),
        "oversold": oversold,
        "invariants": if report.ok() { "ok".to_string() } else { format!("{} violations", report.violations.len()) },
        "ops": run.ops,
        "commits": run.commits,
        "ops_per_commit": round2(ops / commits),
        // The writer's bound: its thread CPU per operation (a purchase is two), and how
        // long a commit waits for the disk's flush.
        "writer_cpu_us_per_op": round2(run.cpu_ns as f64 / ops / 1000.0),
        "writer_busy_pct": round2(run.cpu_ns as f64 / 1e9 / elapsed * 100.0),
        "commit_ms_avg": round2(run.commit_ns as f64 / commits / 1e6),
        "commit_cpu_ms_avg": round2(run.commit_cpu_ns as f64 / commits / 1e6),
        "commit_flush_wait_ms_avg": round2(run.commit_ns.saturating_sub(run.commit_cpu_ns) as f64 / commits / 1e6),
        "fsync_ms_before": round2(fsync_before),
        "fsync_ms_after": round2(fsync_after),
    }))
}

/// The writer's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct WriterSnapshot {
    ops: u64,
    commits: u64,
    cpu_ns: u64,
    commit_ns: u64,
    commit_cpu_ns: u64,
}

impl WriterSnapshot {
    fn of(s: &crate::store::WriterStats) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        WriterSnapshot {
            ops: s.ops.load(Relaxed),
            commits: s.commits.load(Relaxed),
            cpu_ns: s.cpu_ns.load(Relaxed),
            commit_ns: s.commit_ns.load(Relaxed),
            commit_cpu_ns: s.commit_cpu_ns.load(Relaxed),
        }
    }

    fn minus(&self, o: &Self) -> Self {
        WriterSnapshot {
            ops: self.ops - o.ops,
            commits: self.commits - o.commits,
            cpu_ns: self.cpu_ns - o.cpu_ns,
            commit_ns: self.commit_ns - o.commit_ns,
            commit_cpu_ns: self.commit_cpu_ns - o.commit_cpu_ns,
        }
    }
}

struct Stamp {
    done: Mutex<HashMap<u64, Instant>>,
}

#[async_trait::async_trait]
impl Handler for Stamp {
    async fn handle(&self, _job: &JobRecord) -> Result<(), JobError> {
        Ok(())
    }
}

/// Enqueue → run → ack of `jobs` no-op jobs with `concurrency` workers.
pub async fn queue(jobs: u64, concurrency: usize) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let fsync_before = fsync_ms(dir.path());
    let store = Store::open(&dir.path().join("bench.redb"), StoreOptions::default())?;
    let handler = Arc::new(Stamp { done: Mutex::new(HashMap::new()) });
    let q = Queue::new(store.clone(), handler.clone(), QueueOptions { concurrency, ..Default::default() });
    let enqueued: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let started = Instant::now();
    let done_count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The producer enqueues in chunks of up to 100 jobs per transaction, concurrently with
    // the workers, keeping at most 4 × concurrency jobs outstanding so that the latency is
    // that of the pipeline, not of a backlog.
    let window = (concurrency as u64 * 4).max(100);
    let producer = {
        let store = store.clone();
        let enqueued = enqueued.clone();
        let done_count = done_count.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while n < jobs {
                let outstanding = n - done_count.load(std::sync::atomic::Ordering::Relaxed);
                if outstanding + 50 > window {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    continue;
                }
                let k = 100.min(jobs - n).min(window - outstanding);
                let first = n;
                let ids = store
                    .write(move |tx| {
                        (first..first + k)
                            .map(|i| {
                                enqueue(tx, JobKind::Noop { n: i }, EnqueueOpts::default()).map(|e| e.id)
                            })
                            .collect::<crate::Result<Vec<u64>>>()
                    })
                    .await?;
                let now = Instant::now();
                {
                    let mut m = enqueued.lock().expect("lock");
                    for id in ids {
                        m.insert(id, now);
                    }
                }
                n += k;
                tokio::task::yield_now().await;
            }
            anyhow::Ok(())
        })
    };
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let q = q.clone();
        let h = handler.clone();
        let done_count = done_count.clone();
        workers.push(tokio::spawn(async move {
            loop {
                if done_count.load(std::sync::atomic::Ordering::Relaxed) >= jobs {
                    return anyhow::Ok(());
                }
                match q.run_once().await? {
                    RunOutcome::Ran { id, .. } => {
                        h.done.lock().expect("lock").insert(id, Instant::now());
                        done_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => tokio::time::sleep(Duration::from_micros(200)).await,
                }
            }
        }));
    }
    producer.await?.context("producer")?;
    for w in workers {
        w.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let enq = enqueued.lock().expect("lock");
    let done = handler.done.lock().expect("lock");
    let mut lat: Vec<f64> = done
        .iter()
        .filter_map(|(id, t)| enq.get(id).map(|e| t.saturating_duration_since(*e).as_secs_f64() * 1000.0))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let stats = store.writer_stats();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
    let ops = stats.ops.load(std::sync::atomic::Ordering::Relaxed);
    Ok(json!({
        "jobs": done.len(),
        "concurrency": concurrency,
        "seconds": round2(elapsed),
        "jobs_per_sec": (done.len() as f64 / elapsed).round(),
        "p50_ms": round2(percentile(&lat, 0.5)),
        "p99_ms": round2(percentile(&lat, 0.99)),
        "ops_per_commit": round2(ops as f64 / commits.max(1) as f64),
        "fsync_ms_before": round2(fsync_before),
        "fsync_ms_after": round2(fsync_ms(dir.path())),
    }))
}

/// Search quality on a labelled set over a catalogue, in a temporary data dir.
pub async fn search_quality(
    catalog: Option<&std::path::Path>,
    queries: Option<&std::path::Path>,
    dump: Option<&std::path::Path>,
    cfg: &crate::config::Config,
) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("lavka.redb"), StoreOptions::default())?;
    let cur = Currency::parse(&cfg.currency)?;
    let cat = match catalog {
        Some(p) => crate::catalog::load_path(p, cur)?,
        None => crate::catalog::parse_json(crate::catalog::DEMO_CATALOG, cur)?,
    };
    store.write(move |tx| crate::catalog::apply(tx, &cat)).await?;
    let qs = match queries {
        Some(p) => {
            crate::search::eval::parse_queries(&std::fs::read_to_string(p).context("reading the query set")?)?
        }
        None => crate::search::eval::parse_queries(crate::search::eval::DEMO_QUERIES)?,
    };
    let store_products = store.products().await?;
    let search = crate::search::Search::open(&dir.path().join("index"), store, None).await?;
    if cfg.semantic_search {
        crate::search::model::attach(&search, &cfg.model_dir, cfg.model_fetch).await;
    }
    use crate::search::Mode;
    let mut out = json!({ "queries": qs.len(), "semantic": search.semantic() });
    let modes: &[(&str, Mode)] = if search.semantic() {
        &[
            ("keyword", Mode::Keyword),
            ("vector", Mode::Vector),
            ("rrf", Mode::Rrf),
            ("weighted", Mode::Weighted),
            ("hybrid", Mode::Hybrid),
        ]
    } else {
        &[("keyword", Mode::Keyword)]
    };
    if let Some(path) = dump {
        use crate::search::query;
        let quantities: std::collections::HashMap<String, Vec<query::Quantity>> =
            store_products.iter().map(|p| (p.id.to_string(), query::parse(&p.title).quantities)).collect();
        let mut lines = String::new();
        for q in &qs {
            let want = query::parse(&q.q).quantities;
            let cmp: serde_json::Map<String, Value> = quantities
                .iter()
                .map(|(id, have)| {
                    let (m, c) = query::compare(&want, have);
                    (id.clone(), json!([m, c]))
                })
                .filter(|(_, v)| v != &json!([0, false]))
                .collect();
            let (kw, vec) = search.lists(&q.q).await?;
            let stock = search
                .stock_of(kw.iter().map(|k| k.id.clone()).chain(vec.iter().map(|v| v.0.clone())))
                .await?;
            lines.push_str(&serde_json::to_string(&json!({
                "q": q.q, "kind": q.kind, "relevant": q.relevant,
                "kw": kw.iter().map(|k| json!([k.id.as_str(), k.score, k.coverage])).collect::<Vec<_>>(),
                "vec": vec.iter().map(|(id, s)| json!([id.as_str(), s])).collect::<Vec<_>>(),
                "stock": stock, "wants": want.len(), "cmp": cmp,
            }))?);
            lines.push('\n');
        }
        std::fs::write(path, lines)?;
    }
    for (name, mode) in modes {
        let t = Instant::now();
        let report = search.evaluate(&qs, *mode).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0 / qs.len().max(1) as f64;
        out[name] = json!({ "report": report, "ms_per_query": round2(ms) });
    }
    Ok(out)
}

fn percentile_ms(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (round2(percentile(&v, 0.5)), round2(percentile(&v, 0.99)))
}

/// Search latency at a catalogue size, vector scan cost, and indexing throughput.
pub async fn search(products: usize, queries: usize, cfg: &crate::config::Config) -> anyhow::Result<Value> {
    use crate::search::vectors::{FlatIndex, VectorIndex};
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("lavka.redb"), StoreOptions::default())?;
    let cur = Currency::parse(&cfg.currency)?;
    let demo = crate::catalog::parse_json(crate::catalog::DEMO_CATALOG, cur)?;
    // Variants of the demo products: same texts with a numbered edition, so keyword and
    // vector lists have realistic competition.
    let mut all = Vec::with_capacity(products);
    for i in 0..products {
        let mut p = demo.products[i % demo.products.len()].clone();
        if i >= demo.products.len() {
            p.id = ProductId::parse(&format!("{}-v{i}", p.id.as_str().chars().take(40).collect::<String>()))?;
            p.title = format!("{} (выпуск {i})", p.title);
        }
        p.active = true;
        p.supplier = None;
        all.push(p);
    }
    for chunk in all.chunks(2000) {
        let chunk = chunk.to_vec();
        store
            .write(move |tx| {
                for p in &chunk {
                    upsert_product(tx, p.clone())?;
                }
                Ok(())
            })
            .await?;
    }
    let t = Instant::now();
    let search = crate::search::Search::open(&dir.path().join("index"), store.clone(), None).await?;
    let keyword_index_s = t.elapsed().as_secs_f64();
    let encoder = crate::search::model::load_e5(&cfg.model_dir, cfg.model_fetch).await?;
    // Indexing throughput on real passages (64 of them).
    let passages: Vec<String> = all.iter().take(64).map(crate::search::passage).collect();
    let e = encoder.clone();
    let t = Instant::now();
    tokio::task::spawn_blocking(move || e.embed(&passages)).await??;
    let texts_per_sec = 64.0 / t.elapsed().as_secs_f64();
    // Random unit vectors for every product (the scan costs the same as for real ones).
    let dim = encoder.dim();
    let rows: Vec<(ProductId, Vec<f32>)> = all
        .iter()
        .map(|p| {
            let v: Vec<f32> = (0..dim).map(|_| fastrand::f32() - 0.5).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            (p.id.clone(), v.into_iter().map(|x| x / n).collect())
        })
        .collect();
    let mut flat = FlatIndex::new(dim);
    for (id, v) in &rows {
        flat.upsert(id, v);
    }
    let mut scan = Vec::new();
    for (_, q) in rows.iter().take(queries) {
        let t = Instant::now();
        std::hint::black_box(flat.search(q, 30));
        scan.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Stored as if computed by the encoder, so attaching it loads them instead of embedding.
    let model = encoder.model_id().to_string();
    let stored: Vec<crate::store::embeddings::StoredVector> = all
        .iter()
        .zip(&rows)
        .map(|(p, (id, v))| crate::store::embeddings::StoredVector {
            product: id.clone(),
            text_hash: crate::search::passage_hash(&crate::search::passage(p)),
            vector: v.clone(),
        })
        .collect();
    for chunk in stored.chunks(2000) {
        let (m, c) = (model.clone(), chunk.to_vec());
        store.write(move |tx| crate::store::embeddings::put(tx, &m, &c)).await?;
    }
    search.set_embedder(encoder).await?;
    let qs = crate::search::eval::parse_queries(crate::search::eval::DEMO_QUERIES)?;
    let mut lat = Vec::new();
    let mut parts: [Vec<f64>; 4] = Default::default();
    for q in qs.iter().cycle().take(queries) {
        search.clear_query_cache();
        let t = Instant::now();
        let (_, timings) = search.search_timed(&q.q, 10, crate::search::Mode::Hybrid).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        for (part, us) in
            parts.iter_mut().zip([timings.embed_us, timings.bm25_us, timings.scan_us, timings.fuse_us])
        {
            part.push(us as f64 / 1000.0);
        }
    }
    let [embed, bm25, scan_q, fuse] = parts.map(percentile_ms);
    let (q50, q99) = percentile_ms(lat);
    let (s50, s99) = percentile_ms(scan);
    Ok(json!({
        "products": products,
        "keyword_index_seconds": round2(keyword_index_s),
        "query_p50_ms": q50, "query_p99_ms": q99,
        "vector_scan_p50_ms": s50, "vector_scan_p99_ms": s99,
        "where_p50_ms": {"query_embedding": embed.0, "bm25": bm25.0, "vector_scan": scan_q.0,
            "fusion_and_availability": fuse.0},
        "where_p99_ms": {"query_embedding": embed.1, "bm25": bm25.1, "vector_scan": scan_q.1,
            "fusion_and_availability": fuse.1},
        "note": "embedding and BM25 run at once, on two cores: the total is about the larger of them plus fusion",
        "index_texts_per_sec": round2(texts_per_sec),
    }))
}

/// Signed Crypto Pay webhooks against the running HTTP server, `concurrency` clients: the
/// webhook's acknowledgement time and the time from the webhook to the delivered order
/// (delivery job run by the workers, message recorded).
pub async fn payments(orders: usize, concurrency: usize) -> anyhow::Result<Value> {
    use crate::app::{App, Parts};
    const TOKEN: &str = "bench:token";
    let dir = tempfile::tempdir()?;
    let mut cfg = crate::config::Config::for_tests(dir.path());
    cfg.workers = 4;
    cfg.payments.cryptopay_token = crate::config::Secret::new(TOKEN);
    cfg.payments.reconcile_secs = 0;
    let app = App::build(cfg, Parts::default()).await?;
    let store = app.state.store.clone();
    let pid = ProductId::parse("bench-key")?;
    let product = bench_product(&pid);
    let items: Vec<String> = (0..orders).map(|i| format!("KEY-{i:08}")).collect();
    store
        .write(move |tx| {
            upsert_product(tx, product.clone())?;
            add_stock(tx, &pid, &items)?;
            Ok(())
        })
        .await?;
    let mut ids = Vec::with_capacity(orders);
    for u in 0..orders {
        let p = ProductId::parse("bench-key")?;
        let o =
            store.write(move |tx| reserve_product_for_purchase(tx, u as i64 + 1, &p, 1, 3_600_000)).await?;
        ids.push(o.id);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let cancel = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(app.run(listener, cancel.clone()));
    let queue = Arc::new(Mutex::new(ids));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (queue, client, base, store) = (queue.clone(), client.clone(), base.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let (mut acks, mut delivered, mut errors) = (Vec::new(), Vec::new(), 0u64);
                        while let Some(id) = queue.lock().ok().and_then(|mut q| q.pop()) {
                let body = json!({"update_id": id, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
                    "payload": {"invoice_id": id, "status": "paid", "fiat": "RUB", "amount": "100.00", "payload": format!("order:{id}")}})
                .to_string();
                let sig = crate::payments::cryptopay::sign(TOKEN, body.as_bytes());
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/payments/cryptopay/webhook"))
                    .header("crypto-pay-api-signature", sig)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if !r.is_ok_and(|r| r.status().is_success()) {
                    errors += 1;
                    continue;
                }
                acks.push(t.elapsed().as_secs_f64() * 1000.0);
                loop {
                    match store.order(id).await {
                        Ok(o) if o.delivered_at.is_some() => break,
                        Ok(_) => tokio::time::sleep(Duration::from_micros(500)).await,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                    if t.elapsed() > Duration::from_secs(30) {
                        errors += 1;
                        break;
                    }
                }
                delivered.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (acks, delivered, errors)
        }));
    }
    let (mut acks, mut delivered, mut errors) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (a, d, e) = t.await?;
        acks.extend(a);
        delivered.extend(d);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    cancel.cancel();
    server.await??;
    let (a50, a99) = percentile_ms(acks);
    let (d50, d99) = percentile_ms(delivered.clone());
    Ok(json!({
        "bench": "payments",
        "orders": orders,
        "concurrency": concurrency,
        "webhook_ack_p50_ms": a50,
        "webhook_ack_p99_ms": a99,
        "webhook_to_delivered_p50_ms": d50,
        "webhook_to_delivered_p99_ms": d99,
        "delivered_per_sec": round2(delivered.len() as f64 / secs),
        "errors": errors,
    }))
}

/// Peak resident memory (VmHWM) of a process, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round2(kb / 1024.0))
}

/// The real `lavka serve` (this binary) on a temporary data dir, driven over loopback by
/// `clients` concurrent clients for `seconds`: product search, the catalogue API, health,
/// Telegram webhook updates and signed Crypto Pay webhooks paying real orders. Reports
/// throughput, latency per endpoint, errors and the server's peak RSS.
pub async fn http(clients: usize, seconds: u64, semantic: bool) -> anyhow::Result<Value> {
    const ADMIN: &str = "bench-admin-token-0123456789";
    const CRYPTO: &str = "bench:crypto";
    const SECRET: &str = "bench-webhook-secret";
    let dir = tempfile::tempdir()?;
    let env = [
        ("LAVKA_ADMIN_TOKEN", ADMIN.to_string()),
        ("LAVKA_SEMANTIC_SEARCH", semantic.to_string()),
        ("LAVKA_WORKERS", "0".to_string()),
        ("LAVKA_SCHEDULER", "false".to_string()),
        ("LAVKA_PAYMENTS__CRYPTOPAY_TOKEN", CRYPTO.to_string()),
        ("LAVKA_PAYMENTS__RECONCILE_SECS", "0".to_string()),
        ("LAVKA_TELEGRAM_TOKEN", "123456:bench".to_string()),
        // Nothing listens there: the bot's own calls fail quietly; updates are only stored.
        ("LAVKA_TELEGRAM_API_URL", "http://127.0.0.1:9".to_string()),
        ("LAVKA_PUBLIC_URL", "https://shop.example.com".to_string()),
        ("LAVKA_TELEGRAM_WEBHOOK_SECRET", SECRET.to_string()),
        ("RUST_LOG", "error".to_string()),
    ];
    let items: Vec<String> = (0..20_000).map(|i| format!("HTTP-KEY-{i:06}")).collect();
    let cat = json!({"currency": "RUB", "products": [{"id": "bench-key", "title": "Bench key", "price": 100}],
        "stock": [{"product_id": "bench-key", "items": items}]});
    let cat_path = dir.path().join("bench-catalog.json");
    std::fs::write(&cat_path, cat.to_string())?;
    import_child(dir.path(), &env, &cat_path)?;
    let (mut server, base) = serve_child(dir.path(), &env).await?;
    let pid = server.id();
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    // Orders for the payment webhooks to pay.
    let mut orders = Vec::new();
    for u in 0..(clients * 20).min(10_000) {
        let r = client
            .post(format!("{base}/admin/api/orders"))
            .bearer_auth(ADMIN)
            .json(&json!({"user_id": u + 1, "product_id": "bench-key"}))
            .send()
            .await?;
        let v: Value = r.json().await?;
        if let Some(id) = v["order"]["id"].as_u64() {
            orders.push(id);
        }
    }
    let orders = Arc::new(Mutex::new(orders));
    let queries: Vec<String> = crate::search::eval::parse_queries(crate::search::eval::DEMO_QUERIES)?
        .into_iter()
        .map(|q| q.q)
        .collect();
    let queries = Arc::new(queries);
    let next_update = Arc::new(std::sync::atomic::AtomicI64::new(1));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, orders, queries, next_update) =
            (client.clone(), base.clone(), orders.clone(), queries.clone(), next_update.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: HashMap<&'static str, Vec<f64>> = HashMap::new();
            let mut errors = 0u64;
            let mut i = c;
            while Instant::now() < deadline {
                i += 1;
                let t = Instant::now();
                let (name, req) = match i % 20 {
                    0..=7 => {
                        let q = &queries[i % queries.len()];
                        ("search", client.get(format!("{base}/api/search")).query(&[("q", q.as_str()), ("limit", "5")]))
                    }
                    8..=12 => ("products", client.get(format!("{base}/api/products"))),
                    13..=14 => ("healthz", client.get(format!("{base}/healthz"))),
                    15..=17 => {
                        let id = next_update.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let u = json!({"update_id": id, "message": {"message_id": id, "date": 1764150000,
                            "chat": {"id": 1000 + c, "type": "private", "first_name": "B"},
                            "from": {"id": 1000 + c, "is_bot": false, "first_name": "B"}, "text": "hello"}});
                        let req = client
                            .post(format!("{base}/telegram/webhook"))
                            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                            .json(&u);
                        ("telegram_webhook", req)
                    }
                    _ => {
                        let Some(id) = orders.lock().ok().and_then(|mut o| o.pop()) else { continue };
                        let body = json!({"update_id": id, "update_type": "invoice_paid", "request_date": "2026-11-26T12:00:00.000Z",
                            "payload": {"invoice_id": id, "status": "paid", "fiat": "RUB", "amount": "100.00", "payload": format!("order:{id}")}})
                        .to_string();
                        let sig = crate::payments::cryptopay::sign(CRYPTO, body.as_bytes());
                        let req = client
                            .post(format!("{base}/payments/cryptopay/webhook"))
                            .header("crypto-pay-api-signature", sig)
                            .header("content-type", "application/json")
                            .body(body);
                        ("payment_webhook", req)
                    }
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.entry(name).or_default().push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all: HashMap<&'static str, Vec<f64>> = HashMap::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        errors += e;
        for (k, v) in lat {
            all.entry(k).or_default().extend(v);
        }
    }
    let elapsed = seconds as f64;
    let rss = peak_rss_mb(pid);
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = tokio::task::spawn_blocking(move || server.wait()).await;
    let total: usize = all.values().map(Vec::len).sum();
    let mut per = serde_json::Map::new();
    let mut everything = Vec::new();
    for (k, v) in all {
        everything.extend(v.iter().copied());
        let n = v.len();
        let (p50, p99) = percentile_ms(v);
        per.insert(k.to_string(), json!({"requests": n, "p50_ms": p50, "p99_ms": p99}));
    }
    let (p50, p99) = percentile_ms(everything);
    Ok(json!({
        "bench": "http",
        "clients": clients,
        "seconds": seconds,
        "semantic": semantic,
        "requests_per_sec": round2(total as f64 / elapsed),
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "server_peak_rss_mb": rss,
        "endpoints": per,
    }))
}

/// The offline consultant's reply time on the demo catalogue: each labelled query asked by a
/// fresh customer (search, live availability, memory write), with the embedding model
/// loaded as in a shop (fetched if missing) unless `semantic` is false.
pub async fn consultant(cfg: &crate::config::Config, semantic: bool) -> anyhow::Result<Value> {
    use crate::app::{App, Parts};
    let dir = tempfile::tempdir()?;
    let mut c = crate::config::Config::for_tests(dir.path());
    c.demo_catalog = true;
    c.model_dir = cfg.model_dir.clone();
    c.model_fetch = cfg.model_fetch;
    let app = App::build(c, Parts::default()).await?;
    let s = app.state;
    if semantic {
        crate::search::model::attach(&s.search, &cfg.model_dir, cfg.model_fetch).await;
    }
    let queries = crate::search::eval::parse_queries(crate::search::eval::DEMO_QUERIES)?;
    let mut times = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let who = crate::shop::Customer::new(
            10_000 + i as i64,
            crate::texts::Lang::Ru,
            crate::shop::Door::Terminal,
        );
        let t = Instant::now();
        s.shop.converse(&who, &q.q).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let n = times.len();
    let (p50, p99) = percentile_ms(times);
    Ok(
        json!({"bench": "consultant", "semantic": s.search.semantic(), "replies": n, "p50_ms": p50, "p99_ms": p99}),
    )
}

/// `lavka import FILE` into `dir` with `env`, as a child process.
fn import_child(dir: &std::path::Path, env: &[(&str, String)], file: &std::path::Path) -> anyhow::Result<()> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(dir)
        .arg("import")
        .arg(file)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "importing the bench catalogue failed");
    Ok(())
}

/// Starts `lavka serve` on a temporary data dir with `env`; returns it and its base URL.
pub(crate) async fn serve_child(
    dir: &std::path::Path,
    env: &[(&str, String)],
) -> anyhow::Result<(std::process::Child, String)> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // To see what the server did: `LAVKA_BENCH_LOG=<log filter>` writes its log to
    // `lavka-bench-server.log` in the current directory.
    if let Ok(filter) = std::env::var("LAVKA_BENCH_LOG") {
        let log = std::fs::File::create("lavka-bench-server.log")?;
        cmd.env("RUST_LOG", filter).env("LAVKA_LOG_FORMAT", "json").stderr(log);
    }
    let mut server = cmd.spawn()?;
    let addr_file = dir.join("lavka.addr");
    let started = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(&addr_file)
            && s.ends_with('\n')
        {
            return Ok((server, s.trim().to_string()));
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = server.kill();
            anyhow::bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
