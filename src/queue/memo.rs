//! What a job's earlier runs in this process already did, so that running it again after a
//! wait does not do it twice.
//!
//! A handler that sends several messages (an invoice then its text, a long text in parts,
//! an alert to each admin) is asked to wait for a chat's next send slot or a 429's
//! `retry_after` halfway through. The queue reschedules the job instead of holding a worker
//! asleep, and the next run starts from the top. Each outgoing call is therefore a *step*:
//! its result is remembered here, under a fingerprint of what it sends, and the next run
//! gets the remembered result instead of sending again. A run that takes another path (the
//! fingerprint differs) forgets the steps from there on.
//!
//! The memo lives in memory, for one job, while the job is ready; the queue drops it when
//! the job is done or dead. After a crash the job runs from the top: at-least-once, as
//! before. The memo also holds the job's booked send slot (see `telegram::sender`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A send slot booked for a job: the chat, and when it may send there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Booked {
    pub chat: i64,
    /// Unix ms, on the store's clock.
    pub at: crate::domain::Millis,
}

/// One job's memory across its runs.
#[derive(Debug)]
pub struct Memo {
    steps: Vec<(u64, serde_json::Value)>,
    cursor: usize,
    /// The send slot booked by the last run, used by the next.
    pub booked: Option<Booked>,
    touched: Instant,
}

impl Memo {
    fn new() -> Self {
        Memo { steps: Vec::new(), cursor: 0, booked: None, touched: Instant::now() }
    }
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Memo>>;
}

/// Whether the caller runs inside a job (and may be rescheduled instead of waiting).
pub fn in_job() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// Runs `f` on the current job's memo; `None` outside a job.
pub fn with<R>(f: impl FnOnce(&mut Memo) -> R) -> Option<R> {
    CURRENT.try_with(|m| f(&mut m.lock().expect("memo lock"))).ok()
}

/// A step of the current job: the result remembered from an earlier run when that run took
/// the same step here, else `f`'s, remembered when it succeeds. Outside a job, just `f`.
pub async fn step<T, E, Fut>(fingerprint: u64, f: impl FnOnce() -> Fut) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    Fut: Future<Output = Result<T, E>>,
{
    let replay = with(|m| {
        let i = m.cursor;
        match m.steps.get(i) {
            Some((fp, v)) if *fp == fingerprint => match serde_json::from_value::<T>(v.clone()) {
                Ok(t) => {
                    m.cursor += 1;
                    Some(t)
                }
                Err(_) => {
                    m.steps.truncate(i);
                    None
                }
            },
            Some(_) => {
                // This run went another way: what the earlier one did from here on is moot.
                m.steps.truncate(i);
                None
            }
            None => None,
        }
    })
    .flatten();
    if let Some(t) = replay {
        return Ok(t);
    }
    let r = f().await?;
    with(|m| {
        if let Ok(v) = serde_json::to_value(&r) {
            m.steps.push((fingerprint, v));
            m.cursor = m.steps.len();
        }
    });
    Ok(r)
}

/// A fingerprint of what a step sends.
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// The memos of the jobs that ran and are not finished, by job id.
#[derive(Clone, Default)]
pub struct Memos {
    map: Arc<Mutex<HashMap<u64, Arc<Mutex<Memo>>>>>,
}

/// Memos untouched this long belong to jobs that went elsewhere (re-driven, pruned).
const STALE: Duration = Duration::from_secs(6 * 3600);

impl Memos {
    /// The memo of job `id`, its cursor at the first step (a new run starts from the top).
    pub fn begin(&self, id: u64) -> Arc<Mutex<Memo>> {
        let mut map = self.map.lock().expect("memos lock");
        if map.len() > 10_000 {
            map.retain(|_, m| m.lock().map(|m| m.touched.elapsed() < STALE).unwrap_or(false));
        }
        let memo = map.entry(id).or_insert_with(|| Arc::new(Mutex::new(Memo::new()))).clone();
        {
            let mut m = memo.lock().expect("memo lock");
            m.cursor = 0;
            m.touched = Instant::now();
        }
        memo
    }

    /// Forgets job `id` (done or dead).
    pub fn end(&self, id: u64) {
        self.map.lock().expect("memos lock").remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("memos lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `fut` as a run of the job whose memo is `memo`.
pub async fn scope<F: Future>(memo: Arc<Mutex<Memo>>, fut: F) -> F::Output {
    CURRENT.scope(memo, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(memos: &Memos, log: &Mutex<Vec<&'static str>>, fail_second: bool) -> Result<(), ()> {
        scope(memos.begin(1), async {
            step(fingerprint(&[b"a"]), || async {
                log.lock().unwrap().push("a");
                Ok::<_, ()>(1u32)
            })
            .await?;
            step(fingerprint(&[b"b"]), || async {
                if fail_second {
                    return Err(());
                }
                log.lock().unwrap().push("b");
                Ok(2u32)
            })
            .await?;
            Ok(())
        })
        .await
    }

    #[tokio::test]
    async fn a_second_run_skips_the_steps_the_first_finished() {
        let memos = Memos::default();
        let log = Mutex::new(Vec::new());
        assert!(run(&memos, &log, true).await.is_err());
        run(&memos, &log, false).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["a", "b"]);
        // Finished: a new job with the same id starts clean.
        memos.end(1);
        run(&memos, &log, false).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["a", "b", "a", "b"]);
    }

    #[tokio::test]
    async fn a_run_that_takes_another_path_forgets_what_followed() {
        let memos = Memos::default();
        let n = std::sync::atomic::AtomicU32::new(0);
        let count = || async {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ()>(())
        };
        scope(memos.begin(7), async {
            step(1, count).await.unwrap();
            step(2, count).await.unwrap();
        })
        .await;
        scope(memos.begin(7), async {
            step(3, count).await.unwrap(); // differs: runs, and step 2 is forgotten
            step(2, count).await.unwrap();
        })
        .await;
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 4);
        // Outside a job, nothing is remembered.
        step(1, count).await.unwrap();
        assert!(!in_job());
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 5);
    }
}
