//! Lavka: a Telegram shop for digital goods with an AI sales consultant, in one binary.
//!
//! Map of the crate (arrows point one way: edges → use cases → storage):
//!
//! - [`shop`]: the use cases behind every door (bot, web shop / Mini App, consultant):
//!   browse, card, buy, pre-order, pay from balance, cancel, top-up, orders, balance; one
//!   dispatcher of button presses; channel-neutral replies.
//! - [`ai`]: the sales consultant, which decides which use case answers free text (Gemini
//!   with tools, or the offline rules); it performs none itself.
//! - [`callback`]: buttons and their compact payloads, shared by every channel.
//! - [`texts`]: the one vocabulary (Russian and English) of customer, supplier and admin
//!   texts, as styled spans each channel renders; money and times in the reader's locale.
//! - [`domain`]: shared types (ids, [`domain::Money`], products, orders) — no I/O.
//! - [`store`]: the redb database, its tables and every transactional operation; the only
//!   module that names redb types. Writes go through one group-commit writer.
//! - [`queue`]: the durable job queue (lease in memory, ack in the store), worker pool and
//!   cron schedules that only enqueue.
//! - [`jobs`]: the job kinds' handlers (deliver, notify supplier/user, refunds, expiry).
//! - [`messenger`]: the seam to the customer-facing channel (the Telegram sender, or a log).
//! - [`payments`]: dev, Crypto Pay, Telegram Stars and balance top-ups; one function applies
//!   every provider's payment.
//! - [`catalog`]: the catalogue import format (JSON and CSV).
//! - [`search`]: product search (tantivy keywords fused with e5 embeddings), kept in step with
//!   the store.
//! - [`telegram`]: the Telegram door: polling into jobs, updates parsed into use cases,
//!   replies rendered as messages, the rate-limited sender.
//! - [`http`]: the axum router — every route: health, metrics, admin API, shop API, payment
//!   pages, the Telegram webhook.
//! - [`state`]: [`state::AppState`], the handles every handler reaches.
//! - [`app`]: builds everything from [`config::Config`] and runs it until shutdown.
//! - [`cli`]: the `lavka` command line.

pub mod ai;
pub mod app;
pub mod bench;
pub mod callback;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod messenger;
pub mod metrics;
pub mod payments;
pub mod queue;
pub mod search;
pub mod shop;
pub mod state;
pub mod store;
pub mod telegram;
pub mod texts;

pub use error::{Error, Result};
