//! Money as integer minor units plus a currency code. Never floats.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A currency: an ISO-4217 code (three uppercase letters, e.g. `RUB`, `USD`, `XTR` for
/// Telegram Stars) or a crypto asset Crypto Pay settles in (`USDT`, `TON`, `BTC`, …), each
/// with its own precision. Crypto assets are told apart by name, never by length: `TON` and
/// `BTC` are three letters too.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 8],
    len: u8,
}

/// Crypto assets and their precision: the coin's smallest on-chain unit (satoshi, nanoton,
/// sun, the 6 decimals of USDT and USDC), capped at 9 digits so an amount in minor units
/// fits an `i64` with room (ETH and BNB count in gwei). Crypto Pay's own amounts never
/// carry more digits than these; one that does is refused, never rounded.
const CRYPTO: &[(&str, u32)] = &[
    ("USDT", 6),
    ("USDC", 6),
    ("TON", 9),
    ("BTC", 8),
    ("ETH", 9),
    ("LTC", 8),
    ("BNB", 9),
    ("TRX", 6),
    ("SOL", 9),
    ("DOGE", 8),
    ("NOT", 9),
    ("GRAM", 9),
    ("DOGS", 9),
    ("MY", 9),
    ("SEND", 9),
    ("JET", 9),
];

impl Currency {
    pub const RUB: Currency = Currency::fixed(*b"RUB");
    pub const XTR: Currency = Currency::fixed(*b"XTR");
    pub const USDT: Currency = Currency { code: *b"USDT\0\0\0\0", len: 4 };

    const fn fixed(c: [u8; 3]) -> Currency {
        Currency { code: [c[0], c[1], c[2], 0, 0, 0, 0, 0], len: 3 }
    }

    /// Parses and validates a code; case-insensitive on input. Accepted: three letters (an
    /// ISO code) or a known crypto asset.
    pub fn parse(s: &str) -> Result<Self> {
        let up = s.trim().to_ascii_uppercase();
        let b = up.as_bytes();
        let iso = b.len() == 3 && b.iter().all(|c| c.is_ascii_uppercase());
        if !iso && !CRYPTO.iter().any(|(c, _)| *c == up) {
            return Err(Error::bad(format!(
                "currency must be a 3-letter code or a crypto asset ({}), got {s:?}",
                CRYPTO.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut code = [0u8; 8];
        code[..b.len()].copy_from_slice(b);
        Ok(Currency { code, len: b.len() as u8 })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.code[..self.len as usize]).unwrap_or("???")
    }

    /// A crypto asset (else a fiat currency, or Telegram Stars).
    pub fn is_crypto(&self) -> bool {
        self.crypto_digits().is_some()
    }

    fn crypto_digits(&self) -> Option<u32> {
        CRYPTO.iter().find(|(c, _)| *c == self.as_str()).map(|c| c.1)
    }

    /// Digits after the decimal point in this currency.
    pub fn minor_digits(&self) -> u32 {
        if let Some(d) = self.crypto_digits() {
            return d;
        }
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
        let mut frac = format!("{:0width$}", a % scale as u64, width = digits as usize);
        if self.is_crypto() {
            // "4.43 USDT", not "4.430000 USDT"; two places are kept, as prices are written.
            let keep = frac.trim_end_matches('0').len().max(2);
            frac.truncate(keep);
        }
        format!("{sign}{}.{frac}", a / scale as u64)
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
    fn crypto_assets_are_currencies_with_their_own_precision() {
        let usdt = Currency::parse("usdt").unwrap();
        assert_eq!(usdt, Currency::USDT);
        assert!(usdt.is_crypto() && !Currency::RUB.is_crypto() && !Currency::XTR.is_crypto());
        assert_eq!(usdt.parse_major("4.43").unwrap(), 4_430_000);
        assert_eq!(usdt.format_minor(4_430_000), "4.43");
        let btc = Currency::parse("BTC").unwrap();
        assert!(btc.is_crypto(), "three letters, yet crypto");
        assert_eq!(btc.parse_major("0.00012345").unwrap(), 12_345);
        assert_eq!(btc.format_minor(12_345), "0.00012345");
        assert!(btc.parse_major("0.000000001").is_err(), "finer than a satoshi is refused");
        let ton = Currency::parse("TON").unwrap();
        assert_eq!(ton.minor_digits(), 9);
        assert_eq!(ton.parse_major("1.5").unwrap(), 1_500_000_000);
        assert_eq!(ton.format_minor(1_000_000_000), "1.00");
        assert_eq!(Currency::parse("ETH").unwrap().parse_major("12.3456789").unwrap(), 12_345_678_900);
        // Codes round-trip through serde as plain strings.
        assert_eq!(serde_json::to_string(&usdt).unwrap(), "\"USDT\"");
        assert_eq!(serde_json::from_str::<Currency>("\"USDC\"").unwrap().as_str(), "USDC");
        assert!(Currency::parse("USDX").is_err(), "an unknown asset has no known precision");
    }

    #[test]
    fn currency_codes_are_validated() {
        assert_eq!(Currency::parse("rub").unwrap(), Currency::RUB);
        assert!(Currency::parse("RU").is_err());
        assert!(Currency::parse("R1B").is_err());
    }
}
