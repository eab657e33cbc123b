//! The order operations (the former RPC functions). Each is one atomic state change that
//! validates everything before it writes, and enqueues its follow-up jobs in the same
//! transaction.

use super::jobs::{EnqueueOpts, enqueue};
use super::ledger::{balance_in, ensure_user, post_entry};
use super::products::{load_product, set_items_state, take_available};
use super::schema::*;
use super::{Store, Tx, decode, encode};
use crate::domain::{
    JobKind, Millis, Notice, Order, OrderId, OrderKind, OrderStatus, PaymentOutcome, PaymentRecord,
    PaymentRef, Product, ProductId, StockItem, StockState, UserId,
};
use crate::error::{Conflict, Error, Result};
use redb::{ReadTransaction, ReadableTable};

/// Most units of one product in one order.
pub use crate::domain::MAX_QUANTITY;

/// The longest content a supplier may attach to a pre-order (bytes).
pub const MAX_CONTENT: usize = 16_384;

/// The provider name of payments from the internal balance.
pub const BALANCE: &str = "balance";

pub use super::ledger::Payment;

/// What applying a payment did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PaymentResult {
    pub order: Order,
    pub outcome: PaymentOutcome,
    /// This exact payment was seen before; nothing changed.
    pub duplicate: bool,
    /// Contents of the sold items (instant orders, when applied).
    pub contents: Vec<String>,
    /// The customer's balance after a credit.
    pub balance: Option<i64>,
}

/// What a refund did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RefundResult {
    pub order: Order,
    pub amount: i64,
    pub balance: i64,
    /// The order had been refunded before; nothing changed.
    pub already: bool,
}

fn due_key(o: &Order) -> Option<(u8, i64, u64)> {
    match o.status {
        OrderStatus::Reserved | OrderStatus::AwaitingPayment => {
            o.expires_at.map(|t| (o.status.code(), t, o.id))
        }
        OrderStatus::Prepaid => o.deadline.map(|t| (o.status.code(), t, o.id)),
        _ => None,
    }
}

pub(crate) fn load_order<T: ReadableTable<u64, &'static [u8]>>(t: &T, id: OrderId) -> Result<Order> {
    match t.get(id)? {
        Some(v) => decode(v.value()),
        None => Err(Error::not_found(format!("order {id}"))),
    }
}

fn get_order(tx: &Tx, id: OrderId) -> Result<Order> {
    load_order(&*tx.orders()?, id)
}

/// Writes an order, keeping the due-time index in step with its status.
fn save_order(tx: &Tx, before: Option<&Order>, o: &Order) -> Result<()> {
    let old = before.and_then(due_key);
    let new = due_key(o);
    if old != new {
        let mut idx = tx.orders_by_status_deadline()?;
        if let Some(k) = old {
            idx.remove(k)?;
        }
        if let Some(k) = new {
            idx.insert(k, ())?;
        }
    }
    tx.orders()?.insert(o.id, encode(o)?.as_slice())?;
    Ok(())
}

fn product_in(tx: &Tx, id: &ProductId) -> Result<Product> {
    load_product(&*tx.products()?, id)
}

fn available_in(tx: &Tx, id: &ProductId) -> Result<u64> {
    Ok(tx.stock_counts()?.get(id.as_str())?.map(|v| v.value()).unwrap_or(0))
}

fn check_quantity(q: u32) -> Result<()> {
    if q == 0 || q > MAX_QUANTITY {
        return Err(Error::bad(format!("quantity must be 1-{MAX_QUANTITY}")));
    }
    Ok(())
}

fn new_order(tx: &Tx, user: UserId, p: &Product, qty: u32, kind: OrderKind, ttl_ms: i64) -> Result<Order> {
    let unit = p.final_price_at(tx.now);
    let amount = unit.checked_mul(qty as i64).ok_or_else(|| Error::bad("order amount overflows"))?;
    let id = tx.next_id("order")?;
    Ok(Order {
        id,
        user_id: user,
        product_id: p.id.clone(),
        title: p.title.clone(),
        kind,
        status: match kind {
            OrderKind::Instant => OrderStatus::Reserved,
            OrderKind::Prepaid => OrderStatus::AwaitingPayment,
        },
        quantity: qty,
        unit_price: p.price,
        discount_percent: p.discount_at(tx.now),
        amount,
        currency: p.currency,
        stock_item_ids: Vec::new(),
        supplier_content: None,
        created_at: tx.now,
        expires_at: Some(tx.now + ttl_ms),
        paid_at: None,
        deadline: None,
        delivered_at: None,
        delivery_message_id: None,
        payment: None,
        refunded_at: None,
        note: None,
        delivered_to_outbox: false,
    })
}

fn index_user_order(tx: &Tx, o: &Order) -> Result<()> {
    ensure_user(tx, o.user_id, None)?;
    tx.orders_by_user()?.insert((o.user_id, o.id), ())?;
    Ok(())
}

/// How much one customer may hold unpaid at once: the rule every door enforces, so one
/// customer cannot take the whole stock off sale without paying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldLimits {
    /// Unpaid orders (reservations and pre-orders awaiting payment).
    pub max_orders: u32,
    /// Stock items held by unpaid reservations.
    pub max_items: u32,
}

/// What `user` holds unpaid right now: live (not yet lapsed) pending orders and the stock
/// items they hold.
pub fn open_holds(tx: &Tx, user: UserId) -> Result<(u32, u32)> {
    // Through the batch's shared tables: an earlier operation of the same group commit
    // may hold them open.
    let orders = tx.orders()?;
    let idx = tx.orders_by_user()?;
    let (mut n, mut items) = (0u32, 0u32);
    for r in idx.range((user, 0)..=(user, u64::MAX))? {
        let o = load_order(&*orders, r?.0.value().1)?;
        if o.status.is_pending_payment() && o.expires_at.is_some_and(|t| t > tx.now) {
            n += 1;
            items += o.stock_item_ids.len() as u32;
        }
    }
    Ok((n, items))
}

/// Refuses a new unpaid order of `qty` items (`holds_stock`: an instant order, which takes
/// items off sale) that would take `user` past `limits`, with
/// [`Conflict::ReservationLimit`]. Call it in the write transaction that creates the order:
/// the store runs one writer, so concurrent requests cannot pass it together.
pub fn check_hold_limits(
    tx: &Tx,
    user: UserId,
    qty: u32,
    holds_stock: bool,
    limits: HoldLimits,
) -> Result<()> {
    let (orders, items) = open_holds(tx, user)?;
    let more_items = if holds_stock { qty } else { 0 };
    if orders >= limits.max_orders || items.saturating_add(more_items) > limits.max_items {
        return Err(Conflict::ReservationLimit {
            orders,
            items,
            max_orders: limits.max_orders,
            max_items: limits.max_items,
        }
        .into());
    }
    Ok(())
}

/// Reserves `qty` stock items of an active product for `user` and creates a `reserved`
/// order that lapses after `ttl_ms`. Refused with [`Error::OutOfStock`] when stock is short.
pub fn reserve_product_for_purchase(
    tx: &Tx,
    user: UserId,
    product: &ProductId,
    qty: u32,
    ttl_ms: i64,
) -> Result<Order> {
    check_quantity(qty)?;
    let p = product_in(tx, product)?;
    if !p.active {
        return Err(Conflict::NotOnSale(product.clone()).into());
    }
    if available_in(tx, product)? < qty as u64 {
        return Err(Error::OutOfStock(product.to_string()));
    }
    let mut o = new_order(tx, user, &p, qty, OrderKind::Instant, ttl_ms)?;
    o.stock_item_ids = take_available(tx, product, qty, o.id)?;
    save_order(tx, None, &o)?;
    index_user_order(tx, &o)?;
    Ok(o)
}

/// Creates an order after checking availability: `Instant` reserves stock (as
/// [`reserve_product_for_purchase`]); `Prepaid` needs a pre-orderable product that is short
/// of stock and creates an `awaiting_payment` order.
pub fn create_order_with_availability_check(
    tx: &Tx,
    user: UserId,
    product: &ProductId,
    qty: u32,
    kind: OrderKind,
    ttl_ms: i64,
) -> Result<Order> {
    match kind {
        OrderKind::Instant => reserve_product_for_purchase(tx, user, product, qty, ttl_ms),
        OrderKind::Prepaid => {
            check_quantity(qty)?;
            let p = product_in(tx, product)?;
            if !p.active {
                return Err(Conflict::NotOnSale(product.clone()).into());
            }
            if !p.can_preorder() {
                return Err(Conflict::NotPreorderable(product.clone()).into());
            }
            if available_in(tx, product)? >= qty as u64 {
                return Err(Conflict::InStock(product.clone()).into());
            }
            let o = new_order(tx, user, &p, qty, OrderKind::Prepaid, ttl_ms)?;
            save_order(tx, None, &o)?;
            index_user_order(tx, &o)?;
            Ok(o)
        }
    }
}

fn items_content(tx: &Tx, ids: &[u64]) -> Result<Vec<String>> {
    let t = tx.stock_items()?;
    ids.iter()
        .map(|id| match t.get(*id)? {
            Some(v) => Ok(decode::<StockItem>(v.value())?.content),
            None => Err(Error::internal(format!("missing stock item {id}"))),
        })
        .collect()
}

/// Enqueues the delivery of every paid, undelivered order of `user` (they can be reached
/// again after blocking the bot). A delivery already queued is not queued twice.
pub fn redeliver_waiting(tx: &Tx, user: UserId) -> Result<usize> {
    let ids: Vec<OrderId> = {
        let idx = tx.orders_by_user()?;
        let mut ids = Vec::new();
        for r in idx.range((user, 0)..=(user, u64::MAX))? {
            ids.push(r?.0.value().1);
        }
        ids
    };
    let mut n = 0;
    for id in ids {
        if matches!(get_order(tx, id)?.status, OrderStatus::Paid | OrderStatus::Ready) {
            // The first delivery job's key is once-only; this one is held while it waits.
            let job = JobKind::DeliverOrder { order_id: id };
            enqueue(tx, job, EnqueueOpts::while_pending(format!("redeliver:{id}")))?;
            n += 1;
        }
    }
    Ok(n)
}

fn deliver_job(tx: &Tx, order: OrderId) -> Result<()> {
    enqueue(tx, JobKind::DeliverOrder { order_id: order }, EnqueueOpts::once(format!("deliver:{order}")))?;
    Ok(())
}

fn notify(tx: &Tx, user: UserId, notice: Notice, key: String) -> Result<()> {
    enqueue(tx, JobKind::NotifyUser { user_id: user, notice }, EnqueueOpts::once(key))?;
    Ok(())
}

/// Puts a received payment on the customer's balance and tells them why.
fn credit_payment(tx: &Tx, o: &Order, pay: &Payment, reason: &str, notice: Notice) -> Result<i64> {
    let balance = post_entry(tx, o.user_id, pay.amount, pay.currency, reason, Some(o.id))?;
    notify(tx, o.user_id, notice, format!("credited:{}:{}", pay.provider, pay.external_id))?;
    Ok(balance)
}

/// Applies a received payment to an order, exactly once per `(provider, external_id)`.
///
/// - pending order, amount and currency match → paid (instant: items sold, delivery
///   enqueued; prepaid: deadline set, supplier notified);
/// - amount or currency differ → recorded as a mismatch, order untouched, admin alerted;
/// - order lapsed: an instant order re-reserves if stock allows; a prepaid one proceeds if
///   the product can still be pre-ordered; otherwise the money goes to the balance;
/// - order already paid by another payment → the money goes to the balance.
///
/// The customer is told whenever money went to the balance.
pub fn apply_payment(tx: &Tx, order_id: OrderId, pay: &Payment) -> Result<PaymentResult> {
    apply_payment_to(tx, order_id, pay, None)
}

/// [`apply_payment`] with the order already read (`loaded`), so it is not decoded twice.
fn apply_payment_to(
    tx: &Tx,
    order_id: OrderId,
    pay: &Payment,
    loaded: Option<Order>,
) -> Result<PaymentResult> {
    pay.validate()?;
    let key = (pay.provider.as_str(), pay.external_id.as_str());
    let prior: Option<PaymentRecord> = tx.payments()?.get(key)?.map(|v| decode(v.value())).transpose()?;
    if let Some(rec) = prior {
        let order = get_order(tx, rec.order_id)?;
        let contents = if rec.outcome == PaymentOutcome::Applied && order.kind == OrderKind::Instant {
            items_content(tx, &order.stock_item_ids)?
        } else {
            Vec::new()
        };
        return Ok(PaymentResult { order, outcome: rec.outcome, duplicate: true, contents, balance: None });
    }
    let before = match loaded {
        Some(o) => o,
        None => get_order(tx, order_id)?,
    };
    let mut o = before.clone();
    let now = tx.now;
    let mut outcome = PaymentOutcome::Applied;
    let mut contents = Vec::new();
    let mut balance = None;

    if pay.amount != o.amount || pay.currency != o.currency {
        // Money in the order's currency goes to the balance (the customer can pay with it);
        // money in another currency is held for the owner.
        outcome = PaymentOutcome::Mismatch;
        let creditable = pay.currency == o.currency
            && super::ledger::balance_currency(tx, o.user_id)?.is_none_or(|c| c == pay.currency);
        enqueue(
            tx,
            JobKind::AlertAdmin {
                text: format!(
                    "Payment {}:{} for order #{} is {} {} but the order is {} {}; order left unpaid, {}.",
                    pay.provider,
                    pay.external_id,
                    o.id,
                    pay.currency.format_minor(pay.amount),
                    pay.currency,
                    o.currency.format_minor(o.amount),
                    o.currency,
                    if creditable {
                        "money credited to the customer's balance"
                    } else {
                        "money held: resolve it by hand"
                    }
                ),
            },
            EnqueueOpts::once(format!("mismatch:{}:{}", pay.provider, pay.external_id)),
        )?;
        if creditable {
            let notice = Notice::MismatchCredited { order_id: o.id, amount: pay.amount };
            balance = Some(credit_payment(tx, &o, pay, "payment did not match the order", notice)?);
        }
    } else {
        let late = o.status == OrderStatus::Expired;
        let lapsed_instant_restock = late
            && o.kind == OrderKind::Instant
            && product_in(tx, &o.product_id)?.active
            && available_in(tx, &o.product_id)? >= o.quantity as u64;
        let lapsed_prepaid_ok =
            late && o.kind == OrderKind::Prepaid && product_in(tx, &o.product_id)?.can_preorder();
        match o.status {
            OrderStatus::Reserved | OrderStatus::Expired
                if o.kind == OrderKind::Instant && (!late || lapsed_instant_restock) =>
            {
                if late {
                    o.stock_item_ids = take_available(tx, &o.product_id, o.quantity, o.id)?;
                    o.note = Some("paid after the reservation lapsed; re-reserved".into());
                }
                let sold = set_items_state(tx, &o.stock_item_ids, StockState::Sold, o.id)?;
                contents = sold.into_iter().map(|i| i.content).collect();
                o.status = OrderStatus::Paid;
                o.paid_at = Some(now);
                deliver_job(tx, o.id)?;
            }
            OrderStatus::AwaitingPayment | OrderStatus::Expired
                if o.kind == OrderKind::Prepaid && (!late || lapsed_prepaid_ok) =>
            {
                let p = product_in(tx, &o.product_id)?;
                let minutes = p.lead_minutes().unwrap_or(48 * 60) as i64;
                o.status = OrderStatus::Prepaid;
                o.paid_at = Some(now);
                o.deadline = Some(now + minutes * 60_000);
                enqueue(
                    tx,
                    JobKind::NotifySupplier { order_id: o.id },
                    EnqueueOpts::once(format!("supplier:{}", o.id)),
                )?;
                notify(
                    tx,
                    o.user_id,
                    Notice::PreorderAccepted { order_id: o.id },
                    format!("preorder:{}", o.id),
                )?;
            }
            _ => {
                // Lapsed with no stock, or a second payment for a paid order: credit it.
                outcome = PaymentOutcome::CreditedToBalance;
                let reason = if o.was_paid() {
                    "second payment for a paid order"
                } else {
                    "payment after the order lapsed"
                };
                let notice = Notice::LatePaymentCredited { order_id: o.id, amount: pay.amount };
                balance = Some(credit_payment(tx, &o, pay, reason, notice)?);
                if !o.was_paid() {
                    o.status = OrderStatus::Refunded;
                    o.paid_at = Some(now);
                    o.refunded_at = Some(now);
                    o.note = Some(reason.into());
                }
            }
        }
        if outcome == PaymentOutcome::Applied {
            o.payment =
                Some(PaymentRef { provider: pay.provider.clone(), external_id: pay.external_id.clone() });
        }
    }
    if o != before {
        save_order(tx, Some(&before), &o)?;
    }
    let rec = PaymentRecord {
        provider: pay.provider.clone(),
        external_id: pay.external_id.clone(),
        order_id: o.id,
        user_id: o.user_id,
        amount: pay.amount,
        currency: pay.currency,
        outcome: outcome.clone(),
        at: now,
    };
    tx.payments()?.insert(key, encode(&rec)?.as_slice())?;
    Ok(PaymentResult { order: o, outcome, duplicate: false, contents, balance })
}

/// Completes an instant purchase with a payment: idempotent, returns the items' contents,
/// enqueues the delivery in the same transaction.
pub fn complete_purchase(tx: &Tx, order_id: OrderId, pay: &Payment) -> Result<PaymentResult> {
    let o = get_order(tx, order_id)?;
    if o.kind != OrderKind::Instant {
        return Err(Error::conflict(format!("order {order_id} is a pre-order")));
    }
    apply_payment_to(tx, order_id, pay, Some(o))
}

/// Records the payment of a pre-order and notifies its supplier (same transaction).
pub fn process_prepaid_payment(tx: &Tx, order_id: OrderId, pay: &Payment) -> Result<PaymentResult> {
    let o = get_order(tx, order_id)?;
    if o.kind != OrderKind::Prepaid {
        return Err(Error::conflict(format!("order {order_id} is not a pre-order")));
    }
    apply_payment_to(tx, order_id, pay, Some(o))
}

/// Pays a pending order from the customer's balance: debit + completion + follow-up jobs in
/// one transaction.
pub fn pay_from_balance(tx: &Tx, order_id: OrderId, user: UserId) -> Result<PaymentResult> {
    let o = get_order(tx, order_id)?;
    if o.user_id != user {
        return Err(Error::not_found(format!("order {order_id}")));
    }
    if !o.status.is_pending_payment() {
        return Err(Conflict::NotPending { order: order_id, status: o.status }.into());
    }
    // The debit refuses a short balance or another currency before anything is written;
    // any later failure drops the whole operation (group commit never keeps half of one).
    let balance = post_entry(tx, user, -o.amount, o.currency, "order paid from balance", Some(order_id))?;
    let pay = Payment {
        provider: BALANCE.into(),
        external_id: format!("order:{order_id}"),
        amount: o.amount,
        currency: o.currency,
    };
    let mut res = apply_payment_to(tx, order_id, &pay, Some(o))?;
    if res.outcome != PaymentOutcome::Applied || res.duplicate {
        return Err(Error::internal(format!("balance payment for order {order_id} did not apply")));
    }
    res.balance = Some(balance);
    Ok(res)
}

/// Attaches the supplier's content to a paid pre-order and enqueues its delivery. When
/// `supplier` is given it must be the product's supplier.
pub fn fulfill_prepaid_order(
    tx: &Tx,
    order_id: OrderId,
    content: &str,
    supplier: Option<&str>,
) -> Result<Order> {
    let content = content.trim();
    if content.is_empty() {
        return Err(Error::bad("the content to deliver is empty"));
    }
    if content.len() > MAX_CONTENT {
        return Err(Error::bad(format!("the content to deliver is longer than {MAX_CONTENT} bytes")));
    }
    let before = get_order(tx, order_id)?;
    if let Some(s) = supplier {
        let p = product_in(tx, &before.product_id)?;
        if p.supplier.as_deref() != Some(s) {
            return Err(Error::not_found(format!("order {order_id}")));
        }
    }
    match before.status {
        OrderStatus::Prepaid => {}
        OrderStatus::Refunded => {
            return Err(Conflict::RefundedLate(order_id).into());
        }
        OrderStatus::Ready | OrderStatus::Delivered => {
            return Err(Conflict::AlreadyFulfilled(order_id).into());
        }
        s => {
            return Err(Conflict::NotPaid { order: order_id, status: s }.into());
        }
    }
    let mut o = before.clone();
    o.status = OrderStatus::Ready;
    o.supplier_content = Some(content.to_string());
    save_order(tx, Some(&before), &o)?;
    deliver_job(tx, o.id)?;
    Ok(o)
}

/// Refunds a paid order to the customer's balance and tells them. Idempotent.
pub fn process_refund(tx: &Tx, order_id: OrderId, reason: &str) -> Result<RefundResult> {
    refund(tx, order_id, reason, false)
}

fn refund(tx: &Tx, order_id: OrderId, reason: &str, late: bool) -> Result<RefundResult> {
    let before = get_order(tx, order_id)?;
    if before.status == OrderStatus::Refunded {
        let balance = balance_in(tx, before.user_id)?;
        return Ok(RefundResult { amount: 0, balance, already: true, order: before });
    }
    if !before.was_paid() {
        return Err(Error::conflict(format!(
            "order {order_id} is {}, nothing was paid",
            before.status.as_str()
        )));
    }
    let mut o = before.clone();
    o.status = OrderStatus::Refunded;
    o.refunded_at = Some(tx.now);
    o.note = Some(reason.to_string());
    save_order(tx, Some(&before), &o)?;
    let balance = post_entry(tx, o.user_id, o.amount, o.currency, reason, Some(o.id))?;
    notify(
        tx,
        o.user_id,
        Notice::Refunded { order_id: o.id, amount: o.amount, late },
        format!("refund:{}", o.id),
    )?;
    Ok(RefundResult { amount: o.amount, balance, already: false, order: o })
}

/// Orders of `status` whose due time has passed, by the index; an index entry that no
/// longer matches its order (it cannot happen through these operations, but a sweep must
/// never act on a stale entry) is removed and skipped.
fn due_orders(tx: &Tx, status: OrderStatus, limit: usize) -> Result<Vec<Order>> {
    let c = status.code();
    let keys: Vec<(u8, i64, u64)> = {
        let idx = tx.orders_by_status_deadline()?;
        let mut keys = Vec::new();
        for r in idx.range((c, i64::MIN, 0)..(c, tx.now, 0))? {
            keys.push(r?.0.value());
            if keys.len() >= limit {
                break;
            }
        }
        keys
    };
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let o = get_order(tx, key.2);
        match o {
            Ok(o) if due_key(&o) == Some(key) => out.push(o),
            other => {
                tracing::error!(order.id = key.2, status = ?other.map(|o| o.status), "stale due-index entry removed");
                tx.orders_by_status_deadline()?.remove(key)?;
            }
        }
    }
    Ok(out)
}

/// Releases pending orders whose time ran out: items go back to stock. Returns their ids.
pub fn expire_reservations(tx: &Tx, limit: usize) -> Result<Vec<OrderId>> {
    let mut due = due_orders(tx, OrderStatus::Reserved, limit)?;
    due.extend(due_orders(tx, OrderStatus::AwaitingPayment, limit)?);
    let mut ids = Vec::with_capacity(due.len());
    for before in due {
        ids.push(before.id);
        let mut o = before.clone();
        if !o.stock_item_ids.is_empty() {
            set_items_state(tx, &o.stock_item_ids, StockState::Available, o.id)?;
            o.stock_item_ids.clear();
        }
        o.status = OrderStatus::Expired;
        save_order(tx, Some(&before), &o)?;
    }
    Ok(ids)
}

/// Records a refund paid back through the provider the order was paid with (Telegram Stars):
/// the order ends `refunded`, and the ledger shows the refund and its payout to the source
/// (net zero on the balance), so the books still explain every refunded order.
pub fn refund_to_source(tx: &Tx, order_id: OrderId, provider: &str, reason: &str) -> Result<Order> {
    let before = get_order(tx, order_id)?;
    if before.status == OrderStatus::Refunded {
        return Ok(before);
    }
    if !before.was_paid() {
        return Err(Error::conflict(format!(
            "order {order_id} is {}, nothing was paid",
            before.status.as_str()
        )));
    }
    if before.payment.as_ref().map(|p| p.provider.as_str()) != Some(provider) {
        return Err(Error::conflict(format!("order {order_id} was not paid through {provider}")));
    }
    let mut o = before.clone();
    o.status = OrderStatus::Refunded;
    o.refunded_at = Some(tx.now);
    o.note = Some(reason.to_string());
    save_order(tx, Some(&before), &o)?;
    post_entry(tx, o.user_id, o.amount, o.currency, &format!("refund of order {order_id}"), Some(o.id))?;
    post_entry(tx, o.user_id, -o.amount, o.currency, reason, Some(o.id))?;
    Ok(o)
}

/// Refunds paid pre-orders whose deadline passed.
pub fn refund_late_prepaid(tx: &Tx, limit: usize) -> Result<Vec<RefundResult>> {
    due_orders(tx, OrderStatus::Prepaid, limit)?
        .into_iter()
        .map(|o| {
            let r = refund(tx, o.id, "the supplier did not deliver in time", true)?;
            // The supplier (it no longer needs delivering) and the admins hear of it.
            enqueue(
                tx,
                JobKind::PreorderRefunded { order_id: o.id },
                EnqueueOpts::once(format!("late:{}", o.id)),
            )?;
            Ok(r)
        })
        .collect()
}

/// Moves a pre-order's deadline (the owner agreed more time with the customer).
pub fn extend_deadline(tx: &Tx, order_id: OrderId, deadline: Millis) -> Result<Order> {
    let before = get_order(tx, order_id)?;
    if before.status != OrderStatus::Prepaid {
        return Err(Error::conflict(format!(
            "order {order_id} is {}, not a paid pre-order",
            before.status.as_str()
        )));
    }
    if deadline <= tx.now {
        return Err(Error::bad("the new deadline is in the past"));
    }
    let mut o = before.clone();
    o.deadline = Some(deadline);
    save_order(tx, Some(&before), &o)?;
    notify(
        tx,
        o.user_id,
        Notice::DeadlineExtended { order_id, deadline },
        format!("extend:{order_id}:{deadline}"),
    )?;
    Ok(o)
}

/// Records that the goods reached the customer. False if already recorded (or refunded).
pub fn mark_delivered(tx: &Tx, order_id: OrderId, message_id: Option<i64>) -> Result<bool> {
    mark_delivered_to(tx, order_id, message_id, false)
}

/// [`mark_delivered`], saying whether the message is in the outbox (`to_outbox`).
pub fn mark_delivered_to(
    tx: &Tx,
    order_id: OrderId,
    message_id: Option<i64>,
    to_outbox: bool,
) -> Result<bool> {
    let before = get_order(tx, order_id)?;
    if !matches!(before.status, OrderStatus::Paid | OrderStatus::Ready) {
        return Ok(false);
    }
    let mut o = before.clone();
    o.status = OrderStatus::Delivered;
    o.delivered_at = Some(tx.now);
    o.delivery_message_id = message_id;
    o.delivered_to_outbox = to_outbox;
    save_order(tx, Some(&before), &o)?;
    Ok(true)
}

/// Which orders to list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub user: Option<UserId>,
    /// Only orders with a smaller id (paging backwards).
    pub before: Option<OrderId>,
    pub limit: Option<usize>,
}

/// An order with what is needed to deliver it (contents never go to the model or logs).
#[derive(Clone, Debug)]
pub struct Deliverable {
    pub order: Order,
    pub contents: Vec<String>,
}

impl Store {
    pub async fn order(&self, id: OrderId) -> Result<Order> {
        self.read(move |rtx, _| load_order(&rtx.open_table(ORDERS)?, id)).await
    }

    /// Orders, newest first.
    pub async fn orders(&self, f: OrderFilter) -> Result<Vec<Order>> {
        self.read(move |rtx, _| list_orders(rtx, &f)).await
    }

    /// The order and the contents to send: sold items, or the supplier's content.
    pub async fn deliverable(&self, id: OrderId) -> Result<Deliverable> {
        self.read(move |rtx, _| {
            let order = load_order(&rtx.open_table(ORDERS)?, id)?;
            let contents = match order.kind {
                OrderKind::Instant => {
                    let t = rtx.open_table(STOCK_ITEMS)?;
                    let mut v = Vec::new();
                    for sid in &order.stock_item_ids {
                        if let Some(raw) = t.get(*sid)? {
                            v.push(decode::<StockItem>(raw.value())?.content);
                        }
                    }
                    v
                }
                OrderKind::Prepaid => order.supplier_content.clone().into_iter().collect(),
            };
            Ok(Deliverable { order, contents })
        })
        .await
    }

    /// How many orders are in each status (a scan; for metrics and stats).
    pub async fn order_status_counts(&self) -> Result<std::collections::HashMap<OrderStatus, u64>> {
        self.read(|rtx, _| {
            let mut m = std::collections::HashMap::new();
            for r in rtx.open_table(ORDERS)?.iter()? {
                let o: Order = decode(r?.1.value())?;
                *m.entry(o.status).or_insert(0) += 1;
            }
            Ok(m)
        })
        .await
    }

    pub async fn payments(&self, limit: usize) -> Result<Vec<PaymentRecord>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(PAYMENTS)?;
            let mut v: Vec<PaymentRecord> = t.iter()?.map(|r| decode(r?.1.value())).collect::<Result<_>>()?;
            v.sort_by_key(|p| std::cmp::Reverse(p.at));
            v.truncate(limit);
            Ok(v)
        })
        .await
    }
}

pub(crate) fn list_orders(rtx: &ReadTransaction, f: &OrderFilter) -> Result<Vec<Order>> {
    let limit = f.limit.unwrap_or(50).min(1000);
    let orders = rtx.open_table(ORDERS)?;
    let mut out = Vec::new();
    let keep = |o: &Order| f.status.is_none_or(|s| o.status == s);
    if let Some(u) = f.user {
        let idx = rtx.open_table(ORDERS_BY_USER)?;
        let upper = f.before.unwrap_or(u64::MAX);
        for r in idx.range((u, 0)..(u, upper))?.rev() {
            let id = r?.0.value().1;
            if f.before.is_some_and(|b| id >= b) {
                continue;
            }
            let o = load_order(&orders, id)?;
            if keep(&o) {
                out.push(o);
                if out.len() >= limit {
                    break;
                }
            }
        }
    } else {
        let upper = f.before.unwrap_or(u64::MAX);
        for r in orders.range(..upper)?.rev() {
            let o: Order = decode(r?.1.value())?;
            if keep(&o) {
                out.push(o);
                if out.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// An order inside a write transaction.
pub fn order_in(tx: &Tx, id: OrderId) -> Result<Order> {
    get_order(tx, id)
}

/// The customer withdraws a pending (unpaid) order: reserved items go back to stock and the
/// order ends as `expired`. Idempotent: an order that already lapsed is returned as it is.
pub fn cancel_pending(tx: &Tx, order_id: OrderId, user: UserId) -> Result<Order> {
    let before = get_order(tx, order_id)?;
    if before.user_id != user {
        return Err(Error::not_found(format!("order {order_id}")));
    }
    if before.status == OrderStatus::Expired {
        return Ok(before);
    }
    if !before.status.is_pending_payment() {
        return Err(Conflict::NotPending { order: order_id, status: before.status }.into());
    }
    let mut o = before.clone();
    if !o.stock_item_ids.is_empty() {
        set_items_state(tx, &o.stock_item_ids, StockState::Available, o.id)?;
        o.stock_item_ids.clear();
    }
    o.status = OrderStatus::Expired;
    o.note = Some("cancelled by the customer".into());
    save_order(tx, Some(&before), &o)?;
    Ok(o)
}
