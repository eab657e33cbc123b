//! Prometheus metrics: counters and histograms through the `metrics` facade (one process-wide
//! recorder), plus gauges computed from the store at scrape time.

use crate::domain::OrderStatus;
use crate::store::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::fmt::Write;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The full exposition: recorded metrics plus store gauges.
pub async fn render(store: &Store) -> String {
    let mut out = handle().render();
    if let Ok(counts) = store.order_status_counts().await {
        let _ = writeln!(out, "# TYPE lavka_orders gauge");
        for st in OrderStatus::ALL {
            let n = counts.get(&st).copied().unwrap_or(0);
            let _ = writeln!(out, "lavka_orders{{status=\"{}\"}} {n}", st.as_str());
        }
    }
    if let Ok(q) = store.queue_counts().await {
        let _ = writeln!(out, "# TYPE lavka_jobs gauge");
        let _ = writeln!(out, "lavka_jobs{{state=\"ready\"}} {}", q.ready);
        let _ = writeln!(out, "lavka_jobs{{state=\"due\"}} {}", q.due);
        let _ = writeln!(out, "lavka_jobs{{state=\"dead\"}} {}", q.dead);
        let _ = writeln!(out, "lavka_jobs{{state=\"done\"}} {}", q.done);
        let _ = writeln!(out, "# TYPE lavka_jobs_oldest_due_seconds gauge");
        let _ =
            writeln!(out, "lavka_jobs_oldest_due_seconds {}", q.oldest_due_ms.unwrap_or(0) as f64 / 1000.0);
    }
    let w = store.writer_stats();
    let _ = writeln!(out, "# TYPE lavka_store_commits_total counter");
    let _ =
        writeln!(out, "lavka_store_commits_total {}", w.commits.load(std::sync::atomic::Ordering::Relaxed));
    let _ = writeln!(out, "# TYPE lavka_store_ops_total counter");
    let _ = writeln!(out, "lavka_store_ops_total {}", w.ops.load(std::sync::atomic::Ordering::Relaxed));
    out
}
