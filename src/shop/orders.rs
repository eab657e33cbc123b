//! Ordering: buy (reusing a live reservation), pre-order consent and confirmation, the
//! payment offer, pay from balance, Stars invoices, cancel, my orders, balance, top-up.

use super::{Customer, Door, Offer, Reply, Shop, StarsInvoice, quantity};
use crate::ai::Sort;
use crate::callback::{Button, Callback};
use crate::domain::{Order, OrderId, OrderKind, OrderStatus, ProductId, Sale};
use crate::error::{Conflict, Error, Result};
use crate::store::conversations::Conversation;
use crate::store::orders::{self as ops, OrderFilter, PaymentResult};
use crate::texts::{Lang, Loc, customer as t};

/// Amounts offered for a top-up, in units of the shop currency.
const TOPUP_CHOICES: [u32; 4] = [100, 500, 1000, 5000];

impl Shop {
    /// A pending order of this customer for this product that can still be paid.
    async fn live_order(&self, user: i64, id: &ProductId, kind: OrderKind) -> Result<Option<Order>> {
        let now = self.store().now();
        let f = OrderFilter { user: Some(user), limit: Some(20), ..OrderFilter::default() };
        Ok(self.store().orders(f).await?.into_iter().find(|o| {
            &o.product_id == id
                && o.kind == kind
                && o.status.is_pending_payment()
                && o.expires_at.is_some_and(|t| t > now)
        }))
    }

    /// The reservation rule every door uses: reuse the customer's live unpaid order of the
    /// same product and quantity, else hold `qty` items (or, with `preorder` and no stock,
    /// create the prepaid order). Typed refusals: unknown product, not on sale, out of stock,
    /// a bad quantity, and [`Conflict::ReservationLimit`] when the customer already holds as
    /// much unpaid as one customer may.
    pub async fn reserve(&self, c: &Customer, id: &ProductId, qty: u32, preorder: bool) -> Result<Order> {
        let qty = quantity::check(qty)?;
        let ttl = self.settings().reservation_ttl_ms;
        let limits = self.settings().limits;
        let user = c.user_id;
        if let Some(o) = self.live_order(user, id, OrderKind::Instant).await?
            && o.quantity == qty
        {
            return Ok(o);
        }
        let pid = id.clone();
        let reserved = self
            .store()
            .write(move |tx| {
                ops::check_hold_limits(tx, user, qty, true, limits)?;
                ops::reserve_product_for_purchase(tx, user, &pid, qty, ttl)
            })
            .await;
        match reserved {
            Ok(o) => {
                metrics::counter!("lavka_orders_created_total", "kind" => "instant").increment(1);
                Ok(o)
            }
            Err(Error::OutOfStock(_)) if preorder => self.create_preorder(c, id, qty).await,
            Err(e) => Err(e),
        }
    }

    /// The prepaid order (after consent), reusing a live one of the same product.
    async fn create_preorder(&self, c: &Customer, id: &ProductId, qty: u32) -> Result<Order> {
        if let Some(o) = self.live_order(c.user_id, id, OrderKind::Prepaid).await?
            && o.quantity == qty
        {
            return Ok(o);
        }
        let (user, pid, ttl) = (c.user_id, id.clone(), self.settings().reservation_ttl_ms);
        let limits = self.settings().limits;
        let o = self
            .store()
            .write(move |tx| {
                ops::check_hold_limits(tx, user, qty, false, limits)?;
                ops::create_order_with_availability_check(tx, user, &pid, qty, OrderKind::Prepaid, ttl)
            })
            .await?;
        metrics::counter!("lavka_orders_created_total", "kind" => "prepaid").increment(1);
        Ok(o)
    }

    /// Buy: hold the items and offer payment. Sold out → the pre-order question when the
    /// product allows it, else "sold out" with similar products.
    pub async fn buy(
        &self,
        c: &Customer,
        conv: &mut Conversation,
        id: &ProductId,
        qty: u32,
    ) -> Result<Reply> {
        let l = self.loc(c.lang);
        let Some((p, _)) = self.live(id).await? else { return Ok(Reply::text(t::not_found(&l))) };
        conv.focus = Some(id.clone());
        match self.reserve(c, id, qty, false).await {
            Ok(o) => self.offer(c, &o).await,
            Err(Error::OutOfStock(_)) if p.can_preorder() => self.preorder_consent(c, conv, id).await,
            Err(Error::OutOfStock(_)) => self.sold_out(c, conv, &p).await,
            Err(Error::BadInput(_)) => Ok(Reply::text(t::quantity_refused(&l, crate::domain::MAX_QUANTITY))),
            Err(Error::Conflict(Conflict::ReservationLimit { max_orders, max_items, .. })) => {
                self.limit_reached(c, max_orders, max_items).await
            }
            Err(Error::Conflict(Conflict::NotOnSale(_))) | Err(Error::NotFound(_)) => {
                Ok(Reply::text(t::not_on_sale(&l)))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn sold_out(
        &self,
        c: &Customer,
        conv: &mut Conversation,
        p: &crate::domain::Product,
    ) -> Result<Reply> {
        let l = self.loc(c.lang);
        let title = p.title_in(c.lang == Lang::En).to_string();
        let ids = self.similar(&title, &p.id).await?;
        // The focus moves to the first alternative shown: "да" then buys what can be had.
        let mut r = self.show(c, conv, &title, ids, 0, Sort::Relevance).await?;
        let buyable = r.callbacks().any(|cb| matches!(cb, Callback::Buy(_) | Callback::PreOrder(_)));
        r = if buyable {
            Reply { text: t::sold_out(&l, &title).para(t::similar(&l)).para(r.text), ..r }
        } else {
            Reply::text(t::sold_out(&l, &title))
        };
        Ok(r)
    }

    /// Asks consent to a prepaid pre-order (nothing is created yet).
    pub async fn preorder_consent(
        &self,
        c: &Customer,
        conv: &mut Conversation,
        id: &ProductId,
    ) -> Result<Reply> {
        let l = self.loc(c.lang);
        let Some((p, a)) = self.live(id).await? else { return Ok(Reply::text(t::not_found(&l))) };
        conv.focus = Some(id.clone());
        match a.sale() {
            // Back in stock: an instant purchase is better for the customer.
            Sale::InStock { .. } => Box::pin(self.buy(c, conv, id, 1)).await,
            Sale::SoldOut => self.sold_out(c, conv, &p).await,
            Sale::PreOrder { minutes } => {
                conv.pending_preorder = Some(id.clone());
                let price = t::price_short(&l, a.final_price, a.discount_percent, a.currency);
                let rows = vec![
                    vec![Button::callback(t::button::agree(&l), Callback::ConfirmPreOrder(id.clone()))],
                    vec![Button::callback(t::button::back(&l), Callback::Product(id.clone()))],
                ];
                Ok(Reply::with(
                    t::preorder_consent(&l, p.title_in(c.lang == Lang::En), minutes, &price),
                    rows,
                ))
            }
        }
    }

    /// The customer agreed: the prepaid order is created (or the live one reused) and offered.
    pub async fn confirm_preorder(
        &self,
        c: &Customer,
        conv: &mut Conversation,
        id: &ProductId,
    ) -> Result<Reply> {
        conv.pending_preorder = None;
        let l = self.loc(c.lang);
        let Some((p, a)) = self.live(id).await? else { return Ok(Reply::text(t::not_found(&l))) };
        conv.focus = Some(id.clone());
        if let Sale::InStock { .. } = a.sale() {
            return Box::pin(self.buy(c, conv, id, 1)).await;
        }
        match self.create_preorder(c, id, 1).await {
            Ok(o) => self.offer(c, &o).await,
            Err(Error::Conflict(Conflict::ReservationLimit { max_orders, max_items, .. })) => {
                self.limit_reached(c, max_orders, max_items).await
            }
            Err(Error::Conflict(_)) | Err(Error::OutOfStock(_)) => self.sold_out(c, conv, &p).await,
            Err(e) => Err(e),
        }
    }

    /// The customer holds as much unpaid as one customer may: say so, with their orders to
    /// pay or cancel.
    async fn limit_reached(&self, c: &Customer, max_orders: u32, max_items: u32) -> Result<Reply> {
        let l = self.loc(c.lang);
        let now = self.store().now();
        let f = OrderFilter { user: Some(c.user_id), limit: Some(50), ..OrderFilter::default() };
        let rows = self
            .store()
            .orders(f)
            .await?
            .into_iter()
            .filter(|o| o.status.is_pending_payment() && o.expires_at.is_some_and(|t| t > now))
            .map(|o| {
                vec![Button::callback(format!("#{} {}", o.id, t::short(&o.title, 30)), Callback::Order(o.id))]
            })
            .collect();
        Ok(Reply::with(t::reservation_limit(&l, max_orders, max_items), rows))
    }

    /// The buttons that pay (or cancel) a pending order, cancel last: Stars (in Telegram),
    /// the payment page, the balance (when it covers the order, or is the only way).
    pub async fn payment_buttons(&self, c: &Customer, l: &Loc, o: &Order) -> Result<Vec<Vec<Button>>> {
        let mut rows = Vec::new();
        let stars = self.stars_for(c, o);
        if let Some(n) = stars {
            rows.push(vec![Button::callback(t::button::pay_stars(l, n), Callback::PayStars(o.id))]);
        }
        let link = self.payments().any();
        if link {
            rows.push(vec![Button::url(t::button::pay(l), self.payments().pay_url(o.id))]);
        }
        let balance = self.store().balance(c.user_id).await?;
        if balance >= o.amount || (stars.is_none() && !link) {
            rows.push(vec![Button::callback(
                t::button::pay_balance(l, &l.money(balance, o.currency)),
                Callback::PayBalance(o.id),
            )]);
        }
        rows.push(vec![Button::callback(t::button::cancel(l), Callback::Cancel(o.id))]);
        Ok(rows)
    }

    /// Stars for an order in this door, when the bot takes them.
    fn stars_for(&self, c: &Customer, o: &Order) -> Option<u32> {
        matches!(c.door, Door::Telegram { .. })
            .then(|| self.settings().stars)
            .filter(|s| *s)
            .and_then(|_| self.payments().stars_for(o.amount, o.currency))
    }

    /// The offer of a pending order: what, how much, until when, and how to pay.
    pub async fn offer(&self, c: &Customer, o: &Order) -> Result<Reply> {
        let l = self.loc(c.lang);
        let balance = self.store().balance(c.user_id).await?;
        let text = t::offer(&l, o, Some((balance, o.currency)));
        let buttons = self.payment_buttons(c, &l, o).await?;
        Ok(Reply { text, buttons, offer: Some(Offer::of(o)), invoice: None })
    }

    /// Pays a pending order from the balance; the store decides, the delivery job sends.
    pub async fn pay_from_balance(&self, c: &Customer, order: OrderId) -> Result<PaymentResult> {
        let user = c.user_id;
        let r = self.store().write(move |tx| ops::pay_from_balance(tx, order, user)).await?;
        crate::payments::count(crate::store::orders::BALANCE, &r);
        Ok(r)
    }

    pub async fn pay_balance(&self, c: &Customer, order: OrderId) -> Result<Reply> {
        let l = self.loc(c.lang);
        match self.pay_from_balance(c, order).await {
            // A paid pre-order is confirmed once, by the notice that names its deadline.
            Ok(r) if r.order.kind == OrderKind::Prepaid => Ok(Reply::default()),
            Ok(r) => Ok(Reply::text(t::paid_from_balance(&l, &r.order, r.balance.unwrap_or(0)))),
            Err(Error::InsufficientBalance { need, have }) => {
                let o = self.store().order(order).await?;
                let mut r = Reply::text(t::insufficient_balance(&l, need, have, o.currency));
                if self.payments().any() {
                    r.buttons = vec![vec![Button::callback(
                        t::button::topup(&l),
                        Callback::TopUp(topup_units(need - have, o.currency)),
                    )]];
                }
                Ok(r)
            }
            Err(Error::NotFound(_)) => Ok(Reply::text(t::order_not_found(&l))),
            Err(Error::Conflict(Conflict::NotPending { status, .. })) => {
                let o = self.store().order(order).await?;
                if o.payment.as_ref().is_some_and(|p| p.provider == crate::store::orders::BALANCE)
                    && o.kind == OrderKind::Instant
                {
                    // This press was already paid (the update ran again): say so again.
                    let left = self.store().balance(c.user_id).await?;
                    Ok(Reply::text(t::paid_from_balance(&l, &o, left)))
                } else {
                    Ok(Reply::text(t::cannot_pay(&l, order, status)))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A Stars invoice for the customer's pending order (the Telegram door sends it).
    pub async fn stars_invoice(&self, c: &Customer, order: OrderId) -> Result<Reply> {
        let l = self.loc(c.lang);
        if !matches!(c.door, Door::Telegram { .. }) {
            return Ok(Reply::text(t::stars_only_in_chat(&l)));
        }
        let o = match self.store().order(order).await {
            Ok(o) if o.user_id == c.user_id => o,
            Ok(_) | Err(Error::NotFound(_)) => return Ok(Reply::text(t::order_not_found(&l))),
            Err(e) => return Err(e),
        };
        if !o.status.is_pending_payment() {
            return Ok(Reply::text(t::cannot_pay(&l, o.id, o.status)));
        }
        let Some(stars) = self.stars_for(c, &o) else {
            return Ok(Reply::text(t::cannot_pay(&l, o.id, o.status)));
        };
        Ok(Reply {
            invoice: Some(StarsInvoice {
                order_id: o.id,
                title: o.title.chars().take(32).collect(),
                description: t::stars_invoice_description(&l, &o).chars().take(255).collect(),
                stars,
            }),
            ..Reply::default()
        })
    }

    /// The customer withdraws a pending order; reserved items go back on sale.
    pub async fn cancel_order(&self, c: &Customer, order: OrderId) -> Result<Order> {
        let user = c.user_id;
        self.store().write(move |tx| ops::cancel_pending(tx, order, user)).await
    }

    pub async fn cancel(&self, c: &Customer, order: OrderId) -> Result<Reply> {
        let l = self.loc(c.lang);
        Ok(Reply::text(match self.cancel_order(c, order).await {
            Ok(o) => t::cancelled(&l, o.id),
            Err(Error::NotFound(_)) => t::order_not_found(&l),
            Err(Error::Conflict(Conflict::NotPending { status, .. })) => t::cannot_cancel(&l, order, status),
            Err(e) => return Err(e),
        }))
    }

    /// The customer's recent orders (lapsed unpaid ones left out), each a button.
    pub async fn my_orders(&self, c: &Customer) -> Result<Reply> {
        let l = self.loc(c.lang);
        let f = OrderFilter { user: Some(c.user_id), limit: Some(20), ..OrderFilter::default() };
        let orders: Vec<Order> = self
            .store()
            .orders(f)
            .await?
            .into_iter()
            .filter(|o| o.status != OrderStatus::Expired)
            .take(10)
            .collect();
        let rows = orders
            .iter()
            .map(|o| {
                vec![Button::callback(format!("#{} {}", o.id, t::short(&o.title, 30)), Callback::Order(o.id))]
            })
            .collect();
        Ok(Reply::with(t::orders(&l, &orders), rows))
    }

    /// One order: its offer while it can be paid, else its state.
    pub async fn order(&self, c: &Customer, id: OrderId) -> Result<Reply> {
        let l = self.loc(c.lang);
        let o = match self.store().order(id).await {
            Ok(o) if o.user_id == c.user_id => o,
            Ok(_) | Err(Error::NotFound(_)) => return Ok(Reply::text(t::order_not_found(&l))),
            Err(e) => return Err(e),
        };
        if o.status.is_pending_payment() && o.expires_at.is_some_and(|t| t > self.store().now()) {
            return self.offer(c, &o).await;
        }
        Ok(Reply::text(t::order(&l, &o)))
    }

    pub async fn balance(&self, c: &Customer) -> Result<Reply> {
        let l = self.loc(c.lang);
        let amount = self.store().balance(c.user_id).await?;
        let cur = self
            .store()
            .ledger(c.user_id)
            .await?
            .first()
            .map(|e| e.currency)
            .unwrap_or(self.settings().currency);
        let mut r = Reply::text(t::balance(&l, amount, cur));
        if self.payments().any() {
            r.buttons = vec![vec![Button::callback(t::button::topup(&l), Callback::TopUp(0))]];
        }
        Ok(r)
    }

    /// A top-up link for `units` of the shop currency, or the choice of amounts.
    pub async fn topup(&self, c: &Customer, units: Option<u32>) -> Result<Reply> {
        let l = self.loc(c.lang);
        if !self.payments().any() {
            return Ok(Reply::text(t::topup_unavailable(&l)));
        }
        let cur = self.settings().currency;
        let scale = 10i64.pow(cur.minor_digits());
        let Some(n) = units.filter(|n| (1..=1_000_000).contains(n)) else {
            let row = TOPUP_CHOICES
                .iter()
                .map(|n| Button::callback(l.money(*n as i64 * scale, cur), Callback::TopUp(*n)))
                .collect();
            return Ok(Reply::with(t::topup_ask(&l), vec![row]));
        };
        let minor = n as i64 * scale;
        let url = self.payments().topup_url(c.user_id, minor);
        let balance = self.store().balance(c.user_id).await?;
        Ok(Reply::with(
            t::topup_offer(&l, minor, balance, cur),
            vec![vec![Button::url(t::button::topup(&l), url)]],
        ))
    }
}

/// Whole units of the currency covering `minor` (at least 1).
fn topup_units(minor: i64, c: crate::domain::Currency) -> u32 {
    let scale = 10i64.pow(c.minor_digits());
    (minor.max(1) + scale - 1).div_euclid(scale).clamp(1, 1_000_000) as u32
}
