//! The durable side of the job queue: job records, the due index, dedupe keys, dead
//! letters. Enqueueing takes a [`Tx`], so a job is created in the same transaction as the
//! state change that causes it (transactional outbox). There is no "running" state on disk.

use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{Dedupe, JobKind, JobRecord, JobState, Lane, Millis};
use crate::error::{Error, Result};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};
use std::collections::HashSet;

/// How to enqueue a job.
#[derive(Clone, Debug, Default)]
pub struct EnqueueOpts {
    pub dedupe: Option<Dedupe>,
    /// Run no earlier than this (unix ms); default now.
    pub run_at: Option<Millis>,
    /// Default: by kind (see [`default_max_attempts`]).
    pub max_attempts: Option<u32>,
}

impl EnqueueOpts {
    pub fn once(key: impl Into<String>) -> Self {
        EnqueueOpts { dedupe: Some(Dedupe::Once(key.into())), ..Default::default() }
    }
    pub fn while_pending(key: impl Into<String>) -> Self {
        EnqueueOpts { dedupe: Some(Dedupe::WhilePending(key.into())), ..Default::default() }
    }
}

/// Failed runs allowed before a job of this kind goes to the dead letters.
pub fn default_max_attempts(kind: &JobKind) -> u32 {
    match kind {
        JobKind::DeliverOrder { .. } => 25,
        JobKind::NotifySupplier { .. } | JobKind::NotifyUser { .. } => 15,
        JobKind::ProcessUpdate { .. } => 5,
        _ => 8,
    }
}

/// What `enqueue` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub id: u64,
    /// False when a job with the same dedupe key already existed (its id is returned).
    pub created: bool,
}

/// The due index of a lane.
pub fn due_index(lane: Lane) -> redb::TableDefinition<'static, (i64, u64), ()> {
    match lane {
        Lane::Urgent => JOBS_DUE_URGENT,
        Lane::Normal => JOBS_DUE,
    }
}

/// Adds a job in the caller's transaction.
pub fn enqueue(tx: &Tx, kind: JobKind, opts: EnqueueOpts) -> Result<Enqueued> {
    if let Some(d) = &opts.dedupe {
        let dd = tx.jobs_by_dedupe()?;
        if let Some(id) = dd.get(d.key())?.map(|v| v.value()) {
            return Ok(Enqueued { id, created: false });
        }
    }
    let id = tx.next_id("job")?;
    let run_at = opts.run_at.unwrap_or(tx.now);
    let rec = JobRecord {
        id,
        max_attempts: opts.max_attempts.unwrap_or_else(|| default_max_attempts(&kind)),
        kind,
        state: JobState::Ready,
        dedupe: opts.dedupe.clone(),
        attempts: 0,
        throttled: 0,
        run_at,
        created_at: tx.now,
        finished_at: None,
        last_error: None,
    };
    tx.jobs()?.insert(id, encode(&rec)?.as_slice())?;
    tx.due(rec.kind.lane())?.insert((run_at, id), ())?;
    if let Some(d) = &opts.dedupe {
        tx.jobs_by_dedupe()?.insert(d.key(), id)?;
    }
    tx.enqueued.set(true);
    Ok(Enqueued { id, created: true })
}

fn load(tx: &Tx, id: u64) -> Result<JobRecord> {
    match tx.jobs()?.get(id)? {
        Some(v) => decode(v.value()),
        None => Err(Error::not_found(format!("job {id}"))),
    }
}

fn save(tx: &Tx, rec: &JobRecord) -> Result<()> {
    tx.jobs()?.insert(rec.id, encode(rec)?.as_slice())?;
    Ok(())
}

fn release_pending_key(tx: &Tx, rec: &JobRecord) -> Result<()> {
    if let Some(Dedupe::WhilePending(k)) = &rec.dedupe {
        let mut dd = tx.jobs_by_dedupe()?;
        if dd.get(k.as_str())?.map(|v| v.value()) == Some(rec.id) {
            dd.remove(k.as_str())?;
        }
    }
    Ok(())
}

/// Marks a ready job done. Returns false (and changes nothing) if it was not ready — a
/// second worker, or a stale lease after a re-drive.
pub fn complete(tx: &Tx, id: u64) -> Result<bool> {
    let mut rec = load(tx, id)?;
    if rec.state != JobState::Ready {
        return Ok(false);
    }
    tx.due(rec.kind.lane())?.remove((rec.run_at, id))?;
    rec.state = JobState::Done;
    rec.finished_at = Some(tx.now);
    save(tx, &rec)?;
    tx.jobs_done()?.insert((tx.now, id), ())?;
    release_pending_key(tx, &rec)?;
    Ok(true)
}

/// Why a run did not finish the job.
#[derive(Clone, Debug)]
pub enum Setback {
    /// Asked to wait (rate limit): does not count as a failed attempt.
    Throttled { until: Millis, reason: String },
    /// Failed; retry at `until` unless attempts are used up.
    Failed { until: Millis, error: String },
    /// Failed for good: dead letter now.
    Fatal { error: String },
}

/// Limit on throttled waits, so a job that is always rate-limited still ends.
pub const MAX_THROTTLED: u32 = 1000;

/// Reschedules or kills a ready job after a run. Returns the new state.
pub fn setback(tx: &Tx, id: u64, s: Setback) -> Result<JobState> {
    let mut rec = load(tx, id)?;
    if rec.state != JobState::Ready {
        return Ok(rec.state);
    }
    tx.due(rec.kind.lane())?.remove((rec.run_at, id))?;
    let (retry_at, dead) = match s {
        Setback::Throttled { until, reason } => {
            rec.throttled += 1;
            rec.last_error = Some(reason);
            (until, rec.throttled >= MAX_THROTTLED)
        }
        Setback::Failed { until, error } => {
            rec.attempts += 1;
            rec.last_error = Some(error);
            (until, rec.attempts >= rec.max_attempts)
        }
        Setback::Fatal { error } => {
            rec.attempts += 1;
            rec.last_error = Some(error);
            (tx.now, true)
        }
    };
    if dead {
        rec.state = JobState::Dead;
        rec.finished_at = Some(tx.now);
        tx.jobs_dead()?.insert(id, ())?;
        release_pending_key(tx, &rec)?;
    } else {
        rec.run_at = retry_at;
        tx.due(rec.kind.lane())?.insert((retry_at, id), ())?;
    }
    save(tx, &rec)?;
    Ok(rec.state)
}

/// Puts a dead job back in the queue with fresh attempts (the owner's "retry").
pub fn redrive(tx: &Tx, id: u64) -> Result<JobRecord> {
    let mut rec = load(tx, id).map_err(|e| match e {
        Error::Storage(_) => Error::conflict(format!(
            "job {id} is of a kind this version of Lavka cannot run; retry it with a newer version"
        )),
        e => e,
    })?;
    if rec.state != JobState::Dead {
        return Err(Error::conflict(format!("job {id} is not dead")));
    }
    if let Some(Dedupe::WhilePending(k)) = &rec.dedupe {
        let mut dd = tx.jobs_by_dedupe()?;
        if dd.get(k.as_str())?.is_some() {
            return Err(Error::conflict(format!("another job with key {k:?} is already pending")));
        }
        dd.insert(k.as_str(), id)?;
    }
    tx.jobs_dead()?.remove(id)?;
    rec.state = JobState::Ready;
    rec.attempts = 0;
    rec.throttled = 0;
    rec.run_at = tx.now;
    rec.finished_at = None;
    tx.due(rec.kind.lane())?.insert((rec.run_at, id), ())?;
    save(tx, &rec)?;
    tx.enqueued.set(true);
    Ok(rec)
}

/// What a prune removed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Pruned {
    pub jobs: u64,
    pub updates: u64,
    pub outbox: u64,
}

/// Deletes done jobs finished before `before` (with their dedupe keys), processed update ids
/// older than `updates_before`, and outbox entries beyond the newest `keep_outbox`; at most
/// `limit` of each per call so one transaction stays small.
pub fn prune(
    tx: &Tx,
    before: Millis,
    updates_before: Millis,
    keep_outbox: u64,
    limit: usize,
) -> Result<Pruned> {
    let mut out = Pruned::default();
    let victims: Vec<(Millis, u64)> = {
        let done = tx.jobs_done()?;
        let mut v = Vec::new();
        for r in done.range(..(before, 0))? {
            let (k, _) = r?;
            v.push(k.value());
            if v.len() >= limit {
                break;
            }
        }
        v
    };
    {
        let mut done = tx.jobs_done()?;
        let mut jobs = tx.jobs()?;
        let mut dd = tx.jobs_by_dedupe()?;
        for (at, id) in victims {
            done.remove((at, id))?;
            if let Some(raw) = jobs.remove(id)? {
                // Once-keys stay (they are small and promise "never again", e.g. one
                // delivery per order); a while-pending key is already gone when a job is done.
                let rec: JobRecord = decode(raw.value())?;
                if let Some(Dedupe::WhilePending(k)) = &rec.dedupe
                    && dd.get(k.as_str())?.map(|v| v.value()) == Some(id)
                {
                    dd.remove(k.as_str())?;
                }
            }
            out.jobs += 1;
        }
    }
    {
        let mut ups = tx.processed_updates()?;
        let old: Vec<i64> = ups
            .iter()?
            .filter_map(|r| r.ok())
            .filter(|(_, at)| at.value() < updates_before)
            .map(|(k, _)| k.value())
            .take(limit)
            .collect();
        for k in old {
            ups.remove(k)?;
            out.updates += 1;
        }
    }
    {
        let mut ob = tx.outbox()?;
        let len = ob.len()?;
        if len > keep_outbox {
            let cut = (len - keep_outbox).min(limit as u64);
            let ids: Vec<u64> =
                ob.iter()?.take(cut as usize).filter_map(|r| r.ok()).map(|(k, _)| k.value()).collect();
            for id in ids {
                ob.remove(id)?;
                out.outbox += 1;
            }
        }
    }
    Ok(out)
}

/// Ready jobs of `lanes` due at `now`, the first lane's first, each lane earliest first,
/// skipping ids in `skip` (leased in memory). Records this binary cannot read go to
/// `unreadable` with their lane and due key instead of failing the whole read: one such
/// record must not stop the queue.
pub fn due_jobs(
    rtx: &ReadTransaction,
    now: Millis,
    lanes: &[Lane],
    skip: &HashSet<u64>,
    limit: usize,
    unreadable: &mut Vec<(Lane, Millis, u64)>,
) -> Result<Vec<JobRecord>> {
    let jobs = rtx.open_table(JOBS)?;
    let mut out = Vec::new();
    for &lane in lanes {
        let due = rtx.open_table(due_index(lane))?;
        for r in due.range(..=(now, u64::MAX))? {
            let (k, _) = r?;
            let (at, id) = k.value();
            if skip.contains(&id) {
                continue;
            }
            if let Some(raw) = jobs.get(id)? {
                match decode(raw.value()) {
                    Ok(rec) => out.push(rec),
                    Err(_) => unreadable.push((lane, at, id)),
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Sets aside a ready job this binary cannot read — most likely a kind added by a newer
/// Lavka, before a downgrade: it leaves the due index and becomes dead with the reason, its
/// stored payload untouched (only `state`, `finished_at` and `last_error` are set), so a
/// binary that knows the kind can retry it. The admins are told.
pub fn set_aside_unreadable(tx: &Tx, lane: Lane, due_at: Millis, id: u64) -> Result<()> {
    let raw = match tx.jobs()?.get(id)? {
        Some(v) => v.value().to_vec(),
        None => return Ok(()),
    };
    if decode::<JobRecord>(&raw).is_ok() || tx.due(lane)?.remove((due_at, id))?.is_none() {
        return Ok(()); // readable after all, or already set aside
    }
    let kind = match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(mut m)) => {
            let kind = m.get("kind").and_then(|k| k.as_str()).unwrap_or("?").to_string();
            let why =
                format!("job kind {kind:?} is unknown to this version of Lavka; retry it with a newer one");
            m.insert("state".into(), serde_json::json!(JobState::Dead));
            m.insert("finished_at".into(), serde_json::json!(tx.now));
            m.insert("last_error".into(), serde_json::json!(why));
            if let Some(Ok(Dedupe::WhilePending(k))) =
                m.get("dedupe").map(|d| serde_json::from_value::<Dedupe>(d.clone()))
            {
                let mut dd = tx.jobs_by_dedupe()?;
                if dd.get(k.as_str())?.map(|v| v.value()) == Some(id) {
                    dd.remove(k.as_str())?;
                }
            }
            let patched = serde_json::to_vec(&m)?;
            tx.jobs()?.insert(id, patched.as_slice())?;
            kind
        }
        _ => "unreadable".to_string(),
    };
    tx.jobs_dead()?.insert(id, ())?;
    let text = format!(
        "Job {id} ({kind}) was set aside: this version of Lavka cannot read it (was a newer version \
         running here?). Everything else goes on; a version that knows it can retry it."
    );
    enqueue(tx, JobKind::AlertAdmin { text }, EnqueueOpts::once(format!("set-aside:{id}")))?;
    Ok(())
}

/// The earliest `run_at` among ready jobs of `lanes` not in `skip`.
pub fn next_run_at(rtx: &ReadTransaction, lanes: &[Lane], skip: &HashSet<u64>) -> Result<Option<Millis>> {
    let mut next: Option<Millis> = None;
    for &lane in lanes {
        let due = rtx.open_table(due_index(lane))?;
        for r in due.iter()? {
            let (k, _) = r?;
            let (at, id) = k.value();
            if !skip.contains(&id) {
                next = Some(next.map_or(at, |n| n.min(at)));
                break;
            }
        }
    }
    Ok(next)
}

/// Counts of jobs by state plus the age of the oldest due job, for metrics and `/jobs`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct QueueCounts {
    pub ready: u64,
    pub due: u64,
    pub dead: u64,
    pub done: u64,
    pub oldest_due_ms: Option<Millis>,
}

impl Store {
    pub async fn job(&self, id: u64) -> Result<Option<JobRecord>> {
        self.read(move |rtx, _| rtx.open_table(JOBS)?.get(id)?.map(|v| decode(v.value())).transpose()).await
    }

    /// Jobs in a state, newest first, at most `limit`.
    pub async fn jobs_in_state(&self, state: JobState, limit: usize) -> Result<Vec<JobRecord>> {
        self.read(move |rtx, _| {
            let jobs = rtx.open_table(JOBS)?;
            let ids: Vec<u64> = match state {
                JobState::Ready => {
                    let mut keys = Vec::new();
                    for lane in Lane::ALL {
                        let t = rtx.open_table(due_index(lane))?;
                        for r in t.iter()?.take(limit) {
                            keys.push(r?.0.value());
                        }
                    }
                    keys.sort_unstable();
                    keys.into_iter().take(limit).map(|(_, id)| id).collect()
                }
                JobState::Dead => {
                    let t = rtx.open_table(JOBS_DEAD)?;
                    t.iter()?
                        .rev()
                        .take(limit)
                        .map(|r| r.map(|(k, _)| k.value()))
                        .collect::<Result<_, _>>()?
                }
                JobState::Done => {
                    let t = rtx.open_table(JOBS_DONE)?;
                    t.iter()?
                        .rev()
                        .take(limit)
                        .map(|r| r.map(|(k, _)| k.value().1))
                        .collect::<Result<_, _>>()?
                }
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(raw) = jobs.get(id)? {
                    match decode(raw.value()) {
                        Ok(rec) => out.push(rec),
                        // A kind from a newer version (set aside when due): not listable here.
                        Err(e) => tracing::warn!(job.id = id, error = %e, "a job this version cannot read"),
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn queue_counts(&self) -> Result<QueueCounts> {
        self.read(|rtx, now| {
            let mut c = QueueCounts {
                dead: rtx.open_table(JOBS_DEAD)?.len()?,
                done: rtx.open_table(JOBS_DONE)?.len()?,
                ..Default::default()
            };
            for lane in Lane::ALL {
                let due = rtx.open_table(due_index(lane))?;
                c.ready += due.len()?;
                if let Some(first) = due.first()? {
                    let (at, _) = first.0.value();
                    if at <= now {
                        c.oldest_due_ms = Some(c.oldest_due_ms.unwrap_or(0).max(now - at));
                    }
                }
                c.due += due.range(..=(now, u64::MAX))?.count() as u64;
            }
            Ok(c)
        })
        .await
    }

    /// Ready jobs of `lanes` due now, skipping leased ids (for the worker).
    pub async fn due_jobs(
        &self,
        lanes: &'static [Lane],
        skip: HashSet<u64>,
        limit: usize,
    ) -> Result<(Vec<JobRecord>, Option<Millis>)> {
        loop {
            let skip = skip.clone();
            let (jobs, next, unreadable) = self
                .read(move |rtx, now| {
                    let mut unreadable = Vec::new();
                    let jobs = due_jobs(rtx, now, lanes, &skip, limit, &mut unreadable)?;
                    let next = if jobs.is_empty() { next_run_at(rtx, lanes, &skip)? } else { None };
                    Ok((jobs, next, unreadable))
                })
                .await?;
            if unreadable.is_empty() {
                return Ok((jobs, next));
            }
            tracing::error!(jobs = ?unreadable, "jobs this version cannot read are set aside");
            metrics::counter!("lavka_jobs_set_aside_total").increment(unreadable.len() as u64);
            self.write(move |tx| {
                for &(lane, at, id) in &unreadable {
                    set_aside_unreadable(tx, lane, at, id)?;
                }
                Ok(())
            })
            .await?;
            if !jobs.is_empty() {
                return Ok((jobs, None));
            }
        }
    }
}
