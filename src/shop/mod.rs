//! The shop behind the three doors (the Telegram bot, the web shop / Mini App, the
//! consultant): every customer action is one use case here, taking the [`Customer`] and
//! returning a channel-neutral [`Reply`]. The doors only parse their input and render the
//! reply; the consultant only decides *which* use case to call ([`crate::ai::Action`]).
//!
//! One rule each, everywhere: availability is [`crate::domain::Sale`]; quantities are
//! 1–[`crate::domain::MAX_QUANTITY`]; buying reuses the customer's live reservation of the
//! same product (a retried update or a repeated "купить X" never holds a second item); a
//! pre-order is created only after the customer agreed to it; one customer holds at most
//! [`Settings::limits`] unpaid (checked in the transaction that creates the order).

mod catalog;
pub mod guard;
mod orders;
pub mod quantity;
mod reply;

pub use reply::{Offer, Reply, StarsInvoice};

use crate::ai::{Action, Consultant};
use crate::callback::{Button, Callback};
use crate::domain::{Currency, UserId};
use crate::error::Result;
use crate::payments::Payments;
use crate::search::Search;
use crate::store::Store;
use crate::store::conversations::{self, Conversation, Role, Turn};
use crate::texts::{Lang, Loc, Rich, Zone, customer as t};
use std::sync::Arc;

/// Which door a customer came through (what it can show: Stars invoices only in Telegram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    Telegram {
        private: bool,
    },
    /// The web shop or the Mini App (`/api/*`).
    Web,
    /// `lavka chat` and the admin API's chat.
    Terminal,
}

/// Who is talking.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub user_id: UserId,
    /// Where replies go (the Telegram chat; equal to `user_id` in private chats).
    pub chat_id: i64,
    pub lang: Lang,
    /// `lang` is the customer's own (their client's or chosen), not the shop's default.
    pub lang_told: bool,
    pub first_name: Option<String>,
    pub door: Door,
}

impl Customer {
    pub fn new(user_id: UserId, lang: Lang, door: Door) -> Customer {
        Customer { user_id, chat_id: user_id, lang, lang_told: true, first_name: None, door }
    }
}

/// What the shop needs from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub shop_name: String,
    pub currency: Currency,
    pub zone: Zone,
    pub reservation_ttl_ms: i64,
    /// What one customer may hold unpaid at once (every door).
    pub limits: crate::store::orders::HoldLimits,
    pub mini_app_url: Option<String>,
    pub support_contact: String,
    /// The bot takes Telegram Stars.
    pub stars: bool,
    /// Conversation turns kept per customer.
    pub history_turns: usize,
}

/// The shop. Cheap to clone.
#[derive(Clone)]
pub struct Shop {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    search: Search,
    payments: Payments,
    consultant: Consultant,
    settings: Settings,
}

/// Longest customer message considered (characters).
const MAX_INPUT: usize = 1000;

impl Shop {
    pub fn new(
        store: Store,
        search: Search,
        payments: Payments,
        consultant: Consultant,
        settings: Settings,
    ) -> Shop {
        Shop { inner: Arc::new(Inner { store, search, payments, consultant, settings }) }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn payments(&self) -> &Payments {
        &self.inner.payments
    }

    pub fn consultant(&self) -> &Consultant {
        &self.inner.consultant
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// How texts are written for a reader of `lang` now.
    pub fn loc(&self, lang: Lang) -> Loc {
        Loc::new(lang, self.inner.settings.zone, self.inner.store.now())
    }

    /// `/start`: the greeting, the catalogue, and the Mini App in a private chat.
    pub fn start(&self, c: &Customer) -> Reply {
        let l = self.loc(c.lang);
        let mut rows =
            vec![vec![Button::callback(t::button::catalog(&l), Callback::Catalog { cat: 0, page: 0 })]];
        if let (Some(url), Door::Telegram { private: true }) = (&self.inner.settings.mini_app_url, c.door) {
            rows.push(vec![Button::web_app(t::button::open_shop(&l), url.clone())]);
        }
        Reply::with(t::greeting(&l, &self.inner.settings.shop_name, c.first_name.as_deref()), rows)
    }

    pub fn help(&self, c: &Customer) -> Reply {
        Reply::text(t::help(&self.loc(c.lang)))
    }

    pub fn paysupport(&self, c: &Customer) -> Reply {
        Reply::text(t::paysupport(&self.loc(c.lang), &self.inner.settings.support_contact))
    }

    /// A message the shop cannot read (a sticker, photo, voice message).
    pub fn unreadable(&self, c: &Customer) -> Reply {
        let l = self.loc(c.lang);
        Reply::with(
            t::media_unsupported(&l),
            vec![vec![Button::callback(t::button::catalog(&l), Callback::Catalog { cat: 0, page: 0 })]],
        )
    }

    /// The one dispatcher of button presses, for every door.
    pub async fn press(&self, c: &Customer, cb: &Callback) -> Result<Reply> {
        let mut conv = self.inner.store.conversation(c.user_id).await?;
        let before = conv.clone();
        // A press answers in the language the customer has been writing in.
        let c = &self.in_conversation_lang(c, &conv);
        let reply = match cb.unwrap_in_place().0 {
            Callback::InPlace(_) => Reply::text(t::button_outdated(&self.loc(c.lang))),
            Callback::Product(id) => self.card(c, &mut conv, id).await?,
            Callback::Buy(id) => self.buy(c, &mut conv, id, 1).await?,
            Callback::PreOrder(id) => self.preorder_consent(c, &mut conv, id).await?,
            Callback::ConfirmPreOrder(id) => self.confirm_preorder(c, &mut conv, id).await?,
            Callback::PayBalance(o) => self.pay_balance(c, *o).await?,
            Callback::PayStars(o) => self.stars_invoice(c, *o).await?,
            Callback::TopUp(n) => self.topup(c, Some(*n)).await?,
            Callback::Cancel(o) => self.cancel(c, *o).await?,
            Callback::Order(o) => self.order(c, *o).await?,
            Callback::Catalog { cat, page } => self.browse(c, *cat, *page).await?,
            Callback::More(_) => self.more(c, &mut conv).await?,
        };
        if conv != before {
            self.save(c.user_id, conv).await?;
        }
        Ok(reply)
    }

    /// Free text: the consultant decides which use case answers; its own words (when the
    /// model gave any) come first, then what the code established.
    pub async fn converse(&self, c: &Customer, text: &str) -> Result<Reply> {
        let text: String = text.trim().chars().take(MAX_INPUT).collect();
        let mut conv = self.inner.store.conversation(c.user_id).await?;
        // The conversation's language is the customer's: the words of this message, else
        // the language they have been writing in, else their client's.
        let known = match conv.lang {
            Some(l) if c.door != Door::Web => Some(l),
            _ => c.lang_told.then_some(c.lang),
        };
        let lang = crate::ai::message_lang(&text)
            .or(known)
            .or_else(|| crate::ai::detect_lang(&text))
            .unwrap_or(c.lang);
        if c.door != Door::Web {
            conv.lang = Some(lang);
        }
        let c = &Customer { lang, ..c.clone() };
        let d = self.inner.consultant.decide(c.user_id, c.first_name.as_deref(), lang, &conv, &text).await?;
        let asked = d.action.clone();
        let mut r = self.perform(c, &mut conv, d.action, &text).await?;
        let done = guard::Done { kept: kept(&asked, &r), reserved: r.offer.is_some() };
        let said = match guard::screen(&d.say, done) {
            Ok(s) => s,
            Err(why) => {
                tracing::info!(user = c.user_id, reason = why.name(), "the model's words were not shown");
                metrics::counter!("lavka_ai_text_dropped_total", "reason" => why.name()).increment(1);
                if asked == Action::Say {
                    // Nothing of the model's is left: the offline rules answer the message.
                    let action = self.inner.consultant.offline(&conv, &text).await?;
                    r = self.perform(c, &mut conv, action, &text).await?;
                }
                String::new()
            }
        };
        let l = self.loc(lang);
        r.text = Rich::from(said).para(r.text);
        if d.rate_limited {
            r.text = t::rate_limited(&l).para(r.text);
        }
        if r.text.is_empty() {
            r = self.start(c);
        }
        let now = self.inner.store.now();
        conv.turns.push(Turn { role: Role::User, text: text.clone(), at: now });
        conv.turns.push(Turn { role: Role::Assistant, text: r.text.plain(), at: now });
        self.save(c.user_id, conv).await?;
        Ok(r)
    }

    /// `c` speaking the conversation's language (the web shop keeps its own switch).
    fn in_conversation_lang(&self, c: &Customer, conv: &Conversation) -> Customer {
        match conv.lang {
            Some(lang) if c.door != Door::Web => Customer { lang, ..c.clone() },
            _ => c.clone(),
        }
    }

    /// Remembers the language a customer chose (`/lang`) as the conversation's.
    pub async fn set_lang(&self, user: UserId, lang: Lang) -> Result<()> {
        let mut conv = self.inner.store.conversation(user).await?;
        if conv.lang != Some(lang) {
            conv.lang = Some(lang);
            self.save(user, conv).await?;
        }
        Ok(())
    }

    /// Runs the use case the consultant chose.
    async fn perform(&self, c: &Customer, conv: &mut Conversation, a: Action, text: &str) -> Result<Reply> {
        let l = self.loc(c.lang);
        Ok(match a {
            Action::Greeting => self.welcome(c).await?,
            Action::Orders => self.my_orders(c).await?,
            Action::Balance => self.balance(c).await?,
            Action::TopUp(n) => self.topup(c, n).await?,
            Action::Show { query, hits, sort } => self.show(c, conv, &query, hits, 0, sort).await?,
            Action::More => self.more(c, conv).await?,
            Action::Card(id) => self.card(c, conv, &id).await?,
            Action::Buy(id) => {
                let qty = quantity::from_words(text).unwrap_or(1);
                self.buy(c, conv, &id, qty).await?
            }
            Action::PreOrder(id) => self.preorder_consent(c, conv, &id).await?,
            Action::ConfirmPreOrder(id) if conv.pending_preorder.as_ref() == Some(&id) => {
                self.confirm_preorder(c, conv, &id).await?
            }
            // Consent is asked by code before a pre-order is created.
            Action::ConfirmPreOrder(id) => self.preorder_consent(c, conv, &id).await?,
            Action::Unavailable(id) => self.unavailable(c, conv, &id).await?,
            Action::NoCheaper(id) => {
                let card = self.card(c, conv, &id).await?;
                Reply { text: t::no_cheaper(&l).para(card.text), ..card }
            }
            Action::AskWhat => Reply::text(t::ask_what(&l)),
            Action::AskWhich => Reply::text(t::ask_which(&l)),
            Action::Say => Reply::default(),
        })
    }

    async fn save(&self, user: UserId, conv: Conversation) -> Result<()> {
        let keep = self.inner.settings.history_turns;
        self.inner.store.write(move |tx| conversations::put_conversation(tx, user, conv.clone(), keep)).await
    }

    /// Forgets a customer's conversation (`/reset`, tests).
    pub async fn forget(&self, user: UserId) -> Result<bool> {
        self.inner.store.write(move |tx| conversations::clear_conversation(tx, user)).await
    }
}

/// Whether the shop carried out the action the consultant asked for (else its words go).
fn kept(asked: &Action, r: &Reply) -> bool {
    let offered = |kind| r.offer.as_ref().is_some_and(|o| o.kind == kind);
    match asked {
        Action::Buy(id) => {
            offered(crate::domain::OrderKind::Instant)
                && r.offer.as_ref().is_some_and(|o| &o.product_id == id)
        }
        Action::ConfirmPreOrder(id) => {
            offered(crate::domain::OrderKind::Prepaid)
                && r.offer.as_ref().is_some_and(|o| &o.product_id == id)
        }
        Action::PreOrder(id) => r.callbacks().any(|cb| cb == &Callback::ConfirmPreOrder(id.clone())),
        Action::Show { hits, .. } => {
            !hits.is_empty() && r.callbacks().any(|cb| matches!(cb, Callback::Product(p) if hits.contains(p)))
        }
        Action::AskWhat | Action::AskWhich => false,
        Action::Unavailable(_) | Action::NoCheaper(_) => true,
        Action::Card(_)
        | Action::Greeting
        | Action::Orders
        | Action::Balance
        | Action::TopUp(_)
        | Action::More
        | Action::Say => true,
    }
}
