//! The OpenAPI document of the customer API, generated from the handlers' annotations
//! (`GET /api/openapi.json`).

use super::shop;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Lavka shop API", description = "The Telegram Mini App and local web shop API. \
        Customer endpoints take `Authorization: tma <initData>` (Telegram), or, in demo mode only, \
        the `lavka_session` cookie."),
    paths(
        shop::products, shop::product, shop::search, shop::create_order, shop::orders, shop::order,
        shop::pay_balance, shop::stars_invoice, shop::cancel, shop::me, shop::chat
    ),
    modifiers(&Security),
    tags((name = "catalogue", description = "Public catalogue and search"),
        (name = "orders", description = "The customer's orders and balance"),
        (name = "consultant", description = "The sales consultant (the same as the bot's)"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "initData",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`tma <Telegram.WebApp.initData>`",
            ))),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "demo mode only: a local browser session, set by the first API call",
            ))),
        );
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
