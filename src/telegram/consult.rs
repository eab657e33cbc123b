//! The consultant used when the app is given none: product search, answered with buttons to
//! the product cards (or to the catalogue when nothing matched). The real consultant
//! (`crate::ai`) replaces it in `App::build`.

use crate::ai::{Button, Consult, Customer, Reply};
use crate::callback::Callback;
use crate::search::Search;
use crate::texts::bot as t;

pub struct SearchConsult {
    search: Search,
}

impl SearchConsult {
    pub fn new(search: Search) -> Self {
        SearchConsult { search }
    }
}

#[async_trait::async_trait]
impl Consult for SearchConsult {
    async fn reply(&self, c: &Customer, text: &str) -> crate::Result<Reply> {
        let q: String = text.chars().take(500).collect();
        let hits = self.search.search(&q, 5).await.unwrap_or_default();
        let found = !hits.is_empty();
        let mut buttons: Vec<Vec<Button>> =
            hits.into_iter().map(|h| vec![Button::callback(h.title, Callback::Product(h.id))]).collect();
        if !found {
            buttons.push(vec![Button::callback(
                t::button::catalog(c.lang),
                Callback::Catalog { cat: 0, page: 0 },
            )]);
        }
        Ok(Reply { text: t::consultant_fallback(c.lang, found), buttons, offer: None })
    }
}
