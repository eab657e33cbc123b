//! The binary's log: no colour codes off a terminal, `log_format = "json"` for collectors,
//! and the start-up warning of a public shop with the dev payment provider switched on.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lavka");

/// Starts `lavka serve` with `env`, waits until it listens, stops it and returns its stderr
/// (a pipe, as under systemd or Docker).
fn serve_log(dir: &Path, env: &[(&str, &str)]) -> String {
    let addr = dir.join("lavka.addr");
    let mut child = Command::new(BIN)
        .args(["--data-dir", dir.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"])
        .env("LAVKA_ADMIN_TOKEN", "logs-test-admin-token-0123")
        .env("LAVKA_SEMANTIC_SEARCH", "false")
        .env("LAVKA_SCHEDULER", "false")
        .env("LAVKA_DEMO_CATALOG", "false")
        .env("RUST_LOG", "info")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&addr).is_ok_and(|s| s.ends_with('\n')) {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stderr).unwrap()
}

const PUBLIC_DEV: [(&str, &str); 2] =
    [("LAVKA_PUBLIC_URL", "https://shop.example.com"), ("LAVKA_PAYMENTS__DEV_PAYMENTS", "true")];

#[test]
fn text_logs_carry_no_colour_codes_off_a_terminal_and_warn_of_dev_payments() {
    let dir = tempfile::tempdir().unwrap();
    let log = serve_log(dir.path(), &PUBLIC_DEV);
    assert!(log.contains("Lavka is listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a piped log: {log:?}");
    let warn = log.lines().find(|l| l.contains("dev payment provider is on")).expect("the dev warning");
    assert!(warn.contains("WARN"), "{warn}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = PUBLIC_DEV.to_vec();
    env.push(("LAVKA_LOG_FORMAT", "json"));
    let log = serve_log(dir.path(), &env);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "INFO"
        && l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("Lavka is listening"))));
    let warn = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("dev payment provider is on")))
        .expect("the dev warning");
    assert_eq!(warn["level"], "WARN");
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["target"].is_string()));
}
