//! Money as integer minor units plus a currency code. Never floats.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO-4217-like currency code (three uppercase ASCII letters), e.g. `RUB`, `USD`, `XTR`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const RUB: Currency = Currency(*b"RUB");
    pub const XTR: Currency = Currency(*b"XTR");

    /// Parses and validates a code; case-insensitive on input.
    pub fn parse(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        let b = up.as_bytes();
        if b.len() != 3 || !b.iter().all(|c| c.is_ascii_uppercase()) {
            return Err(Error::bad(format!("currency must be a 3-letter code, got {s:?}")));
        }
        Ok(Currency([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Digits after the decimal point in this currency.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "XTR" | "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }

    fn scale(&self) -> i64 {
        10i64.pow(self.minor_digits())
    }

    /// Converts a decimal amount in major units ("1990", "349.90") to minor units exactly;
    /// refuses more fractional digits than the currency has.
    pub fn parse_major(&self, text: &str) -> Result<i64> {
        let t = text.trim();
        let bad = || Error::bad(format!("invalid amount {text:?} for {}", self.as_str()));
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if !frac.bytes().all(|c| c.is_ascii_digit()) || (t.contains('.') && frac.is_empty()) {
            return Err(bad());
        }
        let digits = self.minor_digits() as usize;
        let frac_trim = frac.trim_end_matches('0');
        if frac_trim.len() > digits {
            return Err(Error::bad(format!(
                "amount {text:?} has more than {digits} decimal places for {}",
                self.as_str()
            )));
        }
        let int_v: i64 = int.parse().map_err(|_| bad())?;
        let mut frac_v: i64 = 0;
        for i in 0..digits {
            let d = frac_trim.as_bytes().get(i).map(|c| (c - b'0') as i64).unwrap_or(0);
            frac_v = frac_v * 10 + d;
        }
        let v = int_v.checked_mul(self.scale()).and_then(|x| x.checked_add(frac_v)).ok_or_else(bad)?;
        Ok(if neg { -v } else { v })
    }

    /// Formats minor units as a decimal major amount ("349.90", "250").
    pub fn format_minor(&self, minor: i64) -> String {
        let digits = self.minor_digits();
        if digits == 0 {
            return minor.to_string();
        }
        let scale = self.scale();
        let sign = if minor < 0 { "-" } else { "" };
        let a = minor.unsigned_abs();
        format!("{sign}{}.{:0width$}", a / scale as u64, a % scale as u64, width = digits as usize)
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_string()
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in minor units of a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sym = match self.currency.as_str() {
            "RUB" => "₽",
            "USD" => "$",
            "EUR" => "€",
            "XTR" => "⭐",
            other => other,
        };
        write!(f, "{} {sym}", self.currency.format_minor(self.minor))
    }
}

/// Applies a whole-percent discount, rounding half up to the minor unit.
pub fn apply_discount(price: i64, percent: u8) -> i64 {
    let p = percent.min(100) as i64;
    (price * (100 - p) + 50) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_amounts_convert_exactly() {
        let rub = Currency::RUB;
        assert_eq!(rub.parse_major("1990").unwrap(), 199_000);
        assert_eq!(rub.parse_major("349.9").unwrap(), 34_990);
        assert_eq!(rub.parse_major("349.90").unwrap(), 34_990);
        assert_eq!(rub.parse_major("0.01").unwrap(), 1);
        assert!(rub.parse_major("0.001").is_err());
        assert!(rub.parse_major("12,5").is_err());
        assert!(rub.parse_major("").is_err());
        assert!(rub.parse_major("1.").is_err());
        assert!(rub.parse_major("1e3").is_err());
        assert_eq!(Currency::XTR.parse_major("250").unwrap(), 250);
        assert!(Currency::XTR.parse_major("2.5").is_err());
    }

    #[test]
    fn minor_amounts_format_back() {
        assert_eq!(Currency::RUB.format_minor(34_990), "349.90");
        assert_eq!(Currency::RUB.format_minor(-5), "-0.05");
        assert_eq!(Currency::XTR.format_minor(250), "250");
        assert_eq!(Money::new(199_000, Currency::RUB).to_string(), "1990.00 ₽");
    }

    #[test]
    fn discounts_round_half_up() {
        assert_eq!(apply_discount(199_000, 10), 179_100);
        assert_eq!(apply_discount(999, 15), 849); // 849.15
        assert_eq!(apply_discount(1, 50), 1); // 0.5 rounds up
        assert_eq!(apply_discount(100, 100), 0);
    }

    #[test]
    fn currency_codes_are_validated() {
        assert_eq!(Currency::parse("rub").unwrap(), Currency::RUB);
        assert!(Currency::parse("RU").is_err());
        assert!(Currency::parse("R1B").is_err());
    }
}
