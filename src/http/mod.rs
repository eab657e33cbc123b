//! The HTTP surface: health, metrics, the shop API and pages, and the admin API and page.
//! The whole route table is here; [`routes`] lists it (the OpenAPI document is checked
//! against that list), and [`serve`] runs it with connection limits.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod demo;
pub mod error;
pub mod openapi;
pub mod pay;
pub mod sales;
pub mod serve;
pub mod shop;
pub mod telegram;

use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// One row of the route table: a path, the methods it takes, who may call it.
#[derive(Clone, Debug)]
pub struct Route {
    pub path: &'static str,
    pub methods: Vec<&'static str>,
    pub guard: Guard,
}

/// The middleware in front of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Anyone (webhooks check their own signatures).
    Public,
    /// [`auth::require_user`]: Telegram initData, or a demo-mode browser session.
    Customer,
    /// [`admin::require_token`]: the admin bearer token.
    Admin,
}

/// `table!("/prefix", guard { "/path" => get(handler).post(other), … })`: a router of those
/// routes under the prefix, and their [`Route`] rows.
macro_rules! table {
    ($prefix:literal, $guard:expr, { $($path:literal => $m0:ident($h0:path) $(. $m:ident($h:path))*),* $(,)? }) => {{
        let mut router = Router::new();
        let mut rows = Vec::new();
        $(
            router = router.route(concat!($prefix, $path), axum::routing::$m0($h0)$(.$m($h))*);
            rows.push(Route {
                path: concat!($prefix, $path),
                methods: vec![stringify!($m0) $(, stringify!($m))*],
                guard: $guard,
            });
        )*
        (router, rows)
    }};
}

fn table(state: &AppState) -> (Router<AppState>, Vec<Route>) {
    let (admin, mut rows) = table!("/admin/api", Guard::Admin, {
        "/products" => get(admin::list_products),
        "/products/{id}" => put(admin::upsert_product).get(admin::get_product),
        "/products/{id}/activate" => post(admin::activate_product),
        "/products/{id}/deactivate" => post(admin::deactivate_product),
        "/products/{id}/stock" => get(admin::list_stock).post(admin::add_stock),
        "/stock/{item}" => delete(admin::remove_stock),
        "/import" => post(admin::import),
        "/orders" => get(admin::list_orders).post(admin::create_order),
        "/orders/{id}" => get(admin::get_order),
        "/orders/{id}/confirm-payment" => post(admin::confirm_payment),
        "/orders/{id}/refund" => post(admin::refund),
        "/orders/{id}/refund-source" => post(admin::refund_source),
        "/orders/{id}/fulfill" => post(admin::fulfill),
        "/orders/{id}/extend" => post(admin::extend),
        "/users/{id}" => get(admin::get_user),
        "/users/{id}/credit" => post(admin::credit),
        "/payments" => get(admin::list_payments),
        "/jobs" => get(admin::list_jobs),
        "/jobs/{id}/retry" => post(admin::retry_job),
        "/messages" => get(admin::list_messages),
        "/stats" => get(admin::stats),
        "/sales" => get(sales::sales),
        "/chat" => post(admin::chat),
        "/check" => get(admin::check),
        "/backup" => get(admin::backup),
        "/broadcast" => post(telegram::broadcast_create),
        "/broadcast/{id}" => get(telegram::broadcast_get),
    });
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(state.clone(), admin::require_token));
    // The customer's own things: Telegram initData, or a demo-mode browser session.
    let (customer, more) = table!("/api", Guard::Customer, {
        "/me" => get(shop::me),
        "/orders" => get(shop::orders).post(shop::create_order),
        "/orders/{id}" => get(shop::order),
        "/orders/{id}/pay-balance" => post(shop::pay_balance),
        "/orders/{id}/stars-invoice" => post(shop::stars_invoice),
        "/orders/{id}/cancel" => post(shop::cancel),
        "/chat" => post(shop::chat),
    });
    rows.extend(more);
    let customer =
        customer.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_user));
    let (public, more) = table!("", Guard::Public, {
        "/healthz" => get(healthz),
        "/metrics" => get(metrics),
        "/" => get(assets::shop_page),
        "/app" => get(assets::shop_page),
        "/app/{*path}" => get(assets::shop_page),
        "/admin" => get(assets::admin_page),
        "/assets/{file}" => get(assets::file),
        "/api/products" => get(shop::products),
        "/api/products/{id}" => get(shop::product),
        "/api/search" => get(shop::search),
        "/api/openapi.json" => get(openapi::openapi_json),
        "/pay/{order}" => get(pay::pay_page),
        "/pay/{order}/cryptopay" => get(pay::pay_cryptopay),
        "/pay/dev/{order}" => get(pay::dev_page).post(pay::dev_pay),
        "/payments/cryptopay/webhook" => post(pay::cryptopay_webhook),
        "/pay/topup/{user}/{amount}/{nonce}" => get(pay::topup_page),
        "/pay/topup/{user}/{amount}/{nonce}/cryptopay" => get(pay::topup_cryptopay),
        "/pay/topup/{user}/{amount}/{nonce}/dev" => post(pay::topup_dev),
        "/telegram/webhook" => post(telegram::receive),
    });
    rows.extend(more);
    (public.merge(customer).merge(admin), rows)
}

/// Every route the router serves.
pub fn routes(state: &AppState) -> Vec<Route> {
    table(state).1
}

/// Builds the router over the shared state.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    table(&state)
        .0
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        // Refuses a body announced over the limit before reading any of it.
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        .layer(axum::middleware::map_response(error::json_errors))
        // gzip for clients that ask (the Mini App's scripts shrink to about a third).
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `{"status": "ok"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer")))]
pub async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            let body = serde_json::json!({"status": "unavailable",
                "error": {"code": "unavailable", "message": "the database does not answer"}});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&s.store).await,
    )
}

async fn not_found() -> error::ApiError {
    error::ApiError(crate::Error::not_found("route"))
}
