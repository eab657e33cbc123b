//! One integration test binary (faster to link than many).

mod helpers;

mod admin_api;
mod binary;
mod concurrency;
mod import;
mod orders;
mod properties;
mod queue;
mod search;

mod fake_telegram;
mod telegram;
