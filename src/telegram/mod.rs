//! The Telegram channel. Incoming updates arrive by webhook (our own axum route, which
//! stores each update as a `process_update` job before it answers 200) or by long polling
//! (the offset is stored with the batch); either way the job worker processes them, so a
//! crash never loses an acknowledged update. Outgoing messages all go through one
//! rate-limited [`sender::TelegramSender`], which is also the shop's [`Messenger`].
//!
//! The bot is a door into the shop (`crate::shop`): it parses updates into use-case calls
//! and renders their replies as Telegram messages; it implements no shop rule itself.

pub mod admin;
pub mod api;
pub mod bot;
pub mod customer;
pub mod polling;
pub mod sender;
pub mod split;
mod stars;
pub mod supplier;

use crate::config::Config;
use crate::messenger::Messenger;
use crate::store::Store;
use crate::texts::Lang;
use anyhow::Context;
use sender::{Limits, TelegramSender};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use teloxide_core::Bot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the bot needs from the configuration.
#[derive(Clone, Debug)]
pub struct BotSettings {
    pub default_lang: Lang,
    pub admins: Vec<i64>,
    pub public_url: Option<String>,
    pub backups_dir: PathBuf,
    pub snapshots_keep: usize,
    pub poll_timeout: Duration,
    pub api_url: String,
}

struct Inner {
    store: Store,
    sender: Arc<TelegramSender>,
    shop: crate::shop::Shop,
    settings: BotSettings,
    /// Empty in polling mode.
    secret: String,
    /// `http://<listen address>` once the server listens (dev payment links without a public URL).
    local_base: OnceLock<String>,
}

/// A cheap handle to the Telegram channel.
#[derive(Clone)]
pub struct Telegram {
    inner: Arc<Inner>,
}

/// Update kinds asked for (`allowed_updates`): omitting the list would keep whatever an
/// earlier setting was.
pub const ALLOWED_UPDATES: [&str; 4] = ["message", "callback_query", "pre_checkout_query", "my_chat_member"];

fn random_secret() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    (0..48).map(|_| CHARS[fastrand::usize(..CHARS.len())] as char).collect()
}

impl Telegram {
    /// Builds the channel from the configuration (which must have a token). In webhook mode
    /// the secret is the configured one, else one generated once and kept in the database.
    pub async fn new(config: &Config, shop: crate::shop::Shop) -> anyhow::Result<Telegram> {
        let store = shop.store().clone();
        let token = config.telegram().context("no Telegram token configured")?.expose().to_string();
        let poll_timeout = Duration::from_secs(config.telegram_poll_timeout_secs);
        // Our own client: the system's CA roots (TLS may be intercepted by a proxy with its
        // own CA), and a timeout above the long-polling wait.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(poll_timeout + Duration::from_secs(20))
            .build()
            .context("building the HTTP client for Telegram")?;
        let api_url = config.telegram_api_url.trim_end_matches('/').to_string();
        let bot = Bot::with_client(token.clone(), http.clone())
            .set_api_url(api_url.parse().with_context(|| format!("telegram_api_url {api_url:?}"))?);
        let send_timeout = Duration::from_secs(config.telegram_send_timeout_secs.max(1));
        let api = api::BotApi::new(http, &api_url, &token, send_timeout);
        let secret = match (&config.public_url, &config.telegram_webhook_secret) {
            (None, _) => String::new(),
            (Some(_), Some(s)) => s.expose().to_string(),
            (Some(_), None) => {
                let generated = random_secret();
                store.write(move |tx| crate::store::telegram::webhook_secret(tx, &generated)).await?
            }
        };
        let settings = BotSettings {
            default_lang: config.lang(),
            admins: config.admin_ids.clone(),
            public_url: config.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
            backups_dir: config.backups_dir(),
            snapshots_keep: config.snapshots_keep,
            poll_timeout,
            api_url,
        };
        let sender =
            Arc::new(TelegramSender::new(bot, api, Limits::from_config(config), store.clock().clone()));
        Ok(Telegram {
            inner: Arc::new(Inner { store, sender, shop, settings, secret, local_base: OnceLock::new() }),
        })
    }

    /// The sender, as the shop's messenger (deliveries and notifications use it too).
    pub fn messenger(&self) -> Arc<dyn Messenger> {
        self.inner.sender.clone()
    }

    pub fn sender(&self) -> &TelegramSender {
        &self.inner.sender
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &BotSettings {
        &self.inner.settings
    }

    /// Webhook mode: a public URL is configured.
    pub fn webhook_mode(&self) -> bool {
        self.inner.settings.public_url.is_some()
    }

    /// The secret Telegram must send with every webhook call (empty in polling mode).
    pub fn webhook_secret(&self) -> &str {
        &self.inner.secret
    }

    pub fn shop(&self) -> &crate::shop::Shop {
        &self.inner.shop
    }

    pub fn payments(&self) -> &crate::payments::Payments {
        self.inner.shop.payments()
    }

    /// Where this server can be reached: the public URL, else the local listen address.
    pub fn base_url(&self) -> String {
        self.inner
            .settings
            .public_url
            .clone()
            .or_else(|| self.inner.local_base.get().cloned())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into())
    }

    /// Tells the channel the address the server listens on.
    pub fn set_local_addr(&self, addr: std::net::SocketAddr) {
        let _ = self.inner.local_base.set(format!("http://{addr}"));
    }

    /// A Bot API call with a JSON body, its result as JSON (the webhook set-up, Stars),
    /// bounded by the send timeout.
    async fn call(
        &self,
        method: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, crate::messenger::SendError> {
        self.inner.sender.api().call(method, &body, true).await
    }

    /// `getUpdates`, whose raw JSON is stored as it came. Its wait is the long poll itself,
    /// so only the client's own bound (above the poll timeout) applies.
    async fn get_updates(&self, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        self.inner
            .sender
            .api()
            .call("getUpdates", &body, false)
            .await
            .map_err(|e| anyhow::anyhow!("getUpdates: {e}"))
    }

    /// Starts the channel's background work: the webhook registration or the polling loop,
    /// and the command menu.
    pub fn spawn(&self, tracker: &TaskTracker, cancel: CancellationToken) {
        let tg = self.clone();
        let c = cancel.clone();
        tracker.spawn(async move {
            tokio::select! {
                _ = c.cancelled() => {}
                _ = tg.setup() => {}
            }
        });
        if !self.webhook_mode() {
            let tg = self.clone();
            tracker.spawn(async move { polling::run(tg, cancel).await });
        }
    }

    /// Registers the webhook (retrying until it works) and the command menu.
    async fn setup(&self) {
        if let Some(base) = &self.inner.settings.public_url {
            let body = serde_json::json!({
                "url": format!("{base}/telegram/webhook"),
                "secret_token": self.inner.secret,
                "allowed_updates": ALLOWED_UPDATES,
            });
            let mut wait = Duration::from_secs(1);
            loop {
                match self.call("setWebhook", body.clone()).await {
                    Ok(_) => {
                        tracing::info!(url = %format!("{base}/telegram/webhook"), "Telegram webhook set");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?wait, "setWebhook failed");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(300));
                    }
                }
            }
        }
        for lang in [Lang::Ru, Lang::En] {
            let commands = bot::command_menu(lang);
            // English is the default menu; Russian speakers get theirs.
            let body = match lang {
                Lang::Ru => serde_json::json!({ "commands": commands, "language_code": "ru" }),
                Lang::En => serde_json::json!({ "commands": commands }),
            };
            if let Err(e) = self.call("setMyCommands", body).await {
                tracing::warn!(error = %e, "setMyCommands failed");
            }
        }
    }
}
