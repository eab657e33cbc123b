//! Browsing: the catalogue (categories → products, paged), the product card, search
//! results and "more".

use super::{Customer, Reply, Shop};
use crate::ai::Sort;
use crate::callback::{Button, Callback};
use crate::domain::{Availability, Product, ProductId, Sale};
use crate::error::{Error, Result};
use crate::store::conversations::Conversation;
use crate::texts::{Lang, Loc, customer as t};
use std::collections::BTreeMap;

/// Buttons per catalogue page.
pub const PAGE: usize = 8;
/// Products per list of search results.
const SHOWN: usize = 3;

/// One category of the catalogue: its name in the reader's language, its products.
struct Shelf {
    name: String,
    items: Vec<(Product, Availability)>,
}

/// A "◀️ page ▶️" row (none when one page).
fn nav(page: usize, pages: usize, to: impl Fn(u16) -> Callback) -> Vec<Button> {
    let mut row = Vec::new();
    if page > 0 {
        row.push(Button::callback(t::button::prev(), to((page - 1) as u16).in_place()));
    }
    if page + 1 < pages {
        row.push(Button::callback(t::button::next(), to((page + 1) as u16).in_place()));
    }
    row
}

impl Shop {
    /// Active products with their availability, by category: named categories sorted by
    /// their name in `lang`, the unnamed one last; products by title.
    async fn shelves(&self, lang: Lang) -> Result<Vec<Shelf>> {
        let en = lang == Lang::En;
        let products = self.store().products().await?;
        let avail: std::collections::HashMap<ProductId, Availability> = self
            .store()
            .available_stock_with_discounts()
            .await?
            .into_iter()
            .map(|a| (a.product_id.clone(), a))
            .collect();
        let mut by_cat: BTreeMap<String, Vec<(Product, Availability)>> = BTreeMap::new();
        for p in products.into_iter().filter(|p| p.active) {
            if let Some(a) = avail.get(&p.id).cloned() {
                by_cat.entry(p.category.trim().to_string()).or_default().push((p, a));
            }
        }
        let mut shelves: Vec<Shelf> = by_cat
            .into_iter()
            .map(|(key, mut items)| {
                items.sort_by_key(|(p, _)| p.title_in(en).to_lowercase());
                let name = if key.is_empty() {
                    String::new()
                } else {
                    items.first().map(|(p, _)| p.category_in(en).trim().to_string()).unwrap_or(key)
                };
                Shelf { name, items }
            })
            .collect();
        shelves.sort_by_key(|s| (s.name.is_empty(), s.name.to_lowercase()));
        Ok(shelves)
    }

    /// `cat` 0: the list of categories (or the products, when there is one category);
    /// `cat` n: the products of the n-th category, `page` of them.
    pub async fn browse(&self, c: &Customer, cat: u16, page: u16) -> Result<Reply> {
        let l = self.loc(c.lang);
        let en = c.lang == Lang::En;
        let mut shelves = self.shelves(c.lang).await?;
        if shelves.is_empty() {
            return Ok(Reply::text(t::catalog_empty(&l)));
        }
        let index = match cat {
            0 if shelves.len() == 1 => Some(0),
            n if n > 0 && (n as usize) <= shelves.len() => Some(n as usize - 1),
            _ => None,
        };
        let Some(ci) = index else {
            let pages = shelves.len().div_ceil(PAGE);
            let page = (page as usize).min(pages - 1);
            let mut rows: Vec<Vec<Button>> = shelves
                .iter()
                .enumerate()
                .skip(page * PAGE)
                .take(PAGE)
                .map(|(i, s)| {
                    let name = if s.name.is_empty() { t::other_category(&l) } else { t::short(&s.name, 40) };
                    vec![Button::callback(
                        format!("{name} ({})", s.items.len()),
                        Callback::Catalog { cat: (i + 1) as u16, page: 0 }.in_place(),
                    )]
                })
                .collect();
            let nav = nav(page, pages, |p| Callback::Catalog { cat: 0, page: p });
            if !nav.is_empty() {
                rows.push(nav);
            }
            return Ok(Reply::with(t::categories(&l), rows));
        };
        let count = shelves.len();
        let shelf = shelves.swap_remove(ci);
        let pages = shelf.items.len().div_ceil(PAGE).max(1);
        let page = (page as usize).min(pages - 1);
        let mut rows: Vec<Vec<Button>> = shelf
            .items
            .iter()
            .skip(page * PAGE)
            .take(PAGE)
            .map(|(p, a)| {
                let price = t::price_short(&l, a.final_price, a.discount_percent, a.currency);
                let label = t::product_label(p.title_in(en), a.sale(), &price);
                vec![Button::callback(label, Callback::Product(p.id.clone()).in_place())]
            })
            .collect();
        let cat_no = (ci + 1) as u16;
        let nav = nav(page, pages, |p| Callback::Catalog { cat: cat_no, page: p });
        if !nav.is_empty() {
            rows.push(nav);
        }
        if count > 1 {
            rows.push(vec![Button::callback(
                t::button::categories(&l),
                Callback::Catalog { cat: 0, page: 0 }.in_place(),
            )]);
        }
        let title =
            if shelf.name.is_empty() && count > 1 { t::other_category(&l) } else { shelf.name.clone() };
        Ok(Reply::with(t::products_page(&l, &title, page, pages), rows))
    }

    /// Where a product sits in the catalogue: its category number and page (for "Back").
    async fn place_of(&self, lang: Lang, id: &ProductId) -> Result<Callback> {
        let shelves = self.shelves(lang).await?;
        for (ci, s) in shelves.iter().enumerate() {
            if let Some(i) = s.items.iter().position(|(p, _)| &p.id == id) {
                let cat = if shelves.len() == 1 { 0 } else { (ci + 1) as u16 };
                return Ok(Callback::Catalog { cat, page: (i / PAGE) as u16 }.in_place());
            }
        }
        Ok(Callback::Catalog { cat: 0, page: 0 }.in_place())
    }

    /// The product, when it exists and is on sale, with its live availability.
    pub(super) async fn live(&self, id: &ProductId) -> Result<Option<(Product, Availability)>> {
        let p = match self.store().product(id.clone()).await {
            Ok(p) if p.active => p,
            Ok(_) | Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let a = self.store().availability(id.clone()).await?;
        Ok(Some((p, a)))
    }

    /// What can be done with a product: Buy (with its price), or Pre-order.
    pub(super) fn sale_button(&self, l: &Loc, a: &Availability) -> Option<Button> {
        match a.sale() {
            Sale::InStock { .. } => {
                let price = l.money(a.final_price, a.currency);
                Some(Button::callback(t::button::buy(l, &price), Callback::Buy(a.product_id.clone())))
            }
            Sale::PreOrder { .. } => {
                Some(Button::callback(t::button::preorder(l), Callback::PreOrder(a.product_id.clone())))
            }
            Sale::SoldOut => None,
        }
    }

    /// The product card, with Buy or Pre-order and "Back" to the page it is listed on.
    pub async fn card(&self, c: &Customer, conv: &mut Conversation, id: &ProductId) -> Result<Reply> {
        let l = self.loc(c.lang);
        let Some((p, a)) = self.live(id).await? else { return Ok(Reply::text(t::not_found(&l))) };
        conv.focus = Some(id.clone());
        let en = c.lang == Lang::En;
        let text = t::card(
            &l,
            p.title_in(en),
            p.description_in(en),
            a.price,
            a.final_price,
            a.discount_percent,
            a.currency,
            a.sale(),
        );
        let mut rows = Vec::new();
        if let Some(b) = self.sale_button(&l, &a) {
            rows.push(vec![b]);
        }
        rows.push(vec![Button::callback(t::button::back(&l), self.place_of(c.lang, id).await?)]);
        Ok(Reply::with(text, rows))
    }

    /// A list of products (search results or the consultant's choice), `SHOWN` at a time
    /// from `skip`, each with Buy / Pre-order and Details; "More" when there are more.
    pub async fn show(
        &self,
        c: &Customer,
        conv: &mut Conversation,
        query: &str,
        ids: Vec<ProductId>,
        skip: usize,
        sort: Sort,
    ) -> Result<Reply> {
        let l = self.loc(c.lang);
        let en = c.lang == Lang::En;
        let mut items = Vec::new();
        for id in ids {
            if let Some(x) = self.live(&id).await? {
                items.push(x);
            }
        }
        match sort {
            Sort::Relevance => {}
            Sort::Cheapest => items.sort_by_key(|(_, a)| a.final_price),
            Sort::PreOrderFirst => items.sort_by_key(|(_, a)| !matches!(a.sale(), Sale::PreOrder { .. })),
        }
        conv.last_query = Some(query.to_string());
        if skip == 0 {
            conv.shown.clear();
        }
        let page: Vec<&(Product, Availability)> = items.iter().skip(skip).take(SHOWN).collect();
        if page.is_empty() {
            if skip > 0 {
                return Ok(Reply::text(t::no_more(&l)));
            }
            let cats: Vec<String> =
                self.shelves(c.lang).await?.into_iter().map(|s| s.name).filter(|n| !n.is_empty()).collect();
            return Ok(Reply::with(
                t::nothing_found(&l, &cats),
                vec![vec![Button::callback(t::button::catalog(&l), Callback::Catalog { cat: 0, page: 0 })]],
            ));
        }
        // The first is the one in focus ("да" buys it) unless another shown matches more of
        // the request's words, or it is another edition than the one asked for; then "да"
        // asks which one.
        let words = crate::search::names::content_words(query);
        let named = |p: &Product| crate::search::names::share_named(&words, p.title_in(en));
        let first = named(&page[0].0);
        let clear = page[1..].iter().all(|(p, _)| named(p) <= first)
            && !crate::search::names::edition_conflict(query, page[0].0.title_in(en));
        conv.focus = (page.len() == 1 || clear).then(|| page[0].0.id.clone());
        conv.shown.extend(page.iter().map(|(p, _)| p.id.clone()));
        let mut text = t::found(&l, page.len());
        let mut rows = Vec::new();
        for (i, (p, a)) in page.iter().enumerate() {
            let price = t::price_short(&l, a.final_price, a.discount_percent, a.currency);
            text = text.line(t::list_line(&l, skip + i + 1, p.title_in(en), &price, a.sale()));
            let mut row: Vec<Button> = self.sale_button(&l, a).into_iter().collect();
            row.push(Button::callback(t::button::details(&l), Callback::Product(p.id.clone())));
            rows.push(row);
        }
        if items.len() > skip + SHOWN {
            rows.push(vec![Button::callback(
                t::button::more(&l),
                Callback::More(((skip + SHOWN) / SHOWN) as u16),
            )]);
        }
        Ok(Reply::with(text, rows))
    }

    /// A greeting or "what can you do?" in a conversation: what the shop does, and its
    /// categories as buttons.
    pub async fn welcome(&self, c: &Customer) -> Result<Reply> {
        let l = self.loc(c.lang);
        let shelves = self.shelves(c.lang).await?;
        let names: Vec<String> = shelves.iter().map(|s| s.name.clone()).filter(|n| !n.is_empty()).collect();
        let mut r = self.start(c);
        r.text = r.text.para(t::what_we_sell(&l, &names));
        let count = shelves.len();
        let mut rows: Vec<Vec<Button>> = shelves
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.name.is_empty() && count > 1)
            .take(PAGE)
            .map(|(i, s)| {
                vec![Button::callback(
                    format!("{} ({})", t::short(&s.name, 40), s.items.len()),
                    Callback::Catalog { cat: (i + 1) as u16, page: 0 },
                )]
            })
            .collect();
        rows.append(&mut r.buttons);
        r.buttons = rows;
        Ok(r)
    }

    /// A product the customer asked for that cannot be had: off sale or sold out, said
    /// plainly, with the closest alternatives that can; nothing is reserved.
    pub async fn unavailable(&self, c: &Customer, conv: &mut Conversation, id: &ProductId) -> Result<Reply> {
        let l = self.loc(c.lang);
        let p = match self.store().product(id.clone()).await {
            Ok(p) => p,
            Err(Error::NotFound(_)) => return Ok(Reply::text(t::not_found(&l))),
            Err(e) => return Err(e),
        };
        if !p.active {
            let title = p.title_in(c.lang == Lang::En).to_string();
            let ids = self.similar(&title, &p.id).await?;
            let r = self.show(c, conv, &title, ids, 0, Sort::Relevance).await?;
            let alternatives = r.callbacks().any(|cb| matches!(cb, Callback::Product(_)));
            return Ok(if alternatives {
                Reply { text: t::off_sale(&l, &title).para(t::similar(&l)).para(r.text), ..r }
            } else {
                Reply::text(t::off_sale(&l, &title))
            });
        }
        match self.store().availability(id.clone()).await?.sale() {
            Sale::SoldOut => self.sold_out(c, conv, &p).await,
            _ => self.card(c, conv, id).await,
        }
    }

    /// More results of the last search.
    pub async fn more(&self, c: &Customer, conv: &mut Conversation) -> Result<Reply> {
        let Some(q) = conv.last_query.clone() else {
            return Ok(Reply::text(t::ask_what(&self.loc(c.lang))));
        };
        let skip = conv.shown.len();
        let ids = self.inner.search.relevant(&q, 12).await?.into_iter().map(|h| h.id).collect();
        self.show(c, conv, &q, ids, skip, Sort::Relevance).await
    }

    /// Products like `title` that can be had now (for "sold out").
    pub(super) async fn similar(&self, title: &str, not: &ProductId) -> Result<Vec<ProductId>> {
        Ok(self
            .inner
            .search
            .relevant(title, 8)
            .await?
            .into_iter()
            .map(|h| h.id)
            .filter(|id| id != not)
            .collect())
    }
}
