//! The durable job queue: retries with backoff (on a manual clock), dead letters, re-drive,
//! dedupe, delayed jobs, rate-limit waits, recovery after a restart, pruning.

use crate::helpers::*;
use lavka::domain::{JobKind, JobRecord, JobState};
use lavka::queue::{Handler, JobError, Queue, QueueOptions, RunOutcome};
use lavka::store::jobs::{self, EnqueueOpts};
use lavka::store::{Store, StoreOptions};
use redb::ReadableTable;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Answers runs from a script; records which job ids ran.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<(), JobError>>>,
    ran: Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl Handler for Scripted {
    async fn handle(&self, job: &JobRecord) -> Result<(), JobError> {
        self.ran.lock().unwrap().push(job.id);
        self.answers.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

fn queue(store: &Store, h: Arc<Scripted>) -> Queue {
    Queue::new(
        store.clone(),
        h,
        QueueOptions {
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(60),
            ..Default::default()
        },
    )
}

fn noop(n: u64) -> JobKind {
    JobKind::Noop { n }
}

#[tokio::test]
async fn a_failing_job_is_retried_with_growing_backoff_then_dead_lettered_and_re_drivable() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    let e = q.enqueue(noop(1), EnqueueOpts { max_attempts: Some(3), ..Default::default() }).await.unwrap();
    for _ in 0..3 {
        h.answers.lock().unwrap().push_back(Err(JobError::Retry("flaky".into())));
    }
    // Attempt 1 fails: retry in [5 s, 10 s).
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Ready, .. }));
    let j = t.store.job(e.id).await.unwrap().unwrap();
    assert_eq!(j.attempts, 1);
    assert_eq!(j.last_error.as_deref(), Some("flaky"));
    let wait = j.run_at - T0;
    assert!((5_000..10_000).contains(&wait), "first backoff {wait} ms");
    assert_eq!(q.run_once().await.unwrap(), RunOutcome::NotDue(j.run_at));
    t.clock.advance(Duration::from_millis(wait as u64));
    // Attempt 2 fails: retry in [10 s, 20 s).
    q.run_once().await.unwrap();
    let j2 = t.store.job(e.id).await.unwrap().unwrap();
    let wait2 = j2.run_at - (T0 + wait);
    assert!((10_000..20_000).contains(&wait2), "second backoff {wait2} ms");
    t.clock.advance(Duration::from_millis(wait2 as u64));
    // Attempt 3 fails: dead.
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Dead, .. }));
    assert_eq!(q.run_once().await.unwrap(), RunOutcome::Idle);
    let dead = jobs(&t.store, JobState::Dead).await;
    assert_eq!(dead.len(), 1);
    // Re-drive: runs again and succeeds.
    t.store.write(move |tx| jobs::redrive(tx, e.id)).await.unwrap();
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Done, .. }));
    assert_eq!(h.ran.lock().unwrap().len(), 4);
    assert!(t.store.write(move |tx| jobs::redrive(tx, e.id)).await.is_err(), "only dead jobs re-drive");
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_fatal_error_dead_letters_at_once() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    q.enqueue(noop(1), EnqueueOpts::default()).await.unwrap();
    h.answers.lock().unwrap().push_back(Err(JobError::Fatal("bad".into())));
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Dead, .. }));
}

#[tokio::test]
async fn retry_after_waits_exactly_and_does_not_use_up_attempts() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    let e = q.enqueue(noop(1), EnqueueOpts { max_attempts: Some(1), ..Default::default() }).await.unwrap();
    for _ in 0..5 {
        h.answers.lock().unwrap().push_back(Err(JobError::RetryAfter(Duration::from_secs(3), "429".into())));
    }
    for i in 0..5 {
        q.run_once().await.unwrap();
        let j = t.store.job(e.id).await.unwrap().unwrap();
        assert_eq!(j.state, JobState::Ready);
        assert_eq!(j.attempts, 0);
        assert_eq!(j.throttled, i + 1);
        assert_eq!(j.run_at, t.store.now() + 3_000);
        assert_eq!(q.run_once().await.unwrap(), RunOutcome::NotDue(j.run_at));
        t.clock.advance(Duration::from_secs(3));
    }
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Done, .. }));
}

#[tokio::test]
async fn delayed_jobs_wait_for_their_time() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    let at = T0 + 60_000;
    q.enqueue(noop(1), EnqueueOpts { run_at: Some(at), ..Default::default() }).await.unwrap();
    assert_eq!(q.run_once().await.unwrap(), RunOutcome::NotDue(at));
    t.clock.advance(Duration::from_secs(59));
    assert_eq!(q.run_once().await.unwrap(), RunOutcome::NotDue(at));
    t.clock.advance(Duration::from_secs(1));
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { .. }));
}

#[tokio::test]
async fn dedupe_keys_make_enqueue_idempotent() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    let a = q.enqueue(noop(1), EnqueueOpts::once("deliver:1")).await.unwrap();
    let b = q.enqueue(noop(2), EnqueueOpts::once("deliver:1")).await.unwrap();
    assert!(a.created && !b.created);
    assert_eq!(a.id, b.id);
    q.drain().await.unwrap();
    let c = q.enqueue(noop(3), EnqueueOpts::once("deliver:1")).await.unwrap();
    assert!(!c.created, "a once-key holds after the job finished");

    let p1 = q.enqueue(noop(4), EnqueueOpts::while_pending("sweep")).await.unwrap();
    let p2 = q.enqueue(noop(5), EnqueueOpts::while_pending("sweep")).await.unwrap();
    assert_eq!(p1.id, p2.id);
    q.drain().await.unwrap();
    let p3 = q.enqueue(noop(6), EnqueueOpts::while_pending("sweep")).await.unwrap();
    assert!(p3.created, "a while-pending key frees when the job is done");
    assert_eq!(h.ran.lock().unwrap().len(), 2);
    assert_check(&t.store).await;
}

/// Never finishes: the process "crashes" while the job runs.
struct Hang;

#[async_trait::async_trait]
impl Handler for Hang {
    async fn handle(&self, _job: &JobRecord) -> Result<(), JobError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_job_that_was_running_at_a_crash_runs_again_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lavka.redb");
    let id = {
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let q = Queue::new(store.clone(), Arc::new(Hang), QueueOptions::default());
        let e = q.enqueue(noop(1), EnqueueOpts::default()).await.unwrap();
        let running = tokio::spawn(async move { q.run_once().await });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        running.abort();
        let _ = running.await;
        e.id
    };
    // Give the old writer thread a moment to notice its store is gone.
    let store = loop {
        match Store::open(&path, StoreOptions::default()) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let h = Arc::new(Scripted::default());
    let q = Queue::new(store.clone(), h.clone(), QueueOptions::default());
    assert!(matches!(q.run_once().await.unwrap(), RunOutcome::Ran { state: JobState::Done, .. }));
    assert_eq!(*h.ran.lock().unwrap(), vec![id]);
}

#[tokio::test]
async fn two_workers_never_run_the_same_job() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    for i in 0..200 {
        q.enqueue(noop(i), EnqueueOpts::default()).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move { q.drain().await.unwrap().len() }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 200);
    let mut ran = h.ran.lock().unwrap().clone();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), 200);
}

#[tokio::test]
async fn old_done_jobs_are_pruned_but_once_keys_keep_their_promise() {
    let t = test_store();
    let h = Arc::new(Scripted::default());
    let q = queue(&t.store, h.clone());
    q.enqueue(noop(1), EnqueueOpts::once("k")).await.unwrap();
    q.drain().await.unwrap();
    t.clock.advance(Duration::from_secs(3600));
    let now = t.store.now();
    let p = t.store.write(move |tx| jobs::prune(tx, now - 1000, now, 10, 100)).await.unwrap();
    assert_eq!(p.jobs, 1);
    assert!(jobs(&t.store, JobState::Done).await.is_empty());
    assert!(
        !q.enqueue(noop(2), EnqueueOpts::once("k")).await.unwrap().created,
        "never twice, even after pruning"
    );
    assert_check(&t.store).await;
}

#[tokio::test]
async fn the_worker_pool_runs_jobs_as_they_arrive() {
    let app = spawn_app_with(|c| c.workers = 3).await;
    seed(app.store(), SMALL).await;
    let q = &app.state.queue;
    for i in 0..20 {
        q.enqueue(noop(i), EnqueueOpts::default()).await.unwrap();
    }
    // Wait (bounded) for the pool: it is woken by the commit, not by polling.
    for _ in 0..500 {
        if app.store().queue_counts().await.unwrap().ready == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.store().queue_counts().await.unwrap().ready, 0);
    assert_eq!(jobs(app.store(), JobState::Done).await.len(), 20);
    app.stop().await;
}

#[tokio::test]
async fn the_periodic_jobs_expire_refund_and_snapshot_through_the_queue() {
    use lavka::domain::{Currency, OrderKind, OrderStatus};
    use lavka::store::orders::{self as ops, Payment};
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let s = app.store();
    let p = pid("key");
    let reserved = s.write(move |tx| ops::reserve_product_for_purchase(tx, 1, &p, 1, 60_000)).await.unwrap();
    let p = pid("pre");
    let pre = s
        .write(move |tx| ops::create_order_with_availability_check(tx, 2, &p, 1, OrderKind::Prepaid, 60_000))
        .await
        .unwrap();
    let pay = Payment {
        provider: "t".into(),
        external_id: "x".into(),
        amount: pre.amount,
        currency: Currency::RUB,
    };
    s.write(move |tx| ops::apply_payment(tx, pre.id, &pay)).await.unwrap();
    app.drain_jobs().await;
    app.clock.advance(Duration::from_secs(49 * 3600));
    let q = &app.state.queue;
    q.enqueue(JobKind::ExpireReservations, EnqueueOpts::while_pending("periodic:expire_reservations"))
        .await
        .unwrap();
    q.enqueue(JobKind::RefundLatePrepaid, EnqueueOpts::while_pending("periodic:refund_late_prepaid"))
        .await
        .unwrap();
    q.enqueue(JobKind::Snapshot, EnqueueOpts::default()).await.unwrap();
    app.drain_jobs().await;
    assert_eq!(s.order(reserved.id).await.unwrap().status, OrderStatus::Expired);
    assert_eq!(s.order(pre.id).await.unwrap().status, OrderStatus::Refunded);
    assert_eq!(s.balance(2).await.unwrap(), pre.amount);
    let told = app.messenger.messages_to(2);
    assert!(told.iter().any(|m| m.contains("баланс")), "{told:?}");
    let backups: Vec<_> = std::fs::read_dir(app.dir.path().join("backups")).unwrap().collect();
    assert_eq!(backups.len(), 1);
    // A second snapshot right away is skipped (start-up loops must not fill the disk).
    q.enqueue(JobKind::Snapshot, EnqueueOpts::default()).await.unwrap();
    app.drain_jobs().await;
    assert_eq!(std::fs::read_dir(app.dir.path().join("backups")).unwrap().count(), 1);
    assert_check(s).await;
    app.stop().await;
}

#[tokio::test]
async fn the_scheduler_enqueues_every_periodic_job_at_start() {
    let app = spawn_app_with(|c| c.scheduler = true).await;
    // Start-up catch-up runs before the server answers.
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = jobs(app.store(), JobState::Ready).await;
    for kind in ["expire_reservations", "refund_late_prepaid", "prune_jobs", "snapshot"] {
        assert!(ready.iter().any(|j| j.kind.name() == kind), "{kind} missing from {ready:?}");
    }
    app.stop().await;
}

/// Opens the store at `path`, waiting while a dropped one in this process still closes.
fn reopen(path: &std::path::Path, clock: lavka::store::Clock) -> Store {
    for _ in 0..200 {
        match Store::open(path, StoreOptions { clock: clock.clone(), ..Default::default() }) {
            Ok(s) => return s,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("the database stayed in use");
}

#[tokio::test]
async fn a_job_of_a_kind_from_a_newer_version_is_set_aside_and_the_queue_goes_on() {
    let t = test_store();
    let path = t.dir.path().join("lavka.redb");
    for (n, dedupe) in [(1, None), (2, Some(lavka::domain::Dedupe::WhilePending("future".into()))), (3, None)]
    {
        let opts = EnqueueOpts { dedupe, ..Default::default() };
        t.store.write(move |tx| jobs::enqueue(tx, noop(n), opts.clone())).await.unwrap();
    }
    let clock = t.clock.clone();
    drop(t.store);
    // A newer version rewrote job 2 as a kind this one does not know (then was rolled back).
    let db = loop {
        match redb::Database::open(&path) {
            Ok(db) => break db,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(lavka::store::schema::JOBS).unwrap();
        let raw = t.get(2).unwrap().unwrap().value().to_vec();
        let mut v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        v["kind"] = "from_the_future".into();
        v["payload"] = serde_json::json!({"keep": "me"});
        t.insert(2, serde_json::to_vec(&v).unwrap().as_slice()).unwrap();
    }
    w.commit().unwrap();
    drop(db);

    let store = reopen(&path, clock);
    let report = store.check().await.unwrap();
    assert!(report.ok(), "{report}");
    assert!(report.warnings.iter().any(|w| w.contains("job 2 cannot be read")), "{report}");
    let h = Arc::new(Scripted::default());
    let q = queue(&store, h.clone());
    let ran = q.drain().await.unwrap();
    // The others ran (and the admins' alert about job 2); job 2 did not and will not block.
    assert!(h.ran.lock().unwrap().starts_with(&[1, 3]), "{:?} / {ran:?}", h.ran.lock().unwrap());
    let raw: serde_json::Value = store
        .read_now(|rtx, _| {
            let v = rtx.open_table(lavka::store::schema::JOBS)?.get(2)?.unwrap().value().to_vec();
            Ok(serde_json::from_slice(&v).unwrap())
        })
        .unwrap();
    assert_eq!(raw["state"], "dead");
    assert_eq!(raw["kind"], "from_the_future", "the newer version's payload is kept for it");
    assert_eq!(raw["payload"]["keep"], "me");
    assert!(raw["last_error"].as_str().unwrap().contains("unknown to this version"), "{raw}");
    let alerts =
        jobs_of_kind(&store, |k| matches!(k, JobKind::AlertAdmin { text } if text.contains("Job 2"))).await;
    assert_eq!(alerts.len(), 1);
    // Its while-pending key is free again, and this version will not re-drive what it cannot run.
    let again = EnqueueOpts::while_pending("future");
    let e = store.write(move |tx| jobs::enqueue(tx, noop(4), again.clone())).await.unwrap();
    assert!(e.id > 2, "{e:?}");
    let err = store.write(|tx| jobs::redrive(tx, 2)).await.unwrap_err();
    assert!(err.to_string().contains("newer version"), "{err}");
    assert!(store.check().await.unwrap().ok());
}
