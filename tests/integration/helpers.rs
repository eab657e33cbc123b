//! Shared test scaffolding: temp stores with a manual clock, the app on 127.0.0.1:0 with a
//! recording messenger, and small request helpers.

use lavka::app::{App, AppState, Parts};
use lavka::catalog;
use lavka::config::Config;
use lavka::domain::{Currency, JobKind, JobRecord, JobState, ProductId};
use lavka::messenger::{Messenger, Outgoing, SendError, Sent};
use lavka::store::{Clock, Store, StoreOptions};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// 2026-11-26T12:00:00Z.
pub const T0: i64 = 1_795_694_400_000;

#[allow(dead_code)]
pub struct TestStore {
    pub store: Store,
    pub clock: Clock,
    pub dir: TempDir,
}

pub fn test_store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0);
    let store = Store::open(
        &dir.path().join("lavka.redb"),
        StoreOptions { clock: clock.clone(), ..Default::default() },
    )
    .unwrap();
    TestStore { store, clock, dir }
}

/// A small catalogue: `key` (3 items, 100.00 RUB), `pre` (no stock, pre-order 48 h by
/// supplier `sup`), `both` (1 item + pre-order 24 h), `off` (inactive, 2 items),
/// `sale` (10% off, 2 items, 99.90).
pub const SMALL: &str = r#"{
  "currency": "RUB",
  "suppliers": [{"id": "sup", "name": "Supplier", "telegram_chat_id": 777}],
  "products": [
    {"id": "key", "title": "Key", "price": 100},
    {"id": "pre", "title": "Pre", "price": 50, "fulfillment_hours": 48, "supplier": "sup"},
    {"id": "both", "title": "Both", "price": 70, "fulfillment_hours": 24, "supplier": "sup"},
    {"id": "off", "title": "Off", "price": 10, "active": false},
    {"id": "sale", "title": "Sale", "price": 99.90, "discount_percent": 10}
  ],
  "stock": [
    {"product_id": "key", "items": ["K1", "K2", "K3"]},
    {"product_id": "both", "items": ["B1"]},
    {"product_id": "off", "items": ["O1", "O2"]},
    {"product_id": "sale", "items": ["S1", "S2"]}
  ]
}"#;

pub async fn seed(store: &Store, json: &str) {
    let cat = catalog::parse_json(json, Currency::RUB).unwrap();
    store.write(move |tx| catalog::apply(tx, &cat)).await.unwrap();
}

pub fn pid(s: &str) -> ProductId {
    ProductId::parse(s).unwrap()
}

pub async fn jobs(store: &Store, state: JobState) -> Vec<JobRecord> {
    store.jobs_in_state(state, 10_000).await.unwrap()
}

pub async fn jobs_of_kind(store: &Store, pred: impl Fn(&JobKind) -> bool) -> Vec<JobRecord> {
    let mut all = Vec::new();
    for st in [JobState::Ready, JobState::Done, JobState::Dead] {
        all.extend(jobs(store, st).await);
    }
    all.into_iter().filter(|j| pred(&j.kind)).collect()
}

pub async fn assert_check(store: &Store) {
    let r = store.check().await.unwrap();
    assert!(r.ok(), "invariants violated:\n{r}");
}

/// A messenger that records every message and can be told to fail the next sends.
#[derive(Default)]
pub struct RecordingMessenger {
    pub sent: Mutex<Vec<Outgoing>>,
    pub fail_next: Mutex<VecDeque<SendError>>,
}

impl RecordingMessenger {
    pub fn messages_to(&self, chat: i64) -> Vec<String> {
        self.sent.lock().unwrap().iter().filter(|m| m.chat_id == chat).map(|m| m.text.plain()).collect()
    }
    pub fn fail_with(&self, e: SendError) {
        self.fail_next.lock().unwrap().push_back(e);
    }
}

#[async_trait::async_trait]
impl Messenger for RecordingMessenger {
    async fn send(&self, msg: &Outgoing) -> Result<Sent, SendError> {
        if let Some(e) = self.fail_next.lock().unwrap().pop_front() {
            return Err(e);
        }
        let mut s = self.sent.lock().unwrap();
        s.push(msg.clone());
        Ok(Sent { message_id: s.len() as i64 })
    }
}

#[allow(dead_code)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub state: AppState,
    pub clock: Clock,
    pub messenger: Arc<RecordingMessenger>,
    pub cancel: CancellationToken,
    pub dir: TempDir,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), T0, tweak).await
}

/// The app on a data directory that may already hold a database, its clock at `now`.
pub async fn spawn_app_in(dir: TempDir, now: i64, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(dir, now, tweak, true).await
}

/// The app as it runs without a bot token: messages go to the store's outbox ("outbox
/// mode"); the recording messenger stays empty.
#[allow(dead_code)]
pub async fn spawn_outbox_app() -> TestApp {
    spawn(tempfile::tempdir().unwrap(), T0, |_| {}, false).await
}

async fn spawn(dir: TempDir, now: i64, tweak: impl FnOnce(&mut Config), record: bool) -> TestApp {
    let mut cfg = Config::for_tests(dir.path());
    tweak(&mut cfg);
    let token = cfg.admin_token.as_ref().unwrap().expose().to_string();
    let clock = Clock::manual(now);
    let messenger = Arc::new(RecordingMessenger::default());
    let used: Option<Arc<dyn Messenger>> = if record { Some(messenger.clone()) } else { None };
    let app = App::build(cfg, Parts { clock: Some(clock.clone()), messenger: used, ..Default::default() })
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Links are based on the listen address, which `run` sets; set it now so a test cannot
    // race the spawned server.
    app.state.payments.set_base_url(&base);
    let state = app.state.clone();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.run(listener, cancel.clone()));
    TestApp { base, client: reqwest::Client::new(), token, state, clock, messenger, cancel, dir, server }
}

impl TestApp {
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r =
            self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn drain_jobs(&self) -> usize {
        self.state.queue.drain().await.unwrap().len()
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// The `lavka_session=…` cookie a response sets (a new demo-mode customer), if any.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("lavka_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}
