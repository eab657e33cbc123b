//! The customer API of the Mini App and the local web shop (`/api/*`). Catalogue reads are
//! public; everything about a customer goes through [`super::auth::require_user`]. Orders use
//! the store's operations, with the consultant's rules: only active products, stock reserved
//! for `reservation_ttl_secs`, a pre-order only when asked for and the product allows it.
//! A customer sees only their own orders (another's is 404) and, once paid, their goods.

use super::auth::WebUser;
use super::error::{ApiResult, JsonBody, JsonRejections};
use crate::callback::{ButtonAction, Callback};
use crate::domain::{Availability, Order, OrderKind, OrderStatus, Product, ProductId, fmt_time};
use crate::error::Error;
use crate::shop::{Customer, Door, Reply};
use crate::state::AppState;
use crate::store::orders::OrderFilter;
use crate::texts::Loc;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A product as the shop shows it: live price, discount and availability.
#[derive(Clone, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub tags: Vec<String>,
    /// Currency code, e.g. `RUB`.
    pub currency: String,
    /// List price, minor units.
    pub price: i64,
    /// Price after the discount in force, minor units.
    pub final_price: i64,
    pub discount_percent: u8,
    /// When the discount ends (RFC 3339), if it does.
    pub discount_until: Option<String>,
    pub price_text: String,
    pub final_price_text: String,
    /// Items in stock now.
    pub available: u64,
    /// `in_stock`, `preorder` (a supplier delivers within `fulfillment_hours`) or `sold_out`.
    pub state: String,
    /// Hours a supplier needs for a pre-order (rounded up).
    pub fulfillment_hours: Option<u32>,
    /// The same in minutes.
    pub fulfillment_minutes: Option<u32>,
}

fn product_view(l: &Loc, p: &Product, a: &Availability) -> ProductView {
    let state = a.sale().name();
    ProductView {
        id: p.id.to_string(),
        title: p.title.clone(),
        description: p.description.clone(),
        category: p.category.clone(),
        tags: p.tags.clone(),
        currency: a.currency.to_string(),
        price: a.price,
        final_price: a.final_price,
        discount_percent: a.discount_percent,
        discount_until: if a.discount_percent > 0 { p.discount_until.map(fmt_time) } else { None },
        price_text: l.money(a.price, a.currency),
        final_price_text: l.money(a.final_price, a.currency),
        available: a.available,
        state: state.into(),
        fulfillment_hours: a.fulfillment_hours,
        fulfillment_minutes: a.fulfillment_minutes,
    }
}

/// The active catalogue.
#[derive(Serialize, ToSchema)]
pub struct Catalogue {
    pub shop_name: String,
    /// Categories in display order.
    pub categories: Vec<String>,
    pub products: Vec<ProductView>,
}

async fn live_products(s: &AppState) -> crate::Result<Vec<ProductView>> {
    let products = s.store.products().await?;
    let avail = s.store.available_stock_with_discounts().await?;
    let l = loc(s);
    Ok(products
        .iter()
        .filter(|p| p.active)
        .filter_map(|p| avail.iter().find(|a| a.product_id == p.id).map(|a| product_view(&l, p, a)))
        .collect())
}

#[utoipa::path(get, path = "/api/products", tag = "catalogue",
    responses((status = 200, description = "Active products with live prices and stock", body = Catalogue)))]
pub async fn products(State(s): State<AppState>) -> ApiResult<Json<Catalogue>> {
    let products = live_products(&s).await?;
    let mut categories: Vec<String> =
        products.iter().map(|p| p.category.clone()).filter(|c| !c.is_empty()).collect();
    categories.sort();
    categories.dedup();
    Ok(Json(Catalogue { shop_name: s.config.shop_name.clone(), categories, products }))
}

#[utoipa::path(get, path = "/api/products/{id}", tag = "catalogue",
    params(("id" = String, Path, description = "Product id")),
    responses((status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such product on sale")))]
pub async fn product(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ProductView>> {
    let id = ProductId::parse(&id).map_err(|_| Error::not_found("product"))?;
    let p = s.store.product(id.clone()).await?;
    if !p.active {
        return Err(Error::not_found(format!("product {id}")).into());
    }
    let a = s.store.availability(id).await?;
    Ok(Json(product_view(&loc(&s), &p, &a)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What the customer typed (required).
    q: String,
    /// Most results, 1-100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// One ranked search result.
#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub score: f32,
    pub keyword_rank: Option<usize>,
    pub vector_rank: Option<usize>,
    pub similarity: Option<f32>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    /// Best first.
    pub results: Vec<SearchHit>,
    /// The results' products (active ones), in the same order.
    pub products: Vec<ProductView>,
}

#[utoipa::path(get, path = "/api/search", tag = "catalogue", params(SearchQuery),
    responses((status = 200, description = "Hybrid (keyword + meaning) search", body = SearchResults),
        (status = 400, description = "No `q`, or a `limit` that is not 1-100")))]
pub async fn search(
    State(s): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let limit = match q.limit.unwrap_or(10) {
        n @ 1..=100 => n,
        n => return Err(Error::bad(format!("limit must be 1-100, got {n}")).into()),
    };
    let hits = s.search.search(&q.q, limit).await?;
    let all = live_products(&s).await?;
    let products = hits.iter().filter_map(|h| all.iter().find(|p| p.id == h.id.as_str())).cloned().collect();
    let results = hits
        .into_iter()
        .map(|h| SearchHit {
            id: h.id.to_string(),
            title: h.title,
            score: h.score,
            keyword_rank: h.keyword_rank,
            vector_rank: h.vector_rank,
            similarity: h.similarity,
        })
        .collect();
    Ok(Json(SearchResults { results, products }))
}

/// An order as its customer sees it.
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    pub id: u64,
    pub product_id: String,
    pub title: String,
    /// `instant` or `prepaid`.
    pub kind: String,
    /// `reserved`, `awaiting_payment`, `paid`, `prepaid`, `ready`, `delivered`, `expired`,
    /// `refunded`.
    pub status: String,
    pub quantity: u32,
    pub amount: i64,
    pub currency: String,
    pub amount_text: String,
    pub created_at: String,
    /// An unpaid order lapses then.
    pub expires_at: Option<String>,
    pub paid_at: Option<String>,
    /// A pre-order is fulfilled by then, or refunded to the balance.
    pub deadline: Option<String>,
    pub delivered_at: Option<String>,
    pub note: Option<String>,
    /// The order's payment page (while it awaits payment).
    pub pay_url: Option<String>,
    /// Its price in Telegram Stars, when the bot takes Stars (while it awaits payment):
    /// inside Telegram, `POST /api/orders/{id}/stars-invoice` gives the invoice to open.
    pub stars: Option<u32>,
    /// The goods, once paid (keys, links); only in `GET /api/orders/{id}`.
    pub contents: Option<Vec<String>>,
}

fn order_view(s: &AppState, o: &Order, contents: Option<Vec<String>>) -> OrderView {
    OrderView {
        id: o.id,
        product_id: o.product_id.to_string(),
        title: o.title.clone(),
        kind: match o.kind {
            OrderKind::Instant => "instant",
            OrderKind::Prepaid => "prepaid",
        }
        .into(),
        status: o.status.as_str().into(),
        quantity: o.quantity,
        amount: o.amount,
        currency: o.currency.to_string(),
        amount_text: loc(s).money(o.amount, o.currency),
        created_at: fmt_time(o.created_at),
        expires_at: o.expires_at.filter(|_| o.status.is_pending_payment()).map(fmt_time),
        paid_at: o.paid_at.map(fmt_time),
        deadline: o.deadline.map(fmt_time),
        delivered_at: o.delivered_at.map(fmt_time),
        note: o.note.clone(),
        pay_url: (o.status.is_pending_payment() && s.payments.any()).then(|| s.payments.pay_url(o.id)),
        stars: s
            .telegram
            .as_ref()
            .filter(|_| o.status.is_pending_payment())
            .and_then(|_| s.payments.stars_for(o.amount, o.currency)),
        contents,
    }
}

/// The goods of a paid order (none before payment or after a refund).
async fn contents(s: &AppState, o: &Order) -> crate::Result<Option<Vec<String>>> {
    if !matches!(o.status, OrderStatus::Paid | OrderStatus::Ready | OrderStatus::Delivered) {
        return Ok(None);
    }
    Ok(Some(s.store.deliverable(o.id).await?.contents).filter(|c| !c.is_empty()))
}

/// The caller's own order, or 404.
async fn own_order(s: &AppState, user: &WebUser, id: u64) -> crate::Result<Order> {
    match s.store.order(id).await {
        Ok(o) if o.user_id == user.id => Ok(o),
        Ok(_) => Err(Error::not_found(format!("order {id}"))),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub product_id: String,
    /// 1-10 (the shop's one quantity rule), default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    pub quantity: Option<u32>,
    /// Agree to a prepaid pre-order when the product is out of stock (default false: an
    /// out-of-stock product answers 409).
    #[serde(default)]
    pub preorder: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrderCreated {
    pub order: OrderView,
}

#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = NewOrder,
    responses((status = 201, description = "Stock reserved (or a pre-order created)", body = OrderCreated),
        (status = 404, description = "No such product"),
        (status = 409, description = "Out of stock or not on sale"), JsonRejections))]
pub async fn create_order(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    JsonBody(b): JsonBody<NewOrder>,
) -> ApiResult<(StatusCode, Json<OrderCreated>)> {
    let id = ProductId::parse(&b.product_id).map_err(|_| Error::not_found("product"))?;
    let c = customer(&s, &user, None);
    let order = s.shop.reserve(&c, &id, b.quantity.unwrap_or(1), b.preorder).await?;
    tracing::info!(order.id = order.id, user = user.id, product = %id, "Mini App order");
    Ok((StatusCode::CREATED, Json(OrderCreated { order: order_view(&s, &order, None) })))
}

#[derive(Serialize, ToSchema)]
pub struct OrderList {
    /// Newest first (lapsed unpaid orders left out).
    pub orders: Vec<OrderView>,
}

#[utoipa::path(get, path = "/api/orders", tag = "orders",
    responses((status = 200, description = "The customer's orders", body = OrderList)))]
pub async fn orders(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
) -> ApiResult<Json<OrderList>> {
    let list = s
        .store
        .orders(OrderFilter { user: Some(user.id), limit: Some(50), ..OrderFilter::default() })
        .await?;
    let orders =
        list.iter().filter(|o| o.status != OrderStatus::Expired).map(|o| order_view(&s, o, None)).collect();
    Ok(Json(OrderList { orders }))
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, description = "The order, with the goods once paid", body = OrderView),
        (status = 404, description = "Not this customer's order")))]
pub async fn order(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<u64>,
) -> ApiResult<Json<OrderView>> {
    let o = own_order(&s, &user, id).await?;
    let c = contents(&s, &o).await?;
    Ok(Json(order_view(&s, &o, c)))
}

#[utoipa::path(post, path = "/api/orders/{id}/pay-balance", tag = "orders",
    params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, description = "Paid", body = OrderView), (status = 404, description = "Not this customer's order"),
        (status = 409, description = "Not awaiting payment, or the balance is short")))]
pub async fn pay_balance(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<u64>,
) -> ApiResult<Json<OrderView>> {
    let r = s.shop.pay_from_balance(&customer(&s, &user, None), id).await?;
    let c = contents(&s, &r.order).await?;
    Ok(Json(order_view(&s, &r.order, c)))
}

/// A Telegram Stars invoice to open with `Telegram.WebApp.openInvoice`.
#[derive(Serialize, ToSchema)]
pub struct StarsInvoice {
    pub url: String,
    pub stars: u32,
}

#[utoipa::path(post, path = "/api/orders/{id}/stars-invoice", tag = "orders",
    params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, description = "The invoice to open", body = StarsInvoice),
        (status = 404, description = "Not this customer's order"),
        (status = 409, description = "Not awaiting payment, or Stars are not taken here")))]
pub async fn stars_invoice(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<u64>,
) -> ApiResult<Json<StarsInvoice>> {
    let o = own_order(&s, &user, id).await?;
    let no_stars = || Error::conflict("this shop does not take Telegram Stars");
    let tg = s.telegram.as_ref().ok_or_else(no_stars)?;
    if !o.status.is_pending_payment() {
        return Err(Error::conflict(format!("order {id} is {} and cannot be paid", o.status.as_str())).into());
    }
    let l = s.shop.loc(user.lang(s.config.lang()));
    let (url, stars) = tg.stars_invoice_link(&o, &l).await?.ok_or_else(no_stars)?;
    Ok(Json(StarsInvoice { url, stars }))
}

#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "orders",
    params(("id" = u64, Path, description = "Order number")),
    responses((status = 200, description = "Cancelled; reserved items are back on sale", body = OrderView),
        (status = 404, description = "Not this customer's order"), (status = 409, description = "Already paid")))]
pub async fn cancel(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    Path(id): Path<u64>,
) -> ApiResult<Json<OrderView>> {
    let o = s.shop.cancel_order(&customer(&s, &user, None), id).await?;
    Ok(Json(order_view(&s, &o, None)))
}

/// The customer: who, balance, and what the shop offers in this mode.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user_id: i64,
    pub first_name: Option<String>,
    /// `ru` or `en`: Telegram's language, else the shop's default.
    pub lang: String,
    pub balance: i64,
    pub balance_text: String,
    pub currency: String,
    /// Authenticated by Telegram initData (else a demo-mode browser session).
    pub telegram: bool,
    /// The dev (demo) payment provider is on: no real money moves.
    pub demo_payments: bool,
    pub shop_name: String,
}

#[utoipa::path(get, path = "/api/me", tag = "orders",
    responses((status = 200, description = "Who is calling, and their balance", body = Me)))]
pub async fn me(State(s): State<AppState>, Extension(user): Extension<WebUser>) -> ApiResult<Json<Me>> {
    let info = crate::store::ledger::UserInfo {
        name: user.first_name.clone().unwrap_or_default(),
        username: None,
        lang: user.language.clone(),
    };
    let uid = user.id;
    s.store.write(move |tx| crate::store::ledger::ensure_user(tx, uid, Some(&info))).await?;
    let balance = s.store.balance(user.id).await?;
    let cur = crate::domain::Currency::parse(&s.config.currency)?;
    let lang = user.lang(s.config.lang()).code();
    Ok(Json(Me {
        user_id: user.id,
        first_name: user.first_name,
        lang: lang.into(),
        balance,
        balance_text: loc(&s).money(balance, cur),
        currency: cur.to_string(),
        telegram: user.telegram,
        demo_payments: s.payments.dev_enabled(),
        shop_name: s.config.shop_name.clone(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// Free text (exactly one of `text` and `button`).
    #[serde(default)]
    pub text: Option<String>,
    /// The `callback` of a button from an earlier reply.
    #[serde(default)]
    pub button: Option<String>,
    /// `ru` or `en`: the UI language (the text's own language wins).
    #[serde(default)]
    pub lang: Option<String>,
}

/// A button under a consultant reply: exactly one of `callback` (send it back as `button`)
/// and `url` (open it).
#[derive(Serialize, ToSchema)]
pub struct ChatButton {
    pub label: String,
    pub callback: Option<String>,
    pub url: Option<String>,
}

/// A payment offer the consultant made (an order now exists).
#[derive(Serialize, ToSchema)]
pub struct ChatOffer {
    pub order_id: u64,
    pub product_id: String,
    pub title: String,
    /// `instant` or `prepaid`.
    pub kind: String,
    pub quantity: u32,
    pub amount: i64,
    pub currency: String,
    pub amount_text: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChatReply {
    pub text: String,
    pub buttons: Vec<Vec<ChatButton>>,
    pub offer: Option<ChatOffer>,
}

/// Money and times in the web API: the shop's default language (the pages translate the rest).
fn loc(s: &AppState) -> Loc {
    s.shop.loc(s.config.lang())
}

/// The customer of a web request.
fn customer(s: &AppState, user: &WebUser, lang: Option<&str>) -> Customer {
    let default = user.lang(s.config.lang());
    let lang = crate::texts::Lang::pick(lang, default);
    Customer {
        user_id: user.id,
        chat_id: user.id,
        lang,
        lang_told: true,
        first_name: user.first_name.clone(),
        door: Door::Web,
    }
}

fn chat_reply(l: &Loc, r: Reply) -> ChatReply {
    let buttons = r
        .buttons
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|b| match b.action {
                    ButtonAction::Callback(c) => {
                        ChatButton { label: b.label, callback: Some(c.encode()), url: None }
                    }
                    ButtonAction::Url(u) | ButtonAction::WebApp(u) => {
                        ChatButton { label: b.label, callback: None, url: Some(u) }
                    }
                })
                .collect()
        })
        .collect();
    let offer = r.offer.map(|o| ChatOffer {
        order_id: o.order_id,
        product_id: o.product_id.to_string(),
        title: o.title,
        kind: if o.kind == OrderKind::Instant { "instant" } else { "prepaid" }.into(),
        quantity: o.quantity,
        amount: o.amount,
        currency: o.currency.to_string(),
        amount_text: l.money(o.amount, o.currency),
    });
    ChatReply { text: r.text.plain(), buttons, offer }
}

#[utoipa::path(post, path = "/api/chat", tag = "consultant", request_body = ChatRequest,
    responses((status = 200, description = "The consultant's answer (the same consultant as the bot)", body = ChatReply),
        (status = 400, description = "Neither or both of text and button, or unknown button data"), JsonRejections))]
pub async fn chat(
    State(s): State<AppState>,
    Extension(user): Extension<WebUser>,
    JsonBody(b): JsonBody<ChatRequest>,
) -> ApiResult<Json<ChatReply>> {
    let c = customer(&s, &user, b.lang.as_deref());
    let reply = match (b.text, b.button) {
        (Some(t), None) => s.shop.converse(&c, &t).await?,
        (None, Some(data)) => s.shop.press(&c, &Callback::parse(&data)?).await?,
        _ => return Err(Error::bad("give exactly one of \"text\" and \"button\"").into()),
    };
    Ok(Json(chat_reply(&s.shop.loc(c.lang), reply)))
}
