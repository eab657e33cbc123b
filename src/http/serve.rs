//! Serves the router on a TCP listener with limits a slow or abusive client cannot outlast.
//!
//! - **Header timeout** (`http_header_timeout_secs`): a request head must arrive in full
//!   within it, counted from when the connection starts waiting for one — so it also bounds
//!   how long a kept-alive connection waits for its next request (hyper's
//!   `header_read_timeout`; trickling header lines does not reset it).
//! - **Idle timeout** (`http_idle_timeout_secs`): a connection on which no byte moves either
//!   way while no request of it is being handled is closed (a client that stopped reading a
//!   response, or went quiet).
//! - **Connection cap** (`http_max_connections`, lowered to fit the open-file limit): a
//!   connection beyond it is answered `503` `{"error":{"code":"overloaded"}}` with
//!   `Connection: close` and closed, so the connections within the cap — `/healthz`
//!   included — keep being served and the process never runs out of file descriptors.
//!
//! Announced bodies over `body_limit_bytes` are refused by the router (413 before reading).

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The server's connection limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(c: &crate::config::Config) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(c.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(c.http_idle_timeout_secs),
            max_connections: c.http_max_connections,
        }
    }
}

/// Connections answered 503 at once, at most (each holds a descriptor for up to a second);
/// beyond these a connection is closed without an answer.
const MAX_REFUSING: usize = 32;

/// The body of the 503 sent to a connection beyond the cap.
pub const OVERLOADED_BODY: &str =
    r#"{"error":{"code":"overloaded","message":"too many connections; try again shortly"}}"#;

/// Serves `router` on `listener` until `cancel` fires, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    cancel: CancellationToken,
) -> io::Result<()> {
    let cap = effective_cap(limits.max_connections);
    tracing::info!(
        max_connections = cap,
        header_timeout_secs = limits.header_timeout.as_secs(),
        idle_timeout_secs = limits.idle_timeout.as_secs(),
        "HTTP connection limits"
    );
    let slots = Arc::new(Semaphore::new(cap));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let open = Arc::new(AtomicUsize::new(0));
    let conns = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors (or a connection reset before it was accepted): wait a
                    // little rather than spin; the cap makes this rare.
                    metrics::counter!("lavka_http_accept_errors_total").increment(1);
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("lavka_http_connections_refused_total").increment(1);
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(tcp).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (router, cancel, open) = (router.clone(), cancel.clone(), open.clone());
        metrics::gauge!("lavka_http_connections").set((open.fetch_add(1, Ordering::Relaxed) + 1) as f64);
        conns.spawn(async move {
            connection(tcp, peer, router, limits, cancel).await;
            metrics::gauge!("lavka_http_connections").set((open.fetch_sub(1, Ordering::Relaxed) - 1) as f64);
            drop(slot);
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
    Ok(())
}

/// The cap that fits the process's open-file limit: the soft limit is raised to the hard one
/// first, and a quarter of it (at least 64) is kept for the store, the index, the model and
/// outbound calls.
fn effective_cap(configured: usize) -> usize {
    match fd_limit() {
        Some(n) => configured.min(n.saturating_sub((n / 4).max(64)).max(8)),
        None => configured,
    }
}

#[cfg(unix)]
fn fd_limit() -> Option<usize> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if let (Some(cur), hard) = (l.current, l.maximum) {
        // Like Go's runtime: take what the hard limit allows (bounded: some systems say
        // "unlimited" and then refuse huge tables).
        let want = hard.unwrap_or(1 << 20).min(1 << 20);
        if want > cur
            && setrlimit(Resource::Nofile, rustix::process::Rlimit { current: Some(want), maximum: hard })
                .is_ok()
        {
            l.current = Some(want);
        }
    }
    l.current.map(|c| c as usize)
}

#[cfg(not(unix))]
fn fd_limit() -> Option<usize> {
    None
}

/// Answers a connection beyond the cap: 503 in our error shape, then closes it after
/// reading what the client sent (closing with unread data would reset the connection and
/// could lose the answer).
async fn refuse(mut tcp: TcpStream) {
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        OVERLOADED_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(OVERLOADED_BODY.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 2048];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// One connection: HTTP/1.1 with the header timeout, watched for idleness, shut down
/// gracefully (in-flight requests finish) when `cancel` fires. Each request carries the
/// peer's address as axum's `ConnectInfo` (demo sessions are limited per client).
async fn connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    limits: Limits,
    cancel: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: tcp, activity: activity.clone() });
    let a = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = a.busy();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let call = router.clone().oneshot(req);
        async move {
            let resp = call.await;
            drop(busy);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut tick = tokio::time::interval(
        (limits.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)),
    );
    let mut shutting_down = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick() => {
                if activity.idle_for() >= limits.idle_timeout {
                    metrics::counter!("lavka_http_idle_closed_total").increment(1);
                    tracing::debug!("closing an idle connection");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0), busy: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Zero while a request is being handled (a slow handler is not an idle client).
    fn idle_for(&self) -> Duration {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        self.start.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that records when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
