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

    /// Decides which use case answers `text` (already trimmed and bounded).
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
    /// there are none).
    async fn model_action(
        &self,
        d: &super::llm::Decision,
        conv: &Conversation,
        text: &str,
    ) -> Result<Action> {
        let pid = d.product_id.as_deref().and_then(|p| ProductId::parse(p).ok());
        Ok(match (d.action.as_str(), pid) {
            ("offer_payment", Some(p)) => Action::Buy(p),
            ("offer_prepaid", Some(p)) => Action::PreOrder(p),
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
                Action::Show { query: text.to_string(), hits: ids, sort: Sort::Relevance }
            }
            ("offer_payment" | "offer_prepaid" | "confirm_prepaid", None) => Action::AskWhat,
            ("none" | "", _) if !d.reply_text.trim().is_empty() => Action::Say,
            _ => self.offline(conv, text).await?,
        })
    }

    /// The offline rules: intents, everything else is a search.
    pub async fn offline(&self, conv: &Conversation, text: &str) -> Result<Action> {
        let norm = normalize(text);
        Ok(match intent(&norm) {
            Intent::Greeting => Action::Greeting,
            Intent::Orders => Action::Orders,
            Intent::Balance => Action::Balance,
            Intent::TopUp(amount) => Action::TopUp(amount),
            Intent::Agree => match (&conv.pending_preorder, &conv.focus) {
                (Some(p), _) => Action::ConfirmPreOrder(p.clone()),
                (None, Some(p)) => Action::Buy(p.clone()),
                (None, None) => Action::AskWhat,
            },
            Intent::More => Action::More,
            Intent::Buy(rest) if rest.is_empty() => match &conv.focus {
                Some(p) => Action::Buy(p.clone()),
                None => Action::AskWhat,
            },
            Intent::Buy(rest) => {
                let hits = self.inner.search.relevant(&rest, 12).await?;
                let clear = match hits.as_slice() {
                    [_] => true,
                    [a, b, ..] => a.score - b.score >= 0.03,
                    [] => false,
                };
                if clear {
                    Action::Buy(hits[0].id.clone())
                } else {
                    Action::Show {
                        query: rest,
                        hits: hits.into_iter().map(|h| h.id).collect(),
                        sort: Sort::Relevance,
                    }
                }
            }
            Intent::PreOrder(rest) => {
                let q = if rest.is_empty() { text.to_string() } else { rest };
                let hits = self.inner.search.relevant(&q, 12).await?;
                Action::Show {
                    query: text.to_string(),
                    hits: hits.into_iter().map(|h| h.id).collect(),
                    sort: Sort::PreOrderFirst,
                }
            }
            Intent::Cheaper(rest) => {
                let q = if rest.is_empty() { conv.last_query.clone().unwrap_or_default() } else { rest };
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
            Intent::Search => {
                let hits = self.inner.search.relevant(text, 12).await?;
                Action::Show {
                    query: text.to_string(),
                    hits: hits.into_iter().map(|h| h.id).collect(),
                    sort: Sort::Relevance,
                }
            }
        })
    }
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
