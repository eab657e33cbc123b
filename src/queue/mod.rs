//! The durable job queue's moving parts: leasing in memory, running handlers, acking in the
//! store, retry with backoff, the worker pool and the cron schedules (which only enqueue).
//!
//! At-least-once: a job is leased only in this process's memory, so after a crash it is
//! simply `ready` again and runs again. Handlers must be idempotent.
//!
//! Two lanes (`crate::domain::Lane`): the urgent lane's own workers run only what Telegram
//! times (pre-checkout answers, button answers), the other workers run urgent jobs first and
//! then everything else. A job asked to wait (a chat's next send slot, a 429) is rescheduled
//! for then, never slept on; [`memo`] keeps what its earlier runs already sent.

pub mod memo;
mod schedule;

pub use schedule::{Schedules, schedules};

use crate::domain::{JobKind, JobRecord, JobState, Lane, Millis};
use crate::error::Result;
use crate::store::Store;
use crate::store::jobs::{EnqueueOpts, Enqueued, Setback, enqueue};
use futures::FutureExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How a handler says a run did not finish the job.
#[derive(Debug, Clone)]
pub enum JobError {
    /// Wait this long, then run again (e.g. Telegram 429 `retry_after`); not a failure.
    RetryAfter(Duration, String),
    /// Failed; retry with exponential backoff until attempts run out.
    Retry(String),
    /// Failed for good: dead letter now.
    Fatal(String),
    /// The recipient cannot be reached (blocked the bot): nothing more to do now; the job
    /// ends as done (whatever waits for them was recorded by the handler).
    Unreachable(crate::domain::UserId),
}

impl From<crate::Error> for JobError {
    fn from(e: crate::Error) -> Self {
        if e.is_rejection() { JobError::Fatal(e.to_string()) } else { JobError::Retry(e.to_string()) }
    }
}

/// Runs jobs of every kind.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, job: &JobRecord) -> Result<(), JobError>;
}

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Ran a job; `state` is where it is now (done, ready again, or dead).
    Ran { id: u64, kind: &'static str, state: JobState },
    /// Nothing is queued.
    Idle,
    /// The next job is due at this time (unix ms).
    NotDue(Millis),
}

/// Queue tunables.
#[derive(Clone, Debug)]
pub struct QueueOptions {
    pub concurrency: usize,
    /// Workers of the urgent lane only, on top of `concurrency`.
    pub urgent_workers: usize,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Longest idle sleep before looking again (wake-ups normally come sooner).
    pub poll: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            concurrency: 4,
            urgent_workers: 2,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(3600),
            poll: Duration::from_secs(5),
        }
    }
}

/// The queue: a store, a handler and the in-memory leases.
#[derive(Clone)]
pub struct Queue {
    store: Store,
    handler: Arc<dyn Handler>,
    leased: Arc<Mutex<HashSet<u64>>>,
    memos: memo::Memos,
    opts: QueueOptions,
}

/// What a worker of each kind takes, in order.
const ANY: &[Lane] = &[Lane::Urgent, Lane::Normal];
const URGENT: &[Lane] = &[Lane::Urgent];

/// Exponential backoff with jitter: `base · 2^(attempt-1)` capped, then scaled by a random
/// factor in [0.5, 1).
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let d = exp.min(cap);
    d.mul_f64(0.5 + fastrand::f64() * 0.5)
}

impl Queue {
    pub fn new(store: Store, handler: Arc<dyn Handler>, opts: QueueOptions) -> Self {
        Queue { store, handler, leased: Arc::default(), memos: memo::Memos::default(), opts }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Enqueues a job in its own transaction (jobs caused by a state change are enqueued in
    /// that change's transaction instead, with [`crate::store::jobs::enqueue`]).
    pub async fn enqueue(&self, kind: JobKind, opts: EnqueueOpts) -> Result<Enqueued> {
        self.store.write(move |tx| enqueue(tx, kind.clone(), opts.clone())).await
    }

    /// Jobs whose earlier runs are remembered (ready again after a wait).
    pub fn remembered(&self) -> usize {
        self.memos.len()
    }

    /// Leases the next due job of any lane (urgent first), runs it and records the result.
    pub async fn run_once(&self) -> Result<RunOutcome> {
        self.run_next(ANY).await
    }

    async fn run_next(&self, lanes: &'static [Lane]) -> Result<RunOutcome> {
        let (job, _lease) = loop {
            let skip = self.leased.lock().expect("lease lock").clone();
            let (jobs, next) = self.store.due_jobs(lanes, skip, 1).await?;
            let Some(job) = jobs.into_iter().next() else {
                return Ok(next.map(RunOutcome::NotDue).unwrap_or(RunOutcome::Idle));
            };
            if !self.leased.lock().expect("lease lock").insert(job.id) {
                continue;
            }
            let lease = Lease { set: self.leased.clone(), id: job.id };
            // Another worker may have finished this job between our read and our lease
            // (its ack commits before its lease is released): look again under the lease.
            match self.store.job(job.id).await? {
                Some(fresh) if fresh.state == JobState::Ready && fresh.run_at <= self.store.now() => {
                    break (fresh, lease);
                }
                _ => continue,
            }
        };
        let kind = job.kind.name();
        let span = tracing::info_span!("job", job.id = job.id, job.kind = kind, attempt = job.attempts + 1);
        let stale =
            job.kind.useful_for().is_some_and(|d| self.store.now() - job.created_at > d.as_millis() as i64);
        let result = if stale {
            span.in_scope(|| tracing::warn!("too late to be of use (Telegram no longer waits): skipped"));
            metrics::counter!("lavka_jobs_too_late_total", "kind" => kind).increment(1);
            Ok(())
        } else {
            let memo = self.memos.begin(job.id);
            AssertUnwindSafe(memo::scope(memo, self.handler.handle(&job)))
                .catch_unwind()
                .instrument(span.clone())
                .await
                .unwrap_or_else(|_| Err(JobError::Retry("handler panicked".into())))
        };
        let result = match result {
            Err(JobError::Unreachable(user)) => {
                span.in_scope(|| tracing::info!(user, "the recipient cannot be reached; the job ends"));
                Ok(())
            }
            r => r,
        };
        let id = job.id;
        let state = match result {
            Ok(()) => {
                self.store.write(move |tx| crate::store::jobs::complete(tx, id)).await?;
                self.memos.end(id);
                metrics::counter!("lavka_jobs_done_total", "kind" => kind).increment(1);
                JobState::Done
            }
            Err(err) => {
                let now = self.store.now();
                let setback = match &err {
                    JobError::RetryAfter(d, why) => {
                        metrics::counter!("lavka_jobs_throttled_total", "kind" => kind).increment(1);
                        // Rounded up: a run a fraction of a millisecond early would only be
                        // told to wait again.
                        let ms = d.as_micros().div_ceil(1000) as i64;
                        Setback::Throttled { until: now + ms, reason: why.clone() }
                    }
                    JobError::Retry(why) => Setback::Failed {
                        until: now
                            + backoff(job.attempts + 1, self.opts.backoff_base, self.opts.backoff_cap)
                                .as_millis() as i64,
                        error: why.clone(),
                    },
                    JobError::Fatal(why) => Setback::Fatal { error: why.clone() },
                    // Ended as done above; kept for the match to be whole.
                    JobError::Unreachable(_) => Setback::Fatal { error: "unreachable".into() },
                };
                let st =
                    self.store.write(move |tx| crate::store::jobs::setback(tx, id, setback.clone())).await?;
                if st != JobState::Ready {
                    self.memos.end(id);
                }
                let throttled = matches!(err, JobError::RetryAfter(..));
                span.in_scope(|| match st {
                    // Waiting for a send slot or a 429's time is the normal course: not a failure.
                    JobState::Ready if throttled => {
                        tracing::debug!(error = ?err, "job rescheduled");
                    }
                    JobState::Dead => {
                        metrics::counter!("lavka_jobs_dead_total", "kind" => kind).increment(1);
                        tracing::error!(error = ?err, "job failed for good: dead letter");
                    }
                    _ => {
                        metrics::counter!("lavka_jobs_failed_total", "kind" => kind).increment(1);
                        tracing::warn!(error = ?err, "job will be retried");
                    }
                });
                st
            }
        };
        Ok(RunOutcome::Ran { id, kind, state })
    }

    /// Runs due jobs until none is due now (tests use it instead of sleeping).
    pub async fn drain(&self) -> Result<Vec<RunOutcome>> {
        let mut ran = Vec::new();
        loop {
            match self.run_once().await? {
                r @ RunOutcome::Ran { .. } => ran.push(r),
                _ => return Ok(ran),
            }
            if ran.len() > 100_000 {
                return Ok(ran);
            }
        }
    }

    /// Starts the worker pool — `concurrency` workers for every lane and `urgent_workers`
    /// for the urgent lane only; the workers stop when `cancel` fires (in-flight jobs finish).
    pub fn spawn_workers(&self, tracker: &tokio_util::task::TaskTracker, cancel: CancellationToken) {
        let general = (0..self.opts.concurrency.max(1)).map(|_| ANY);
        let urgent = (0..self.opts.urgent_workers).map(|_| URGENT);
        for (n, lanes) in general.chain(urgent).enumerate() {
            let q = self.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move { q.worker(n, lanes, cancel).await });
        }
    }

    async fn worker(self, n: usize, lanes: &'static [Lane], cancel: CancellationToken) {
        let signal = self.store.job_signal();
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cancel.is_cancelled() {
                return;
            }
            let wait = match self.run_next(lanes).await {
                Ok(RunOutcome::Ran { .. }) => continue,
                Ok(RunOutcome::Idle) => self.opts.poll,
                Ok(RunOutcome::NotDue(at)) => {
                    let ms = (at - self.store.now()).max(1) as u64;
                    Duration::from_millis(ms).min(self.opts.poll)
                }
                Err(e) => {
                    tracing::error!(worker = n, error = %e, "queue worker could not run a job");
                    Duration::from_millis(500)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

struct Lease {
    set: Arc<Mutex<HashSet<u64>>>,
    id: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.id);
        }
    }
}
