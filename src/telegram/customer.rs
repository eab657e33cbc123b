//! Customer handlers: start, catalogue (categories → products, paged; browsing replaces the
//! pressed message rather than adding one), product card, buy,
//! pre-order with consent, pay from balance, cancel, orders, balance, language, and free
//! text to the consultant.

use super::Telegram;
use super::bot::Ctx;
use crate::ai::{Button, ButtonAction, Customer};
use crate::callback::Callback;
use crate::domain::{Availability, OrderKind, OrderStatus, Product, ProductId};
use crate::error::Error;
use crate::queue::JobError;
use crate::store::orders::OrderFilter;
use crate::texts::Lang;
use crate::texts::bot::{self as t, button};
use std::collections::{BTreeSet, HashMap};

/// Buttons per catalogue page.
pub const PAGE: usize = 8;

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// A "◀️ page ▶️" row for `count` items (none when one page).
fn nav(page: usize, pages: usize, to: impl Fn(u16) -> Callback) -> Vec<Button> {
    let mut row = Vec::new();
    if page > 0 {
        row.push(Button::callback(button::prev(), to((page - 1) as u16).in_place()));
    }
    if page + 1 < pages {
        row.push(Button::callback(button::next(), to((page + 1) as u16).in_place()));
    }
    row
}

impl Telegram {
    pub(crate) async fn start(&self, c: &Ctx) -> Result<(), JobError> {
        let s = self.settings();
        let mut rows =
            vec![vec![Button::callback(button::catalog(c.lang), Callback::Catalog { cat: 0, page: 0 })]];
        if let Some(url) = s.mini_app_url.as_ref().filter(|_| c.private) {
            rows.push(vec![Button {
                label: button::open_shop(c.lang).into(),
                action: ButtonAction::WebApp(url.clone()),
            }]);
        }
        self.html(c, t::greeting(c.lang, &s.shop_name, &c.first_name), rows).await
    }

    /// Active products with their availability, by category (sorted; "" = no category).
    async fn shelves(
        &self,
    ) -> Result<(Vec<String>, HashMap<String, Vec<(Product, Availability)>>), JobError> {
        let products = self.store().products().await?;
        let avail: HashMap<ProductId, Availability> = self
            .store()
            .available_stock_with_discounts()
            .await?
            .into_iter()
            .map(|a| (a.product_id.clone(), a))
            .collect();
        let mut by_cat: HashMap<String, Vec<(Product, Availability)>> = HashMap::new();
        for p in products.into_iter().filter(|p| p.active) {
            if let Some(a) = avail.get(&p.id).cloned() {
                by_cat.entry(p.category.trim().to_string()).or_default().push((p, a));
            }
        }
        for list in by_cat.values_mut() {
            list.sort_by_key(|a| a.0.title.to_lowercase());
        }
        let cats: BTreeSet<String> = by_cat.keys().cloned().collect();
        // Named categories first, the unnamed one last.
        let mut cats: Vec<String> = cats.into_iter().filter(|c| !c.is_empty()).collect();
        if by_cat.contains_key("") {
            cats.push(String::new());
        }
        Ok((cats, by_cat))
    }

    /// `cat` 0: the list of categories (or the products, when there is one category);
    /// `cat` n: the products of the n-th category.
    pub(crate) async fn catalog(&self, c: &Ctx, cat: u16, page: u16) -> Result<(), JobError> {
        let (cats, mut by_cat) = self.shelves().await?;
        if cats.is_empty() {
            return self.text(c, t::catalog_empty(c.lang)).await;
        }
        let l = c.lang;
        let cat_idx = match cat {
            0 if cats.len() == 1 => Some(0),
            0 => None,
            n if (n as usize) <= cats.len() => Some(n as usize - 1),
            _ => None,
        };
        let Some(ci) = cat_idx else {
            let pages = cats.len().div_ceil(PAGE);
            let page = (page as usize).min(pages - 1);
            let mut rows: Vec<Vec<Button>> = cats
                .iter()
                .enumerate()
                .skip(page * PAGE)
                .take(PAGE)
                .map(|(i, name)| {
                    let label =
                        if name.is_empty() { t::other_category(l).to_string() } else { short(name, 40) };
                    let n = by_cat.get(name).map(Vec::len).unwrap_or(0);
                    vec![Button::callback(
                        format!("{label} ({n})"),
                        Callback::Catalog { cat: (i + 1) as u16, page: 0 }.in_place(),
                    )]
                })
                .collect();
            let nav = nav(page, pages, |p| Callback::Catalog { cat: 0, page: p });
            if !nav.is_empty() {
                rows.push(nav);
            }
            return self.html(c, t::categories(l), rows).await;
        };
        let name = &cats[ci];
        let items = by_cat.remove(name).unwrap_or_default();
        let pages = items.len().div_ceil(PAGE).max(1);
        let page = (page as usize).min(pages - 1);
        let mut rows: Vec<Vec<Button>> = items
            .iter()
            .skip(page * PAGE)
            .take(PAGE)
            .map(|(p, a)| {
                let mark = if a.available > 0 {
                    ""
                } else if a.can_fulfill {
                    "🕒 "
                } else {
                    "❌ "
                };
                let label = format!(
                    "{mark}{} — {}",
                    short(&p.title, 36),
                    t::price_short(a.final_price, a.discount_percent, a.currency)
                );
                vec![Button::callback(label, Callback::Product(p.id.clone()).in_place())]
            })
            .collect();
        let cat_no = (ci + 1) as u16;
        let nav = nav(page, pages, |p| Callback::Catalog { cat: cat_no, page: p });
        if !nav.is_empty() {
            rows.push(nav);
        }
        if cats.len() > 1 {
            let all = Callback::Catalog { cat: 0, page: 0 }.in_place();
            rows.push(vec![Button::callback(button::categories(l), all)]);
        }
        let title = if name.is_empty() && cats.len() > 1 { t::other_category(l) } else { name.as_str() };
        self.html(c, t::products_page(l, title, page, pages), rows).await
    }

    pub(crate) async fn product_card(&self, c: &Ctx, id: &ProductId) -> Result<(), JobError> {
        let l = c.lang;
        let p = match self.store().product(id.clone()).await {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return self.text(c, t::not_found(l)).await,
            Err(e) => return Err(e.into()),
        };
        let a = self.store().availability(id.clone()).await?;
        let mut rows = Vec::new();
        if p.active && a.available > 0 {
            rows.push(vec![Button::callback(button::buy(l), Callback::Buy(p.id.clone()))]);
        } else if p.can_preorder() {
            rows.push(vec![Button::callback(button::preorder(l), Callback::PreOrder(p.id.clone()))]);
        }
        rows.push(vec![Button::callback(button::back(l), Callback::Catalog { cat: 0, page: 0 }.in_place())]);
        self.html(c, t::product_card(l, &p, a.available, self.store().now()), rows).await
    }

    /// A pending order of this user for this product that can still be paid (a second tap
    /// on Buy, or this update processed again, shows it instead of holding another item).
    async fn live_order(
        &self,
        c: &Ctx,
        id: &ProductId,
        status: OrderStatus,
    ) -> Result<Option<crate::domain::Order>, JobError> {
        let f = OrderFilter { status: Some(status), user: Some(c.user_id), before: None, limit: Some(20) };
        let now = self.store().now();
        Ok(self
            .store()
            .orders(f)
            .await?
            .into_iter()
            .find(|o| &o.product_id == id && o.expires_at.is_some_and(|t| t > now)))
    }

    pub(crate) async fn buy(&self, c: &Ctx, id: &ProductId) -> Result<(), JobError> {
        if let Some(o) = self.live_order(c, id, OrderStatus::Reserved).await? {
            return self.send_offer(c, &o).await;
        }
        let (user, pid, ttl) = (c.user_id, id.clone(), self.settings().reservation_ttl_ms);
        let r = self
            .store()
            .write(move |tx| crate::store::orders::reserve_product_for_purchase(tx, user, &pid, 1, ttl))
            .await;
        match r {
            Ok(o) => {
                metrics::counter!("lavka_orders_created_total", "kind" => "instant").increment(1);
                self.send_offer(c, &o).await
            }
            Err(Error::OutOfStock(_)) => {
                let p = self.store().product(id.clone()).await?;
                if p.can_preorder() {
                    self.preorder_consent(c, id).await
                } else {
                    self.text(c, t::out_of_stock(c.lang, &p.title)).await
                }
            }
            Err(Error::NotFound(_)) => self.text(c, t::not_found(c.lang)).await,
            Err(Error::Conflict(_)) => self.text(c, t::not_on_sale(c.lang)).await,
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn preorder_consent(&self, c: &Ctx, id: &ProductId) -> Result<(), JobError> {
        let l = c.lang;
        let p = match self.store().product(id.clone()).await {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return self.text(c, t::not_found(l)).await,
            Err(e) => return Err(e.into()),
        };
        let Some(hours) = p.fulfillment_hours.filter(|_| p.can_preorder()) else {
            return self.text(c, t::out_of_stock(l, &p.title)).await;
        };
        let price = t::price_short(
            p.final_price_at(self.store().now()),
            p.discount_at(self.store().now()),
            p.currency,
        );
        let rows = vec![
            vec![Button::callback(button::agree(l), Callback::ConfirmPreOrder(p.id.clone()))],
            vec![Button::callback(button::back(l), Callback::Product(p.id.clone()))],
        ];
        self.html(c, t::preorder_consent(l, &p.title, hours, &price), rows).await
    }

    pub(crate) async fn confirm_preorder(&self, c: &Ctx, id: &ProductId) -> Result<(), JobError> {
        if let Some(o) = self.live_order(c, id, OrderStatus::AwaitingPayment).await? {
            return self.send_offer(c, &o).await;
        }
        let (user, pid, ttl) = (c.user_id, id.clone(), self.settings().reservation_ttl_ms);
        let r = self
            .store()
            .write(move |tx| {
                crate::store::orders::create_order_with_availability_check(
                    tx,
                    user,
                    &pid,
                    1,
                    OrderKind::Prepaid,
                    ttl,
                )
            })
            .await;
        match r {
            Ok(o) => {
                metrics::counter!("lavka_orders_created_total", "kind" => "prepaid").increment(1);
                self.send_offer(c, &o).await
            }
            // Back in stock meanwhile (or no longer pre-orderable): the card says what is possible.
            Err(Error::Conflict(_)) => self.product_card(c, id).await,
            Err(Error::NotFound(_)) => self.text(c, t::not_found(c.lang)).await,
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn pay_balance(&self, c: &Ctx, order_id: u64) -> Result<(), JobError> {
        let l = c.lang;
        let user = c.user_id;
        let r =
            self.store().write(move |tx| crate::store::orders::pay_from_balance(tx, order_id, user)).await;
        match r {
            Ok(res) => self.text(c, t::paid_from_balance(l, &res.order, res.balance.unwrap_or(0))).await,
            Err(Error::InsufficientBalance { need, have }) => {
                let o = self.store().order(order_id).await?;
                self.text(c, t::insufficient_balance(l, need, have, o.currency)).await
            }
            Err(Error::NotFound(_)) => self.text(c, t::order_not_found(l)).await,
            Err(Error::Conflict(_)) => {
                let o = self.store().order(order_id).await?;
                let by_balance = o.payment.as_ref().is_some_and(|p| p.provider == "balance");
                if by_balance && o.user_id == user {
                    // This press was already paid (the update ran again): say so again.
                    let bal = self.store().balance(user).await?;
                    self.text(c, t::paid_from_balance(l, &o, bal)).await
                } else {
                    self.text(c, t::cannot_pay(l, order_id, o.status)).await
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn cancel(&self, c: &Ctx, order_id: u64) -> Result<(), JobError> {
        let user = c.user_id;
        match self.store().write(move |tx| crate::store::orders::cancel_pending(tx, order_id, user)).await {
            Ok(o) => self.text(c, t::cancelled(c.lang, o.id)).await,
            Err(Error::NotFound(_)) => self.text(c, t::order_not_found(c.lang)).await,
            Err(Error::Conflict(_)) => {
                let o = self.store().order(order_id).await?;
                self.text(c, t::cannot_pay(c.lang, order_id, o.status)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn show_order(&self, c: &Ctx, order_id: u64) -> Result<(), JobError> {
        let o = match self.store().order(order_id).await {
            Ok(o) if o.user_id == c.user_id => o,
            Ok(_) | Err(Error::NotFound(_)) => return self.text(c, t::order_not_found(c.lang)).await,
            Err(e) => return Err(e.into()),
        };
        let live = o.status.is_pending_payment() && o.expires_at.is_some_and(|t| t > self.store().now());
        if live {
            return self.send_offer(c, &o).await;
        }
        self.html(c, t::order(c.lang, &o), Vec::new()).await
    }

    pub(crate) async fn orders(&self, c: &Ctx) -> Result<(), JobError> {
        let f = OrderFilter { status: None, user: Some(c.user_id), before: None, limit: Some(10) };
        let orders = self.store().orders(f).await?;
        let rows = orders
            .iter()
            .map(|o| {
                vec![Button::callback(format!("#{} {}", o.id, short(&o.title, 30)), Callback::Order(o.id))]
            })
            .collect();
        self.html(c, t::orders(c.lang, &orders), rows).await
    }

    pub(crate) async fn balance(&self, c: &Ctx) -> Result<(), JobError> {
        let amount = self.store().balance(c.user_id).await?;
        let ledger = self.store().ledger(c.user_id).await?;
        let cur = ledger.first().map(|e| e.currency).unwrap_or(self.settings().currency);
        self.text(c, t::balance(c.lang, amount, cur)).await
    }

    pub(crate) async fn set_lang(&self, c: &Ctx, args: &str) -> Result<(), JobError> {
        let Some(l) = Lang::parse(args.trim().to_ascii_lowercase().as_str()) else {
            return self.text(c, t::lang_usage(c.lang)).await;
        };
        let (user, code) = (c.user_id, args.trim().to_ascii_lowercase());
        self.store().write(move |tx| crate::store::telegram::set_lang(tx, user, Some(&code))).await?;
        let c2 = Ctx { lang: l, ..c.clone() };
        self.text(&c2, t::lang_set(l)).await
    }

    /// Free text goes to the consultant; its reply text and buttons are shown as they are,
    /// and an offer it made gets the payment buttons.
    pub(crate) async fn consult(&self, c: &Ctx, text: &str) -> Result<(), JobError> {
        let customer = Customer {
            user_id: c.user_id,
            chat_id: c.chat_id,
            lang: c.lang,
            first_name: Some(c.first_name.clone()),
        };
        let reply = match self.inner.consult.reply(&customer, text).await {
            Ok(r) => r,
            Err(e) if e.is_retryable() => return Err(JobError::Retry(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "the consultant failed");
                return self.text(c, t::consultant_down(c.lang)).await;
            }
        };
        let mut buttons = reply.buttons;
        if let Some(offer) = &reply.offer {
            let o = self.store().order(offer.order_id).await?;
            if o.user_id == c.user_id && o.status.is_pending_payment() {
                let have: Vec<String> = buttons
                    .iter()
                    .flatten()
                    .filter_map(|b| match &b.action {
                        ButtonAction::Callback(cb) => Some(cb.encode()),
                        _ => None,
                    })
                    .collect();
                for row in self.payment_buttons(c.lang, &o) {
                    let dup = row.iter().any(
                        |b| matches!(&b.action, ButtonAction::Callback(cb) if have.contains(&cb.encode())),
                    );
                    if !dup {
                        buttons.push(row);
                    }
                }
            }
        }
        let text = if reply.text.trim().is_empty() {
            t::consultant_fallback(c.lang, !buttons.is_empty())
        } else {
            reply.text
        };
        self.say(c, crate::messenger::Outgoing { chat_id: c.chat_id, text, html: false, buttons }).await
    }
}
