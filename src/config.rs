//! One `Config`: built-in defaults < `lavka.toml` < `LAVKA_*` environment variables <
//! command-line flags. Secrets are held in [`Secret`], whose `Debug` and `Serialize` mask them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A secret string: never printed.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN: usize = 16;

/// Everything configurable. Every field has a working default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the database, indexes and backups.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Shop name shown to customers.
    pub shop_name: String,
    /// Shop currency (ISO code) for imports without one.
    pub currency: String,
    /// Language for customers whose language is unknown: "ru" or "en".
    pub default_lang: String,
    /// Bearer token of the admin API (at least 16 characters). Unset: one is generated on
    /// first start and kept in `<data_dir>/admin-token`.
    pub admin_token: Option<Secret>,
    /// Telegram chat ids of the shop's admins (alerts, admin commands).
    pub admin_ids: Vec<i64>,
    /// How long a reservation waits for payment, seconds.
    pub reservation_ttl_secs: u64,
    /// Most unpaid orders (reservations and pre-orders awaiting payment) one customer may
    /// hold at once, in every door (the owner's manual sales are not limited).
    pub max_open_orders: u32,
    /// Most stock items one customer may hold reserved and unpaid at once.
    pub max_reserved_items: u32,
    /// New demo-mode browser customers (session cookies) one client address may start per
    /// hour; 0 = unlimited. Behind a reverse proxy on the same host the address is the last
    /// `X-Forwarded-For` entry.
    pub demo_sessions_per_ip_hour: u32,
    /// Log lines: "text" (coloured only on a terminal) or "json" (one object per line, for
    /// log collectors).
    pub log_format: String,
    /// Job workers running at once (0: none; jobs run only when asked, as in tests).
    pub workers: usize,
    /// More workers that run only what Telegram times (pre-checkout and button answers), so
    /// a burst of replies cannot make a payment time out (with `workers` > 0).
    pub urgent_workers: usize,
    /// First retry delay of a failed job, milliseconds (doubles each attempt, with jitter).
    pub job_backoff_base_ms: u64,
    /// Longest retry delay of a failed job, seconds.
    pub job_backoff_cap_secs: u64,
    /// Finished jobs are kept this long, hours.
    pub done_job_retention_hours: u64,
    /// Outbox messages kept for the admin.
    pub outbox_keep: u64,
    /// Most write operations in one group commit.
    pub max_batch: usize,
    /// Longest extra wait of the group-commit writer for more operations, microseconds, used
    /// only while more writers are active than have arrived (a lone writer never waits).
    pub gather_us: u64,
    /// When the daily snapshot runs (cron with seconds, UTC).
    pub snapshot_cron: String,
    /// Snapshots kept in `<data_dir>/backups`.
    pub snapshots_keep: usize,
    /// Largest request body accepted, bytes; a request announcing more (`Content-Length`)
    /// is answered 413 before any of it is read.
    pub body_limit_bytes: usize,
    /// A request head must arrive in full within this many seconds (also the longest a
    /// kept-alive connection waits for its next request).
    pub http_header_timeout_secs: u64,
    /// A connection where no byte moves either way while none of its requests is being
    /// handled is closed after this many seconds.
    pub http_idle_timeout_secs: u64,
    /// Most HTTP connections open at once (lowered to fit the open-file limit); one more is
    /// answered 503 and closed.
    pub http_max_connections: usize,
    /// Rank search results by meaning too (loads, and if needed fetches, the model).
    pub semantic_search: bool,
    /// Fetch the pinned model into `model_dir` when it is missing (needs network once).
    pub model_fetch: bool,
    /// Directory of the embedding model files (fetched there when missing).
    pub model_dir: PathBuf,
    /// Import the demo catalogue when the database is empty.
    pub demo_catalog: bool,
    /// Run the periodic jobs (expiry, refunds, pruning, snapshots).
    pub scheduler: bool,
    /// The sales consultant (`[ai]` in `lavka.toml`, `LAVKA_AI__<KEY>` in the environment).
    pub ai: AiConfig,
    /// Public HTTPS base URL of this server: payment links, and Telegram webhook mode
    /// (`<public_url>/telegram/webhook`). Unset: links use the listen address and Telegram
    /// uses long polling.
    pub public_url: Option<String>,
    /// Payment providers (`[payments]`).
    pub payments: PaymentsConfig,

    // --- Telegram ---
    /// Bot token from @BotFather (also read from `TELEGRAM_BOT_TOKEN`). Unset: no Telegram;
    /// messages go to the outbox.
    pub telegram_token: Option<Secret>,
    /// Base URL of the Bot API (tests point it at a fake server).
    pub telegram_api_url: String,
    /// Secret Telegram sends with every webhook call. Unset: generated once and kept in the
    /// database.
    pub telegram_webhook_secret: Option<Secret>,
    /// Mini App URL for the "Open shop" button (none when unset).
    pub mini_app_url: Option<String>,
    /// Long-polling timeout of `getUpdates`, seconds.
    pub telegram_poll_timeout_secs: u64,
    /// Messages per second to all chats together.
    pub telegram_global_per_sec: u32,
    /// Least time between two messages to one private chat, milliseconds.
    pub telegram_chat_interval_ms: u64,
    /// Messages per minute to one group chat.
    pub telegram_group_per_min: u32,
    /// How long one message send may take before its outcome counts as unknown, seconds.
    pub telegram_send_timeout_secs: u64,
    /// Who customers contact about payments (`/paysupport`), e.g. "@shop_support".
    pub support_contact: String,
    /// The shop's time zone for times people read: a UTC offset ("+03:00", "UTC-5") or
    /// "MSK"/"UTC". Times within two hours are shown relative ("через 15 мин").
    pub time_zone: String,

    // --- Mini App and web shop ---
    /// Mini App `initData` older than this (by its `auth_date`) is refused, seconds.
    pub mini_app_auth_max_age_secs: u64,
}

/// Payment providers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// The dev provider (`/pay/dev/{order}?t=` marks an order paid, no money moves). Unset:
    /// on only in a local demo — no real provider, no bot token and no public URL.
    pub dev_payments: Option<bool>,
    /// Crypto Pay (@CryptoBot) app token; unset: Crypto Pay off.
    pub cryptopay_token: Secret,
    /// Crypto Pay API base (`https://testnet-pay.crypt.bot` for the testnet).
    pub cryptopay_api_url: String,
    /// Assets a customer may pay a fiat invoice with.
    pub cryptopay_assets: String,
    /// Seconds between reconciliation rounds (`getInvoices`); 0 = never.
    pub reconcile_secs: u64,
    /// Telegram Stars per one unit of the shop currency (e.g. 0.6 Stars per rouble); 0 turns
    /// Stars off. A price in Stars is rounded up to a whole Star.
    pub stars_per_unit: f64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            dev_payments: None,
            cryptopay_token: Secret::default(),
            cryptopay_api_url: "https://pay.crypt.bot".into(),
            cryptopay_assets: "USDT,TON,BTC".into(),
            reconcile_secs: 300,
            stars_per_unit: 0.0,
        }
    }
}

/// The consultant's settings. Without `gemini_api_key` (or `GEMINI_API_KEY`) the offline
/// consultant answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Google Gemini API key; also read from `GEMINI_API_KEY`.
    pub gemini_api_key: Secret,
    /// API base URL (tests point it at a fake server).
    pub gemini_base_url: String,
    /// Model id. The default alias tracks the current Flash release.
    pub gemini_model: String,
    /// Gemini 3 thinking level (MINIMAL, LOW, MEDIUM, HIGH); empty: the model's default.
    pub thinking_level: String,
    /// Timeout of one model request, seconds.
    pub request_timeout_secs: u64,
    /// The longest a customer waits for the model's answer to one message (retries and tool
    /// calls included), seconds; past it the offline consultant answers.
    pub turn_deadline_secs: u64,
    /// Attempts per model request on 429/5xx/timeouts (1 = no retry).
    pub max_attempts: u32,
    /// A 429 asking to wait longer than this (seconds) is not waited for: the offline
    /// consultant answers instead.
    pub max_retry_wait_secs: u64,
    /// Tool calls the model may make for one customer message.
    pub max_tool_calls: u32,
    /// Turns of conversation remembered per customer.
    pub history_turns: usize,
    /// Model calls allowed per customer per minute and per day.
    pub user_calls_per_minute: u32,
    pub user_calls_per_day: u32,
    /// Put the system prompt into a Gemini context cache when it is at least this many
    /// tokens (estimated); 0 disables explicit caching.
    pub cache_min_tokens: usize,
    /// Lifetime of the context cache, seconds; it is extended before it expires.
    pub cache_ttl_secs: u64,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            gemini_api_key: Secret::default(),
            gemini_base_url: "https://generativelanguage.googleapis.com".into(),
            gemini_model: "gemini-flash-latest".into(),
            thinking_level: "LOW".into(),
            request_timeout_secs: 20,
            turn_deadline_secs: 12,
            max_attempts: 3,
            max_retry_wait_secs: 10,
            max_tool_calls: 4,
            history_turns: 12,
            user_calls_per_minute: 6,
            user_calls_per_day: 200,
            cache_min_tokens: 4096,
            cache_ttl_secs: 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            listen: "127.0.0.1:8080".into(),
            shop_name: "Lavka".into(),
            currency: "RUB".into(),
            default_lang: "ru".into(),
            admin_token: None,
            admin_ids: Vec::new(),
            reservation_ttl_secs: 15 * 60,
            max_open_orders: 3,
            max_reserved_items: 10,
            demo_sessions_per_ip_hour: 5,
            log_format: "text".into(),
            workers: 4,
            urgent_workers: 2,
            job_backoff_base_ms: 1000,
            job_backoff_cap_secs: 3600,
            done_job_retention_hours: 24 * 7,
            outbox_keep: 10_000,
            max_batch: 256,
            gather_us: 300,
            snapshot_cron: "0 30 3 * * *".into(),
            snapshots_keep: 7,
            body_limit_bytes: 2 * 1024 * 1024,
            http_header_timeout_secs: 10,
            http_idle_timeout_secs: 30,
            http_max_connections: 1024,
            semantic_search: true,
            model_fetch: true,
            model_dir: PathBuf::from("models"),
            demo_catalog: true,
            scheduler: true,
            ai: AiConfig::default(),
            public_url: None,
            payments: PaymentsConfig::default(),
            telegram_token: None,
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_webhook_secret: None,
            mini_app_url: None,
            telegram_poll_timeout_secs: 30,
            telegram_global_per_sec: 30,
            telegram_chat_interval_ms: 1000,
            telegram_group_per_min: 20,
            telegram_send_timeout_secs: 15,
            support_contact: String::new(),
            time_zone: "+03:00".into(),
            mini_app_auth_max_age_secs: 24 * 3600,
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if it exists; `lavka.toml` in the working directory when
    /// not given), then `LAVKA_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        use figment::Figment;
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        let path = file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("lavka.toml"));
        if path.exists() {
            fig = fig.merge(Toml::file(&path));
        } else if file.is_some() {
            return Err(Error::bad(format!("config file {} does not exist", path.display())));
        }
        // Only variables that name a field: other LAVKA_* variables (LAVKA_CONFIG, test
        // switches) are not configuration.
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        fig = fig.merge(
            Env::prefixed("LAVKA_")
                .filter(move |k| {
                    let top = k.as_str().split("__").next().unwrap_or_default();
                    known.iter().any(|f| f.eq_ignore_ascii_case(top))
                })
                .split("__"),
        );
        let mut cfg: Config = fig.extract().map_err(|e| Error::bad(format!("configuration: {e}")))?;
        if cfg.ai.gemini_api_key.is_empty()
            && let Ok(k) = std::env::var("GEMINI_API_KEY")
        {
            cfg.ai.gemini_api_key = Secret::new(k.trim());
        }
        // The conventional variable, when LAVKA_TELEGRAM_TOKEN / the file do not set one.
        if cfg.telegram_token.is_none()
            && let Ok(t) = std::env::var("TELEGRAM_BOT_TOKEN")
            && !t.trim().is_empty()
        {
            cfg.telegram_token = Some(Secret::new(t.trim()));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Defaults for tests: a data dir, port 0, a known admin token, no demo catalogue.
    pub fn for_tests(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            admin_token: Some(Secret::new("test-admin-token-0123456789")),
            demo_catalog: false,
            scheduler: false,
            semantic_search: false,
            workers: 0,
            job_backoff_base_ms: 100,
            ..Config::default()
        }
    }

    /// Checks values that would otherwise fail later and obscurely.
    pub fn validate(&self) -> Result<()> {
        crate::domain::Currency::parse(&self.currency)?;
        if crate::texts::Lang::parse(&self.default_lang).is_none() {
            return Err(Error::bad("default_lang must be \"ru\" or \"en\""));
        }
        if crate::texts::Zone::parse(&self.time_zone).is_none() {
            return Err(Error::bad(format!(
                "time_zone {:?} must be a UTC offset such as \"+03:00\" or \"UTC-5\", or \"MSK\"/\"UTC\"",
                self.time_zone
            )));
        }
        if let Some(t) = &self.admin_token
            && t.expose().trim().len() < MIN_ADMIN_TOKEN
        {
            return Err(Error::bad(format!(
                "admin_token must be at least {MIN_ADMIN_TOKEN} characters; the admin API will not start with a short token"
            )));
        }
        if self.reservation_ttl_secs == 0 {
            return Err(Error::bad("reservation_ttl_secs must be positive"));
        }
        if self.max_open_orders == 0 || self.max_reserved_items == 0 {
            return Err(Error::bad("max_open_orders and max_reserved_items must be positive"));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(Error::bad(format!(
                "log_format must be \"text\" or \"json\", got {:?}",
                self.log_format
            )));
        }
        if self.max_batch == 0 {
            return Err(Error::bad("max_batch must be positive"));
        }
        if self.http_header_timeout_secs == 0
            || self.http_idle_timeout_secs == 0
            || self.http_max_connections == 0
        {
            return Err(Error::bad(
                "http_header_timeout_secs, http_idle_timeout_secs and http_max_connections must be positive",
            ));
        }
        let ai = &self.ai;
        if !ai.gemini_api_key.is_empty() {
            reqwest::Url::parse(&ai.gemini_base_url)
                .map_err(|e| Error::bad(format!("ai.gemini_base_url {:?}: {e}", ai.gemini_base_url)))?;
            if ai.gemini_model.trim().is_empty() || ai.gemini_model.contains(['/', ':', '?', '#']) {
                return Err(Error::bad(
                    "ai.gemini_model must be a bare model id such as gemini-flash-latest",
                ));
            }
        }
        crate::ai::thinking::check(&ai.gemini_model, &ai.thinking_level).map_err(Error::bad)?;
        if ai.max_attempts == 0
            || ai.request_timeout_secs == 0
            || ai.history_turns == 0
            || ai.turn_deadline_secs == 0
        {
            return Err(Error::bad(
                "ai.max_attempts, ai.request_timeout_secs, ai.turn_deadline_secs and ai.history_turns must be positive",
            ));
        }
        let spu = self.payments.stars_per_unit;
        if !spu.is_finite() || !(0.0..=1_000_000.0).contains(&spu) {
            return Err(Error::bad("payments.stars_per_unit must be between 0 and 1000000"));
        }
        self.validate_telegram()?;
        Ok(())
    }

    fn validate_telegram(&self) -> Result<()> {
        if let Some(t) = &self.telegram_token
            && !t.is_empty()
            && !t.expose().contains(':')
        {
            return Err(Error::bad("telegram_token does not look like a bot token (<id>:<secret>)"));
        }
        for (name, url) in
            [("telegram_api_url", Some(&self.telegram_api_url)), ("public_url", self.public_url.as_ref())]
        {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(Error::bad(format!("{name} must start with http:// or https://")));
            }
        }
        if let Some(s) = &self.telegram_webhook_secret {
            let ok = (1..=256).contains(&s.expose().len())
                && s.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
            if !ok {
                return Err(Error::bad(
                    "telegram_webhook_secret must be 1-256 characters of A-Z a-z 0-9 _ -",
                ));
            }
        }
        if self.telegram_global_per_sec == 0 || self.telegram_group_per_min == 0 {
            return Err(Error::bad("telegram rate limits must be positive"));
        }
        Ok(())
    }

    /// The bot token when Telegram is configured.
    pub fn telegram(&self) -> Option<&Secret> {
        self.telegram_token.as_ref().filter(|t| !t.is_empty())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("lavka.redb")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
    /// Where a running server writes the address it listens on.
    pub fn addr_file(&self) -> PathBuf {
        self.data_dir.join("lavka.addr")
    }
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }
    /// The shop's time zone (validated at start).
    pub fn zone(&self) -> crate::texts::Zone {
        crate::texts::Zone::parse(&self.time_zone).unwrap_or(crate::texts::Zone::MSK)
    }

    pub fn lang(&self) -> crate::texts::Lang {
        crate::texts::Lang::parse(&self.default_lang).unwrap_or(crate::texts::Lang::Ru)
    }

    /// The admin token: configured, else the one kept in the data dir (created if missing).
    pub fn resolve_admin_token(&self) -> Result<Secret> {
        if let Some(t) = &self.admin_token {
            return Ok(t.clone());
        }
        let path = self.admin_token_file();
        if let Ok(t) = std::fs::read_to_string(&path) {
            let t = t.trim().to_string();
            if t.len() >= MIN_ADMIN_TOKEN {
                return Ok(Secret(t));
            }
        }
        let token: String = (0..32)
            .map(|_| {
                let chars = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
                chars[fastrand::usize(..chars.len())] as char
            })
            .collect();
        std::fs::create_dir_all(&self.data_dir)?;
        write_private(&path, &token)?;
        Ok(Secret(token))
    }

    /// The admin token for a client command (backup, check) talking to a running server.
    pub fn client_admin_token(&self) -> Option<Secret> {
        self.admin_token.clone().or_else(|| {
            std::fs::read_to_string(self.admin_token_file()).ok().map(|t| Secret(t.trim().to_string()))
        })
    }
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.write_all(content.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, content)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_debug_and_json() {
        let c = Config { admin_token: Some(Secret::new("very-secret-token-123")), ..Config::default() };
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!serde_json::to_string(&c).unwrap().contains("very-secret"));
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let c = Config { admin_token: Some(Secret::new("short")), ..Config::default() };
        assert!(c.validate().is_err());
    }
}
