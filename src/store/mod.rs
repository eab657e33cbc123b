//! The redb store: the single source of truth and the only module that names redb types.
//!
//! Reads run on the blocking pool in a read transaction (a consistent snapshot). Writes go
//! through one writer thread that gathers queued operations into one transaction and one
//! durable commit (group commit); every caller is answered only after that commit. An
//! operation that fails (a rejection or an error) shares no commit: the transaction is
//! dropped and the rest of the batch runs again without it, so a half-done change can never
//! be stored. Operations still validate before they write, which keeps re-runs rare.

pub mod backup;
pub mod check;
pub mod codec;
pub mod conversations;
pub mod embeddings;
pub mod jobs;
pub mod ledger;
pub mod orders;
pub mod products;
pub mod schema;
mod tables;
pub mod telegram;
pub mod unmatched;

use crate::domain::{Millis, now_millis};
use crate::error::{Error, Result};
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use std::any::Any;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

pub use check::Report as CheckReport;
pub use codec::{decode, encode};

/// Where "now" comes from: the wall clock, or a hand-moved clock in tests.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start` unix ms.
    pub fn manual(start: Millis) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => now_millis(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
    /// Moves a manual clock forward (no-op on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(t) = self {
            t.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}

/// Tunables of the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most operations in one group commit.
    pub max_batch: usize,
    /// Longest extra wait for more operations before a commit; used only while fewer
    /// operations than in the previous batch have arrived (zero: never wait).
    pub gather: Duration,
    pub clock: Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_batch: 256, gather: Duration::from_micros(300), clock: Clock::System }
    }
}

/// A write transaction as operations see it: the redb transaction, the batch's "now", and
/// a flag for the queue's wake-up.
pub struct Tx<'a> {
    /// Private to the store: operations open tables through the batch's shared accessors
    /// (`tables`), since a second `open_table` of a table an earlier operation of the same
    /// group commit holds fails with `TableAlreadyOpen`.
    tx: &'a WriteTransaction,
    pub(crate) now: Millis,
    pub(crate) enqueued: Cell<bool>,
    pub(crate) products_changed: Cell<bool>,
    /// The batch's open tables (see `tables`).
    tables: tables::Tables<'a>,
}

impl<'a> Tx<'a> {
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Takes the next value of a named sequence (starting at 1).
    pub(crate) fn next_id(&self, name: &str) -> Result<u64> {
        let mut t = self.counters()?;
        let next = t.get(name)?.map(|v| v.value()).unwrap_or(0) + 1;
        t.insert(name, next)?;
        Ok(next)
    }
}

type AnyBox = Box<dyn Any + Send>;
type OpFn = Box<dyn FnMut(&Tx<'_>) -> Result<AnyBox> + Send>;

struct Pending {
    op: OpFn,
    reply: oneshot::Sender<Result<AnyBox>>,
}

/// Counters of the group-commit writer, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub ops: AtomicU64,
    pub reruns: AtomicU64,
    /// CPU time of the writer thread running batches (operations and commits), ns.
    pub cpu_ns: AtomicU64,
    /// Wall time spent in commits, flush included, ns.
    pub commit_ns: AtomicU64,
    /// CPU time of the writer thread in commits, ns (`commit_ns` minus this is the wait for
    /// the disk's flush).
    pub commit_cpu_ns: AtomicU64,
}

/// CPU time of the calling thread, ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Inner {
    db: Database,
    path: PathBuf,
    clock: Clock,
    tx_ops: mpsc::Sender<Pending>,
    job_signal: Arc<Notify>,
    products_signal: Arc<Notify>,
    stats: Arc<WriterStats>,
}

/// A cheap handle to the database; clone it freely.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the database file at `path`, creates missing tables and checks the
    /// schema version, then starts the writer thread.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::conflict(format!(
                    "the database {} is in use by another process (is `lavka serve` running?)",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::storage(format!("opening {}: {e}", path.display()))),
        };
        init_schema(&db)?;
        let (tx_ops, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            db,
            path: path.to_path_buf(),
            clock: opts.clock.clone(),
            tx_ops,
            job_signal: Arc::new(Notify::new()),
            products_signal: Arc::new(Notify::new()),
            stats: Arc::new(WriterStats::default()),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("lavka-writer".into())
            .spawn(move || writer_loop(weak, rx, opts))
            .map_err(|e| Error::internal(format!("spawning the writer: {e}")))?;
        Ok(Store { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn now(&self) -> Millis {
        self.inner.clock.now()
    }

    /// Woken after every commit that enqueued a job.
    pub fn job_signal(&self) -> Arc<Notify> {
        self.inner.job_signal.clone()
    }

    /// Woken (one permit is kept) after every commit that changed a product.
    pub fn products_signal(&self) -> Arc<Notify> {
        self.inner.products_signal.clone()
    }

    pub fn writer_stats(&self) -> Arc<WriterStats> {
        self.inner.stats.clone()
    }

    /// Runs `op` inside the next group commit and returns its result once the commit is
    /// durable. `op` may run more than once (if another operation in its batch fails), so it
    /// must not have side effects outside the transaction.
    pub async fn write<T, F>(&self, mut op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Tx<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op: OpFn = Box::new(move |tx| op(tx).map(|v| Box::new(v) as AnyBox));
        self.inner
            .tx_ops
            .send(Pending { op, reply })
            .map_err(|_| Error::internal("the store writer has stopped"))?;
        let out = rx.await.map_err(|_| Error::internal("the store writer has stopped"))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| Error::internal("writer returned a value of the wrong type"))
    }

    /// Runs `f` in a read transaction (a consistent snapshot) on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction, Millis) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_now(f))
            .await
            .map_err(|e| Error::internal(format!("read task: {e}")))?
    }

    /// The same as [`Store::read`], on the calling thread (for sync code and the CLI).
    pub fn read_now<T>(&self, f: impl FnOnce(&ReadTransaction, Millis) -> Result<T>) -> Result<T> {
        let rtx = self.inner.db.begin_read()?;
        f(&rtx, self.now())
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        self.read(|rtx, _| {
            let t = rtx.open_table(schema::META)?;
            t.get("schema_version")?;
            Ok(())
        })
        .await
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}

fn init_schema(db: &Database) -> Result<()> {
    let tx = db.begin_write()?;
    {
        macro_rules! create {
            ($d:expr) => {
                tx.open_table($d)?;
            };
        }
        crate::for_each_table!(create);
        let mut meta = tx.open_table(schema::META)?;
        let found = meta
            .get("schema_version")?
            .map(|v| String::from_utf8_lossy(v.value()).parse::<u64>().unwrap_or(u64::MAX));
        match found {
            None => {
                let v = schema::SCHEMA_VERSION.to_string();
                meta.insert("schema_version", v.as_bytes())?;
                let now = now_millis().to_string();
                meta.insert("created_at", now.as_bytes())?;
            }
            Some(v) if v == schema::SCHEMA_VERSION => {}
            Some(v) if v < schema::SCHEMA_VERSION => {
                // Migrations from older versions go here, each one step up, in this
                // transaction. Version 1 is the first; nothing is older yet.
                return Err(Error::Schema(format!(
                    "database schema version {v} has no migration to {}",
                    schema::SCHEMA_VERSION
                )));
            }
            Some(v) => {
                return Err(Error::Schema(format!(
                    "this database was written by a newer Lavka (schema version {v}; this \
                     binary understands up to {}). Upgrade the binary, or restore a backup.",
                    schema::SCHEMA_VERSION
                )));
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Gathers operations into batches: everything already queued, then — when the previous
/// batch had company — up to `gather` more time while fewer operations than last time have
/// arrived (their callers are most likely just being answered). A lone writer never waits.
fn writer_loop(inner: std::sync::Weak<Inner>, rx: mpsc::Receiver<Pending>, opts: StoreOptions) {
    let mut last_len = 1usize;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + opts.gather;
        loop {
            while batch.len() < opts.max_batch {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let want = last_len.min(opts.max_batch);
            let now = Instant::now();
            if batch.len() >= want || now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        last_len = batch.len();
        let Some(inner) = inner.upgrade() else { return };
        let cpu = thread_cpu_ns();
        run_batch(&inner, batch);
        inner.stats.cpu_ns.fetch_add(thread_cpu_ns().saturating_sub(cpu), Ordering::Relaxed);
    }
}

fn run_batch(inner: &Inner, batch: Vec<Pending>) {
    let mut live: Vec<Option<Pending>> = batch.into_iter().map(Some).collect();
    loop {
        let now = inner.clock.now();
        let wtx = match inner.db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                for p in live.into_iter().flatten() {
                    let _ = p.reply.send(Err(Error::storage(msg.clone())));
                }
                return;
            }
        };
        let tx = Tx {
            tx: &wtx,
            now,
            enqueued: Cell::new(false),
            products_changed: Cell::new(false),
            tables: Default::default(),
        };
        let mut results: Vec<(usize, AnyBox)> = Vec::with_capacity(live.len());
        let mut failed: Vec<(usize, Error)> = Vec::new();
        for (i, slot) in live.iter_mut().enumerate() {
            let Some(p) = slot else { continue };
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (p.op)(&tx)))
                .unwrap_or_else(|_| Err(Error::internal("a store operation panicked")));
            match out {
                Ok(v) => results.push((i, v)),
                Err(e) => failed.push((i, e)),
            }
        }
        let enqueued = tx.enqueued.get();
        let products_changed = tx.products_changed.get();
        // Closes the batch's tables (their new roots go to the transaction) before it ends.
        drop(tx);

        if !failed.is_empty() {
            // A failed operation may have written part of its change before it failed, so
            // it must not share a commit: drop the whole transaction, answer the failures
            // (nothing of theirs is stored) and run the others again without them. Each
            // round removes at least one operation, so this ends.
            let _ = wtx.abort();
            inner.stats.reruns.fetch_add(1, Ordering::Relaxed);
            for (i, e) in failed {
                if !e.is_rejection() {
                    tracing::error!(error = %e, "store operation failed");
                }
                if let Some(p) = live[i].take() {
                    let _ = p.reply.send(Err(e));
                }
            }
            if live.iter().all(Option::is_none) {
                return;
            }
            continue;
        }
        let (wall, cpu) = (Instant::now(), thread_cpu_ns());
        let committed = wtx.commit();
        inner.stats.commit_cpu_ns.fetch_add(thread_cpu_ns().saturating_sub(cpu), Ordering::Relaxed);
        inner.stats.commit_ns.fetch_add(wall.elapsed().as_nanos() as u64, Ordering::Relaxed);
        inner.stats.commits.fetch_add(1, Ordering::Relaxed);
        inner.stats.ops.fetch_add(results.len() as u64, Ordering::Relaxed);
        match committed {
            Ok(()) => {
                if enqueued {
                    inner.job_signal.notify_waiters();
                }
                if products_changed {
                    inner.products_signal.notify_one();
                }
                for (i, v) in results {
                    if let Some(p) = live[i].take() {
                        let _ = p.reply.send(Ok(v));
                    }
                }
            }
            Err(e) => {
                let msg = format!("commit failed: {e}");
                tracing::error!(error = %msg, "group commit failed");
                for p in live.into_iter().flatten() {
                    let _ = p.reply.send(Err(Error::storage(msg.clone())));
                }
            }
        }
        return;
    }
}
