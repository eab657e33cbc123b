//! Lavka: a Telegram shop for digital goods with an AI sales consultant, in one binary.
//!
//! Map of the crate (arrows point one way: edges → use cases → storage):
//!
//! - [`ai`]: the sales consultant (Gemini with tools, and the offline consultant).
//! - [`callback`]: compact button payloads shared by every channel.
//! - [`domain`]: shared types (ids, [`domain::Money`], products, orders) — no I/O.
//! - [`store`]: the redb database, its tables and every transactional operation; the only
//!   module that names redb types. Writes go through one group-commit writer.
//! - [`queue`]: the durable job queue (lease in memory, ack in the store), worker pool and
//!   cron schedules that only enqueue.
//! - [`jobs`]: the job kinds' handlers (deliver, notify supplier/user, refunds, expiry).
//! - [`messenger`]: the seam to the customer-facing channel (the Telegram sender, or a log).
//! - [`payments`]: dev, Crypto Pay and balance top-ups; Telegram Stars live in the bot.
//! - [`catalog`]: the catalogue import format (JSON and CSV).
//! - [`search`]: product search (tantivy keywords fused with e5 embeddings), kept in step with
//!   the store.
//! - [`telegram`]: the Telegram bot: webhook/polling into jobs, handlers, the rate-limited
//!   sender.
//! - [`http`]: the axum router — health, metrics, admin API, shop API, payment pages.
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

pub mod store;
pub mod telegram;
pub mod texts;

pub use error::{Error, Result};
