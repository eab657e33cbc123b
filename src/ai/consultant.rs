//! The consultant's decision for one message: the offline rules (intents plus search), or
//! the model ([`super::llm`]) when a Gemini key is configured, mapped to an [`Action`]. A
//! model that fails, times out or is over the customer's budget is answered by the rules.

use super::llm::Llm;
use super::{Action, Decision, Sort};
use crate::config::AiConfig;
use crate::domain::ProductId;
use crate::error::Result;
use crate::search::Search;
use crate::store::Store;
use crate::store::conversations::Conversation;
use crate::texts::Lang;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The actions the model may choose (`final_answer.action`).
const KNOWN_ACTIONS: &[&str] = &[
    "none",
    "",
    "show_products",
    "offer_payment",
    "offer_prepaid",
    "confirm_prepaid",
    "show_orders",
    "show_balance",
];

/// Products the model may name in one answer.
const SHOW_MAX: usize = 3;

/// The consultant. Cheap to clone.
#[derive(Clone)]
pub struct Consultant {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    search: Search,
    cfg: AiConfig,
    llm: Option<Llm>,
    limiter: Mutex<Limiter>,
}

/// Everything the consultant needs to know about the shop.
pub struct Setup {
    pub store: Store,
    pub search: Search,
    pub ai: AiConfig,
    pub shop_name: String,
}

impl Consultant {
    /// The model is used when `ai.gemini_api_key` is set; otherwise the offline rules decide.
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
                llm,
                limiter: Mutex::new(Limiter::default()),
            }),
        })
    }

    /// Whether decisions come from the model (else offline).
    pub fn online(&self) -> bool {
        self.inner.llm.is_some()
    }

    pub fn llm(&self) -> Option<&Llm> {
        self.inner.llm.as_ref()
    }

    /// Decides which use case answers `text` (already trimmed and bounded). Follow-ups the
    /// conversation state answers exactly ("да", "подешевле", "ещё", "второй", a greeting,
    /// "мои заказы") are resolved by code; the rest goes to the model when one is
    /// configured, else to the offline rules. Either way a purchase reserves only what the
    /// customer named or picked ([`Consultant::check_buy`]).
    pub async fn decide(
        &self,
        user: i64,
        name: Option<&str>,
        lang: Lang,
        conv: &Conversation,
        text: &str,
    ) -> Result<Decision> {
        let offline = |action| Decision { say: String::new(), action, rate_limited: false };
        if text.is_empty() {
            return Ok(offline(Action::Greeting));
        }
        let norm = normalize(text);
        let i = intent(&norm, conv);
        // A bare "привет" is the model's to answer when there is one (it greets in its own
        // words); "what can you do?" is answered by the shop, with its categories.
        let model_greets = self.inner.llm.is_some() && i == Intent::Greeting && !asks_help(&norm);
        if !model_greets && let Some(a) = self.follow_up(&i, conv).await? {
            return Ok(offline(a));
        }
        let Some(llm) = &self.inner.llm else { return Ok(offline(self.offline(conv, text).await?)) };
        let now = self.inner.store.now();
        let allowed =
            self.inner.limiter.lock().map(|mut l| l.allow(user, now, &self.inner.cfg)).unwrap_or(true);
        if !allowed {
            metrics::counter!("lavka_ai_rate_limited_total").increment(1);
            return Ok(Decision { rate_limited: true, ..offline(self.offline(conv, text).await?) });
        }
        let deadline = std::time::Duration::from_secs(self.inner.cfg.turn_deadline_secs);
        let answered = match tokio::time::timeout(deadline, llm.decide(name, lang, conv, text)).await {
            Ok(r) => r,
            Err(_) => Err(super::gemini::GeminiError::Unavailable(format!(
                "no answer within the turn deadline of {}s",
                deadline.as_secs()
            ))),
        };
        match answered {
            Ok(d) => {
                tracing::info!(user, action = %d.action, thought = %d.thought, "consultant decision");
                let action = self.model_action(&d, conv, text).await?;
                // An action the shop does not know is a rejected one: its words go with it.
                let known = KNOWN_ACTIONS.contains(&d.action.as_str());
                let say = if known { d.reply_text.trim().to_string() } else { String::new() };
                Ok(Decision { say, action, rate_limited: false })
            }
            Err(e) => {
                tracing::warn!(user, error = %e, "the model did not answer; the offline rules answer");
                metrics::counter!("lavka_ai_fallbacks_total", "reason" => e.kind()).increment(1);
                Ok(offline(self.offline(conv, text).await?))
            }
        }
    }

    /// The model's structured answer as an action; an action without a valid product, or an
    /// unknown one, leaves only the model's words (which the offline rules replace when
    /// there are none). A purchase goes through the same check as the offline one.
    async fn model_action(
        &self,
        d: &super::llm::Decision,
        conv: &Conversation,
        text: &str,
    ) -> Result<Action> {
        let pid = d.product_id.as_deref().and_then(|p| ProductId::parse(p).ok());
        Ok(match (d.action.as_str(), pid) {
            ("offer_payment", Some(p)) => self.check_buy(conv, text, p).await?,
            ("offer_prepaid", Some(p)) => match self.check_buy(conv, text, p).await? {
                Action::Buy(p) => Action::PreOrder(p),
                other => other,
            },
            ("confirm_prepaid", Some(p)) => Action::ConfirmPreOrder(p),
            ("show_orders", _) => Action::Orders,
            ("show_balance", _) => Action::Balance,
            ("show_products", p) => {
                let mut ids: Vec<ProductId> =
                    d.product_ids.iter().filter_map(|s| ProductId::parse(s).ok()).collect();
                if let Some(p) = p
                    && !ids.contains(&p)
                {
                    ids.insert(0, p);
                }
                ids.truncate(SHOW_MAX);
                match self.unavailable_named(text, &ids).await? {
                    Some(off) => Action::Unavailable(off),
                    None => Action::Show { query: text.to_string(), hits: ids, sort: Sort::Relevance },
                }
            }
            ("offer_payment" | "offer_prepaid" | "confirm_prepaid", None) => Action::AskWhat,
            ("none" | "", _) if !d.reply_text.trim().is_empty() => Action::Say,
            _ => self.offline(conv, text).await?,
        })
    }

    /// What the conversation state answers without a search or a model.
    async fn follow_up(&self, i: &Intent, conv: &Conversation) -> Result<Option<Action>> {
        Ok(Some(match i {
            Intent::Greeting => Action::Greeting,
            Intent::Orders => Action::Orders,
            Intent::Balance => Action::Balance,
            Intent::TopUp(amount) => Action::TopUp(*amount),
            Intent::Agree => match (&conv.pending_preorder, &conv.focus) {
                (Some(p), _) => Action::ConfirmPreOrder(p.clone()),
                (None, Some(p)) => Action::Buy(p.clone()),
                (None, None) if !conv.shown.is_empty() => Action::AskWhich,
                (None, None) => Action::AskWhat,
            },
            Intent::More => Action::More,
            Intent::Pick { n, buy } => match pick(&conv.shown, *n) {
                Some(p) if *buy => Action::Buy(p),
                Some(p) => Action::Card(p),
                None => return Ok(None),
            },
            Intent::Buy(rest) if rest.is_empty() => match &conv.focus {
                Some(p) => Action::Buy(p.clone()),
                None => Action::AskWhat,
            },
            Intent::Cheaper(rest) if rest.is_empty() && conv.last_query.is_some() => {
                self.cheaper(conv).await?
            }
            _ => return Ok(None),
        }))
    }

    /// "Cheaper" after a search: the products matching the same need (or like the one in
    /// focus) that cost less than it (or than the cheapest shown), closest to the need first.
    async fn cheaper(&self, conv: &Conversation) -> Result<Action> {
        let need = conv.last_query.clone().unwrap_or_default();
        let store = &self.inner.store;
        // What matches the need, and what is like the product in focus (a narrow need — "питч-
        // дек для инвесторов" — has cheaper neighbours: other presentation templates).
        let mut queries = vec![need.clone()];
        if let Some(f) = &conv.focus
            && let Ok(p) = store.product(f.clone()).await
        {
            queries.push(p.title.clone());
        }
        let mut ids: Vec<ProductId> = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let hits = self.inner.search.relevant(q, 12).await?;
            let best_cov = hits.iter().filter_map(|h| h.coverage).fold(0.0f32, f32::max);
            let best_sim = hits.iter().filter_map(|h| h.similarity).fold(0.0f32, f32::max);
            // A title is a long query: its neighbours share fewer of its words.
            let share = if i == 0 { 0.5 } else { 0.3 };
            for h in hits {
                let close = if best_cov > 0.0 {
                    h.coverage.unwrap_or(0.0) >= share * best_cov
                } else {
                    h.similarity.unwrap_or(0.0) >= best_sim - 0.03
                };
                if close && !ids.contains(&h.id) {
                    ids.push(h.id);
                }
            }
        }
        for p in &conv.shown {
            if !ids.contains(p) {
                ids.push(p.clone());
            }
        }
        let mut priced = Vec::new();
        for id in ids {
            let a = store.availability(id.clone()).await?;
            if a.active && !matches!(a.sale(), crate::domain::Sale::SoldOut) {
                priced.push((id, a.final_price));
            }
        }
        let reference = match &conv.focus {
            Some(f) => match store.availability(f.clone()).await {
                Ok(a) => Some((f.clone(), a.final_price)),
                Err(_) => None,
            },
            None => None,
        }
        .or_else(|| priced.iter().filter(|(id, _)| conv.shown.contains(id)).min_by_key(|(_, p)| *p).cloned());
        let Some((focus, price)) = reference else {
            return Ok(Action::Show {
                query: need,
                hits: priced.into_iter().map(|(id, _)| id).collect(),
                sort: Sort::Cheapest,
            });
        };
        let cheaper: Vec<ProductId> =
            priced.into_iter().filter(|(id, p)| *p < price && *id != focus).map(|(id, _)| id).collect();
        Ok(if cheaper.is_empty() {
            Action::NoCheaper(focus)
        } else {
            // Closest to the need first: "cheaper Windows 11 Pro" is the OEM key before Windows 10.
            Action::Show { query: need, hits: cheaper, sort: Sort::Relevance }
        })
    }

    /// A purchase of `id` stands when the customer picked it (it is the product in focus or
    /// on screen), is one of the products they named, or they named no product at all; a product
    /// they named that is off sale is said to be so; when they named others, they are shown
    /// `id` and what else matches, and nothing is reserved.
    pub async fn check_buy(&self, conv: &Conversation, text: &str, id: ProductId) -> Result<Action> {
        if conv.focus.as_ref() == Some(&id) || conv.shown.contains(&id) {
            return Ok(Action::Buy(id));
        }
        let named = self.inner.search.named(text)?;
        let on_sale: Vec<&ProductId> = named.iter().filter(|(_, a)| *a).map(|(p, _)| p).collect();
        if on_sale.contains(&&id) {
            // One of the products the customer named.
            return Ok(Action::Buy(id));
        }
        if on_sale.is_empty()
            && let Some((off, _)) = named.first()
        {
            return Ok(Action::Unavailable(off.clone()));
        }
        if named.is_empty() {
            // The customer named no product ("нужен ключ для винды, оформи"): the choice
            // is the consultant's to make, and the customer sees it before paying.
            return Ok(Action::Buy(id));
        }
        let mut hits = vec![id];
        for h in self.inner.search.relevant(text, 12).await? {
            if !hits.contains(&h.id) {
                hits.push(h.id);
            }
        }
        Ok(Action::Show { query: text.to_string(), hits, sort: Sort::Relevance })
    }

    /// The product `text` names that cannot be had — off sale, or sold out and not
    /// pre-orderable — when it names none that can and `shown` (what the answer would show)
    /// does not hold it.
    async fn unavailable_named(&self, text: &str, shown: &[ProductId]) -> Result<Option<ProductId>> {
        let named = self.inner.search.named(text)?;
        let mut first = None;
        for (p, active) in named {
            if active {
                let a = self.inner.store.availability(p.clone()).await?;
                if !matches!(a.sale(), crate::domain::Sale::SoldOut) {
                    return Ok(None);
                }
            }
            if first.is_none() && !shown.contains(&p) {
                first = Some(p);
            }
        }
        Ok(first)
    }

    /// A search for what the customer asked: the product they named when it cannot be had
    /// (said so, with alternatives), its card when `card` and they named exactly one, else
    /// the matching products.
    async fn find(&self, text: &str, card: bool) -> Result<Action> {
        let q = crate::search::names::query_words(text);
        if let Some(off) = self.unavailable_named(&q, &[]).await? {
            return Ok(Action::Unavailable(off));
        }
        if card && let [(one, true)] = self.inner.search.named(&q)?.as_slice() {
            return Ok(Action::Card(one.clone()));
        }
        let hits = self.inner.search.relevant(&q, 12).await?.into_iter().map(|h| h.id).collect();
        Ok(Action::Show { query: q, hits, sort: Sort::Relevance })
    }

    /// The offline rules: intents, everything else is a search.
    pub async fn offline(&self, conv: &Conversation, text: &str) -> Result<Action> {
        let norm = normalize(text);
        let i = intent(&norm, conv);
        if let Some(a) = self.follow_up(&i, conv).await? {
            return Ok(a);
        }
        Ok(match i {
            Intent::Buy(rest) => {
                let rest = crate::search::names::query_words(&rest);
                let named = self.inner.search.named(&rest)?;
                let on_sale: Vec<ProductId> =
                    named.iter().filter(|(_, a)| *a).map(|(p, _)| p.clone()).collect();
                let hits = self.inner.search.relevant(&rest, 12).await?;
                // Nothing named ("купить ключ"): the top match when it is clearly ahead.
                let clear = match hits.as_slice() {
                    [_] => true,
                    [a, b, ..] => a.score - b.score >= 0.03,
                    [] => false,
                };
                match on_sale.as_slice() {
                    [one] => Action::Buy(one.clone()),
                    [] if !named.is_empty() => Action::Unavailable(named[0].0.clone()),
                    [] if clear => Action::Buy(hits[0].id.clone()),
                    _ if let Some(off) = self.unavailable_named(&rest, &[]).await? => {
                        Action::Unavailable(off)
                    }
                    _ => {
                        // Several named (or none): the customer picks; the named ones first.
                        let mut ids: Vec<ProductId> =
                            hits.iter().map(|h| h.id.clone()).filter(|id| on_sale.contains(id)).collect();
                        ids.extend(hits.into_iter().map(|h| h.id).filter(|id| !on_sale.contains(id)));
                        Action::Show { query: rest, hits: ids, sort: Sort::Relevance }
                    }
                }
            }
            Intent::PreOrder(rest) => {
                let q = crate::search::names::query_words(if rest.is_empty() { text } else { &rest });
                if let [(one, true)] = self.inner.search.named(&q)?.as_slice() {
                    // Named: the consent question at once (the shop sells it now if in stock).
                    return Ok(Action::PreOrder(one.clone()));
                }
                let hits = self.inner.search.relevant(&q, 12).await?;
                // The one match that can be pre-ordered: the consent question for it.
                let mut pre = Vec::new();
                for h in &hits {
                    if let crate::domain::Sale::PreOrder { .. } =
                        self.inner.store.availability(h.id.clone()).await?.sale()
                    {
                        pre.push(h.id.clone());
                    }
                }
                if let [one] = pre.as_slice() {
                    return Ok(Action::PreOrder(one.clone()));
                }
                Action::Show {
                    query: text.to_string(),
                    hits: hits.into_iter().map(|h| h.id).collect(),
                    sort: Sort::PreOrderFirst,
                }
            }
            Intent::Cheaper(rest) => {
                let q = if rest.is_empty() { text.to_string() } else { rest };
                // The cheapest among the close matches, not among everything the vectors return.
                let mut hits = self.inner.search.relevant(&q, 12).await?;
                if let Some(top) = hits.first().map(|h| h.score) {
                    hits.retain(|h| h.score >= top - 0.04);
                    hits.truncate(6);
                }
                Action::Show {
                    query: q,
                    hits: hits.into_iter().map(|h| h.id).collect(),
                    sort: Sort::Cheapest,
                }
            }
            Intent::Price(rest) if rest.is_empty() => match &conv.focus {
                Some(p) => Action::Card(p.clone()),
                None => Action::AskWhat,
            },
            Intent::Price(rest) => self.find(&rest, true).await?,
            _ => self.find(text, false).await?,
        })
    }
}

/// The `n`-th product shown (1-based; 0 is the last one).
fn pick(shown: &[ProductId], n: usize) -> Option<ProductId> {
    match n {
        0 => shown.last().cloned(),
        n => shown.get(n - 1).cloned(),
    }
}

/// The language a message is written in, when its words tell: Cyrillic is Russian; Latin
/// is English only with English words in it ("i need", "cheaper", "hello") — a bare product
/// name ("windows 11 pro", "minecraft") or "ok" is written the same by everyone, so the
/// conversation's language stands.
pub fn message_lang(text: &str) -> Option<Lang> {
    match detect_lang(text)? {
        Lang::Ru => Some(Lang::Ru),
        Lang::En => {
            let norm = normalize(text);
            norm.split(' ').any(|w| ENGLISH.contains(&w)).then_some(Lang::En)
        }
    }
}

/// Common English words that product names do not consist of.
const ENGLISH: &[&str] = &[
    "i",
    "i'd",
    "i'm",
    "im",
    "me",
    "my",
    "you",
    "your",
    "we",
    "a",
    "an",
    "the",
    "to",
    "for",
    "of",
    "in",
    "with",
    "and",
    "or",
    "is",
    "are",
    "was",
    "do",
    "does",
    "did",
    "have",
    "has",
    "can",
    "could",
    "would",
    "will",
    "please",
    "want",
    "need",
    "looking",
    "look",
    "buy",
    "get",
    "how",
    "what",
    "which",
    "where",
    "when",
    "why",
    "any",
    "some",
    "something",
    "anything",
    "cheap",
    "cheaper",
    "cheapest",
    "more",
    "another",
    "other",
    "else",
    "show",
    "hello",
    "hi",
    "hey",
    "thanks",
    "thank",
    "yes",
    "yeah",
    "yep",
    "no",
    "sure",
    "price",
    "much",
    "cost",
    "costs",
    "this",
    "that",
    "it",
    "one",
    "first",
    "second",
    "third",
    "last",
    "there",
    "sell",
    "order",
    "orders",
    "balance",
    "help",
    "take",
    "like",
    "about",
    "good",
    "best",
    "not",
    "don't",
    "dont",
    "let's",
    "lets",
    "go",
    "ahead",
    "okay",
    "agree",
    "confirm",
    "purchase",
    "on",
    "at",
    "by",
    "from",
    "options",
    "these",
    "those",
    "them",
    "they",
    "where's",
    "what's",
    "whats",
    "it's",
    "should",
    // Nouns a Russian speaker writes in Russian ("ключ", "месяц", "подписка").
    "key",
    "keys",
    "month",
    "months",
    "year",
    "years",
    "day",
    "days",
    "week",
    "weeks",
    "subscription",
    "account",
    "accounts",
    "license",
    "licence",
    "wallet",
    "rub",
    "edition",
    "version",
    "personal",
    "family",
    "ll",
];

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
    /// "The second one", "беру первый": the `n`-th product shown (0: the last), to buy or
    /// to look at.
    Pick {
        n: usize,
        buy: bool,
    },
    /// Buy, with the rest of the message (what to buy; may be empty).
    Buy(String),
    PreOrder(String),
    Cheaper(String),
    /// "Сколько стоит X?", "how much is X": the product asked about (may be empty: the one
    /// in focus).
    Price(String),
    Search,
}

/// Greetings (and words said with them) that ask for nothing yet.
const HELLO: &[&str] = &[
    "привет",
    "приветик",
    "здравствуйте",
    "здравствуй",
    "здрасте",
    "добрый день",
    "добрый вечер",
    "доброе утро",
    "доброго времени суток",
    "хай",
    "салют",
    "hello",
    "hi",
    "hey",
    "hiya",
    "good morning",
    "good afternoon",
    "good evening",
    "greetings",
    "there",
    "ребята",
    "друзья",
    "бот",
    "bot",
    "guys",
    "all",
    "всем",
    "start",
];
/// Asking what the shop is and does.
const HELP: &[&str] = &[
    "что умеешь",
    "что ты умеешь",
    "что вы умеете",
    "что ты можешь",
    "что вы можете",
    "что умеет бот",
    "что у вас есть",
    "что у вас",
    "что есть",
    "что продаете",
    "что вы продаете",
    "что продаешь",
    "чем торгуете",
    "какие товары",
    "какие у вас товары",
    "ассортимент",
    "покажи ассортимент",
    "что можно купить",
    "что это",
    "как это работает",
    "помощь",
    "помоги",
    "help",
    "меню",
    "menu",
    "what can you do",
    "what do you do",
    "what do you sell",
    "what do you have",
    "what have you got",
    "what you got",
    "what can i buy",
    "what products do you have",
    "what is this",
    "how does it work",
    "what's here",
    "whats here",
    "what is here",
    "what are you",
    "who are you",
    "кто ты",
    "ты кто",
    "what can you help me with",
    "what can you help with",
    "how can you help",
    "how can you help me",
    "чем можешь помочь",
    "чем вы можете помочь",
    "чем поможешь",
    "что можешь",
    "what do you offer",
    "what's on offer",
    "what do you have for sale",
    "what are you selling",
    "что предлагаете",
    "что вы предлагаете",
    "что в наличии",
    "что у вас в наличии",
    "покажи что есть",
    "what have you",
];
const MORE: &[&str] = &[
    "another",
    "another one",
    "other",
    "others",
    "other options",
    "more options",
    "show me more",
    "anything else",
    "what else",
    "something different",
    "другой",
    "другую",
    "другое",
    "есть другие",
    "есть еще",
    "еще есть",
    "а еще есть",
    "а другие",
    "покажи другие",
    "что-то другое",
    "что то другое",
    "еще что-нибудь",
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

/// "Да", "ok i'll take it", "давай его", "yes, buy it", "да, согласен": consent to the
/// product in focus (or the pre-order asked about), with nothing else said.
fn agrees(norm: &str) -> bool {
    const YES: &[&str] = &[
        "да",
        "давай",
        "давайте",
        "ок",
        "окей",
        "ok",
        "okay",
        "yes",
        "yeah",
        "yep",
        "sure",
        "конечно",
        "согласен",
        "согласна",
        "хорошо",
        "беру",
        "возьму",
        "оформляй",
        "оформить",
        "оформи",
        "оформляем",
        "buy",
        "take",
        "confirm",
        "подтверждаю",
        "agree",
        "ага",
        "угу",
        "go",
        "pre-order",
        "preorder",
        "предзаказ",
        "order",
        "place",
        "купить",
        "куплю",
        "покупаю",
        "заказываю",
        "го",
    ];
    const WITH: &[&str] = &[
        "it",
        "его",
        "ее",
        "это",
        "этот",
        "эту",
        "i'll",
        "ill",
        "i",
        "will",
        "ahead",
        "please",
        "пожалуйста",
        "then",
        "тогда",
        "ну",
        "well",
        "1",
        "шт",
        "штуку",
        "одну",
        "один",
        "one",
        "let's",
        "lets",
        "do",
        "that",
        "так",
        "and",
        "и",
        "its",
        "it's",
        "ll",
        "d",
        "s",
        "me",
        "for",
        "мне",
        "can",
        "можно",
        "want",
        "хочу",
        "я",
        "would",
        "like",
        "to",
        "вот",
        "his",
        "уж",
        "же",
        "с",
        "радостью",
        "pay",
        "оплачу",
        "great",
        "отлично",
        "супер",
        "perfect",
    ];
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    words.len() <= 7
        && words.iter().any(|w| YES.contains(w))
        && words.iter().all(|w| YES.contains(w) || WITH.contains(w))
}

/// The rest of a price question ("сколько стоит касперский" → "касперский").
fn price_question(norm: &str) -> Option<String> {
    const ASK: &[&str] = &[
        "сколько стоит",
        "сколько стоят",
        "сколько будет стоить",
        "какая цена у",
        "какая цена на",
        "какая цена",
        "какая стоимость",
        "цена на",
        "цена",
        "стоимость",
        "почем",
        "по чем",
        "how much is the",
        "how much is a",
        "how much is",
        "how much does",
        "how much are",
        "how much for",
        "how much",
        "what's the price of",
        "what is the price of",
        "whats the price of",
        "price of",
        "price for",
        "the price of",
        "price",
    ];
    let words: Vec<&str> = norm.split(' ').collect();
    for i in 0..words.len().min(4) {
        let tail = words[i..].join(" ");
        if let Some(rest) = phrase_at_start(&tail, ASK) {
            let head = &words[..i];
            let rest: Vec<&str> = head
                .iter()
                .copied()
                .chain(rest.split(' '))
                .filter(|w| {
                    !w.is_empty()
                        && ![
                            "а",
                            "а",
                            "и",
                            "подскажите",
                            "скажите",
                            "cost",
                            "costs",
                            "it",
                            "does",
                            "is",
                            "the",
                            "a",
                        ]
                        .contains(w)
                })
                .collect();
            return Some(rest.join(" "));
        }
    }
    // "X сколько стоит?", "X how much?"
    for ask in ["сколько стоит", "сколько стоят", "how much", "цена", "price"] {
        if let Some(head) = norm.strip_suffix(ask) {
            return Some(head.trim().to_string());
        }
    }
    None
}

/// Whether a greeting asks what the shop does ("привет, что умеешь?"), not only hello.
fn asks_help(norm: &str) -> bool {
    let words: Vec<&str> = norm.split(' ').collect();
    (0..words.len()).any(|i| phrase_at_start(&words[i..].join(" "), HELP).is_some())
}

/// A greeting and/or "what can you do?", with nothing asked for besides.
fn is_greeting(norm: &str) -> bool {
    let mut rest = norm.trim();
    loop {
        let before = rest;
        if let Some(r) = phrase_at_start(rest, HELLO) {
            rest = r;
        }
        if rest == before {
            break;
        }
    }
    if rest.is_empty() {
        return true;
    }
    match phrase_at_start(rest, HELP) {
        Some(r) => r.split(' ').filter(|w| !w.is_empty()).count() <= 1,
        None => false,
    }
}

/// "Второй", "the second one", "беру первый", "2": which product shown, and whether to buy it.
fn picked(norm: &str, shown: usize) -> Option<Intent> {
    const ORDINALS: &[(&str, usize)] = &[
        ("перв", 1),
        ("втор", 2),
        ("трет", 3),
        ("четверт", 4),
        ("пят", 5),
        ("последн", 0),
        ("first", 1),
        ("1st", 1),
        ("second", 2),
        ("2nd", 2),
        ("third", 3),
        ("3rd", 3),
        ("fourth", 4),
        ("4th", 4),
        ("fifth", 5),
        ("last", 0),
    ];
    const BUY: &[&str] = &[
        "беру",
        "возьму",
        "купить",
        "куплю",
        "оформи",
        "оформить",
        "давай",
        "хочу",
        "take",
        "buy",
        "get",
        "want",
        "i'll",
        "ill",
        "go",
        "закажи",
    ];
    const OTHER: &[&str] = &[
        "the",
        "one",
        "option",
        "вариант",
        "товар",
        "номер",
        "number",
        "покажи",
        "show",
        "me",
        "please",
        "пожалуйста",
        "а",
        "ну",
        "this",
        "тот",
        "который",
        "i",
        "like",
        "would",
        "id",
        "i'd",
        "can",
        "with",
        "product",
        "item",
        "лучше",
        "тогда",
        "let's",
        "lets",
        "сколько",
        "стоит",
        "how",
        "much",
        "is",
        "подробнее",
        "details",
        "about",
        "tell",
        "расскажи",
        "про",
        "мне",
        "me",
        "ok",
        "ок",
        "us",
        "da",
        "вот",
        "из",
        "списка",
        "of",
        "them",
        "these",
        "вариантов",
        "ll",
        "d",
    ];
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > 6 || shown == 0 {
        return None;
    }
    let mut n = None;
    let mut buy = false;
    for w in &words {
        let ordinal = ORDINALS.iter().find(|(stem, _)| w.starts_with(stem)).map(|(_, n)| *n).or_else(|| {
            let digits = w.trim_end_matches(['й', 'я', 'е', 'ю', 'о', '-']);
            digits.parse::<usize>().ok().filter(|d| (1..=shown).contains(d))
        });
        if let Some(o) = ordinal {
            if n.is_some() {
                return None;
            }
            n = Some(o);
        } else if BUY.contains(w) {
            buy = true;
        } else if !OTHER.contains(w) {
            return None;
        }
    }
    n.map(|n| Intent::Pick { n, buy })
}

/// The offline consultant's intent rules; `conv` tells whether "второй" can mean a product
/// shown.
pub fn intent(norm: &str, conv: &Conversation) -> Intent {
    let words = norm.split(' ').count();
    if is_greeting(norm) {
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
        "my purchases",
        "my keys",
        "my key",
        "где ключ",
        "где мой ключ",
        "где мои ключи",
        "ключ не пришел",
        "не пришел ключ",
        "товар не пришел",
        "ничего не пришло",
        "не получил",
        "не получила",
        "i paid",
        "оплатил",
        "оплатила",
        "didn't receive",
        "did not receive",
        "didnt receive",
        "haven't received",
        "not received",
        "where is my",
        "where's my",
        "wheres my",
        "что с заказом",
        "что с моим заказом",
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
    if agrees(norm) {
        return Intent::Agree;
    }
    if MORE.contains(&norm) {
        return Intent::More;
    }
    if let Some(p) = picked(norm, conv.shown.len()) {
        return p;
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
        const ASIDE: &[&str] = &[
            "а",
            "есть",
            "что",
            "нибудь",
            "что-нибудь",
            "что-то",
            "то",
            "чуть",
            "немного",
            "можно",
            "ли",
            "у",
            "вас",
            "дорого",
            "дороговато",
            "дороговат",
            "слишком",
            "хочу",
            "бы",
            "вариант",
            "варианты",
            "но",
            "и",
            "еще",
            "any",
            "anything",
            "something",
            "is",
            "there",
            "a",
            "bit",
            "little",
            "too",
            "expensive",
            "pricey",
            "do",
            "you",
            "have",
            "options",
            "option",
            "one",
            "i",
            "want",
            "please",
            "пожалуйста",
            "show",
            "me",
            "покажи",
            "найди",
            "more",
            "even",
            "still",
            "that",
            "this",
            "than",
            "чем",
            "это",
            "этот",
            "but",
        ];
        let rest = norm.split(' ').filter(|w| w != c && !ASIDE.contains(w));
        return Intent::Cheaper(rest.collect::<Vec<_>>().join(" "));
    }
    if let Some(rest) = price_question(norm) {
        return Intent::Price(rest);
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
        let none = Conversation::default();
        let i = |s: &str| intent(&normalize(s), &none);
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
        for yes in
            ["да беру", "i agree", "go ahead", "да конечно", "подтверждаю", "оформляем", "yep", "хорошо"]
        {
            assert_eq!(i(yes), Intent::Agree, "{yes}");
        }
        assert_eq!(i("ещё"), Intent::More);
        assert_eq!(i("Купить ключ Windows 11"), Intent::Buy("ключ windows 11".into()));
        assert_eq!(i("buy"), Intent::Agree, "buy what is in focus");
        assert_eq!(i("хочу ключ винды подешевле"), Intent::Cheaper("ключ винды".into()));
        assert_eq!(i("а есть под заказ?"), Intent::PreOrder(String::new()));
        assert_eq!(i("нужны шаблоны для презентации"), Intent::Search);
        assert_eq!(i("привет, нужны шаблоны для презентации и резюме"), Intent::Search);
    }

    #[test]
    fn greetings_help_and_picks_from_what_was_shown() {
        let none = Conversation::default();
        let listed = Conversation {
            shown: vec![ProductId::parse("a").unwrap(), ProductId::parse("b").unwrap()],
            ..Conversation::default()
        };
        let i = |s: &str, c: &Conversation| intent(&normalize(s), c);
        assert_eq!(i("hello, what can you do?", &none), Intent::Greeting);
        assert_eq!(i("Привет! Что у вас есть?", &none), Intent::Greeting);
        assert_eq!(i("добрый день, что умеешь", &none), Intent::Greeting);
        assert_eq!(i("привет, нужен ключ windows", &none), Intent::Search);
        assert_eq!(i("the second one", &listed), Intent::Pick { n: 2, buy: false });
        assert_eq!(i("беру второй", &listed), Intent::Pick { n: 2, buy: true });
        assert_eq!(i("I'll take the first one", &listed), Intent::Pick { n: 1, buy: true });
        assert_eq!(i("2", &listed), Intent::Pick { n: 2, buy: false });
        assert_eq!(i("последний", &listed), Intent::Pick { n: 0, buy: false });
        assert_eq!(i("второй", &none), Intent::Search, "nothing was shown");
        assert_eq!(i("windows 11 pro", &listed), Intent::Search);
        assert_eq!(i("another one", &listed), Intent::More);
    }

    #[test]
    fn english_is_told_by_english_words_not_by_latin_product_names() {
        assert_eq!(message_lang("I need a windows key"), Some(Lang::En));
        assert_eq!(message_lang("windows 11 pro"), None);
        assert_eq!(message_lang("minecraft"), None);
        assert_eq!(message_lang("купить windows"), Some(Lang::Ru));
        assert_eq!(message_lang("any cheaper?"), Some(Lang::En));
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
