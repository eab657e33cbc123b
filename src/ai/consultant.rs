//! The consultant: shop actions validated against the store, the offline consultant (search
//! plus simple intents), button presses, and the hand-off to the model ([`super::llm`]) when
//! a Gemini key is configured.

use super::llm::{Decision, Llm};
use super::{Button, Consult, Customer, Offer, OfferKind, Reply};
use crate::callback::Callback;
use crate::config::AiConfig;
use crate::domain::{Availability, Currency, OrderKind, OrderStatus, ProductId};
use crate::error::{Error, Result};
use crate::search::{Hit, Search};
use crate::store::Store;
use crate::store::conversations::{self, Conversation, Role, Turn};
use crate::store::orders::OrderFilter;
use crate::texts::Lang;
use crate::texts::consultant as tx;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

/// Products shown per answer.
const PAGE: usize = 3;
/// Longest customer message considered (characters).
const MAX_INPUT: usize = 1000;

/// Makes payment links for offers (the payment providers, issue 6).
pub trait PayLinks: Send + Sync {
    fn link(&self, offer: &Offer) -> Option<String>;
    /// A page that tops up `user`'s balance by `amount` (minor units).
    fn topup_link(&self, user: i64, amount: i64) -> Option<String>;
}

/// The consultant. Cheap to clone.
#[derive(Clone)]
pub struct Consultant {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    search: Search,
    cfg: AiConfig,
    shop_name: String,
    currency: Currency,
    ttl_ms: i64,
    llm: Option<Llm>,
    limiter: Mutex<Limiter>,
    pay_links: RwLock<Option<Arc<dyn PayLinks>>>,
}

/// Everything the consultant needs to know about the shop.
pub struct Setup {
    pub store: Store,
    pub search: Search,
    pub ai: AiConfig,
    pub shop_name: String,
    pub currency: Currency,
    pub reservation_ttl_ms: i64,
}

impl Consultant {
    /// The model is used when `ai.gemini_api_key` is set; otherwise the offline consultant
    /// answers everything.
    pub fn new(s: Setup) -> Result<Consultant> {
        let llm = if s.ai.gemini_api_key.is_empty() {
            None
        } else {
            Some(Llm::new(&s.ai, s.store.clone(), s.search.clone(), s.shop_name.clone())?)
        };
        Ok(Consultant {
            inner: Arc::new(Inner {
                store: s.store,
                search: s.search,
                cfg: s.ai,
                shop_name: s.shop_name,
                currency: s.currency,
                ttl_ms: s.reservation_ttl_ms,
                llm,
                limiter: Mutex::new(Limiter::default()),
                pay_links: RwLock::new(None),
            }),
        })
    }

    /// Whether answers come from the model (else offline).
    pub fn online(&self) -> bool {
        self.inner.llm.is_some()
    }

    pub fn llm(&self) -> Option<&Llm> {
        self.inner.llm.as_ref()
    }

    pub fn set_pay_links(&self, links: Arc<dyn PayLinks>) {
        if let Ok(mut l) = self.inner.pay_links.write() {
            *l = Some(links);
        }
    }

    fn lang_of(&self, c: &Customer, text: &str) -> Lang {
        detect_lang(text).unwrap_or(c.lang)
    }

    /// Answers a customer's message.
    pub async fn answer(&self, c: &Customer, text: &str) -> Result<Reply> {
        let text: String = text.trim().chars().take(MAX_INPUT).collect();
        let lang = self.lang_of(c, &text);
        let mut conv = self.inner.store.conversation(c.user_id).await?;
        let reply = if text.is_empty() {
            self.greeting(c, lang)
        } else if let Some(llm) = &self.inner.llm {
            let now = self.inner.store.now();
            let allowed = self
                .inner
                .limiter
                .lock()
                .map(|mut l| l.allow(c.user_id, now, &self.inner.cfg))
                .unwrap_or(true);
            if allowed {
                match llm.decide(c, lang, &conv, &text).await {
                    Ok(d) => {
                        tracing::info!(user = c.user_id, action = %d.action, thought = %d.thought, "consultant decision");
                        self.apply(c, lang, &mut conv, d, &text).await?
                    }
                    Err(e) => {
                        tracing::warn!(user = c.user_id, error = %e, "the model did not answer; the offline consultant answers");
                        metrics::counter!("lavka_ai_fallbacks_total", "reason" => e.kind()).increment(1);
                        self.offline(c, lang, &mut conv, &text).await?
                    }
                }
            } else {
                metrics::counter!("lavka_ai_rate_limited_total").increment(1);
                let mut r = self.offline(c, lang, &mut conv, &text).await?;
                r.text = format!("{}\n\n{}", tx::rate_limited(lang), r.text);
                r
            }
        } else {
            self.offline(c, lang, &mut conv, &text).await?
        };
        self.remember(c, conv, &text, &reply).await?;
        Ok(reply)
    }

    async fn remember(&self, c: &Customer, mut conv: Conversation, text: &str, reply: &Reply) -> Result<()> {
        let now = self.inner.store.now();
        conv.turns.push(Turn { role: Role::User, text: text.to_string(), at: now });
        conv.turns.push(Turn { role: Role::Assistant, text: reply.text.clone(), at: now });
        let keep = self.inner.cfg.history_turns;
        let user = c.user_id;
        self.inner.store.write(move |t| conversations::put_conversation(t, user, conv.clone(), keep)).await
    }

    /// Forgets a customer's conversation (`/reset`, tests).
    pub async fn forget(&self, user: i64) -> Result<bool> {
        self.inner.store.write(move |t| conversations::clear_conversation(t, user)).await
    }

    /// Handles a button press.
    pub async fn press(&self, c: &Customer, cb: &Callback) -> Result<Reply> {
        let lang = c.lang;
        let mut conv = self.inner.store.conversation(c.user_id).await?;
        let reply = match cb.unwrap_in_place().0 {
            Callback::InPlace(_) => return Err(Error::bad("a nested in-place button")),
            Callback::Product(id) => self.product_card(lang, &mut conv, id).await?,
            Callback::Buy(id) => self.offer_payment(c, lang, &mut conv, id, 1).await?,
            Callback::PreOrder(id) => self.ask_preorder(lang, &mut conv, id).await?,
            Callback::ConfirmPreOrder(id) => self.confirm_preorder(c, lang, &mut conv, id).await?,
            Callback::PayBalance(order) => self.pay_balance(c, lang, *order).await?,
            Callback::TopUp(n) => self.topup(c, lang, Some(*n)).await?,
            Callback::PayStars(_) => text_reply(tx::t(
                lang,
                "Оплата звёздами Telegram доступна в чате с ботом.",
                "Paying with Telegram Stars works in the chat with the bot.",
            )),
            Callback::Cancel(order) => {
                let (user, id) = (c.user_id, *order);
                match self.inner.store.write(move |t| crate::store::orders::cancel_pending(t, id, user)).await
                {
                    Ok(o) => text_reply(tx::cancelled(lang, o.id)),
                    Err(Error::Conflict(m)) | Err(Error::NotFound(m)) => text_reply(m),
                    Err(e) => return Err(e),
                }
            }
            Callback::Order(order) => {
                let o = self.inner.store.order(*order).await;
                match o {
                    Ok(o) if o.user_id == c.user_id => text_reply(tx::order(lang, &o)),
                    Ok(_) | Err(Error::NotFound(_)) => text_reply(tx::orders(lang, &[])),
                    Err(e) => return Err(e),
                }
            }
            Callback::Catalog { cat, page } => self.catalog(lang, *cat, *page).await?,
            Callback::More(_) => self.more(lang, &mut conv).await?,
        };
        let keep = self.inner.cfg.history_turns;
        let user = c.user_id;
        self.inner.store.write(move |t| conversations::put_conversation(t, user, conv.clone(), keep)).await?;
        Ok(reply)
    }

    /// A top-up link for `amount` units of the shop currency, or the choice of amounts.
    pub async fn topup(&self, c: &Customer, lang: Lang, amount: Option<u32>) -> Result<Reply> {
        let links = self.inner.pay_links.read().ok().and_then(|l| l.clone());
        let Some(links) = links else {
            return Ok(text_reply(tx::topup_unavailable(lang)));
        };
        let cur = self.inner.currency;
        let Some(n) = amount.filter(|n| (1..=1_000_000).contains(n)) else {
            let row = [100u32, 500, 1000, 5000]
                .iter()
                .map(|n| {
                    Button::callback(
                        crate::domain::Money::new(*n as i64 * 10i64.pow(cur.minor_digits()), cur).to_string(),
                        Callback::TopUp(*n),
                    )
                })
                .collect();
            return Ok(Reply { text: tx::topup_ask(lang), buttons: vec![row], offer: None });
        };
        let minor = n as i64 * 10i64.pow(cur.minor_digits());
        let Some(url) = links.topup_link(c.user_id, minor) else {
            return Ok(text_reply(tx::topup_unavailable(lang)));
        };
        let balance = self.inner.store.balance(c.user_id).await?;
        Ok(Reply {
            text: tx::topup_offer(lang, minor, balance, cur),
            buttons: vec![vec![Button::url(tx::topup_button(lang), url)]],
            offer: None,
        })
    }

    fn greeting(&self, c: &Customer, lang: Lang) -> Reply {
        Reply {
            text: tx::greeting(lang, &self.inner.shop_name, c.first_name.as_deref()),
            buttons: vec![vec![Button::callback(
                tx::t(lang, "Каталог", "Catalogue"),
                Callback::Catalog { cat: 0, page: 0 },
            )]],
            offer: None,
        }
    }

    /// The offline consultant: intents by simple rules, everything else is a search.
    pub async fn offline(
        &self,
        c: &Customer,
        lang: Lang,
        conv: &mut Conversation,
        text: &str,
    ) -> Result<Reply> {
        let norm = normalize(text);
        match intent(&norm) {
            Intent::Greeting => Ok(self.greeting(c, lang)),
            Intent::Orders => self.orders(c, lang).await,
            Intent::Balance => {
                let b = self.inner.store.balance(c.user_id).await?;
                Ok(text_reply(tx::balance(lang, b, self.inner.currency)))
            }
            Intent::TopUp(amount) => self.topup(c, lang, amount).await,
            Intent::Agree => {
                if let Some(p) = conv.pending_preorder.clone() {
                    self.confirm_preorder(c, lang, conv, &p).await
                } else if let Some(p) = conv.focus.clone() {
                    self.offer_payment(c, lang, conv, &p, 1).await
                } else {
                    Ok(text_reply(tx::ask_what(lang)))
                }
            }
            Intent::More => self.more(lang, conv).await,
            Intent::Buy(rest) => {
                if rest.is_empty() {
                    return match conv.focus.clone() {
                        Some(p) => self.offer_payment(c, lang, conv, &p, 1).await,
                        None => Ok(text_reply(tx::ask_what(lang))),
                    };
                }
                let hits = self.relevant(&rest).await?;
                let clear = match hits.as_slice() {
                    [_] => true,
                    [a, b, ..] => a.score - b.score >= 0.03,
                    [] => false,
                };
                if clear {
                    self.offer_payment(c, lang, conv, &hits[0].id, 1).await
                } else {
                    self.show(lang, conv, &rest, hits, 0, Sort::Relevance).await
                }
            }
            Intent::PreOrder(rest) => {
                let hits = self.relevant(if rest.is_empty() { text } else { &rest }).await?;
                self.show(lang, conv, text, hits, 0, Sort::PreOrderFirst).await
            }
            Intent::Cheaper(rest) => {
                let q = if rest.is_empty() { conv.last_query.clone().unwrap_or_default() } else { rest };
                // The cheapest among the close matches, not among everything the vectors return.
                let mut hits = self.relevant(&q).await?;
                if let Some(top) = hits.first().map(|h| h.score) {
                    hits.retain(|h| h.score >= top - 0.04);
                    hits.truncate(6);
                }
                self.show(lang, conv, &q, hits, 0, Sort::Cheapest).await
            }
            Intent::Search => {
                let hits = self.relevant(text).await?;
                self.show(lang, conv, text, hits, 0, Sort::Relevance).await
            }
        }
    }

    /// Search results worth showing: the vector list always returns something, so a result
    /// with no keyword match must be close in meaning.
    async fn relevant(&self, q: &str) -> Result<Vec<Hit>> {
        let hits = self.inner.search.search(q, 12).await?;
        Ok(hits
            .into_iter()
            .filter(|h| h.keyword_rank.is_some() || h.similarity.is_some_and(|s| s >= 0.80))
            .collect())
    }

    async fn show(
        &self,
        lang: Lang,
        conv: &mut Conversation,
        query: &str,
        hits: Vec<Hit>,
        skip: usize,
        sort: Sort,
    ) -> Result<Reply> {
        let mut items = Vec::new();
        for h in &hits {
            match self.inner.store.availability(h.id.clone()).await {
                Ok(a) if a.active => items.push(a),
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match sort {
            Sort::Relevance => {}
            Sort::Cheapest => items.sort_by_key(|a| a.final_price),
            Sort::PreOrderFirst => items.sort_by_key(|a| !(a.available == 0 && a.can_fulfill)),
        }
        conv.last_query = Some(query.to_string());
        if skip == 0 {
            conv.shown.clear();
        }
        let page: Vec<Availability> = items.iter().skip(skip).take(PAGE).cloned().collect();
        if page.is_empty() {
            if skip > 0 {
                return Ok(text_reply(tx::no_more(lang)));
            }
            let cats = self.categories().await?;
            let mut r = text_reply(tx::nothing_found(lang, &cats));
            r.buttons = vec![vec![Button::callback(
                tx::t(lang, "Каталог", "Catalogue"),
                Callback::Catalog { cat: 0, page: 0 },
            )]];
            return Ok(r);
        }
        conv.focus = Some(page[0].product_id.clone());
        conv.shown.extend(page.iter().map(|a| a.product_id.clone()));
        let mut text = tx::found(lang, page.len());
        for (i, a) in page.iter().enumerate() {
            text.push('\n');
            text.push_str(&tx::card_line(lang, skip + i + 1, a));
        }
        let mut buttons: Vec<Vec<Button>> = page.iter().map(|a| self.product_buttons(lang, a)).collect();
        if items.len() > skip + PAGE {
            let next = ((skip + PAGE) / PAGE) as u16;
            buttons.push(vec![Button::callback(tx::more_button(lang), Callback::More(next))]);
        }
        Ok(Reply { text, buttons, offer: None })
    }

    fn product_buttons(&self, lang: Lang, a: &Availability) -> Vec<Button> {
        let mut row = Vec::new();
        if a.available > 0 {
            row.push(Button::callback(tx::buy_button(lang, a), Callback::Buy(a.product_id.clone())));
        } else if a.can_fulfill {
            row.push(Button::callback(tx::preorder_button(lang), Callback::PreOrder(a.product_id.clone())));
        }
        row.push(Button::callback(tx::details_button(lang), Callback::Product(a.product_id.clone())));
        row
    }

    async fn more(&self, lang: Lang, conv: &mut Conversation) -> Result<Reply> {
        let Some(q) = conv.last_query.clone() else {
            return Ok(text_reply(tx::ask_what(lang)));
        };
        let skip = conv.shown.len();
        let hits = self.relevant(&q).await?;
        self.show(lang, conv, &q, hits, skip, Sort::Relevance).await
    }

    /// A product card with its buttons; unknown or inactive products get a plain answer.
    pub async fn product_card(&self, lang: Lang, conv: &mut Conversation, id: &ProductId) -> Result<Reply> {
        let (a, p) = match self.live(id).await? {
            Some(x) => x,
            None => return Ok(text_reply(tx::unknown_product(lang))),
        };
        conv.focus = Some(id.clone());
        Ok(Reply {
            text: tx::card(lang, &a, &p.description),
            buttons: vec![self.product_buttons(lang, &a)],
            offer: None,
        })
    }

    /// The product and its live availability, if it exists and is on sale.
    async fn live(&self, id: &ProductId) -> Result<Option<(Availability, crate::domain::Product)>> {
        let a = match self.inner.store.availability(id.clone()).await {
            Ok(a) => a,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !a.active {
            return Ok(None);
        }
        let p = self.inner.store.product(id.clone()).await?;
        Ok(Some((a, p)))
    }

    /// Reserves `qty` items and offers payment; out of stock → the pre-order question when
    /// the product allows it, else a plain "sold out".
    pub async fn offer_payment(
        &self,
        c: &Customer,
        lang: Lang,
        conv: &mut Conversation,
        id: &ProductId,
        qty: u32,
    ) -> Result<Reply> {
        let Some((a, _)) = self.live(id).await? else {
            return Ok(text_reply(tx::unknown_product(lang)));
        };
        conv.focus = Some(id.clone());
        let (user, pid, ttl) = (c.user_id, id.clone(), self.inner.ttl_ms);
        let qty = qty.clamp(1, 10);
        let reserved = self
            .inner
            .store
            .write(move |t| crate::store::orders::reserve_product_for_purchase(t, user, &pid, qty, ttl))
            .await;
        match reserved {
            Ok(o) => {
                metrics::counter!("lavka_ai_offers_total", "kind" => "instant").increment(1);
                let now = self.inner.store.now();
                let minutes =
                    o.expires_at.map(|e| ((e - now) as f64 / 60_000.0).round() as i64).unwrap_or(0).max(1);
                let text = tx::offer_instant(lang, &o, minutes);
                let offer = Offer {
                    order_id: o.id,
                    product_id: o.product_id.clone(),
                    title: o.title.clone(),
                    kind: OfferKind::Instant,
                    amount: o.amount,
                    currency: o.currency,
                    expires_at: o.expires_at,
                    fulfillment_hours: None,
                };
                self.offer_reply(c, lang, text, offer).await
            }
            Err(Error::OutOfStock(_)) if a.can_fulfill && a.fulfillment_hours.is_some() => {
                self.ask_preorder(lang, conv, id).await
            }
            Err(Error::OutOfStock(_)) => self.sold_out(lang, conv, &a).await,
            Err(Error::Conflict(_)) => Ok(text_reply(tx::not_on_sale(lang))),
            Err(e) => Err(e),
        }
    }

    /// "Sold out" with the closest alternatives that can be bought.
    async fn sold_out(&self, lang: Lang, conv: &mut Conversation, a: &Availability) -> Result<Reply> {
        let mut hits = self.relevant(&a.title).await?;
        hits.retain(|h| h.id != a.product_id);
        let mut r = self.show(lang, conv, &a.title, hits, 0, Sort::Relevance).await?;
        r.text = if r.buttons.iter().flatten().any(|b| {
            matches!(
                b.action,
                super::ButtonAction::Callback(Callback::Buy(_))
                    | super::ButtonAction::Callback(Callback::PreOrder(_))
            )
        }) {
            format!("{}\n\n{}", tx::out_of_stock(lang, &a.title), r.text)
        } else {
            tx::out_of_stock(lang, &a.title)
        };
        Ok(r)
    }

    /// Asks consent to a prepaid pre-order (nothing is created yet).
    pub async fn ask_preorder(&self, lang: Lang, conv: &mut Conversation, id: &ProductId) -> Result<Reply> {
        let Some((a, _)) = self.live(id).await? else {
            return Ok(text_reply(tx::unknown_product(lang)));
        };
        conv.focus = Some(id.clone());
        let Some(hours) = a.fulfillment_hours.filter(|_| a.can_fulfill) else {
            return self.sold_out(lang, conv, &a).await;
        };
        conv.pending_preorder = Some(id.clone());
        Ok(Reply {
            text: tx::preorder_consent(lang, &a, hours),
            buttons: vec![vec![Button::callback(
                tx::confirm_preorder_button(lang),
                Callback::ConfirmPreOrder(id.clone()),
            )]],
            offer: None,
        })
    }

    /// The customer agreed: creates the prepaid order and offers payment.
    pub async fn confirm_preorder(
        &self,
        c: &Customer,
        lang: Lang,
        conv: &mut Conversation,
        id: &ProductId,
    ) -> Result<Reply> {
        conv.pending_preorder = None;
        let Some((a, _)) = self.live(id).await? else {
            return Ok(text_reply(tx::unknown_product(lang)));
        };
        if a.available > 0 {
            // Back in stock meanwhile: an instant purchase is better for the customer.
            return self.offer_payment(c, lang, conv, id, 1).await;
        }
        let (user, pid, ttl) = (c.user_id, id.clone(), self.inner.ttl_ms);
        let created = self
            .inner
            .store
            .write(move |t| {
                crate::store::orders::create_order_with_availability_check(
                    t,
                    user,
                    &pid,
                    1,
                    OrderKind::Prepaid,
                    ttl,
                )
            })
            .await;
        match created {
            Ok(o) => {
                metrics::counter!("lavka_ai_offers_total", "kind" => "prepaid").increment(1);
                let hours = a.fulfillment_hours.unwrap_or_default();
                let offer = Offer {
                    order_id: o.id,
                    product_id: o.product_id.clone(),
                    title: o.title.clone(),
                    kind: OfferKind::Prepaid,
                    amount: o.amount,
                    currency: o.currency,
                    expires_at: o.expires_at,
                    fulfillment_hours: a.fulfillment_hours,
                };
                self.offer_reply(c, lang, tx::offer_prepaid(lang, &o, hours), offer).await
            }
            Err(Error::Conflict(_)) | Err(Error::OutOfStock(_)) => {
                Ok(text_reply(tx::out_of_stock(lang, &a.title)))
            }
            Err(e) => Err(e),
        }
    }

    async fn offer_reply(&self, c: &Customer, lang: Lang, text: String, offer: Offer) -> Result<Reply> {
        let mut row = Vec::new();
        let link = self.inner.pay_links.read().ok().and_then(|l| l.as_ref().and_then(|l| l.link(&offer)));
        if let Some(url) = link {
            row.push(Button::url(tx::pay_button(lang), url));
        }
        let balance = self.inner.store.balance(c.user_id).await?;
        let mut rows = vec![];
        if balance >= offer.amount {
            rows.push(vec![Button::callback(
                tx::pay_balance_button(lang, balance, offer.currency),
                Callback::PayBalance(offer.order_id),
            )]);
        }
        row.push(Button::callback(tx::cancel_button(lang), Callback::Cancel(offer.order_id)));
        rows.insert(0, row);
        Ok(Reply { text, buttons: rows, offer: Some(offer) })
    }

    /// Pays a pending order from the balance (the delivery job sends the item).
    pub async fn pay_balance(&self, c: &Customer, lang: Lang, order: u64) -> Result<Reply> {
        let user = c.user_id;
        match self.inner.store.write(move |t| crate::store::orders::pay_from_balance(t, order, user)).await {
            Ok(r) => Ok(text_reply(tx::paid_from_balance(lang, &r.order))),
            Err(Error::InsufficientBalance { need, have }) => {
                Ok(text_reply(tx::balance_short(lang, need, have, self.inner.currency)))
            }
            Err(Error::Conflict(m)) => Ok(text_reply(m)),
            Err(Error::NotFound(_)) => Ok(text_reply(tx::orders(lang, &[]))),
            Err(e) => Err(e),
        }
    }

    pub async fn orders(&self, c: &Customer, lang: Lang) -> Result<Reply> {
        let orders = self
            .inner
            .store
            .orders(OrderFilter { user: Some(c.user_id), limit: Some(10), ..OrderFilter::default() })
            .await?;
        let mut buttons = Vec::new();
        for o in orders.iter().filter(|o| o.status.is_pending_payment()).take(3) {
            buttons.push(vec![Button::callback(
                format!("{} #{}", tx::cancel_button(lang), o.id),
                Callback::Cancel(o.id),
            )]);
        }
        let shown: Vec<_> = orders.into_iter().filter(|o| o.status != OrderStatus::Expired).collect();
        Ok(Reply { text: tx::orders(lang, &shown), buttons, offer: None })
    }

    async fn categories(&self) -> Result<Vec<String>> {
        Ok(categories_of(&self.inner.store.products().await?))
    }

    /// The catalogue: categories (cat 0), or one category's products, `PAGE * 2` per page.
    pub async fn catalog(&self, lang: Lang, cat: u16, page: u16) -> Result<Reply> {
        let products = self.inner.store.products().await?;
        let cats = categories_of(&products);
        if cat == 0 || cat as usize > cats.len() {
            let buttons = cats
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    vec![Button::callback(c.clone(), Callback::Catalog { cat: i as u16 + 1, page: 0 })]
                })
                .collect();
            return Ok(Reply {
                text: tx::t(lang, "Разделы каталога:", "Catalogue sections:"),
                buttons,
                offer: None,
            });
        }
        let name = &cats[cat as usize - 1];
        let items: Vec<&crate::domain::Product> =
            products.iter().filter(|p| p.active && &p.category == name).collect();
        let per = PAGE * 2;
        let start = page as usize * per;
        let mut text = format!("{name}:");
        let mut buttons = Vec::new();
        // Live availability for the page only, not for the whole catalogue.
        for (i, p) in items.iter().skip(start).take(per).enumerate() {
            let a = self.inner.store.availability(p.id.clone()).await?;
            text.push('\n');
            text.push_str(&tx::card_line(lang, start + i + 1, &a));
            buttons.push(vec![Button::callback(
                a.title.chars().take(60).collect::<String>(),
                Callback::Product(a.product_id.clone()),
            )]);
        }
        let mut nav = Vec::new();
        if page > 0 {
            nav.push(Button::callback("◀", Callback::Catalog { cat, page: page - 1 }));
        }
        nav.push(Button::callback(tx::t(lang, "Разделы", "Sections"), Callback::Catalog { cat: 0, page: 0 }));
        if items.len() > start + per {
            nav.push(Button::callback("▶", Callback::Catalog { cat, page: page + 1 }));
        }
        buttons.push(nav);
        Ok(Reply { text, buttons, offer: None })
    }

    /// Turns the model's decision into a reply, validating every part against the store.
    async fn apply(
        &self,
        c: &Customer,
        lang: Lang,
        conv: &mut Conversation,
        d: Decision,
        text: &str,
    ) -> Result<Reply> {
        let said = d.reply_text.trim().to_string();
        let pid = d.product_id.as_deref().and_then(|p| ProductId::parse(p).ok());
        let mut r = match (d.action.as_str(), pid) {
            ("offer_payment", Some(p)) => {
                self.offer_payment(c, lang, conv, &p, d.quantity.unwrap_or(1)).await?
            }
            ("offer_prepaid", Some(p)) => self.ask_preorder(lang, conv, &p).await?,
            ("confirm_prepaid", Some(p)) => {
                if conv.pending_preorder.as_ref() == Some(&p) {
                    self.confirm_preorder(c, lang, conv, &p).await?
                } else {
                    // Consent must be asked by code before an order is created.
                    self.ask_preorder(lang, conv, &p).await?
                }
            }
            ("show_orders", _) => self.orders(c, lang).await?,
            ("show_balance", _) => {
                let b = self.inner.store.balance(c.user_id).await?;
                text_reply(tx::balance(lang, b, self.inner.currency))
            }
            ("show_products", p) => {
                let mut ids: Vec<ProductId> =
                    d.product_ids.iter().filter_map(|s| ProductId::parse(s).ok()).collect();
                if let Some(p) = p
                    && !ids.contains(&p)
                {
                    ids.insert(0, p);
                }
                let hits: Vec<Hit> = ids
                    .into_iter()
                    .take(PAGE)
                    .map(|id| Hit {
                        id,
                        title: String::new(),
                        score: 0.0,
                        keyword_rank: None,
                        vector_rank: None,
                        similarity: None,
                    })
                    .collect();
                self.show(lang, conv, text, hits, 0, Sort::Relevance).await?
            }
            ("offer_payment" | "offer_prepaid" | "confirm_prepaid", None) => text_reply(tx::ask_what(lang)),
            _ => Reply::default(),
        };
        // The model's words first, then what the code established (prices, orders).
        r.text = match (said.is_empty(), r.text.is_empty()) {
            (false, false) => format!("{said}\n\n{}", r.text),
            (false, true) => said,
            (true, false) => r.text,
            (true, true) => return self.offline(c, lang, conv, text).await,
        };
        Ok(r)
    }
}

#[async_trait::async_trait]
impl Consult for Consultant {
    async fn reply(&self, customer: &Customer, text: &str) -> Result<Reply> {
        self.answer(customer, text).await
    }
}

/// The categories of the products on sale, sorted, once each.
fn categories_of(products: &[crate::domain::Product]) -> Vec<String> {
    let mut cats: Vec<String> = products.iter().filter(|p| p.active).map(|p| p.category.clone()).collect();
    cats.sort();
    cats.dedup();
    cats
}

fn text_reply(text: String) -> Reply {
    Reply { text, buttons: Vec::new(), offer: None }
}

#[derive(Clone, Copy)]
enum Sort {
    Relevance,
    Cheapest,
    PreOrderFirst,
}

/// Russian when the text has Cyrillic letters, English when it has only Latin ones.
pub fn detect_lang(text: &str) -> Option<Lang> {
    let cyr = text.chars().filter(|c| matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё')).count();
    let lat = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if cyr > 0 && cyr * 2 >= lat.min(cyr * 4) {
        Some(Lang::Ru)
    } else if lat > 0 && cyr == 0 {
        Some(Lang::En)
    } else if cyr > 0 {
        Some(Lang::Ru)
    } else {
        None
    }
}

/// Lower case, `ё` → `е`, punctuation to spaces, single spaces.
pub fn normalize(text: &str) -> String {
    let lower = text.to_lowercase().replace('ё', "е");
    let cleaned: String =
        lower.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '$' { c } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What an offline message asks for.
#[derive(Debug, PartialEq)]
pub enum Intent {
    Greeting,
    Orders,
    Balance,
    /// Top up the balance (by this many units of the shop currency, when said).
    TopUp(Option<u32>),
    Agree,
    More,
    /// Buy, with the rest of the message (what to buy; may be empty).
    Buy(String),
    PreOrder(String),
    Cheaper(String),
    Search,
}

const GREETINGS: &[&str] = &[
    "привет",
    "здравствуйте",
    "здравствуй",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "hello",
    "hi",
    "hey",
    "start",
    "help",
    "помощь",
    "помоги",
    "меню",
    "menu",
    "что умеешь",
    "что ты умеешь",
    "что вы умеете",
    "what can you do",
];
const AGREE: &[&str] = &[
    "да",
    "давай",
    "давайте",
    "ок",
    "окей",
    "ok",
    "okay",
    "согласен",
    "согласна",
    "хорошо",
    "конечно",
    "оформляй",
    "оформить",
    "оформляем",
    "беру",
    "да беру",
    "да давай",
    "yes",
    "yeah",
    "yep",
    "sure",
    "agree",
    "i agree",
    "go ahead",
    "confirm",
    "да конечно",
    "подтверждаю",
];
const MORE: &[&str] = &[
    "еще",
    "ещё",
    "more",
    "другие",
    "что еще",
    "покажи еще",
    "еще варианты",
    "show more",
    "другие варианты",
    "something else",
    "а еще",
    "что-нибудь еще",
];
const BUY_VERBS: &[&str] = &[
    "хочу купить",
    "хочу заказать",
    "можно купить",
    "купить",
    "куплю",
    "покупаю",
    "беру",
    "возьму",
    "оформи",
    "закажи",
    "i want to buy",
    "i'd like to buy",
    "want to buy",
    "buy",
    "purchase",
    "i'll take",
    "order",
];

fn phrase_at_start<'a>(text: &'a str, phrases: &[&str]) -> Option<&'a str> {
    phrases.iter().find_map(|p| {
        let rest = text.strip_prefix(p)?;
        (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim())
    })
}

fn contains_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase} ")) || (phrase.contains(' ') && text.contains(phrase))
}

/// The offline consultant's intent rules.
pub fn intent(norm: &str) -> Intent {
    let words = norm.split(' ').count();
    if GREETINGS.contains(&norm)
        || (words <= 3 && GREETINGS.iter().any(|g| phrase_at_start(norm, &[g]).is_some()))
    {
        return Intent::Greeting;
    }
    if [
        "мои заказы",
        "мой заказ",
        "мои покупки",
        "статус заказа",
        "где мой заказ",
        "my orders",
        "my order",
        "order status",
    ]
    .iter()
    .any(|p| norm.contains(p))
        || norm == "заказы"
        || norm == "orders"
    {
        return Intent::Orders;
    }
    let balance_word =
        ["баланс", "баланса", "балансе", "balance", "счет", "счета"].iter().any(|p| contains_phrase(norm, p));
    let topup_word = ["пополн", "top up", "topup", "add funds", "add money", "закинуть", "положить"]
        .iter()
        .any(|p| norm.contains(p));
    if balance_word && topup_word {
        let amount = norm.split(' ').find_map(|w| w.parse::<u32>().ok());
        return Intent::TopUp(amount);
    }
    if ["баланс", "balance", "мой счет", "сколько денег"].iter().any(|p| contains_phrase(norm, p))
        && words <= 5
    {
        return Intent::Balance;
    }
    if AGREE.contains(&norm) {
        return Intent::Agree;
    }
    if MORE.contains(&norm) {
        return Intent::More;
    }
    let cheaper = [
        "подешевле",
        "дешевле",
        "недорого",
        "недорогой",
        "недорогие",
        "cheaper",
        "cheapest",
        "cheap",
        "бюджетный",
    ];
    if let Some(c) = cheaper.iter().find(|c| contains_phrase(norm, c)) {
        let rest = norm.split(' ').filter(|w| {
            w != c && !["а", "есть", "что", "нибудь", "any", "something", "is", "there"].contains(w)
        });
        return Intent::Cheaper(rest.collect::<Vec<_>>().join(" "));
    }
    let pre = ["под заказ", "предзаказ", "предзаказа", "pre-order", "preorder", "pre order"];
    if let Some(p) = pre.iter().find(|p| norm.contains(*p)) {
        let rest = norm.replace(p, " ");
        let rest: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !["а", "есть", "можно", "ли", "is", "there", "a", "can", "i"].contains(w))
            .collect();
        return Intent::PreOrder(rest.join(" "));
    }
    if let Some(rest) = phrase_at_start(norm, BUY_VERBS) {
        return Intent::Buy(rest.to_string());
    }
    Intent::Search
}

/// Per-customer limits on model calls (a minute window and a day window), in memory: a
/// restart forgets them, which only errs towards answering.
#[derive(Default)]
struct Limiter {
    calls: HashMap<i64, VecDeque<i64>>,
}

impl Limiter {
    fn allow(&mut self, user: i64, now: i64, cfg: &AiConfig) -> bool {
        const DAY: i64 = 86_400_000;
        if self.calls.len() > 100_000 {
            self.calls.retain(|_, q| q.back().is_some_and(|t| now - t < DAY));
        }
        let q = self.calls.entry(user).or_default();
        while q.front().is_some_and(|t| now - t >= DAY) {
            q.pop_front();
        }
        let last_minute = q.iter().filter(|t| now - **t < 60_000).count() as u32;
        if last_minute >= cfg.user_calls_per_minute || q.len() as u32 >= cfg.user_calls_per_day {
            return false;
        }
        q.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_in_russian_and_english() {
        let i = |s: &str| intent(&normalize(s));
        assert_eq!(i("Привет!"), Intent::Greeting);
        assert_eq!(i("hello"), Intent::Greeting);
        assert_eq!(i("мои заказы"), Intent::Orders);
        assert_eq!(i("Where is my order status?"), Intent::Orders);
        assert_eq!(i("какой у меня баланс?"), Intent::Balance);
        assert_eq!(i("пополнить баланс на 500"), Intent::TopUp(Some(500)));
        assert_eq!(i("top up my balance"), Intent::TopUp(None));
        assert_eq!(i("пополнить стим на 500"), Intent::Search, "a Steam wallet code is a product");
        assert_eq!(i("Да"), Intent::Agree);
        assert_eq!(i("sure"), Intent::Agree);
        assert_eq!(i("ещё"), Intent::More);
        assert_eq!(i("Купить ключ Windows 11"), Intent::Buy("ключ windows 11".into()));
        assert_eq!(i("buy"), Intent::Buy(String::new()));
        assert_eq!(i("хочу ключ винды подешевле"), Intent::Cheaper("хочу ключ винды".into()));
        assert_eq!(i("а есть под заказ?"), Intent::PreOrder(String::new()));
        assert_eq!(i("нужны шаблоны для презентации"), Intent::Search);
        assert_eq!(i("привет, нужны шаблоны для презентации и резюме"), Intent::Search);
    }

    #[test]
    fn language_follows_the_script_of_the_message() {
        assert_eq!(detect_lang("нужен ключ windows"), Some(Lang::Ru));
        assert_eq!(detect_lang("presentation templates"), Some(Lang::En));
        assert_eq!(detect_lang("123"), None);
    }

    #[test]
    fn the_limiter_allows_a_burst_then_refuses_until_the_window_moves() {
        let cfg = AiConfig { user_calls_per_minute: 2, user_calls_per_day: 3, ..AiConfig::default() };
        let mut l = Limiter::default();
        assert!(l.allow(1, 0, &cfg));
        assert!(l.allow(1, 1, &cfg));
        assert!(!l.allow(1, 2, &cfg));
        assert!(l.allow(2, 2, &cfg), "limits are per customer");
        assert!(l.allow(1, 61_000, &cfg));
        assert!(!l.allow(1, 130_000, &cfg), "the day's budget is spent");
        assert!(l.allow(1, 86_400_001 + 61_000, &cfg));
    }
}
