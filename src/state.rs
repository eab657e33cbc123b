//! What every request handler and job can reach: cheap handles to the shop's parts.

use crate::config::{Config, Secret};
use std::sync::Arc;

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: crate::store::Store,
    pub queue: crate::queue::Queue,
    pub search: crate::search::Search,
    pub config: Arc<Config>,
    pub admin_token: Secret,
    /// The use cases every door calls.
    pub shop: crate::shop::Shop,
    /// Payment providers.
    pub payments: crate::payments::Payments,
    /// The Telegram channel, when a bot token is configured.
    pub telegram: Option<crate::telegram::Telegram>,
    /// Messages go to the store's outbox (no channel configured).
    pub outbox_mode: bool,
    /// New demo-mode sessions per client address.
    pub demo_sessions: Arc<crate::http::demo::SessionLimiter>,
}
