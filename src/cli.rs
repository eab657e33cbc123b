//! The `lavka` command line. Commands that touch the database open it directly, or — when a
//! server holds it (a redb file opens once) — go through the server's admin API.

use crate::app::{App, Parts};
use crate::catalog;
use crate::config::Config;
use crate::domain::Currency;
use crate::error::Error;
use crate::store::{Store, StoreOptions};
use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

mod chat;
pub mod logging;

/// Lavka — a Telegram shop for digital goods with an AI sales consultant, in one binary.
#[derive(Parser, Debug)]
#[command(name = "lavka", version, about, long_about = None)]
pub struct Cli {
    /// Data directory (database, indexes, backups). Default: ./data
    #[arg(long, global = true, env = "LAVKA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file. Default: ./lavka.toml when it exists.
    #[arg(long, global = true, env = "LAVKA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the shop: HTTP server, job workers, schedules. Imports the demo catalogue into an
    /// empty database and listens on 127.0.0.1:8080 unless configured otherwise.
    Serve {
        /// Address to listen on (overrides the configuration).
        #[arg(long)]
        listen: Option<String>,
        /// Print the effective configuration (secrets masked) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Import products, stock and suppliers from a JSON file, a CSV file or a directory of
    /// CSV files (products.csv, stock.csv, suppliers.csv). Idempotent; all or nothing.
    Import {
        /// The catalogue file or directory.
        file: PathBuf,
    },
    /// Search the catalogue; prints ranked products with scores.
    Search {
        /// What the customer would type.
        query: String,
        /// Most results to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print `{"results":[{"id","title","score",...}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Talk to the sales consultant in the terminal as a customer (numbers press buttons).
    /// Uses Gemini when GEMINI_API_KEY is set, else the offline consultant.
    Chat {
        /// Customer id to talk as (orders and balance are this customer's).
        #[arg(long, default_value_t = 1)]
        user: i64,
        /// Language of the customer's Telegram client ("ru" or "en").
        #[arg(long)]
        lang: Option<String>,
    },
    /// Write a consistent snapshot of the database into DIR (through the running server
    /// when there is one).
    Backup {
        /// Directory to write the snapshot file into.
        dir: PathBuf,
    },
    /// Verify the store's invariants; exits non-zero and lists violations if any fails.
    Check {
        /// Check this database file (e.g. a snapshot) instead of the data directory's.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Built-in benchmarks; print one JSON object.
    Bench {
        #[command(subcommand)]
        kind: BenchKind,
    },
    /// The embedding model: `lavka model fetch` downloads and verifies the pinned files into
    /// the model directory (`models/` by default).
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Exit 0 if the running server answers /healthz (for Docker's HEALTHCHECK).
    Healthcheck {
        /// Base URL of the server. Default: from the data dir's address file, else the
        /// configured listen address.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelAction {
    /// Download (if missing) and verify the pinned model file; prints its path.
    Fetch,
}

#[derive(Subcommand, Debug)]
pub enum BenchKind {
    /// Concurrent reserve → complete purchases on a fresh temporary store, durable commits.
    Store {
        #[arg(long, default_value_t = 32)]
        buyers: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Group-commit gather window in microseconds (as the `gather_us` setting).
        #[arg(long, default_value_t = Config::default().gather_us)]
        gather_us: u64,
    },
    /// The real server (`lavka serve`, a child process, default settings) against a local
    /// Bot API stand-in that enforces Telegram's limits: `--customers` chats each send
    /// `--messages` commands at once while `--payers` pay with Stars. Time to the last reply
    /// against the limits' floor, reply and pre-checkout latency, sends/s, limit violations.
    Telegram {
        #[arg(long, default_value_t = 20)]
        customers: usize,
        #[arg(long, default_value_t = 3)]
        messages: usize,
        #[arg(long, default_value_t = 1)]
        payers: usize,
    },
    /// Enqueue → run → ack of no-op jobs on a fresh temporary store, durable commits.
    Queue {
        #[arg(long, default_value_t = 50_000)]
        jobs: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// The real server (`lavka serve`, a child process) under `--clients` concurrent clients on
    /// loopback for `--seconds`: search, catalogue API, health, Telegram and payment
    /// webhooks; throughput, p50/p99 per endpoint, errors, the server's peak RSS.
    Http {
        #[arg(long, default_value_t = 200)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Load the embedding model (fetched if missing) so search is hybrid, as in a shop.
        #[arg(long)]
        semantic: bool,
    },
    /// The offline consultant's reply time over the labelled queries on the demo catalogue.
    Consultant {
        /// Without the embedding model (keyword search only).
        #[arg(long)]
        keywords_only: bool,
    },
    /// Signed Crypto Pay webhooks against the real HTTP server on a temporary data dir:
    /// webhook acknowledgement and webhook → delivered latency, throughput.
    Payments {
        #[arg(long, default_value_t = 2000)]
        orders: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// Search speed: index `--products` synthetic products (variants of the demo catalogue;
    /// vectors random for the sizes the encoder would take minutes to fill), then time
    /// hybrid queries, the vector scan alone, and the encoder's indexing throughput.
    Search {
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        #[arg(long, default_value_t = 50)]
        queries: usize,
    },
    /// Scripted customers (typed messages, buttons pressed by their label) against the
    /// consultant, each with a goal checked by code: the share met within 3 messages, the
    /// messages it took, wrong offers, replies in the wrong language, failed transcripts.
    /// Defaults: the shipped scripts (the demo catalogue and `tests/fixtures/hard`), the
    /// embedding model loaded (fetched if missing), the offline consultant.
    Conversations {
        /// Scripts file (`{"catalogs": {name: "demo" | path}, "customers": [...]}`).
        #[arg(long)]
        scripts: Option<PathBuf>,
        /// The consultant's model path, answered by a local Gemini stand-in.
        #[arg(long)]
        stand_in: bool,
        /// Without the embedding model (keyword search only).
        #[arg(long)]
        keywords_only: bool,
    },
    /// Search quality (hit@1, hit@3, MRR) of a labelled query set on a catalogue, in a
    /// temporary data dir. Defaults: the demo catalogue and the shipped query set.
    SearchQuality {
        /// Catalogue to import (JSON or CSV, as `lavka import`).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// Labelled queries: `{"queries":[{"q","lang","kind","relevant":[ids]}]}`.
        #[arg(long)]
        queries: Option<PathBuf>,
        /// Also write each query's raw keyword and vector lists (JSON lines) here, for
        /// calibrating the fusion.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = load_config(&cli);
    logging::init(cfg.as_ref().map(|c| c.log_format.as_str()).unwrap_or("text"));
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, cfg)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

async fn run(cli: Cli, cfg: anyhow::Result<Config>) -> anyhow::Result<ExitCode> {
    let mut cfg = cfg?;
    match cli.command {
        Command::Serve { listen, print_config } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if print_config {
                println!("{}", serde_json::to_string_pretty(&cfg)?);
                return Ok(ExitCode::SUCCESS);
            }
            serve(cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file } => {
            let cur = Currency::parse(&cfg.currency)?;
            let cat = catalog::load_path(&file, cur)?;
            let summary = match open_local(&cfg).await? {
                Some(store) => store.write(move |tx| catalog::apply(tx, &cat)).await?,
                None => {
                    let body = catalog::to_json(&cat).to_string();
                    let v = server_call(&cfg, reqwest::Method::POST, "/admin/api/import", Some(body)).await?;
                    serde_json::from_value(v).context("server answer")?
                }
            };
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Search { query, limit, json } => {
            let results: Vec<crate::search::Hit> = match open_local(&cfg).await? {
                Some(store) => {
                    crate::app::import_demo_if_empty(&cfg, &store).await?;
                    let search = crate::search::Search::open(&cfg.index_dir(), store, None).await?;
                    if cfg.semantic_search {
                        crate::search::model::attach(&search, &cfg.model_dir, cfg.model_fetch).await;
                    }
                    search.search(&query, limit).await?
                }
                None => {
                    let base = server_base(&cfg);
                    let url = reqwest::Url::parse_with_params(
                        &format!("{base}/api/search"),
                        &[("q", query.as_str()), ("limit", &limit.to_string())],
                    )?;
                    let v: serde_json::Value = reqwest::get(url).await?.error_for_status()?.json().await?;
                    serde_json::from_value(v["results"].clone()).context("server answer")?
                }
            };
            if json {
                println!("{}", serde_json::json!({ "results": results }));
            } else if results.is_empty() {
                println!("nothing found");
            } else {
                for (i, h) in results.iter().enumerate() {
                    println!("{:>2}. {:<28} {:>7.3}  {}", i + 1, h.id.as_str(), h.score, h.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat { user, lang } => {
            chat::run(&cfg, user, lang).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { dir } => {
            let path = backup(&cfg, &dir).await?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file, json } => {
            let report = match file {
                Some(f) => {
                    tokio::task::spawn_blocking(move || crate::store::backup::check_file(&f)).await??
                }
                None => match open_local(&cfg).await? {
                    Some(store) => {
                        // Without a bot token the shop delivers into its outbox.
                        let opts = crate::store::check::CheckOptions { outbox: cfg.telegram().is_none() };
                        store.check_with(opts).await?
                    }
                    None => {
                        let v = server_call(&cfg, reqwest::Method::GET, "/admin/api/check", None).await?;
                        serde_json::from_value(v["report"].clone()).context("server answer")?
                    }
                },
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Bench { kind } => {
            let out = match kind {
                BenchKind::Store { buyers, seconds, gather_us } => {
                    crate::bench::store(buyers, seconds, gather_us).await?
                }
                BenchKind::Queue { jobs, concurrency } => crate::bench::queue(jobs, concurrency).await?,
                BenchKind::Telegram { customers, messages, payers } => {
                    crate::bench::telegram(customers, messages, payers).await?
                }
                BenchKind::Payments { orders, concurrency } => {
                    crate::bench::payments(orders, concurrency).await?
                }
                BenchKind::Http { clients, seconds, semantic } => {
                    crate::bench::http(clients, seconds, semantic).await?
                }
                BenchKind::Consultant { keywords_only } => {
                    crate::bench::consultant(&cfg, !keywords_only).await?
                }
                BenchKind::Search { products, queries } => {
                    crate::bench::search(products, queries, &cfg).await?
                }
                BenchKind::Conversations { scripts, stand_in, keywords_only } => {
                    use crate::bench::conversations as c;
                    let (s, base) = match scripts {
                        Some(p) => c::load(&p)?,
                        None => (
                            serde_json::from_str(c::SHIPPED)?,
                            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/bench")),
                        ),
                    };
                    let brain = if stand_in { c::Brain::StandIn } else { c::Brain::Offline };
                    let model = (!keywords_only).then_some(cfg.model_dir.as_path());
                    c::run(&s, &base, brain, model, cfg.model_fetch).await?
                }
                BenchKind::SearchQuality { catalog, queries, dump } => {
                    crate::bench::search_quality(
                        catalog.as_deref(),
                        queries.as_deref(),
                        dump.as_deref(),
                        &cfg,
                    )
                    .await?
                }
            };
            println!("{}", serde_json::to_string(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Model { action: ModelAction::Fetch } => {
            let path =
                crate::search::model::ensure(&cfg.model_dir, &crate::search::model::E5_SMALL_Q4).await?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck { url } => {
            let base = url.unwrap_or_else(|| server_base(&cfg));
            let ok = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(4))
                .build()?
                .get(format!("{}/healthz", base.trim_end_matches('/')))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let listen = cfg.listen.clone();
    let app = App::build(cfg, Parts::default()).await?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
    if app.state.config.admin_token.is_none() {
        tracing::info!(
            file = %app.state.config.admin_token_file().display(),
            "admin API token is in this file (set LAVKA_ADMIN_TOKEN to choose one)"
        );
    }
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        c.cancel();
    });
    app.run(listener, cancel).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Opens the data dir's store, or `None` when a running server holds it.
async fn open_local(cfg: &Config) -> anyhow::Result<Option<Store>> {
    let path = cfg.db_path();
    match tokio::task::spawn_blocking(move || Store::open(&path, StoreOptions::default())).await? {
        Ok(s) => Ok(Some(s)),
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn server_base(cfg: &Config) -> String {
    // A server bound to every interface is reached on loopback.
    let local = |s: &str| s.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]");
    if let Ok(s) = std::fs::read_to_string(cfg.addr_file()) {
        return local(s.trim());
    }
    format!("http://{}", local(&cfg.listen))
}

async fn server_request(
    cfg: &Config,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<reqwest::Response> {
    let token = cfg.client_admin_token().ok_or_else(|| {
        anyhow!(
            "the database is in use by a running server, and no admin token is known (set LAVKA_ADMIN_TOKEN)"
        )
    })?;
    let url = format!("{}{path}", server_base(cfg));
    let mut req = reqwest::Client::new().request(method, &url).bearer_auth(token.expose());
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("the database is in use, and the server at {url} did not answer"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or(text);
        bail!("server answered {status}: {msg}");
    }
    Ok(resp)
}

async fn server_call(
    cfg: &Config,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    Ok(server_request(cfg, method, path, body).await?.json().await?)
}

async fn backup(cfg: &Config, dir: &Path) -> anyhow::Result<PathBuf> {
    match open_local(cfg).await? {
        Some(store) => Ok(store.snapshot(dir.to_path_buf()).await?.path),
        None => {
            use futures::StreamExt;
            use tokio::io::AsyncWriteExt;
            let resp = server_request(cfg, reqwest::Method::GET, "/admin/api/backup", None).await?;
            let name = resp
                .headers()
                .get("content-disposition")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split("filename=\"").nth(1))
                .map(|v| v.trim_end_matches('"').to_string())
                .filter(|n| !n.contains('/') && !n.contains(".."))
                .unwrap_or_else(|| "lavka-backup.redb".into());
            tokio::fs::create_dir_all(dir).await?;
            let tmp = dir.join(format!(".{name}.partial"));
            let fin = dir.join(&name);
            let mut f = tokio::fs::File::create(&tmp).await?;
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk?).await?;
            }
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &fin).await?;
            Ok(fin)
        }
    }
}
