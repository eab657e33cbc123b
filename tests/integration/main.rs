//! One integration test binary (faster to link than many).

mod fake_gemini;
mod faults;
mod fuzz;
mod helpers;

mod admin_api;
mod api_contract;
mod binary;
mod concurrency;
mod consultant;
mod doors;
mod http_limits;
mod import;
mod limits;
mod logs;
mod orders;
mod outbox;
mod pacing;
mod payments;
mod properties;
mod queue;
mod search;
mod stars;

mod fake_telegram;
mod telegram;
mod upgrade;
mod web;
