//! `lavka bench conversations`: scripted customers talk to the shop as people do — typed
//! messages and button presses found by their label — and code checks each one's goal
//! after every message: the right product reserved or pre-ordered, the right products
//! shown, the price stated, an honest "we don't sell that", the shop's categories on a
//! greeting, the customer's orders. It counts the goals met within three messages, the
//! messages it took, wrong offers (a product reserved or pre-ordered that was not asked
//! for), products shown to a customer the shop has nothing for, and replies in the wrong
//! language, and prints the transcripts that failed.
//!
//! Runs through [`crate::shop::Shop`], the use-case layer every door calls, on a
//! temporary data directory per catalogue; offline, or with the consultant's model
//! answered by a local stand-in ([`super::standin`]).

use crate::callback::{ButtonAction, Callback};
use crate::domain::{Currency, OrderKind, OrderStatus, ProductId};
use crate::shop::{Customer, Door, Reply, Shop};
use crate::store::orders::OrderFilter;
use crate::texts::{Lang, Loc};
use anyhow::Context;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// The shipped scripts (over the demo catalogue and the hard test catalogue).
pub const SHIPPED: &str = include_str!("../../assets/bench/conversations.json");

/// Goals count when met within this many customer messages.
pub const WITHIN: usize = 3;

#[derive(Debug, Deserialize)]
pub struct Scripts {
    /// Catalogue name → "demo" (the built-in one) or a path relative to the scripts file.
    pub catalogs: BTreeMap<String, String>,
    pub customers: Vec<Scripted>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Scripted {
    pub id: String,
    pub catalog: String,
    /// The Telegram client's language (`null`: not sent).
    #[serde(default)]
    pub client: Option<String>,
    /// The language the customer writes in: every reply must be in it.
    pub lang: String,
    /// Products bought and paid before the conversation.
    #[serde(default)]
    pub paid_before: Vec<String>,
    pub turns: Vec<Step>,
    pub goal: Goal,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Step {
    Say(String),
    Press { press: String },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// One of these products reserved (an unpaid instant order).
    Reserve(Vec<String>),
    /// A pre-order (prepaid order) placed for one of these.
    Preorder(Vec<String>),
    /// The reply presents one of these; nothing reserved.
    Show(Vec<String>),
    /// The reply presents this product and states its current price.
    Price(String),
    /// No product presented, nothing reserved.
    Nothing(bool),
    /// The reply names this (off sale or sold out) product and presents an alternative;
    /// nothing reserved.
    Unavailable(String),
    /// The reply names every category and presents no product.
    Help(bool),
    /// The reply lists the orders paid before the conversation.
    Orders(bool),
}

impl Goal {
    fn kind(&self) -> &'static str {
        match self {
            Goal::Reserve(_) => "reserve",
            Goal::Preorder(_) => "preorder",
            Goal::Show(_) => "show",
            Goal::Price(_) => "price",
            Goal::Nothing(_) => "nothing",
            Goal::Unavailable(_) => "unavailable",
            Goal::Help(_) => "help",
            Goal::Orders(_) => "orders",
        }
    }

    /// Products the customer may end up ordering.
    fn orderable(&self) -> &[String] {
        match self {
            Goal::Reserve(ids) | Goal::Preorder(ids) => ids,
            _ => &[],
        }
    }
}

/// Where the consultant's decisions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Brain {
    /// The offline rules.
    Offline,
    /// The model path, answered by the local Gemini stand-in.
    StandIn,
}

/// Reads a scripts file (catalogue paths are relative to it).
pub fn load(path: &Path) -> anyhow::Result<(Scripts, PathBuf)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let s: Scripts = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok((s, path.parent().map(Path::to_path_buf).unwrap_or_default()))
}

/// Runs every scripted customer; `model_dir` loads the embedding model (hybrid search, as
/// in a shop), `None` keeps search to keywords.
pub async fn run(
    scripts: &Scripts,
    base: &Path,
    brain: Brain,
    model_dir: Option<&Path>,
    model_fetch: bool,
) -> anyhow::Result<Value> {
    validate(scripts)?;
    let standin = match brain {
        Brain::StandIn => Some(super::standin::StandIn::start().await?),
        Brain::Offline => None,
    };
    let mut results = Vec::new();
    let names: Vec<&String> = scripts.catalogs.keys().collect();
    for name in names {
        let customers: Vec<&Scripted> = scripts.customers.iter().filter(|c| &c.catalog == name).collect();
        if customers.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let shop =
            shop_for(&scripts.catalogs[name], base, dir.path(), standin.as_ref(), model_dir, model_fetch)
                .await
                .with_context(|| format!("catalogue {name}"))?;
        for (i, c) in customers.into_iter().enumerate() {
            results.push(converse(&shop, 500_000 + results.len() as i64 + i as i64, c).await?);
        }
    }
    Ok(report(brain, &results))
}

fn validate(s: &Scripts) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for c in &s.customers {
        anyhow::ensure!(seen.insert(&c.id), "customer {} is scripted twice", c.id);
        anyhow::ensure!(
            s.catalogs.contains_key(&c.catalog),
            "customer {}: unknown catalogue {}",
            c.id,
            c.catalog
        );
        anyhow::ensure!(Lang::parse(&c.lang).is_some(), "customer {}: lang must be ru or en", c.id);
        anyhow::ensure!(!c.turns.is_empty(), "customer {} says nothing", c.id);
    }
    Ok(())
}

/// A shop on `dir` with the catalogue imported and searchable.
async fn shop_for(
    catalog: &str,
    base: &Path,
    dir: &Path,
    standin: Option<&super::standin::StandIn>,
    model_dir: Option<&Path>,
    model_fetch: bool,
) -> anyhow::Result<Shop> {
    let mut c = crate::config::Config::for_tests(dir);
    if let Some(s) = standin {
        c.ai.gemini_api_key = crate::config::Secret::new(super::standin::KEY);
        c.ai.gemini_base_url = s.url.clone();
        c.ai.gemini_model = super::standin::MODEL.into();
        c.ai.user_calls_per_minute = 1000;
        c.ai.user_calls_per_day = 100_000;
        c.ai.cache_min_tokens = 0;
    }
    let cur = Currency::parse(&c.currency)?;
    let cat = if catalog == "demo" {
        crate::catalog::parse_json(crate::catalog::DEMO_CATALOG, cur)?
    } else {
        crate::catalog::load_path(&base.join(catalog), cur)?
    };
    let app = crate::app::App::build(c, crate::app::Parts::default()).await?;
    let s = app.state;
    s.store.write(move |tx| crate::catalog::apply(tx, &cat)).await?;
    s.search.refresh().await?;
    if let Some(m) = model_dir {
        crate::search::model::attach(&s.search, m, model_fetch).await;
        anyhow::ensure!(s.search.vectors_complete(), "the embedding model did not load from {}", m.display());
    }
    Ok(s.shop.clone())
}

/// One customer's conversation and its verdict.
struct Outcome {
    id: String,
    kind: &'static str,
    /// The message (1-based) after which the goal was met.
    met_at: Option<usize>,
    /// Products ordered (reserved or pre-ordered) that the customer did not ask for.
    wrong_offers: Vec<String>,
    /// Products shown to a customer the shop has nothing for.
    unrelated_shown: Vec<String>,
    wrong_language: usize,
    failure: Option<String>,
    transcript: Vec<Value>,
}

async fn converse(shop: &Shop, user: i64, s: &Scripted) -> anyhow::Result<Outcome> {
    let want = Lang::parse(&s.lang).unwrap_or(Lang::Ru);
    let client = Lang::pick(s.client.as_deref(), Lang::Ru);
    let c = Customer {
        lang_told: s.client.is_some(),
        ..Customer::new(user, client, Door::Telegram { private: true })
    };
    let mut paid = Vec::new();
    for p in &s.paid_before {
        paid.push(buy_and_pay(shop, &c, p).await.with_context(|| format!("{}: paying for {p} first", s.id))?);
    }
    let facts = Facts::of(shop).await?;
    let mut out = Outcome {
        id: s.id.clone(),
        kind: s.goal.kind(),
        met_at: None,
        wrong_offers: Vec::new(),
        unrelated_shown: Vec::new(),
        wrong_language: 0,
        failure: None,
        transcript: Vec::new(),
    };
    let mut last: Option<Reply> = None;
    for (n, step) in s.turns.iter().enumerate() {
        let (said, reply) = match step {
            Step::Say(text) => (text.clone(), shop.converse(&c, text).await?),
            Step::Press { press } => {
                let Some(cb) = last.as_ref().and_then(|r| button(r, press)) else {
                    out.failure = Some(format!("message {}: no button labelled {press:?}", n + 1));
                    break;
                };
                (format!("[{press}]"), shop.press(&c, &cb).await?)
            }
        };
        let wrong_lang = facts.wrong_language(&reply, want);
        out.wrong_language += usize::from(wrong_lang);
        let orders: Vec<crate::domain::Order> = shop
            .store()
            .orders(OrderFilter { user: Some(user), ..OrderFilter::default() })
            .await?
            .into_iter()
            .filter(|o| !paid.contains(&o.id))
            .collect();
        for o in &orders {
            let w = o.product_id.to_string();
            if !s.goal.orderable().contains(&w) && !out.wrong_offers.contains(&w) {
                out.wrong_offers.push(w);
            }
        }
        let presented = presented(&reply);
        if matches!(s.goal, Goal::Nothing(_)) {
            for p in &presented {
                let p = p.to_string();
                if !out.unrelated_shown.contains(&p) {
                    out.unrelated_shown.push(p);
                }
            }
        }
        let met = goal_met(shop, &s.goal, &reply, &presented, &orders, &paid, &facts, want).await?;
        out.transcript.push(json!({
            "customer": said,
            "shop": reply.text.plain(),
            "buttons": reply.buttons.iter().flatten().map(|b| b.label.clone()).collect::<Vec<_>>(),
            "wrong_language": wrong_lang,
        }));
        if met && out.met_at.is_none() {
            out.met_at = Some(n + 1);
        }
        last = Some(reply);
    }
    if out.failure.is_none() {
        out.failure = match out.met_at {
            Some(n) if n <= WITHIN => None,
            Some(n) => Some(format!("goal met only at message {n}")),
            None => Some("goal not met".into()),
        };
    }
    if !out.wrong_offers.is_empty() && out.failure.is_none() {
        out.failure = Some(format!("wrong offer: {}", out.wrong_offers.join(", ")));
    }
    if out.wrong_language > 0 && out.failure.is_none() {
        out.failure = Some("a reply in the wrong language".into());
    }
    Ok(out)
}

/// A paid order of `product`, bought through the shop and paid from a balance credited
/// for it.
async fn buy_and_pay(shop: &Shop, c: &Customer, product: &str) -> anyhow::Result<crate::domain::OrderId> {
    let id = ProductId::parse(product)?;
    let mut conv = shop.store().conversation(c.user_id).await?;
    let r = shop.buy(c, &mut conv, &id, 1).await?;
    let offer = r.offer.context("the product could not be reserved")?;
    let (user, amount, cur) = (c.user_id, offer.amount, offer.currency);
    shop.store()
        .write(move |tx| crate::store::ledger::credit_balance(tx, user, amount, cur, "bench"))
        .await?;
    shop.pay_balance(c, offer.order_id).await?;
    shop.forget(c.user_id).await?;
    Ok(offer.order_id)
}

fn button(r: &Reply, label: &str) -> Option<Callback> {
    let want = label.to_lowercase();
    r.buttons.iter().flatten().find_map(|b| match &b.action {
        ButtonAction::Callback(cb) if b.label.to_lowercase().contains(&want) => Some(cb.clone()),
        _ => None,
    })
}

/// The products a reply presents: a card, a list entry, an offer.
fn presented(r: &Reply) -> Vec<ProductId> {
    let mut out: Vec<ProductId> = Vec::new();
    let mut add = |p: &ProductId| {
        if !out.contains(p) {
            out.push(p.clone());
        }
    };
    for cb in r.callbacks() {
        match cb.unwrap_in_place().0 {
            Callback::Product(p)
            | Callback::Buy(p)
            | Callback::PreOrder(p)
            | Callback::ConfirmPreOrder(p) => add(p),
            _ => {}
        }
    }
    if let Some(o) = &r.offer {
        add(&o.product_id);
    }
    out
}

/// What the checks need to know about the catalogue.
struct Facts {
    /// Product texts (titles, descriptions, categories, both languages), longest first:
    /// they may be in either language and are cut out before the language check.
    texts: Vec<String>,
    titles: BTreeMap<String, Vec<String>>,
    /// Each category on sale, by its main name: the names it goes by (either language).
    categories: BTreeMap<String, Vec<String>>,
    shop_name: String,
}

impl Facts {
    async fn of(shop: &Shop) -> anyhow::Result<Facts> {
        let products = shop.store().products().await?;
        let mut texts = Vec::new();
        let mut titles = BTreeMap::new();
        let mut categories: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &products {
            for en in [false, true] {
                texts.push(p.title_in(en).to_string());
                let d = p.description_in(en).trim().to_string();
                if d.chars().count() > 900 {
                    texts.push(d.chars().take(880).collect());
                }
                texts.push(d);
                texts.push(p.category_in(en).trim().to_string());
            }
            titles
                .insert(p.id.to_string(), vec![p.title_in(false).to_string(), p.title_in(true).to_string()]);
            if p.active && !p.category.trim().is_empty() {
                let names = categories.entry(p.category.trim().to_string()).or_default();
                for en in [false, true] {
                    let cat = p.category_in(en).trim().to_string();
                    if !names.contains(&cat) {
                        names.push(cat);
                    }
                }
            }
        }
        texts.retain(|t| t.chars().count() >= 2);
        texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
        texts.dedup();
        Ok(Facts { texts, titles, categories, shop_name: shop.settings().shop_name.clone() })
    }

    /// Whether the shop's own words in `r` are not in `want` (product texts aside).
    fn wrong_language(&self, r: &Reply, want: Lang) -> bool {
        let mut s = r.text.plain();
        for b in r.buttons.iter().flatten() {
            s.push('\n');
            s.push_str(&b.label);
        }
        // Titles cut short in buttons ("#9 Минималистичные шаблоны презе…").
        while let Some(end) = s.find('…') {
            let head = &s[..end];
            let cut = self
                .texts
                .iter()
                .filter_map(|t| {
                    (1..=head.len()).rev().filter(|i| head.is_char_boundary(head.len() - i)).find(|i| {
                        let tail = &head[head.len() - i..];
                        tail.chars().count() >= 8 && t.starts_with(tail.trim_start())
                    })
                })
                .max()
                .unwrap_or(0);
            s = format!("{} {}", &s[..end - cut], &s[end + '…'.len_utf8()..]);
        }
        for t in self.texts.iter().chain(std::iter::once(&self.shop_name)) {
            if s.contains(t.as_str()) {
                s = s.replace(t.as_str(), " ");
            }
        }
        let cyr = s.chars().filter(|c| ('\u{400}'..='\u{4ff}').contains(c)).count();
        let lat = s.chars().filter(|c| c.is_ascii_alphabetic()).count();
        match want {
            Lang::En => cyr > 0,
            Lang::Ru => cyr == 0 && lat > 0,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn goal_met(
    shop: &Shop,
    goal: &Goal,
    r: &Reply,
    presented: &[ProductId],
    orders: &[crate::domain::Order],
    paid: &[crate::domain::OrderId],
    facts: &Facts,
    lang: Lang,
) -> anyhow::Result<bool> {
    let has = |ids: &[String]| presented.iter().any(|p| ids.iter().any(|i| i == p.as_str()));
    let open = |o: &&crate::domain::Order| !matches!(o.status, OrderStatus::Expired | OrderStatus::Refunded);
    Ok(match goal {
        Goal::Reserve(ids) => orders.iter().filter(open).any(|o| {
            o.kind == OrderKind::Instant
                && matches!(o.status, OrderStatus::Reserved | OrderStatus::AwaitingPayment)
                && ids.iter().any(|i| i == o.product_id.as_str())
        }),
        Goal::Preorder(ids) => orders
            .iter()
            .filter(open)
            .any(|o| o.kind == OrderKind::Prepaid && ids.iter().any(|i| i == o.product_id.as_str())),
        Goal::Show(ids) => orders.is_empty() && has(ids),
        Goal::Price(id) => {
            let pid = ProductId::parse(id)?;
            let a = shop.store().availability(pid).await?;
            let l = Loc::new(lang, shop.settings().zone, shop.store().now());
            orders.is_empty()
                && has(std::slice::from_ref(id))
                && r.text.plain().contains(&l.money(a.final_price, a.currency))
        }
        Goal::Nothing(_) => orders.is_empty() && presented.is_empty() && !r.text.is_empty(),
        Goal::Unavailable(id) => {
            let text = r.text.plain();
            let named = facts.titles.get(id).is_some_and(|ts| ts.iter().any(|t| text.contains(t.as_str())));
            orders.is_empty() && named && presented.iter().any(|p| p.as_str() != id)
        }
        Goal::Help(_) => {
            let mut s = r.text.plain();
            for b in r.buttons.iter().flatten() {
                s.push('\n');
                s.push_str(&b.label);
            }
            let cats = &facts.categories;
            orders.is_empty()
                && presented.is_empty()
                && !cats.is_empty()
                && cats.values().all(|names| names.iter().any(|c| s.contains(c.as_str())))
        }
        Goal::Orders(_) => {
            let text = r.text.plain();
            let listed = |o: &crate::domain::OrderId| {
                text.contains(&format!("#{o}")) || r.callbacks().any(|cb| cb == &Callback::Order(*o))
            };
            !paid.is_empty() && paid.iter().all(listed)
        }
    })
}

fn report(brain: Brain, results: &[Outcome]) -> Value {
    let n = results.len();
    let met: Vec<&Outcome> = results.iter().filter(|o| o.failure.is_none()).collect();
    let turns: Vec<usize> = results.iter().filter_map(|o| o.met_at).collect();
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for o in results {
        let e = by_kind.entry(o.kind).or_default();
        e.0 += 1;
        e.1 += usize::from(o.failure.is_none());
    }
    let share = if n == 0 { 0.0 } else { met.len() as f64 / n as f64 };
    json!({
        "bench": "conversations",
        "consultant": match brain { Brain::Offline => "offline", Brain::StandIn => "model stand-in" },
        "customers": n,
        "goals_met_within_3": met.len(),
        "share_met_within_3": (share * 1000.0).round() / 1000.0,
        "mean_messages_to_goal": if turns.is_empty() { 0.0 } else {
            ((turns.iter().sum::<usize>() as f64 / turns.len() as f64) * 100.0).round() / 100.0
        },
        "wrong_offers": results.iter().map(|o| o.wrong_offers.len()).sum::<usize>(),
        "unrelated_products_shown": results.iter().map(|o| o.unrelated_shown.len()).sum::<usize>(),
        "wrong_language_replies": results.iter().map(|o| o.wrong_language).sum::<usize>(),
        "by_goal": by_kind.iter().map(|(k, (all, ok))| (k.to_string(), json!({"customers": all, "met": ok}))).collect::<serde_json::Map<_, _>>(),
        "failed": results.iter().filter(|o| o.failure.is_some()).map(|o| json!({
            "id": o.id,
            "goal": o.kind,
            "why": o.failure,
            "transcript": o.transcript,
        })).collect::<Vec<_>>(),
    })
}
