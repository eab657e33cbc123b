//! Slow and abusive clients, over raw TCP: a trickled or missing request head, an idle
//! kept-alive connection, a body announced over the limit, more connections than the cap;
//! and authorization schemes in any case. Timeouts are set short through the config; the
//! tests assert only "closed within a generous bound".

use crate::helpers::{SMALL, T0, TestApp, seed, spawn_app, spawn_app_with};
use crate::telegram::spawn_tg;
use crate::web::{BOT_TOKEN, call, init_data};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Far longer than any limit set in these tests: a connection still open by then was never
/// cut off.
const GENEROUS: Duration = Duration::from_secs(15);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap()
}

/// Reads until the server closes the connection; `None` if it is still open after
/// [`GENEROUS`]. A reset counts as closed.
async fn until_closed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    timeout(GENEROUS, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
}

/// One response read off `s`: status, lower-cased head, body (by Content-Length).
async fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    timeout(GENEROUS, async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + len {
                    let status = head[9..12].parse().unwrap();
                    return (status, head, raw[end + 4..end + 4 + len].to_vec());
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a whole response: {:?}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no response in time")
}

/// `GET /healthz` on a fresh connection that asks to be closed after it.
async fn healthz_raw(app: &TestApp) -> (u16, Value) {
    let mut s = connect(app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: lavka\r\nconnection: close\r\n\r\n").await.unwrap();
    let (status, _, body) = read_response(&mut s).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    let app = spawn_app_with(|c| c.http_header_timeout_secs = 1).await;
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A header line every 200 ms, never the blank line that ends the head: each line is
    // progress, but the head as a whole must arrive within the timeout.
    let closed = timeout(GENEROUS, async {
        let mut buf = [0u8; 256];
        loop {
            if s.write_all(b"x-slow: 1\r\n").await.is_err() {
                return;
            }
            match timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    panic!("answered a head that never ended: {:?}", String::from_utf8_lossy(&buf[..n]))
                }
                Err(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickled head kept the connection open");
    assert_eq!(healthz_raw(&app).await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = spawn_app_with(|c| c.http_header_timeout_secs = 1).await;
    let mut s = connect(&app).await;
    let got = until_closed(&mut s).await.expect("a silent connection stayed open");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    // The header timeout is long here: what closes the connection is the idle timeout.
    let app = spawn_app_with(|c| {
        c.http_header_timeout_secs = 60;
        c.http_idle_timeout_secs = 1;
    })
    .await;
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: lavka\r\n\r\n").await.unwrap();
    let (status, head, body) = read_response(&mut s).await;
    assert_eq!(status, 200);
    assert!(!head.contains("connection: close"), "{head}");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["status"], "ok");
    // Kept alive, then nothing more: closed.
    let rest = until_closed(&mut s).await.expect("an idle kept-alive connection stayed open");
    assert!(rest.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_before_it_is_read() {
    let app = spawn_app_with(|c| c.body_limit_bytes = 1024).await;
    seed(app.store(), SMALL).await;
    for path in ["/api/orders", "/admin/api/import", "/payments/cryptopay/webhook"] {
        let mut s = connect(&app).await;
        // Ten gigabytes announced, not a byte sent: the answer cannot wait for the body
        // (the request timeout, 60 s, would answer 408 — after GENEROUS).
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: lavka\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let (status, head, body) = read_response(&mut s).await;
        assert_eq!(status, 413, "{path}: {head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "too_large", "{path}: {v}");
    }
    assert_eq!(app.store().availability(crate::helpers::pid("key")).await.unwrap().available, 3);
    app.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_while_those_within_it_are_served() {
    const CAP: usize = 6;
    let app = spawn_app_with(|c| {
        c.http_max_connections = CAP;
        c.http_header_timeout_secs = 60;
        c.http_idle_timeout_secs = 60;
    })
    .await;
    // An idle flood within the cap: health checks still answer.
    let mut idle = Vec::new();
    for _ in 0..CAP - 1 {
        idle.push(connect(&app).await);
    }
    let (status, v) = healthz_raw(&app).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    // Fill the cap (a spare or two: the health check's slot may not be free yet).
    for _ in 0..3 {
        idle.push(connect(&app).await);
    }
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: lavka\r\n\r\n").await.unwrap();
    let (status, head, body) = read_response(&mut s).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("connection: close") && head.contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "overloaded", "{v}");
    assert!(until_closed(&mut s).await.is_some(), "a refused connection stayed open");
    // The flood leaves: the server is whole again.
    drop(idle);
    let mut answered = false;
    for _ in 0..100 {
        if healthz_raw(&app).await.0 == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "still refusing after the idle connections closed");
    app.stop().await;
}

#[tokio::test]
async fn authorization_schemes_are_matched_in_any_case() {
    let app = spawn_app().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (s, v) = call(
            &app.base,
            reqwest::Method::GET,
            "/admin/api/stats",
            Some(&format!("{scheme} {}", app.token)),
            None,
        )
        .await;
        assert_eq!(s, 200, "{scheme}: {v}");
    }
    let (s, v) = call(
        &app.base,
        reqwest::Method::GET,
        "/admin/api/stats",
        Some(&format!("Basic {}", app.token)),
        None,
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("unauthorized")));
    app.stop().await;

    let tg = spawn_tg(|_| {}).await;
    let data = init_data(BOT_TOKEN, 5_551_234_567, T0 / 1000 - 60);
    for scheme in ["tma", "TMA", "Tma"] {
        let (s, me) =
            call(&tg.base, reqwest::Method::GET, "/api/me", Some(&format!("{scheme} {data}")), None).await;
        assert_eq!((s, me["user_id"].as_i64()), (200, Some(5_551_234_567)), "{scheme}: {me}");
    }
}
