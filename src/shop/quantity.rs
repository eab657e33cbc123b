//! The quantity a customer asked for, read from their own words by code (never from the
//! model): "2 ключа", "купить три штуки", "x3", "two keys", "3 pcs". A number that is part
//! of a name ("Windows 11", "Office 2021") or a price ("на 500") is not a quantity.

use crate::domain::MAX_QUANTITY;
use crate::error::{Error, Result};

/// Words that count items after a number.
const UNITS: &[&str] = &[
    "шт",
    "штук",
    "штуки",
    "штука",
    "штучки",
    "ключ",
    "ключа",
    "ключей",
    "копия",
    "копии",
    "копий",
    "аккаунт",
    "аккаунта",
    "аккаунтов",
    "подписки",
    "подписок",
    "лицензии",
    "лицензий",
    "кода",
    "кодов",
    "pcs",
    "pc",
    "pieces",
    "piece",
    "items",
    "keys",
    "copies",
    "accounts",
    "codes",
    "licenses",
    "licences",
    "subscriptions",
    "units",
];

const WORDS: &[(&str, u32)] = &[
    ("одну", 1),
    ("один", 1),
    ("одна", 1),
    ("два", 2),
    ("две", 2),
    ("пару", 2),
    ("три", 3),
    ("четыре", 4),
    ("пять", 5),
    ("шесть", 6),
    ("семь", 7),
    ("восемь", 8),
    ("девять", 9),
    ("десять", 10),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
];

fn number(w: &str) -> Option<u32> {
    w.parse::<u32>().ok().or_else(|| WORDS.iter().find(|(n, _)| *n == w).map(|(_, v)| *v))
}

/// The count the customer's message names, if it names one.
pub fn from_words(text: &str) -> Option<u32> {
    let lower = text.to_lowercase().replace('×', " x ");
    let words: Vec<String> = lower
        .split(|c: char| !(c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_string())
        .collect();
    for (i, w) in words.iter().enumerate() {
        // "x3", "3x"
        if let Some(n) = w.strip_prefix('x').and_then(|r| r.parse::<u32>().ok()) {
            return Some(n);
        }
        if let Some(n) = w.strip_suffix('x').and_then(|r| r.parse::<u32>().ok()) {
            return Some(n);
        }
        if w == "x"
            && let Some(n) = words.get(i + 1).and_then(|n| n.parse::<u32>().ok())
        {
            return Some(n);
        }
        let Some(n) = number(w) else { continue };
        if let Some(next) = words.get(i + 1)
            && UNITS.iter().any(|u| next == u || (u.chars().count() >= 4 && next.starts_with(u)))
        {
            return Some(n);
        }
    }
    None
}

/// The shop's one quantity rule: 1 to [`MAX_QUANTITY`] items per order.
pub fn check(q: u32) -> Result<u32> {
    if q == 0 || q > MAX_QUANTITY {
        return Err(Error::bad(format!("quantity must be 1-{MAX_QUANTITY}")));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_customers_words() {
        assert_eq!(from_words("купить 2 ключа windows"), Some(2));
        assert_eq!(from_words("хочу три штуки"), Some(3));
        assert_eq!(from_words("buy two keys"), Some(2));
        assert_eq!(from_words("x3 please"), Some(3));
        assert_eq!(from_words("Office ×2"), Some(2));
        assert_eq!(from_words("5 pcs of steam codes"), Some(5));
    }

    #[test]
    fn names_and_prices_are_not_counts() {
        assert_eq!(from_words("купить windows 11 pro"), None);
        assert_eq!(from_words("office 2021"), None);
        assert_eq!(from_words("пополнить стим на 500"), None);
        assert_eq!(from_words("one more thing"), None);
        assert_eq!(from_words(""), None);
    }

    #[test]
    fn the_rule_is_one_to_ten() {
        assert!(check(0).is_err());
        assert_eq!(check(1).unwrap(), 1);
        assert_eq!(check(MAX_QUANTITY).unwrap(), MAX_QUANTITY);
        assert!(check(MAX_QUANTITY + 1).is_err());
    }
}
