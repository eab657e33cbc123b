//! The admin API under `/admin/api`, guarded by a bearer token compared in constant time.

use super::error::{ApiError, ApiResult, JsonBody, JsonRejections};
use crate::catalog;
use crate::domain::{Currency, JobState, OrderId, OrderKind, OrderStatus, Product, ProductId, UserId};
use crate::error::Error;
use crate::state::AppState;
use crate::store::orders::{OrderFilter, Payment};
use crate::store::{Tx, ledger, orders as ops, products as pops};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

/// Lets the request through only with `Authorization: Bearer <admin token>`.
pub async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::auth::credentials(v, "bearer"))
        .unwrap_or("");
    let want = s.admin_token.expose().as_bytes();
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(want)) {
        metrics::counter!("lavka_admin_unauthorized_total").increment(1);
        return ApiError(Error::Unauthorized).into_response();
    }
    next.run(req).await
}

/// Parses an optional JSON body (empty, or `null`, means none).
fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| ApiError::from(Error::bad(format!("body: {e}")));
    match serde_json::from_slice::<Value>(body).map_err(bad)? {
        Value::Null => Ok(None),
        v @ Value::Object(_) => serde_json::from_value(v).map(Some).map_err(bad),
        _ => Err(Error::bad("the body must be a JSON object").into()),
    }
}

/// The most rows a list returns.
const MAX_LIMIT: usize = 1000;

/// A list's `limit`: 1-1000, default 100.
fn limit(given: Option<usize>) -> ApiResult<usize> {
    match given {
        None => Ok(100),
        Some(n @ 1..=MAX_LIMIT) => Ok(n),
        Some(n) => Err(Error::bad(format!("limit must be 1-{MAX_LIMIT}, got {n}")).into()),
    }
}

fn pid(id: &str) -> ApiResult<ProductId> {
    Ok(ProductId::parse(id)?)
}

fn currency(s: &AppState) -> Currency {
    Currency::parse(&s.config.currency).unwrap_or(Currency::RUB)
}

#[utoipa::path(get, path = "/admin/api/products", tag = "admin",
    responses((status = 200, description = "Every product with its availability", body = Object)))]
pub async fn list_products(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let products = s.store.products().await?;
    let avail = s.store.available_stock_with_discounts().await?;
    let rows: Vec<Value> =
        products.into_iter().zip(avail).map(|(p, a)| json!({ "product": p, "availability": a })).collect();
    Ok(Json(json!({ "products": rows })))
}

#[utoipa::path(get, path = "/admin/api/products/{id}", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "The product and its availability", body = Object),
        (status = 404, description = "No such product")))]
pub async fn get_product(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = pid(&id)?;
    let p = s.store.product(id.clone()).await?;
    let a = s.store.availability(id).await?;
    Ok(Json(json!({ "product": p, "availability": a })))
}

/// Body: one product in the catalogue format (price in major units unless
/// `"price_units": "minor"` is given next to it).
#[utoipa::path(put, path = "/admin/api/products/{id}", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body(content = Object, description = "One product in the catalogue import format (price in major units \
        unless `\"price_units\": \"minor\"`; `currency` optional)"),
    responses((status = 200, description = "Updated", body = Object), (status = 201, description = "Created", body = Object),
        (status = 400, description = "Not a valid product (or the id differs from the path's)"), JsonRejections))]
pub async fn upsert_product(
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(mut body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let obj = body.as_object_mut().ok_or_else(|| Error::bad("the body must be a JSON object"))?;
    let price_units = obj.remove("price_units");
    let cur = obj.remove("currency");
    match obj.get("id") {
        None => {
            obj.insert("id".into(), Value::String(id.clone()));
        }
        Some(Value::String(given)) if *given == id => {}
        Some(_) => {
            return Err(Error::bad("the id in the body differs from the id in the path").into());
        }
    }
    let mut cat = json!({ "products": [body] });
    if let Some(u) = price_units {
        cat["price_units"] = u;
    }
    if let Some(c) = cur {
        cat["currency"] = c;
    }
    let parsed = catalog::parse_json(&cat.to_string(), currency(&s))?;
    let product: Product = parsed.products.into_iter().next().ok_or_else(|| Error::bad("no product"))?;
    let p2 = product.clone();
    let created = s.store.write(move |tx| pops::upsert_product(tx, p2.clone())).await?;
    let code = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((code, Json(json!({ "product": product, "created": created }))))
}

async fn set_active(s: AppState, id: String, active: bool) -> ApiResult<Json<Value>> {
    let id = pid(&id)?;
    let p = s.store.write(move |tx| pops::set_product_active(tx, &id, active)).await?;
    Ok(Json(json!({ "product": p })))
}

#[utoipa::path(post, path = "/admin/api/products/{id}/activate", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "On sale", body = Object), (status = 404, description = "No such product")))]
pub async fn activate_product(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    set_active(s, id, true).await
}

#[utoipa::path(post, path = "/admin/api/products/{id}/deactivate", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "Off sale", body = Object), (status = 404, description = "No such product")))]
pub async fn deactivate_product(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    set_active(s, id, false).await
}

#[utoipa::path(get, path = "/admin/api/products/{id}/stock", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    responses((status = 200, description = "The product's stock items", body = Object), (status = 404, description = "No such product")))]
pub async fn list_stock(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let items = s.store.stock_items(pid(&id)?).await?;
    Ok(Json(json!({ "items": items })))
}

/// Stock items to add, as JSON.
#[derive(Deserialize, ToSchema)]
pub struct StockItems {
    /// Each item's content (a key, a link): not blank, at most 8 KiB.
    #[schema(min_items = 1, value_type = Vec<StockItem>)]
    items: Vec<String>,
}

/// One stock item's content (schema only).
#[derive(ToSchema)]
#[schema(pattern = r"\S")]
pub struct StockItem(#[allow(dead_code)] String);

/// Stock items as plain text, one per line, blank lines skipped (schema only).
#[derive(ToSchema)]
#[schema(pattern = r"\S")]
pub struct StockLines(#[allow(dead_code)] String);

/// Body: `{"items": ["...", ...]}` as JSON, or plain text with one item per line.
#[utoipa::path(post, path = "/admin/api/products/{id}/stock", tag = "admin", params(("id" = String, Path, description = "Product id", pattern = r"^[A-Za-z0-9._-]{1,64}$")),
    request_body(description = "`{\"items\": [...]}` as JSON, or plain text with one item per line", content(
        (StockItems = "application/json"), (StockLines = "text/plain"))),
    responses((status = 200, description = "Added, and duplicates skipped", body = Object),
        (status = 400, description = "No items, or not the items format"), (status = 404, description = "No such product")))]
pub async fn add_stock(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Json<Value>> {
    let id = pid(&id)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let items: Vec<String> = if is_json {
        serde_json::from_str::<StockItems>(&body).map_err(|e| Error::bad(format!("body: {e}")))?.items
    } else {
        body.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
    };
    if items.is_empty() {
        return Err(Error::bad("no stock items in the body").into());
    }
    let added = s.store.write(move |tx| pops::add_stock(tx, &id, &items)).await?;
    Ok(Json(json!(added)))
}

#[utoipa::path(delete, path = "/admin/api/stock/{item}", tag = "admin",
    params(("item" = u64, Path, description = "Stock item id")),
    responses((status = 200, description = "Removed", body = Object), (status = 404, description = "No such item"),
        (status = 409, description = "The item is reserved or sold")))]
pub async fn remove_stock(State(s): State<AppState>, Path(item): Path<u64>) -> ApiResult<Json<Value>> {
    let item = s.store.write(move |tx| pops::remove_stock_item(tx, item)).await?;
    Ok(Json(json!({ "removed": item.id, "product_id": item.product_id })))
}

/// Body: a catalogue in the JSON import format.
#[utoipa::path(post, path = "/admin/api/import", tag = "admin",
    request_body(content = Object, description = "A catalogue in the JSON import format", content_type = "application/json"),
    responses((status = 200, description = "What was created, updated and added", body = Object),
        (status = 400, description = "Not a valid catalogue (nothing was imported)")))]
pub async fn import(State(s): State<AppState>, body: String) -> ApiResult<Json<Value>> {
    let cat = catalog::parse_json(&body, currency(&s))?;
    let sum = s.store.write(move |tx| catalog::apply(tx, &cat)).await?;
    Ok(Json(json!(sum)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Only orders in this status.
    #[param(pattern = "^(|reserved|awaiting_payment|paid|prepaid|ready|delivered|expired|refunded)$")]
    status: Option<String>,
    /// Only this customer's orders.
    #[param(value_type = Option<i64>)]
    user: Option<UserId>,
    /// Orders numbered below this (the next page).
    #[param(value_type = Option<u64>)]
    before: Option<i64>,
    /// Most orders (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/admin/api/orders", tag = "admin", params(OrdersQuery),
    responses((status = 200, description = "Orders, newest first", body = Object)))]
pub async fn list_orders(State(s): State<AppState>, Query(q): Query<OrdersQuery>) -> ApiResult<Json<Value>> {
    // Order numbers fit in an i64 (the document's int64).
    let before = match q.before {
        Some(b) if b < 0 => return Err(Error::bad("before must not be negative").into()),
        b => b.map(|b| b as OrderId),
    };
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(st) => Some(OrderStatus::parse(st).ok_or_else(|| Error::bad(format!("unknown status {st:?}")))?),
    };
    let orders =
        s.store.orders(OrderFilter { status, user: q.user, before, limit: Some(limit(q.limit)?) }).await?;
    Ok(Json(json!({ "orders": orders })))
}

#[utoipa::path(get, path = "/admin/api/orders/{id}", tag = "admin", params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, body = Object), (status = 404, description = "No such order")))]
pub async fn get_order(State(s): State<AppState>, Path(id): Path<OrderId>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "order": s.store.order(id).await? })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AdminNewOrder)]
pub struct NewOrder {
    #[schema(value_type = i64)]
    user_id: UserId,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    product_id: String,
    /// 1-10, default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    quantity: Option<u32>,
    /// "instant" (default) or "prepaid".
    #[serde(default)]
    #[schema(pattern = "^(instant|prepaid)$")]
    kind: Option<String>,
}

/// A manual sale: creates an order for a user (reserving stock, or a pre-order).
#[utoipa::path(post, path = "/admin/api/orders", tag = "admin", request_body = NewOrder,
    responses((status = 201, description = "Reserved (or a pre-order), with the payment link", body = Object),
        (status = 400, description = "A bad quantity"), (status = 404, description = "No such product"),
        (status = 409, description = "Out of stock, not on sale, or not pre-orderable"), JsonRejections))]
pub async fn create_order(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<NewOrder>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let product = pid(&b.product_id)?;
    let kind = match b.kind.as_deref() {
        None | Some("instant") => OrderKind::Instant,
        Some("prepaid") => OrderKind::Prepaid,
        Some(k) => {
            return Err(Error::bad(format!("kind must be instant or prepaid, got {k:?}")).into());
        }
    };
    let qty = b.quantity.unwrap_or(1);
    let ttl = s.config.reservation_ttl_secs as i64 * 1000;
    let user = b.user_id;
    let o = s
        .store
        .write(move |tx| ops::create_order_with_availability_check(tx, user, &product, qty, kind, ttl))
        .await?;
    metrics::counter!("lavka_orders_created_total", "kind" => if kind == OrderKind::Instant { "instant" } else { "prepaid" }).increment(1);
    // The customer's payment page, for the owner to send (when a link provider is on).
    let pay_url = s.payments.any().then(|| s.payments.pay_url(o.id));
    Ok((StatusCode::CREATED, Json(json!({ "order": o, "pay_url": pay_url }))))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The owner's reference for the money (bank transfer id); default `order:<id>:<amount>`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    reference: Option<String>,
    /// Amount received in major units; default the order's amount.
    #[serde(default)]
    #[schema(pattern = r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$")]
    amount: Option<String>,
    /// Its currency (3 letters); default the order's.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
}

/// A manual payment confirmation (bank transfer). Idempotent per reference.
#[utoipa::path(post, path = "/admin/api/orders/{id}/confirm-payment", tag = "admin", params(("id" = u64, Path, description = "Order number")),
    request_body(content = Option<Confirm>, description = "Optional; without it the order's own amount"),
    responses((status = 200, description = "Applied (or a repeat of the same reference)", body = Object),
        (status = 400, description = "A bad amount or currency"), (status = 404, description = "No such order"),
        (status = 409, description = "The order cannot take a payment")))]
pub async fn confirm_payment(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let b: Confirm = optional_json(&body)?.unwrap_or_default();
    let order = s.store.order(id).await?;
    let cur = match &b.currency {
        Some(c) => Currency::parse(c)?,
        None => order.currency,
    };
    let amount = match &b.amount {
        Some(a) => cur.parse_major(a)?,
        None => order.amount,
    };
    let pay = Payment {
        provider: "manual".into(),
        // Without a reference, one confirmation per order and amount: repeating it is a no-op,
        // correcting a mistyped amount is a new payment.
        external_id: b.reference.clone().unwrap_or_else(|| format!("order:{id}:{amount}")),
        amount,
        currency: cur,
    };
    let res = s.payments.apply(id, pay).await?;
    Ok(Json(json!({
        "order": res.order,
        "outcome": res.outcome,
        "duplicate": res.duplicate,
        "balance": res.balance,
    })))
}

#[derive(Deserialize, Default, ToSchema)]
pub struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/admin/api/orders/{id}/refund", tag = "admin", params(("id" = u64, Path, description = "Order number")),
    request_body(content = Option<Reason>, description = "Optional"),
    responses((status = 200, description = "Refunded to the customer's balance", body = Object),
        (status = 404, description = "No such order"), (status = 409, description = "Not paid, or already refunded")))]
pub async fn refund(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let reason = optional_json::<Reason>(&body)?
        .and_then(|b| b.reason)
        .unwrap_or_else(|| "refunded by the shop".into());
    let r = s.store.write(move |tx| ops::process_refund(tx, id, &reason)).await?;
    Ok(Json(json!(r)))
}

#[derive(Deserialize, ToSchema)]
pub struct Fulfil {
    /// The goods to deliver (a key, a link).
    #[schema(min_length = 1, max_length = 8192, pattern = r"\S")]
    content: String,
}

#[utoipa::path(post, path = "/admin/api/orders/{id}/fulfill", tag = "admin", params(("id" = u64, Path, description = "Order number")), request_body = Fulfil,
    responses((status = 200, description = "The pre-order's goods, delivered", body = Object),
        (status = 404, description = "No such order"), (status = 409, description = "Not a paid pre-order"), JsonRejections))]
pub async fn fulfill(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    JsonBody(b): JsonBody<Fulfil>,
) -> ApiResult<Json<Value>> {
    let o = s.store.write(move |tx| ops::fulfill_prepaid_order(tx, id, &b.content, None)).await?;
    Ok(Json(json!({ "order": o })))
}

#[derive(Deserialize, ToSchema)]
pub struct Extend {
    /// Hours added to the deadline (from now, when it has passed).
    #[schema(minimum = 1, maximum = 2160)]
    hours: u32,
}

#[utoipa::path(post, path = "/admin/api/orders/{id}/extend", tag = "admin", params(("id" = u64, Path, description = "Order number")), request_body = Extend,
    responses((status = 200, description = "The pre-order's new deadline", body = Object),
        (status = 404, description = "No such order"), (status = 409, description = "Not a pre-order awaiting its goods"), JsonRejections))]
pub async fn extend(
    State(s): State<AppState>,
    Path(id): Path<OrderId>,
    JsonBody(b): JsonBody<Extend>,
) -> ApiResult<Json<Value>> {
    if b.hours == 0 || b.hours > 24 * 90 {
        return Err(Error::bad("hours must be 1-2160").into());
    }
    let o = s
        .store
        .write(move |tx: &Tx| {
            let current = s_deadline(tx, id)?;
            ops::extend_deadline(tx, id, current + b.hours as i64 * 3_600_000)
        })
        .await?;
    Ok(Json(json!({ "order": o })))
}

fn s_deadline(tx: &Tx, id: OrderId) -> crate::Result<i64> {
    let o = ops::order_in(tx, id)?;
    Ok(o.deadline.unwrap_or(tx.now()).max(tx.now()))
}

#[utoipa::path(get, path = "/admin/api/users/{id}", tag = "admin", params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user, balance and ledger", body = Object), (status = 404, description = "No such user")))]
pub async fn get_user(State(s): State<AppState>, Path(id): Path<UserId>) -> ApiResult<Json<Value>> {
    let user = s.store.user(id).await?.ok_or_else(|| Error::not_found(format!("user {id}")))?;
    let balance = s.store.balance(id).await?;
    let ledger = s.store.ledger(id).await?;
    Ok(Json(json!({ "user": user, "balance": balance, "ledger": ledger })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    /// Major units, positive, e.g. "500" or "99.90".
    #[schema(pattern = r"^([1-9][0-9]{0,11}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$")]
    amount: String,
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/admin/api/users/{id}/credit", tag = "admin", params(("id" = i64, Path, description = "User id")),
    request_body = Credit,
    responses((status = 200, description = "The new balance", body = Object), (status = 400, description = "A bad amount"), JsonRejections))]
pub async fn credit(
    State(s): State<AppState>,
    Path(id): Path<UserId>,
    JsonBody(b): JsonBody<Credit>,
) -> ApiResult<Json<Value>> {
    let cur = currency(&s);
    let amount = cur.parse_major(&b.amount)?;
    let reason = b.reason.unwrap_or_else(|| "credited by the shop".into());
    let balance = s.store.write(move |tx| ledger::credit_balance(tx, id, amount, cur, &reason)).await?;
    Ok(Json(json!({ "balance": balance })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentsQuery {
    /// Most rows (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Only this outcome.
    #[param(pattern = "^(|applied|credited_to_balance|mismatch)$")]
    outcome: Option<String>,
    /// Only this provider.
    provider: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Most jobs (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Jobs in this state (default `dead`).
    #[param(pattern = "^(|ready|done|dead)$")]
    state: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// Most rows (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Received payments, newest first; `?outcome=mismatch` lists the ones that need a look.
/// `unmatched` lists signed payments that could not be applied to any order or balance
/// (unknown order or payload, unreadable amount, money held after a mismatch): the owner
/// resolves those by hand.
#[utoipa::path(get, path = "/admin/api/payments", tag = "admin", params(PaymentsQuery),
    responses((status = 200, description = "Payments, top-ups and unmatched payments, newest first", body = Object)))]
pub async fn list_payments(
    State(s): State<AppState>,
    Query(q): Query<PaymentsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = limit(q.limit)?;
    let filtered = q.outcome.is_some() || q.provider.is_some();
    let mut payments = s.store.payments(if filtered { 100_000 } else { limit }).await?;
    if let Some(o) = q.outcome.as_deref().filter(|o| !o.is_empty()) {
        if !["applied", "credited_to_balance", "mismatch"].contains(&o) {
            return Err(Error::bad(format!(
                "outcome must be applied, credited_to_balance or mismatch, got {o:?}"
            ))
            .into());
        }
        payments.retain(|p| json!(p.outcome) == json!(o));
    }
    if let Some(p) = q.provider.as_deref().filter(|p| !p.is_empty()) {
        payments.retain(|x| x.provider == p);
    }
    payments.truncate(limit);
    let topups = s.store.topups(limit).await?;
    let mut unmatched = s.store.unmatched_payments(limit).await?;
    if let Some(p) = q.provider.as_deref().filter(|p| !p.is_empty()) {
        unmatched.retain(|x| x.provider == p);
    }
    Ok(Json(json!({ "payments": payments, "topups": topups, "unmatched": unmatched })))
}

#[utoipa::path(get, path = "/admin/api/jobs", tag = "admin", params(JobsQuery),
    responses((status = 200, description = "Jobs in that state, and the counts", body = Object)))]
pub async fn list_jobs(State(s): State<AppState>, Query(q): Query<JobsQuery>) -> ApiResult<Json<Value>> {
    let state = match q.state.as_deref() {
        None | Some("") => JobState::Dead,
        Some(st) => JobState::parse(st)
            .ok_or_else(|| Error::bad(format!("state must be ready, done or dead, got {st:?}")))?,
    };
    let jobs = s.store.jobs_in_state(state, limit(q.limit)?).await?;
    let counts = s.store.queue_counts().await?;
    Ok(Json(json!({ "jobs": jobs, "counts": counts })))
}

#[utoipa::path(post, path = "/admin/api/jobs/{id}/retry", tag = "admin", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, description = "Ready again", body = Object), (status = 404, description = "No such job"),
        (status = 409, description = "Not dead")))]
pub async fn retry_job(State(s): State<AppState>, Path(id): Path<u64>) -> ApiResult<Json<Value>> {
    let job = s.store.write(move |tx| crate::store::jobs::redrive(tx, id)).await?;
    Ok(Json(json!({ "job": job })))
}

#[utoipa::path(get, path = "/admin/api/messages", tag = "admin", params(LimitQuery),
    responses((status = 200, description = "Sent messages (the outbox), newest first", body = Object)))]
pub async fn list_messages(State(s): State<AppState>, Query(q): Query<LimitQuery>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "messages": s.store.outbox(limit(q.limit)?).await? })))
}

#[utoipa::path(get, path = "/admin/api/stats", tag = "admin",
    responses((status = 200, description = "Orders by status and jobs by state", body = Object)))]
pub async fn stats(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let orders = s.store.order_status_counts().await?;
    let orders: serde_json::Map<String, Value> =
        orders.into_iter().map(|(k, v)| (k.as_str().to_string(), json!(v))).collect();
    Ok(Json(json!({
        "orders": orders,
        "jobs": s.store.queue_counts().await?,
        "unmatched_payments": s.store.unmatched_payments(10_000).await?.len(),
        "warnings": warnings(&s),
    })))
}

/// What the owner must know about how the shop runs (shown on every admin page).
pub fn warnings(s: &AppState) -> Vec<Value> {
    let mut w = Vec::new();
    if s.payments.dev_enabled() && (s.config.telegram().is_some() || s.config.public_url.is_some()) {
        w.push(json!({
            "code": "dev_payments_public",
            "message": "The dev payment provider is on in a public shop (payments.dev_payments = true): \
                        anyone with an order's payment link can mark it paid without money. \
                        Configure Crypto Pay or Telegram Stars, or set payments.dev_payments = false.",
        }));
    }
    w
}

#[utoipa::path(get, path = "/admin/api/check", tag = "admin",
    responses((status = 200, description = "The store's invariants (`ok`, and the report)", body = Object)))]
pub async fn check(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let r = s.store.check_with(crate::store::check::CheckOptions { outbox: s.outbox_mode }).await?;
    Ok(Json(json!({ "ok": r.ok(), "report": r })))
}

/// Streams a fresh consistent snapshot of the database.
#[utoipa::path(get, path = "/admin/api/backup", tag = "admin",
    responses((status = 200, description = "A consistent snapshot of the database", content_type = "application/octet-stream", body = Vec<u8>)))]
pub async fn backup(State(s): State<AppState>) -> ApiResult<Response> {
    let snap = s.store.snapshot(s.config.backups_dir()).await?;
    let file = tokio::fs::File::open(&snap.path).await.map_err(Error::from)?;
    let name = snap.path.file_name().and_then(|n| n.to_str()).unwrap_or("lavka.redb").to_string();
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CONTENT_LENGTH, snap.bytes.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /admin/api/chat {"user_id", "text"}` or `{"user_id", "button"}` (callback data):
/// talks to the consultant as that customer (`lavka chat` against a running server).
#[derive(Deserialize, ToSchema)]
#[schema(as = AdminChatRequest)]
pub struct ChatRequest {
    #[schema(value_type = i64)]
    user_id: UserId,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    button: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

#[utoipa::path(post, path = "/admin/api/chat", tag = "admin", request_body = ChatRequest,
    responses((status = 200, description = "The consultant's reply to that customer", body = Object),
        (status = 400, description = "Neither or both of text and button, or unknown button data"), JsonRejections))]
pub async fn chat(State(s): State<AppState>, JsonBody(req): JsonBody<ChatRequest>) -> ApiResult<Json<Value>> {
    let lang = crate::texts::Lang::pick(req.lang.as_deref(), s.config.lang());
    let c = crate::shop::Customer::new(req.user_id, lang, crate::shop::Door::Terminal);
    let reply = match (req.text, req.button) {
        (Some(t), None) => s.shop.converse(&c, &t).await?,
        (None, Some(b)) => s.shop.press(&c, &crate::callback::Callback::parse(&b)?).await?,
        _ => return Err(Error::bad("give exactly one of \"text\" and \"button\"").into()),
    };
    Ok(Json(json!(reply)))
}

/// `POST /admin/api/orders/{id}/refund-source`: refunds to the payment's source (Telegram
/// Stars), not to the balance.
#[utoipa::path(post, path = "/admin/api/orders/{id}/refund-source", tag = "admin", params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, description = "Refunded to the payment's source (Telegram Stars)", body = Object),
        (status = 404, description = "No such order"), (status = 409, description = "Not paid with Stars, or not refundable")))]
pub async fn refund_source(State(s): State<AppState>, Path(id): Path<OrderId>) -> ApiResult<Json<Value>> {
    let o = s.store.order(id).await?;
    let provider = o.payment.as_ref().map(|p| p.provider.clone()).unwrap_or_default();
    let order = match (&s.telegram, provider.as_str()) {
        (Some(tg), crate::payments::stars::PROVIDER) => tg.refund_stars(id).await?,
        _ => {
            return Err(Error::conflict(format!(
                "order {id} was paid via {:?}; only Telegram Stars payments are refunded to their source (use /refund for the balance)",
                provider
            ))
            .into());
        }
    };
    Ok(Json(json!({ "order": order })))
}
