//! Cron schedules. They only enqueue jobs (deduplicated while pending); each job handles
//! everything due, so a tick missed while the process was down is harmless.

use super::Queue;
use crate::domain::JobKind;
use crate::error::{Error, Result};
use crate::store::jobs::EnqueueOpts;
use tokio_cron_scheduler::{Job, JobScheduler};

/// The periodic jobs: (cron with seconds, job).
pub fn schedules(snapshot_cron: &str) -> Vec<(String, JobKind)> {
    vec![
        ("0 * * * * *".into(), JobKind::ExpireReservations),
        ("30 * * * * *".into(), JobKind::RefundLatePrepaid),
        ("0 17 * * * *".into(), JobKind::PruneJobs),
        (snapshot_cron.to_string(), JobKind::Snapshot),
    ]
}

/// A running scheduler; dropped or shut down with the app.
pub struct Schedules {
    sched: JobScheduler,
}

impl Schedules {
    /// Enqueues every scheduled job once now (catch-up after downtime), then starts ticking.
    pub async fn start(queue: Queue, list: Vec<(String, JobKind)>) -> Result<Schedules> {
        let sched = JobScheduler::new().await.map_err(|e| Error::internal(format!("scheduler: {e}")))?;
        for (cron, kind) in list {
            enqueue_periodic(&queue, kind.clone()).await?;
            let q = queue.clone();
            let job = Job::new_async(cron.as_str(), move |_id, _l| {
                let q = q.clone();
                let kind = kind.clone();
                Box::pin(async move {
                    if let Err(e) = enqueue_periodic(&q, kind).await {
                        tracing::error!(error = %e, "could not enqueue a scheduled job");
                    }
                })
            })
            .map_err(|e| Error::bad(format!("bad schedule {cron:?}: {e}")))?;
            sched.add(job).await.map_err(|e| Error::internal(format!("scheduler: {e}")))?;
        }
        sched.start().await.map_err(|e| Error::internal(format!("scheduler: {e}")))?;
        Ok(Schedules { sched })
    }

    pub async fn shutdown(mut self) {
        let _ = self.sched.shutdown().await;
    }
}

async fn enqueue_periodic(q: &Queue, kind: JobKind) -> Result<()> {
    let key = format!("periodic:{}", kind.name());
    q.enqueue(kind, EnqueueOpts::while_pending(key)).await?;
    Ok(())
}
