//! Compact, validated button payloads shared by every channel (Telegram callback data is at
//! most 64 bytes; the Mini App and `lavka chat` reuse the same strings). Format:
//! `<tag>:<arg>[:<arg>]`, parsed strictly — anything else is rejected, never guessed. A `~`
//! in front (catalogue navigation only) asks for the answer to replace the pressed message.

use crate::domain::{OrderId, ProductId};
use crate::error::{Error, Result};
use serde::Serialize;

/// A button under a reply. JSON: `{"label", "callback"}` or `{"label", "url"}` or
/// `{"label", "web_app"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Button {
    pub label: String,
    #[serde(flatten)]
    pub action: ButtonAction,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    /// Handled by the shop itself (Telegram callback data, a Mini App action).
    #[serde(serialize_with = "encoded")]
    Callback(Callback),
    /// Opens a link (a payment page).
    Url(String),
    /// Opens the Mini App at this URL.
    WebApp(String),
}

impl Button {
    pub fn callback(label: impl Into<String>, cb: Callback) -> Button {
        Button { label: label.into(), action: ButtonAction::Callback(cb) }
    }
    pub fn url(label: impl Into<String>, url: impl Into<String>) -> Button {
        Button { label: label.into(), action: ButtonAction::Url(url.into()) }
    }
    pub fn web_app(label: impl Into<String>, url: impl Into<String>) -> Button {
        Button { label: label.into(), action: ButtonAction::WebApp(url.into()) }
    }

    /// The button's payload, when it is one of the shop's own.
    pub fn callback_data(&self) -> Option<&Callback> {
        match &self.action {
            ButtonAction::Callback(c) => Some(c),
            _ => None,
        }
    }
}

fn encoded<S: serde::Serializer>(c: &Callback, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&c.encode())
}

/// What a button asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Callback {
    /// Show the product card.
    Product(ProductId),
    /// Reserve one item and offer payment.
    Buy(ProductId),
    /// Ask for consent to a prepaid pre-order of a product that is out of stock.
    PreOrder(ProductId),
    /// The customer agrees to the prepaid pre-order: create it and offer payment.
    ConfirmPreOrder(ProductId),
    /// Pay a pending order from the internal balance.
    PayBalance(OrderId),
    /// Pay a pending order with Telegram Stars (the bot sends an invoice).
    PayStars(OrderId),
    /// Top up the balance by this many units of the shop currency (0: offer the amounts).
    TopUp(u32),
    /// Cancel a pending (unpaid) order.
    Cancel(OrderId),
    /// Show one order.
    Order(OrderId),
    /// The catalogue: category number `cat` (0 = list of categories), page `page`.
    Catalog { cat: u16, page: u16 },
    /// More results of the last search.
    More(u16),
    /// Catalogue navigation (`Catalog` or `Product`) whose answer replaces the message the
    /// button sits on, so browsing does not fill the chat. Channels without messages to
    /// replace treat it as the inner request.
    InPlace(Box<Callback>),
}

/// Telegram's limit for `callback_data`.
pub const MAX_LEN: usize = 64;

// The longest tag (`pc:`) with the longest new product id must fit.
const _: () = assert!(ProductId::MAX_NEW_LEN + 3 <= MAX_LEN);

impl Callback {
    pub fn encode(&self) -> String {
        match self {
            Callback::Product(p) => format!("p:{p}"),
            Callback::Buy(p) => format!("b:{p}"),
            Callback::PreOrder(p) => format!("po:{p}"),
            Callback::ConfirmPreOrder(p) => format!("pc:{p}"),
            Callback::PayBalance(o) => format!("pb:{o}"),
            Callback::PayStars(o) => format!("ps:{o}"),
            Callback::TopUp(n) => format!("tu:{n}"),
            Callback::Cancel(o) => format!("x:{o}"),
            Callback::Order(o) => format!("o:{o}"),
            Callback::Catalog { cat, page } => format!("c:{cat}:{page}"),
            Callback::More(page) => format!("m:{page}"),
            Callback::InPlace(inner) => format!("~{}", inner.encode()),
        }
    }

    /// The same request, answered by replacing the pressed message.
    pub fn in_place(self) -> Callback {
        match self {
            c @ (Callback::Catalog { .. } | Callback::Product(_)) => Callback::InPlace(Box::new(c)),
            other => other,
        }
    }

    /// The request itself, and whether its answer replaces the pressed message.
    pub fn unwrap_in_place(&self) -> (&Callback, bool) {
        let (mut c, mut wrapped) = (self, false);
        while let Callback::InPlace(inner) = c {
            (c, wrapped) = (inner, true);
        }
        (c, wrapped)
    }

    pub fn parse(s: &str) -> Result<Callback> {
        let bad = || Error::bad(format!("unknown button data {:?}", s.chars().take(80).collect::<String>()));
        if s.len() > MAX_LEN {
            return Err(bad());
        }
        if let Some(inner) = s.strip_prefix('~') {
            return match Callback::parse(inner)? {
                c @ (Callback::Catalog { .. } | Callback::Product(_)) => Ok(Callback::InPlace(Box::new(c))),
                _ => Err(bad()),
            };
        }
        let (tag, rest) = s.split_once(':').ok_or_else(bad)?;
        let order = |r: &str| r.parse::<OrderId>().ok().filter(|o| r == o.to_string()).ok_or_else(bad);
        let small = |r: &str| r.parse::<u16>().ok().filter(|n| r == n.to_string()).ok_or_else(bad);
        let product = |r: &str| ProductId::parse(r).map_err(|_| bad());
        Ok(match tag {
            "p" => Callback::Product(product(rest)?),
            "b" => Callback::Buy(product(rest)?),
            "po" => Callback::PreOrder(product(rest)?),
            "pc" => Callback::ConfirmPreOrder(product(rest)?),
            "pb" => Callback::PayBalance(order(rest)?),
            "ps" => Callback::PayStars(order(rest)?),
            // `tu:0` asks for the choice of amounts.
            "tu" => {
                Callback::TopUp(rest.parse::<u32>().ok().filter(|n| rest == n.to_string()).ok_or_else(bad)?)
            }
            "x" => Callback::Cancel(order(rest)?),
            "o" => Callback::Order(order(rest)?),
            "c" => {
                let (cat, page) = rest.split_once(':').ok_or_else(bad)?;
                Callback::Catalog { cat: small(cat)?, page: small(page)? }
            }
            "m" => Callback::More(small(rest)?),
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_kind_round_trips_within_telegrams_limit() {
        let long = ProductId::parse_new(&"a".repeat(ProductId::MAX_NEW_LEN)).unwrap();
        for c in [
            Callback::Product(long.clone()),
            Callback::Buy(long.clone()),
            Callback::PreOrder(long.clone()),
            Callback::ConfirmPreOrder(long),
            Callback::PayBalance(u64::MAX),
            Callback::Cancel(7),
            Callback::TopUp(500),
            Callback::PayStars(u64::MAX),
            Callback::Order(1),
            Callback::Catalog { cat: 3, page: 65535 },
            Callback::More(2),
            Callback::Catalog { cat: 65535, page: 65535 }.in_place(),
            Callback::Product(ProductId::parse_new(&"a".repeat(ProductId::MAX_NEW_LEN)).unwrap()).in_place(),
        ] {
            let s = c.encode();
            assert!(s.len() <= MAX_LEN, "{s}");
            assert_eq!(Callback::parse(&s).unwrap(), c);
        }
    }

    #[test]
    fn malformed_data_is_rejected() {
        for s in [
            "", "b", "b:", "b:a b", "zz:1", "pb:-1", "pb:01", "c:1", "c:1:x", "m:70000", "o:1:2", "~",
            "~b:key", "~~c:1:0", "~x:1",
        ] {
            assert!(Callback::parse(s).is_err(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_accepted_data_round_trips(s in ".{0,80}") {
            if let Ok(c) = Callback::parse(&s) {
                prop_assert_eq!(c.encode(), s);
            }
        }
    }
}
