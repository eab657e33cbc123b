//! The OpenAPI document of every route (`GET /api/openapi.json`): the handlers' annotations,
//! then what holds for whole groups of routes, taken from the route table itself so it
//! cannot drift — who may call (the table's [`Guard`]), and the statuses the layers answer
//! for any route: 400 (an unparsable path or query), 401 (a guard), 408/413 (a body), 503 (overloaded, or the database). Every error response has the
//! [`ErrorBody`](super::error) shape and one of the codes in [`super::error::CODES`].

use super::{Guard, Route, admin, assets, pay, sales, shop, telegram};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Required, Response, Schema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Lavka HTTP API", description = "Every route of a Lavka server: the shop API of the \
        Telegram Mini App and the web shop (`/api`), the admin API (`/admin/api`, \
        `Authorization: Bearer <admin token>`), the pages, payment links and webhooks, health and \
        metrics. Customer endpoints take `Authorization: tma <initData>` (Telegram) or, in demo \
        mode only, the `lavka_session` cookie (created by the first call). Authorization schemes \
        are case-insensitive. Every error is `{\"error\": {\"code\", \"message\"}}`; the codes are \
        listed in the `ErrorBody` schema."),
    paths(
        super::healthz, super::metrics,
        assets::shop_page, assets::admin_page, assets::file,
        shop::products, shop::product, shop::search, shop::create_order, shop::orders, shop::order,
        shop::pay_balance, shop::stars_invoice, shop::cancel, shop::me, shop::chat, openapi_json,
        pay::pay_page, pay::pay_cryptopay, pay::dev_page, pay::dev_pay, pay::cryptopay_webhook,
        pay::topup_page, pay::topup_cryptopay, pay::topup_dev,
        telegram::receive,
        admin::list_products, admin::get_product, admin::upsert_product, admin::activate_product,
        admin::deactivate_product, admin::list_stock, admin::add_stock, admin::remove_stock,
        admin::import, admin::list_orders, admin::create_order, admin::get_order,
        admin::confirm_payment, admin::refund, admin::refund_source, admin::fulfill, admin::extend,
        admin::get_user, admin::credit, admin::list_payments, admin::list_jobs, admin::retry_job,
        admin::list_messages, admin::stats, sales::sales, admin::chat, admin::check, admin::backup,
        telegram::broadcast_create, telegram::broadcast_get
    ),
    tags((name = "catalogue", description = "Public catalogue and search"),
        (name = "orders", description = "The customer's orders and balance"),
        (name = "consultant", description = "The sales consultant (the same as the bot's)"),
        (name = "admin", description = "The shop owner's API"),
        (name = "payments", description = "Payment pages (signed links) and provider webhooks"),
        (name = "telegram", description = "The Telegram webhook"),
        (name = "pages", description = "The web shop, the Mini App and the admin page"),
        (name = "ops", description = "Health and metrics"))
)]
pub struct ApiDoc;

/// `/`'s page also answers these (the Mini App routes in the browser).
const PAGE_ALIASES: &[&str] = &["/app", "/app/{path}"];

/// The OpenAPI path of a route (`/app/{*path}` → `/app/{path}`).
pub fn doc_path(route: &str) -> String {
    route.replace("{*", "{")
}

/// What differs between servers: who may call, which webhooks are on.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    /// Customers may call without credentials (a demo session is created).
    pub demo: bool,
    /// Telegram sends updates to `/telegram/webhook` (else it answers 404).
    pub telegram_webhook: bool,
    /// Crypto Pay is on (else its webhook answers 404).
    pub cryptopay: bool,
}

impl Mode {
    pub fn of(s: &AppState) -> Mode {
        Mode {
            demo: super::auth::demo_mode(s),
            telegram_webhook: s.telegram.as_ref().is_some_and(|t| t.webhook_mode()),
            cryptopay: s.payments.cryptopay().is_some(),
        }
    }
}

/// Bodies that take exactly one of two fields (the consultant's `text` or `button`).
const EXACTLY_ONE: &[(&str, [&str; 2])] =
    &[("ChatRequest", ["text", "button"]), ("AdminChatRequest", ["text", "button"])];

/// The document of a server with these routes, in this mode.
pub fn document(routes: &[Route], mode: Mode) -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    if let Some(page) = api.paths.paths.get("/").cloned() {
        for alias in PAGE_ALIASES {
            let mut item = page.clone();
            if alias.contains("{path}") {
                for op in operations(&mut item) {
                    op.parameters.get_or_insert_with(Vec::new).push(
                        ParameterBuilder::new()
                            .name("path")
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .description(Some("Any page path of the shop"))
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .build(),
                    );
                }
            }
            api.paths.paths.insert((*alias).to_string(), item);
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    add_security_schemes(components);
    components.schemas.insert("ErrorBody".into(), error_schema());
    for (name, fields) in EXACTLY_ONE {
        if let Some(schema) = components.schemas.remove(*name) {
            components.schemas.insert((*name).to_string(), exactly_one_of(schema, fields));
        }
    }
    let off = [("telegramSecret", mode.telegram_webhook), ("cryptoPaySignature", mode.cryptopay)];
    for (path, item) in api.paths.paths.iter_mut() {
        let guard = routes.iter().find(|r| doc_path(r.path) == *path).map(|r| r.guard);
        for op in operations(item) {
            match guard {
                Some(Guard::Admin) => {
                    op.security = Some(vec![SecurityRequirement::new("adminToken", [""; 0])])
                }
                Some(Guard::Customer) => {
                    let mut any = vec![
                        SecurityRequirement::new("initData", [""; 0]),
                        SecurityRequirement::new("session", [""; 0]),
                    ];
                    if mode.demo {
                        // A demo-mode call without a session gets one (Set-Cookie).
                        any.push(SecurityRequirement::default());
                    }
                    op.security = Some(any);
                }
                _ => {
                    // A webhook that is off checks no signature: it answers 404.
                    let scheme =
                        op.security.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or_default();
                    if off.iter().any(|(name, on)| !on && scheme.to_string().contains(name)) {
                        op.security = None;
                        let d = op.description.get_or_insert_with(String::new);
                        d.push_str("Off on this server: every call is answered 404.");
                    }
                }
            }
            integer_path_params_as_digits(op);
            add_common_responses(op, guard.is_some_and(|g| g != Guard::Public));
            if guard == Some(Guard::Customer) && mode.demo {
                op.responses.responses.entry("429".into()).or_insert_with(|| {
                    error_response("Too many new demo sessions from this address this hour (`Retry-After`)")
                });
            }
        }
    }
    api
}

/// An integer in a path is written in decimal digits (JSON Schema would also call `7.0` an
/// integer, which no URL here takes): the parameter is documented as such a string.
fn integer_path_params_as_digits(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten().filter(|p| p.parameter_in == ParameterIn::Path) {
        let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() else { continue };
        if !matches!(o.schema_type, utoipa::openapi::schema::SchemaType::Type(Type::Integer)) {
            continue;
        }
        let unsigned = o.minimum.as_ref().is_some_and(|m| !matches!(m, utoipa::Number::Int(i) if *i < 0));
        o.schema_type = Type::String.into();
        o.format = None;
        o.minimum = None;
        o.pattern = Some(if unsigned { r"^\+?[0-9]{1,19}$" } else { r"^[+-]?[0-9]{1,18}$" }.into());
        let d = p.description.get_or_insert_with(String::new);
        d.push_str(if unsigned { " (decimal digits)" } else { " (decimal digits, optionally signed)" });
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn add_security_schemes(c: &mut utoipa::openapi::Components) {
    c.add_security_scheme(
        "initData",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`tma <Telegram.WebApp.initData>` (the scheme is case-insensitive)",
        ))),
    );
    c.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            super::auth::SESSION_COOKIE,
            "demo mode only: a local browser session, set by the first API call",
        ))),
    );
    c.add_security_scheme(
        "adminToken",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The admin token (`admin_token`, or `<data_dir>/admin-token`)"))
                .build(),
        ),
    );
    c.add_security_scheme(
        "telegramSecret",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            super::telegram::SECRET_HEADER,
            "The webhook secret this server gave Telegram",
        ))),
    );
    c.add_security_scheme(
        "cryptoPaySignature",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "crypto-pay-api-signature",
            "HMAC-SHA256 of the raw body under SHA-256 of the Crypto Pay token, hex",
        ))),
    );
}

/// `{"error": {"code", "message"}}`, the codes enumerated and explained.
fn error_schema() -> RefOr<Schema> {
    let table: String =
        super::error::CODES.iter().map(|(c, s, what)| format!("\n- `{c}` ({s}): {what}")).collect();
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(super::error::CODES.iter().map(|(c, ..)| *c)))
        .description(Some(format!("Stable; clients branch on it.{table}")));
    let message = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("For people: 4xx say what to change; 5xx are generic"));
    let error = ObjectBuilder::new()
        .property("code", code)
        .property("message", message)
        .required("code")
        .required("message");
    ObjectBuilder::new().property("error", error).required("error").into()
}

/// `schema`, and exactly one of `fields` present (and a string).
fn exactly_one_of(schema: RefOr<Schema>, fields: &[&str; 2]) -> RefOr<Schema> {
    let mut one = OneOfBuilder::new();
    for f in fields {
        one = one.item(
            ObjectBuilder::new().property(*f, ObjectBuilder::new().schema_type(Type::String)).required(*f),
        );
    }
    AllOfBuilder::new().item(schema).item(one).into()
}

fn error_response(description: &str) -> RefOr<Response> {
    let mut r = Response::new(description);
    r.content.insert("application/json".into(), Content::new(Some(Ref::from_schema_name("ErrorBody"))));
    r.into()
}

/// The statuses the layers answer, and the error shape on every error response.
fn add_common_responses(op: &mut Operation, guarded: bool) {
    let params = op.parameters.as_ref().is_some_and(|p: &Vec<Parameter>| !p.is_empty());
    let body = op.request_body.as_ref();
    let mut common: Vec<(&str, &str)> = Vec::new();
    if params || body.is_some() {
        common.push(("400", "Malformed input: a path or query parameter, or the body"));
    }
    if guarded {
        common.push(("401", "Missing or wrong credentials"));
    }
    if body.is_some() {
        common.push(("408", "The body did not arrive in time"));
        common.push(("413", "The body is over the limit (refused before it is read when announced)"));
    }
    common.push(("503", "Overloaded (too many connections), or the database is unavailable"));
    let responses = &mut op.responses.responses;
    for (status, description) in common {
        responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    }
    for (status, r) in responses.iter_mut() {
        if let (true, RefOr::T(r)) = (status.starts_with('4') || status.starts_with('5'), r) {
            r.content.clear();
            r.content
                .insert("application/json".into(), Content::new(Some(Ref::from_schema_name("ErrorBody"))));
        }
    }
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn openapi_json(State(s): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(document(&super::routes(&s), Mode::of(&s)))
}
