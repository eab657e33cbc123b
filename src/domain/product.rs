//! Products, suppliers, stock items and the availability view.

use super::{Currency, Millis, OrderId};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A product id: 1–64 ASCII letters, digits, `-`, `_` or `.` (it travels in callback data).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
        if !ok {
            return Err(Error::bad(format!(
                "product id must be 1-64 characters of a-z, 0-9, '-', '_', '.', got {s:?}"
            )));
        }
        Ok(ProductId(s.to_string()))
    }
    /// An id for a product being created or imported: also short enough to travel in
    /// Telegram's 64-byte button data with the longest tag (`pc:`). Stored ids keep the
    /// wider [`ProductId::parse`] rule, so nothing already stored stops reading.
    pub fn parse_new(s: &str) -> Result<Self> {
        let id = Self::parse(s)?;
        if s.len() > Self::MAX_NEW_LEN {
            return Err(Error::bad(format!(
                "product id {s:?} is {} characters; at most {} fit in Telegram's button data",
                s.len(),
                Self::MAX_NEW_LEN
            )));
        }
        Ok(id)
    }

    /// Longest id [`ProductId::parse_new`] accepts (room is left in a 64-byte button for a
    /// three-byte tag; `callback` checks that this holds).
    pub const MAX_NEW_LEN: usize = 61;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for ProductId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ProductId::parse(&s)
    }
}
impl From<ProductId> for String {
    fn from(p: ProductId) -> String {
        p.0
    }
}
impl std::fmt::Display for ProductId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product as the shop owner defines it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Price in minor units of `currency`.
    pub price: i64,
    pub currency: Currency,
    #[serde(default)]
    pub discount_percent: u8,
    /// The discount ends at this moment (unix ms); `None` = no end.
    #[serde(default)]
    pub discount_until: Option<Millis>,
    /// Present: can be pre-ordered and a supplier delivers within this many hours.
    #[serde(default)]
    pub fulfillment_hours: Option<u32>,
    /// The same in minutes, for suppliers who deliver within the hour (takes precedence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_minutes: Option<u32>,
    /// English title, description and category for shops that sell to both languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<Translation>,
    #[serde(default)]
    pub supplier: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub updated_at: Millis,
}

fn yes() -> bool {
    true
}

impl Product {
    /// Checks the rules every stored product obeys.
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(Error::bad(format!("product {}: title is empty", self.id)));
        }
        if self.title.chars().count() > 200 {
            return Err(Error::bad(format!("product {}: title longer than 200", self.id)));
        }
        if self.description.chars().count() > 4000 {
            return Err(Error::bad(format!("product {}: description longer than 4000", self.id)));
        }
        if self.price < 0 {
            return Err(Error::bad(format!("product {}: price is negative", self.id)));
        }
        if self.price == 0 {
            return Err(Error::bad(format!("product {}: price must be above zero", self.id)));
        }
        if let Some(s) = &self.supplier
            && (s.trim().is_empty() || s.len() > 64)
        {
            return Err(Error::bad(format!("product {}: supplier id must be 1-64 characters", self.id)));
        }
        if self.price > 100_000_000_000 {
            return Err(Error::bad(format!("product {}: price is too large", self.id)));
        }
        if self.discount_percent > 99 {
            return Err(Error::bad(format!("product {}: discount_percent must be 0-99", self.id)));
        }
        if let Some(h) = self.fulfillment_hours
            && (h == 0 || h > 24 * 365)
        {
            return Err(Error::bad(format!("product {}: fulfillment_hours must be 1-8760", self.id)));
        }
        if let Some(m) = self.fulfillment_minutes
            && (m == 0 || m > 24 * 365 * 60)
        {
            return Err(Error::bad(format!("product {}: fulfillment_minutes must be 1-525600", self.id)));
        }
        if let Some(en) = &self.en {
            if en.title.as_deref().is_some_and(|t| t.trim().is_empty() || t.chars().count() > 200) {
                return Err(Error::bad(format!("product {}: en.title must be 1-200 characters", self.id)));
            }
            if en.description.as_deref().is_some_and(|d| d.chars().count() > 4000) {
                return Err(Error::bad(format!("product {}: en.description longer than 4000", self.id)));
            }
        }
        Ok(())
    }

    /// The discount in force at `now`.
    pub fn discount_at(&self, now: Millis) -> u8 {
        match self.discount_until {
            Some(until) if until < now => 0,
            _ => self.discount_percent,
        }
    }

    /// The unit price after the discount in force at `now`.
    pub fn final_price_at(&self, now: Millis) -> i64 {
        super::money::apply_discount(self.price, self.discount_at(now))
    }

    /// Minutes a supplier needs for a pre-order, when the product can be pre-ordered.
    pub fn lead_minutes(&self) -> Option<u32> {
        self.fulfillment_minutes.or(self.fulfillment_hours.map(|h| h * 60))
    }

    pub fn can_preorder(&self) -> bool {
        self.active && self.lead_minutes().is_some()
    }

    /// The title in `english` or the main language.
    pub fn title_in(&self, english: bool) -> &str {
        self.en.as_ref().and_then(|e| e.title.as_deref()).filter(|_| english).unwrap_or(&self.title)
    }

    pub fn description_in(&self, english: bool) -> &str {
        self.en
            .as_ref()
            .and_then(|e| e.description.as_deref())
            .filter(|_| english)
            .unwrap_or(&self.description)
    }

    pub fn category_in(&self, english: bool) -> &str {
        self.en.as_ref().and_then(|e| e.category.as_deref()).filter(|_| english).unwrap_or(&self.category)
    }
}

/// A product's texts in English (each optional: the main text is shown where one is missing).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// What a customer can do with a product now. Every door shows this one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Sale {
    /// Delivered right after payment.
    InStock { available: u64 },
    /// Out of stock; a supplier delivers within `minutes` of payment.
    PreOrder { minutes: u32 },
    /// Neither (or not on sale).
    SoldOut,
}

impl Sale {
    pub fn of(active: bool, available: u64, lead_minutes: Option<u32>) -> Sale {
        match (active, available, lead_minutes) {
            (false, _, _) => Sale::SoldOut,
            (true, n, _) if n > 0 => Sale::InStock { available: n },
            (true, _, Some(m)) => Sale::PreOrder { minutes: m },
            _ => Sale::SoldOut,
        }
    }

    /// `in_stock`, `preorder` or `sold_out`.
    pub fn name(&self) -> &'static str {
        match self {
            Sale::InStock { .. } => "in_stock",
            Sale::PreOrder { .. } => "preorder",
            Sale::SoldOut => "sold_out",
        }
    }
}

/// A supplier who fulfils pre-orders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub telegram_chat_id: Option<i64>,
    /// The language the supplier reads (`ru`/`en`); the shop's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl Supplier {
    pub fn validate(&self) -> Result<()> {
        if self.id.trim().is_empty() || self.id.len() > 64 || self.id.trim() != self.id {
            return Err(Error::bad(format!(
                "supplier id {:?} must be 1-64 characters without surrounding spaces",
                self.id
            )));
        }
        if self.name.chars().count() > 200 {
            return Err(Error::bad(format!("supplier {}: name longer than 200", self.id)));
        }
        if let Some(l) = &self.lang
            && !matches!(l.as_str(), "ru" | "en")
        {
            return Err(Error::bad(format!("supplier {}: lang must be \"ru\" or \"en\"", self.id)));
        }
        Ok(())
    }
}

/// Where a stock item is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    Available,
    Reserved,
    Sold,
    /// Withdrawn by the owner; never sold.
    Removed,
}

/// One deliverable unit: a key, an account, a link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StockItem {
    pub id: u64,
    pub product_id: ProductId,
    pub content: String,
    pub state: StockState,
    #[serde(default)]
    pub order_id: Option<OrderId>,
    pub added_at: Millis,
}

/// One row of the availability view (the former `available_stock_with_discounts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    pub product_id: ProductId,
    pub title: String,
    pub active: bool,
    /// Items in stock right now (not reserved, not sold).
    pub available: u64,
    pub price: i64,
    pub discount_percent: u8,
    pub final_price: i64,
    pub currency: Currency,
    /// Can be ordered now: in stock, or pre-orderable.
    pub can_fulfill: bool,
    /// Hours a supplier needs for a pre-order, when pre-orderable (rounded up).
    pub fulfillment_hours: Option<u32>,
    /// Minutes a supplier needs for a pre-order, when pre-orderable.
    #[serde(default)]
    pub fulfillment_minutes: Option<u32>,
}

impl Availability {
    /// The one availability state.
    pub fn sale(&self) -> Sale {
        Sale::of(self.active, self.available, self.fulfillment_minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_are_validated() {
        assert!(ProductId::parse("win11-pro").is_ok());
        assert!(ProductId::parse("").is_err());
        assert!(ProductId::parse("with space").is_err());
        assert!(ProductId::parse("кириллица").is_err());
        assert!(ProductId::parse(&"x".repeat(65)).is_err());
        // New ids must leave room for a button's tag; stored longer ones still read.
        assert!(ProductId::parse_new(&"x".repeat(61)).is_ok());
        let e = ProductId::parse_new(&"x".repeat(62)).unwrap_err();
        assert!(e.to_string().contains("button data"), "{e}");
        assert!(ProductId::parse(&"x".repeat(64)).is_ok());
    }
}
