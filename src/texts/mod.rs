//! Every text a customer, supplier or admin reads, in Russian and English: one vocabulary.
//! Texts are [`Rich`] bodies (spans, no markup), so escaping is each channel's renderer's
//! job. Money is written the way the reader's language writes it ("2 790 ₽", "₽2,790"),
//! times in the reader's language, relative when near ("через 15 мин") and otherwise in the
//! shop's time zone.

pub mod admin;
pub mod customer;
mod rich;
pub mod supplier;

pub use rich::{Rich, Span, esc};

use crate::domain::{Currency, Millis};

/// The languages Lavka speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    /// Picks a language from a Telegram `language_code` (or a saved preference); Russian
    /// for the languages whose speakers mostly read it, English for others, `default`
    /// when unknown.
    pub fn pick(code: Option<&str>, default: Lang) -> Lang {
        match code.map(|c| c.to_ascii_lowercase()) {
            Some(c)
                if ["ru", "uk", "be", "kk", "uz", "ky", "tg", "hy", "az"]
                    .iter()
                    .any(|p| c.starts_with(p)) =>
            {
                Lang::Ru
            }
            Some(c) if !c.is_empty() => Lang::En,
            _ => default,
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// One of two strings.
    pub fn pick_str(self, ru: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

/// A fixed UTC offset, the shop's time zone (`time_zone = "+03:00"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    /// Minutes east of UTC.
    pub minutes: i32,
}

impl Zone {
    pub const UTC: Zone = Zone { minutes: 0 };
    pub const MSK: Zone = Zone { minutes: 180 };

    /// `UTC`, `Z`, `+03:00`, `+3`, `-05:30`, `UTC+3`, `MSK`.
    pub fn parse(s: &str) -> Option<Zone> {
        let t = s.trim().to_ascii_uppercase();
        if matches!(t.as_str(), "UTC" | "Z" | "GMT") {
            return Some(Zone::UTC);
        }
        if matches!(t.as_str(), "MSK" | "EUROPE/MOSCOW") {
            return Some(Zone::MSK);
        }
        let t = t.strip_prefix("UTC").or_else(|| t.strip_prefix("GMT")).unwrap_or(&t);
        let (sign, rest) = match t.as_bytes().first()? {
            b'+' => (1, &t[1..]),
            b'-' => (-1, &t[1..]),
            _ => return None,
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None => (rest, "0"),
        };
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        if !(0..=14).contains(&h) || !(0..60).contains(&m) || (h == 14 && m > 0) {
            return None;
        }
        Some(Zone { minutes: sign * (h * 60 + m) })
    }

    fn label(self, lang: Lang) -> String {
        if self == Zone::MSK && lang == Lang::Ru {
            return "МСК".into();
        }
        if self.minutes == 0 {
            return "UTC".into();
        }
        let sign = if self.minutes < 0 { '−' } else { '+' };
        let (h, m) = (self.minutes.abs() / 60, self.minutes.abs() % 60);
        if m == 0 { format!("UTC{sign}{h}") } else { format!("UTC{sign}{h}:{m:02}") }
    }
}

/// Who reads a text: their language, the shop's time zone, and the moment it is written
/// (relative times are counted from it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loc {
    pub lang: Lang,
    pub zone: Zone,
    pub now: Millis,
}

const NBSP: char = '\u{a0}';

impl Loc {
    pub fn new(lang: Lang, zone: Zone, now: Millis) -> Loc {
        Loc { lang, zone, now }
    }

    /// One of two strings.
    pub fn s(&self, ru: &str, en: &str) -> String {
        match self.lang {
            Lang::Ru => ru.to_string(),
            Lang::En => en.to_string(),
        }
    }

    /// An amount as the reader's language writes it: "2 790 ₽", "349,90 ₽" (Russian), "2,790 ₽",
    /// "$12.50" (English). Whole amounts have no decimals.
    pub fn money(&self, minor: i64, c: Currency) -> String {
        let digits = c.minor_digits();
        let scale = 10u64.pow(digits);
        let a = minor.unsigned_abs();
        let (int, frac) = (a / scale, a % scale);
        let (group, point) = match self.lang {
            Lang::Ru => (NBSP, ','),
            Lang::En => (',', '.'),
        };
        let raw = int.to_string();
        let mut grouped = String::new();
        for (i, ch) in raw.chars().enumerate() {
            // Russian leaves four-digit amounts whole only in tables; shops write "2 790".
            if i > 0 && (raw.len() - i) % 3 == 0 {
                grouped.push(group);
            }
            grouped.push(ch);
        }
        let mut num = if minor < 0 { format!("−{grouped}") } else { grouped };
        if frac != 0 {
            num.push(point);
            let mut f = format!("{frac:0width$}", width = digits as usize);
            if c.is_crypto() {
                // 4.43 USDT, 0.00012 BTC: a crypto amount shows the digits it has.
                f.truncate(f.trim_end_matches('0').len().max(2));
            }
            num.push_str(&f);
        }
        let sym = match c.as_str() {
            "RUB" => Some("₽"),
            "USD" => Some("$"),
            "EUR" => Some("€"),
            "GBP" => Some("£"),
            "XTR" => Some("⭐"),
            _ => None,
        };
        match (self.lang, sym) {
            (Lang::En, Some(s @ ("$" | "€" | "£"))) => format!("{s}{num}"),
            (_, Some(s)) => format!("{num}{NBSP}{s}"),
            (_, None) => format!("{num}{NBSP}{c}"),
        }
    }

    /// A moment for people: relative within two hours ("через 15 мин", "in 15 min", "5 мин
    /// назад"), else the date and time in the shop's zone ("5 декабря, 21:47 МСК").
    pub fn when(&self, at: Millis) -> String {
        let delta_min = (at - self.now) as f64 / 60_000.0;
        if delta_min.abs() < 120.0 {
            let m = delta_min.abs().round() as i64;
            let span = self.span_minutes(m.max(1));
            return match (self.lang, delta_min >= 0.0) {
                (_, _) if m == 0 => self.s("сейчас", "now"),
                (Lang::Ru, true) => format!("через {span}"),
                (Lang::Ru, false) => format!("{span} назад"),
                (Lang::En, true) => format!("in {span}"),
                (Lang::En, false) => format!("{span} ago"),
            };
        }
        let Some(t) = chrono::DateTime::from_timestamp_millis(at + self.zone.minutes as i64 * 60_000) else {
            return at.to_string();
        };
        use chrono::Datelike;
        use chrono::Timelike;
        let now_year = chrono::DateTime::from_timestamp_millis(self.now).map(|n| n.year()).unwrap_or(0);
        let month = t.month0() as usize;
        let date = match self.lang {
            Lang::Ru => {
                const M: [&str; 12] = [
                    "января",
                    "февраля",
                    "марта",
                    "апреля",
                    "мая",
                    "июня",
                    "июля",
                    "августа",
                    "сентября",
                    "октября",
                    "ноября",
                    "декабря",
                ];
                format!("{} {}", t.day(), M[month])
            }
            Lang::En => {
                const M: [&str; 12] = [
                    "January",
                    "February",
                    "March",
                    "April",
                    "May",
                    "June",
                    "July",
                    "August",
                    "September",
                    "October",
                    "November",
                    "December",
                ];
                format!("{} {}", t.day(), M[month])
            }
        };
        let year = if t.year() != now_year { format!(" {}", t.year()) } else { String::new() };
        format!("{date}{year}, {:02}:{:02} {}", t.hour(), t.minute(), self.zone.label(self.lang))
    }

    /// A duration in minutes: "15 мин", "2 ч", "1 ч 30 мин", "72 ч" / "15 min", "1 h 30 min"
    /// (hours read the same after "через" and "в течение", unlike Russian day counts).
    pub fn span_minutes(&self, minutes: i64) -> String {
        let (hours, m) = (minutes / 60, minutes % 60);
        let ru = self.lang == Lang::Ru;
        match (hours, m) {
            (0, m) => {
                if ru {
                    format!("{m} мин")
                } else {
                    format!("{m} min")
                }
            }
            (h, 0) => {
                if ru {
                    format!("{h} ч")
                } else {
                    format!("{h} h")
                }
            }
            (h, m) => {
                if ru {
                    format!("{h} ч {m} мин")
                } else {
                    format!("{h} h {m} min")
                }
            }
        }
    }
}

/// The Russian plural form for `n`: 1 день, 2 дня, 5 дней.
pub fn plural_ru<'a>(n: i64, one: &'a str, few: &'a str, many: &'a str) -> &'a str {
    let n = n.abs();
    match (n % 10, n % 100) {
        (1, r) if r != 11 => one,
        (2..=4, r) if !(12..=14).contains(&r) => few,
        _ => many,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_796_000_000_000;

    fn ru() -> Loc {
        Loc::new(Lang::Ru, Zone::MSK, NOW)
    }
    fn en() -> Loc {
        Loc::new(Lang::En, Zone::MSK, NOW)
    }

    #[test]
    fn money_reads_as_each_language_writes_it() {
        let rub = Currency::RUB;
        assert_eq!(ru().money(279_000, rub), "2\u{a0}790\u{a0}₽");
        assert_eq!(ru().money(34_990, rub), "349,90\u{a0}₽");
        assert_eq!(ru().money(123_456_700, rub), "1\u{a0}234\u{a0}567\u{a0}₽");
        assert_eq!(en().money(279_000, rub), "2,790\u{a0}₽");
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(en().money(1250, usd), "$12.50");
        assert_eq!(ru().money(1250, usd), "12,50\u{a0}$");
        assert_eq!(en().money(250, Currency::XTR), "250\u{a0}⭐");
        assert_eq!(en().money(-5, rub), "−0.05\u{a0}₽");
        assert_eq!(en().money(4_430_000, Currency::USDT), "4.43\u{a0}USDT");
        let btc = Currency::parse("BTC").unwrap();
        assert_eq!(ru().money(12_345, btc), "0,00012345\u{a0}BTC");
    }

    #[test]
    fn near_times_are_relative_and_far_ones_in_the_shops_zone() {
        assert_eq!(ru().when(NOW + 15 * 60_000), "через 15 мин");
        assert_eq!(en().when(NOW + 90 * 60_000), "in 1 h 30 min");
        assert_eq!(ru().when(NOW - 5 * 60_000), "5 мин назад");
        // 1_796_000_000_000 ms = 2026-11-30T00:53:20Z; three hours on is 06:53 in Moscow.
        assert_eq!(ru().when(NOW + 3 * 3_600_000), "30 ноября, 06:53 МСК");
        let utc = Loc::new(Lang::En, Zone::UTC, NOW);
        assert_eq!(utc.when(NOW + 3 * 3_600_000), "30 November, 03:53 UTC");
        assert_eq!(ru().span_minutes(48 * 60), "48 ч");
        assert_eq!(en().span_minutes(60), "1 h");
    }

    #[test]
    fn zones_parse_from_offsets_and_names() {
        assert_eq!(Zone::parse("+03:00"), Some(Zone::MSK));
        assert_eq!(Zone::parse("UTC+3"), Some(Zone::MSK));
        assert_eq!(Zone::parse("msk"), Some(Zone::MSK));
        assert_eq!(Zone::parse("-05:30"), Some(Zone { minutes: -330 }));
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::parse("+15"), None);
        assert_eq!(Zone::parse("Mars/Olympus"), None);
    }

    #[test]
    fn russian_plurals() {
        assert_eq!(plural_ru(1, "день", "дня", "дней"), "день");
        assert_eq!(plural_ru(3, "день", "дня", "дней"), "дня");
        assert_eq!(plural_ru(11, "день", "дня", "дней"), "дней");
        assert_eq!(plural_ru(21, "день", "дня", "дней"), "день");
    }
}
