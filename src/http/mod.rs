//! The HTTP surface: health, metrics, the shop API and pages, and the admin API and page.
//! The whole route table is here.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod demo;
pub mod error;
pub mod openapi;
pub mod pay;
pub mod sales;
pub mod shop;
pub mod telegram;

use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Builds the router over the shared state.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/products", get(admin::list_products))
        .route("/products/{id}", put(admin::upsert_product).get(admin::get_product))
        .route("/products/{id}/activate", post(admin::activate_product))
        .route("/products/{id}/deactivate", post(admin::deactivate_product))
        .route("/products/{id}/stock", get(admin::list_stock).post(admin::add_stock))
        .route("/stock/{item}", delete(admin::remove_stock))
        .route("/import", post(admin::import))
        .route("/orders", get(admin::list_orders).post(admin::create_order))
        .route("/orders/{id}", get(admin::get_order))
        .route("/orders/{id}/confirm-payment", post(admin::confirm_payment))
        .route("/orders/{id}/refund", post(admin::refund))
        .route("/orders/{id}/refund-source", post(admin::refund_source))
        .route("/orders/{id}/fulfill", post(admin::fulfill))
        .route("/orders/{id}/extend", post(admin::extend))
        .route("/users/{id}", get(admin::get_user))
        .route("/users/{id}/credit", post(admin::credit))
        .route("/payments", get(admin::list_payments))
        .route("/jobs", get(admin::list_jobs))
        .route("/jobs/{id}/retry", post(admin::retry_job))
        .route("/messages", get(admin::list_messages))
        .route("/stats", get(admin::stats))
        .route("/sales", get(sales::sales))
        .route("/chat", post(admin::chat))
        .route("/check", get(admin::check))
        .route("/backup", get(admin::backup))
        .route("/broadcast", post(telegram::broadcast_create))
        .route("/broadcast/{id}", get(telegram::broadcast_get))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admin::require_token));
    // The customer's own things: Telegram initData, or a demo-mode browser session.
    let customer = Router::new()
        .route("/me", get(shop::me))
        .route("/orders", get(shop::orders).post(shop::create_order))
        .route("/orders/{id}", get(shop::order))
        .route("/orders/{id}/pay-balance", post(shop::pay_balance))
        .route("/orders/{id}/stars-invoice", post(shop::stars_invoice))
        .route("/orders/{id}/cancel", post(shop::cancel))
        .route("/chat", post(shop::chat))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_user));
    let api = Router::new()
        .route("/products", get(shop::products))
        .route("/products/{id}", get(shop::product))
        .route("/search", get(shop::search))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(customer);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(assets::shop_page))
        .route("/app", get(assets::shop_page))
        .route("/app/{*path}", get(assets::shop_page))
        .route("/admin", get(assets::admin_page))
        .route("/assets/{file}", get(assets::file))
        .nest("/api", api)
        .route("/pay/{order}", get(pay::pay_page))
        .route("/pay/{order}/cryptopay", get(pay::pay_cryptopay))
        .route("/pay/dev/{order}", get(pay::dev_page).post(pay::dev_pay))
        .route("/payments/cryptopay/webhook", post(pay::cryptopay_webhook))
        .route("/pay/topup/{user}/{amount}/{nonce}", get(pay::topup_page))
        .route("/pay/topup/{user}/{amount}/{nonce}/cryptopay", get(pay::topup_cryptopay))
        .route("/pay/topup/{user}/{amount}/{nonce}/dev", post(pay::topup_dev))
        .route("/telegram/webhook", post(telegram::receive))
        .nest("/admin/api", admin)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        // gzip for clients that ask (the Mini App's scripts shrink to about a third).
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "unavailable"})))
        }
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&s.store).await,
    )
}

async fn not_found() -> error::ApiError {
    error::ApiError(crate::Error::not_found("route"))
}
