//! Builds the shop from a [`Config`] (store, queue, job handlers, HTTP router) and runs it
//! until shutdown: workers, schedules and the server share one cancellation token and one
//! task tracker, so SIGTERM drains in-flight work before exit.

use crate::catalog;
use crate::config::Config;
use crate::domain::Currency;
use crate::jobs::{JobSettings, ShopJobs, UpdateProcessor};
use crate::messenger::{LogMessenger, Messenger};
use crate::queue::{Queue, QueueOptions, Schedules, schedules};
use crate::search::Search;
use crate::store::{Clock, Store, StoreOptions};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Imports the embedded demo catalogue into an empty database, when configured.
pub async fn import_demo_if_empty(config: &Config, store: &Store) -> anyhow::Result<()> {
    if config.demo_catalog && store.products().await?.is_empty() {
        let cur = Currency::parse(&config.currency)?;
        let cat = catalog::parse_json(catalog::DEMO_CATALOG, cur).context("the embedded demo catalogue")?;
        let sum = store.write(move |tx| catalog::apply(tx, &cat)).await?;
        tracing::info!(
            products = sum.products_created,
            stock = sum.stock_added,
            "empty database: imported the demo catalogue (set LAVKA_DEMO_CATALOG=false to start empty)"
        );
    }
    Ok(())
}

pub use crate::state::AppState;

/// Replaceable parts (tests swap them).
#[derive(Default)]
pub struct Parts {
    pub clock: Option<Clock>,
    pub messenger: Option<Arc<dyn Messenger>>,
    pub updates: Option<Arc<dyn UpdateProcessor>>,
}

/// The assembled shop.
pub struct App {
    pub state: AppState,
}

impl App {
    /// Opens the store (importing the demo catalogue into an empty one when configured) and
    /// wires the queue and handlers.
    pub async fn build(config: Config, parts: Parts) -> anyhow::Result<App> {
        config.validate()?;
        // The recorder goes in before anything counts: a counter bumped earlier is dropped.
        crate::metrics::handle();
        let opts = StoreOptions {
            max_batch: config.max_batch,
            gather: Duration::from_micros(config.gather_us),
            clock: parts.clock.unwrap_or(Clock::System),
        };
        let path = config.db_path();
        let store = tokio::task::spawn_blocking(move || Store::open(&path, opts))
            .await?
            .with_context(|| format!("opening the database in {}", config.data_dir.display()))?;
        import_demo_if_empty(&config, &store).await?;
        let search = Search::open(&config.index_dir(), store.clone(), None)
            .await
            .context("opening the search index")?;
        let admin_token = config.resolve_admin_token()?;
        let consultant = consultant(&config, &store, &search)?;
        let payments = crate::payments::Payments::new(&config, store.clone(), &admin_token)?;
        if payments.dev_enabled() && (config.telegram().is_some() || config.public_url.is_some()) {
            tracing::warn!(
                "the dev payment provider is on (payments.dev_payments = true): any customer can mark their own order paid without money. \
                 Configure Crypto Pay or Telegram Stars (payments.*), or set payments.dev_payments = false"
            );
        }
        let shop = crate::shop::Shop::new(
            store.clone(),
            search.clone(),
            payments.clone(),
            consultant,
            shop_settings(&config)?,
        );
        let telegram = match config.telegram() {
            Some(_) => Some(crate::telegram::Telegram::new(&config, shop.clone()).await?),
            None => None,
        };
        let messenger = parts.messenger.unwrap_or_else(|| match &telegram {
            Some(tg) => tg.messenger(),
            None => Arc::new(LogMessenger::new(store.clone())),
        });
        let outbox_mode = messenger.is_outbox();
        let updates = parts
            .updates
            .or_else(|| telegram.as_ref().map(|tg| Arc::new(tg.clone()) as Arc<dyn UpdateProcessor>));
        let handler = Arc::new(ShopJobs {
            store: store.clone(),
            messenger,
            updates,
            settings: JobSettings {
                admin_chat_ids: config.admin_ids.clone(),
                default_lang: config.lang(),
                zone: config.zone(),
                backups_dir: config.backups_dir(),
                snapshots_keep: config.snapshots_keep,
                done_retention: Duration::from_secs(config.done_job_retention_hours * 3600),
                outbox_keep: config.outbox_keep,
            },
        });
        let demo_sessions = config.demo_sessions_per_ip_hour;
        let queue = Queue::new(
            store.clone(),
            handler,
            QueueOptions {
                concurrency: config.workers,
                urgent_workers: config.urgent_workers,
                backoff_base: Duration::from_millis(config.job_backoff_base_ms),
                backoff_cap: Duration::from_secs(config.job_backoff_cap_secs),
                ..QueueOptions::default()
            },
        );
        Ok(App {
            state: AppState {
                store,
                queue,
                search,
                config: Arc::new(config),
                admin_token,
                shop,
                payments,
                telegram,
                outbox_mode,
                demo_sessions: Arc::new(crate::http::demo::SessionLimiter::new(demo_sessions)),
            },
        })
    }

    /// Serves HTTP on `listener` and runs workers and schedules until `cancel` fires.
    pub async fn run(self, listener: TcpListener, cancel: CancellationToken) -> anyhow::Result<()> {
        let state = self.state;
        let addr = listener.local_addr()?;
        let addr_file = state.config.addr_file();
        std::fs::write(&addr_file, format!("http://{addr}\n")).context("writing the address file")?;
        let tracker = TaskTracker::new();
        if state.config.public_url.is_none() {
            state.payments.set_base_url(&format!("http://{addr}").replace("0.0.0.0", "127.0.0.1"));
        }
        state.payments.spawn_reconciler(
            &tracker,
            cancel.clone(),
            Duration::from_secs(state.config.payments.reconcile_secs),
        );
        if state.config.workers > 0 {
            state.queue.spawn_workers(&tracker, cancel.clone());
        }
        state.search.spawn_refresher(&tracker, cancel.clone());
        if let Some(tg) = &state.telegram {
            tg.set_local_addr(addr);
            tg.spawn(&tracker, cancel.clone());
        }
        if state.config.semantic_search {
            // The model loads (or is fetched, once) in the background; until then search
            // answers on keywords.
            let (search, dir) = (state.search.clone(), state.config.model_dir.clone());
            let fetch = state.config.model_fetch;
            let c = cancel.clone();
            tracker.spawn(async move {
                // Embedding a large catalogue takes a while: shutdown must not wait for it.
                tokio::select! {
                    _ = c.cancelled() => {}
                    _ = crate::search::model::attach(&search, &dir, fetch) => {}
                }
            });
        }
        if let Some(llm) = state.shop.consultant().llm().cloned() {
            tracker.spawn(async move { llm.check_model().await });
        } else {
            tracing::info!("no Gemini API key: the offline consultant answers customers");
        }
        let sched = if state.config.scheduler {
            Some(Schedules::start(state.queue.clone(), schedules(&state.config.snapshot_cron)).await?)
        } else {
            None
        };
        tracing::info!(%addr, data_dir = %state.config.data_dir.display(), "Lavka is listening on http://{addr}");
        let router = crate::http::router(state.clone());
        let limits = crate::http::serve::Limits::from_config(&state.config);
        let served = crate::http::serve::serve(listener, router, limits, cancel.clone()).await;
        cancel.cancel();
        if let Some(s) = sched {
            s.shutdown().await;
        }
        tracker.close();
        tracker.wait().await;
        let _ = std::fs::remove_file(&addr_file);
        tracing::info!("stopped");
        served.context("HTTP server")
    }
}

/// The consultant for this configuration (the model when a Gemini key is set).
pub fn consultant(config: &Config, store: &Store, search: &Search) -> anyhow::Result<crate::ai::Consultant> {
    Ok(crate::ai::Consultant::new(crate::ai::Setup {
        store: store.clone(),
        search: search.clone(),
        ai: config.ai.clone(),
        shop_name: config.shop_name.clone(),
    })?)
}

/// The shop's settings from the configuration.
pub fn shop_settings(config: &Config) -> anyhow::Result<crate::shop::Settings> {
    Ok(crate::shop::Settings {
        shop_name: config.shop_name.clone(),
        currency: crate::domain::Currency::parse(&config.currency)?,
        zone: config.zone(),
        reservation_ttl_ms: config.reservation_ttl_secs as i64 * 1000,
        limits: crate::store::orders::HoldLimits {
            max_orders: config.max_open_orders,
            max_items: config.max_reserved_items,
        },
        mini_app_url: config.mini_app_url.clone().filter(|u| !u.trim().is_empty()),
        support_contact: config.support_contact.clone(),
        stars: config.payments.stars_per_unit > 0.0 && config.telegram().is_some(),
        history_turns: config.ai.history_turns,
    })
}
