//! The sales consultant: reads a customer's free text and decides which shop use case
//! answers it ([`Action`]) — by simple rules offline, or by Gemini with tools when a key is
//! set. It never performs a use case itself and never decides prices or stock: the shop
//! (`crate::shop`) validates the action against the store and writes every fact the
//! customer reads.

use crate::domain::ProductId;

pub mod consultant;
pub mod gemini;
pub mod llm;
pub mod thinking;

pub use consultant::{Consultant, Setup, detect_lang, message_lang};

/// The order a list of products is shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Cheapest,
    PreOrderFirst,
}

/// The use case the consultant chose.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A greeting or "what can you do?": what the shop does and its categories.
    Greeting,
    Orders,
    Balance,
    /// Top up the balance (by this many units of the shop currency, when said).
    TopUp(Option<u32>),
    /// Show these products (search results or the model's choice), for `query`.
    Show {
        query: String,
        hits: Vec<ProductId>,
        sort: Sort,
    },
    /// More results of the last search.
    More,
    /// The product card.
    Card(ProductId),
    /// Buy (the quantity is read from the customer's words by the shop).
    Buy(ProductId),
    /// Ask consent to a pre-order.
    PreOrder(ProductId),
    /// The customer agreed to the pre-order they were asked about.
    ConfirmPreOrder(ProductId),
    /// The customer asked for this product, which is off sale or sold out: say so and
    /// show the closest alternatives, reserving nothing.
    Unavailable(ProductId),
    /// "Cheaper" when nothing matching the need costs less than this product.
    NoCheaper(ProductId),
    /// Ask what the customer wants to buy.
    AskWhat,
    /// Ask which of the products shown the customer means.
    AskWhich,
    /// Nothing to do beyond the model's words.
    Say,
}

/// What the consultant decided for one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The model's own words (empty offline).
    pub say: String,
    pub action: Action,
    /// The customer's model budget was spent; the offline rules answered.
    pub rate_limited: bool,
}
