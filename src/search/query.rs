//! What a query (or a product title) says besides its words: the quantities it names —
//! durations, device counts, amounts, versions — read the same however they are written
//! ("2 800" = "2800" = "2.800"; "12 мес" = "год" = "1 year"; "3 ПК" = "3 devices"), and the
//! words left once they are taken out. Numbers pick among the variants of a product; they
//! never decide which product a query is about (see [`super::rank::variants`]).

/// What a number counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A duration, in months ("12 мес", "на год", "2 years").
    Months,
    /// Devices or seats ("3 ПК", "на 5 устройств", "10 devices").
    Devices,
    /// Anything else: an amount, a version, an edition year, a sequel number.
    Plain,
}

/// One quantity a text names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub value: u32,
    pub unit: Unit,
}

impl Quantity {
    /// The same quantity, allowing a plain number to stand for a counted one ("касперский 3"
    /// asks for the 3-device edition; "steam 2800" for the 2 800 ₽ card).
    pub fn matches(&self, other: &Quantity) -> bool {
        self.value == other.value
            && (self.unit == other.unit || self.unit == Unit::Plain || other.unit == Unit::Plain)
    }
}

/// A text split into its quantities and the words around them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub quantities: Vec<Quantity>,
    /// The text without its numbers (unit words stay: they are words too).
    pub words: String,
}

fn month_word(w: &str) -> bool {
    w.starts_with("мес") || matches!(w, "month" | "months" | "mo" | "mon" | "mth" | "mths" | "m")
}

fn year_word(w: &str) -> bool {
    matches!(
        w,
        "год"
            | "года"
            | "году"
            | "годовая"
            | "годовой"
            | "годовую"
            | "лет"
            | "г"
            | "year"
            | "years"
            | "yearly"
            | "annual"
            | "annually"
            | "yr"
            | "yrs"
            | "y"
    )
}

fn day_word(w: &str) -> bool {
    matches!(w, "день" | "дня" | "дней" | "дн" | "сут" | "суток" | "day" | "days" | "d")
}

/// Sequel and edition numbers written the Roman way ("Dark Souls III"); a lone "i", "v" or
/// "x" is too often a letter to count.
fn roman(w: &str) -> Option<u32> {
    Some(match w {
        "ii" => 2,
        "iii" => 3,
        "iv" => 4,
        "vi" => 6,
        "vii" => 7,
        "viii" => 8,
        "ix" => 9,
        "xi" => 11,
        "xii" => 12,
        _ => return None,
    })
}

fn device_word(w: &str) -> bool {
    w.starts_with("устр")
        || w.starts_with("девайс")
        || w.starts_with("компьютер")
        || w.starts_with("пользовател")
        || matches!(w, "пк" | "pc" | "pcs" | "device" | "devices" | "user" | "users" | "seat" | "seats")
}

/// Words a quantity can be glued to: "12мес", "3пк", "win11", "500₽".
fn split_glued(w: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut digit = None;
    for c in w.chars() {
        let d = c.is_ascii_digit();
        if digit.is_some_and(|p| p != d) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        digit = Some(d);
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Tokens of a text: lower-cased words and digit runs, with thousands written apart
/// ("2 800", "2.800", "2,800", "1 000 000") joined into one number.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.to_lowercase().replace('ё', "е").chars().collect();
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let mut joined = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if !digit(i) || (i > 0 && digit(i - 1)) {
            joined.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while digit(i) {
            i += 1;
        }
        joined.extend(&chars[start..i]);
        if i - start <= 3 {
            // Groups of exactly three digits after a separator belong to this number.
            while matches!(chars.get(i), Some(' ' | '.' | ',' | '\u{a0}' | '\u{202f}'))
                && (1..=3).all(|k| digit(i + k))
                && !digit(i + 4)
            {
                joined.extend(&chars[i + 1..i + 4]);
                i += 4;
            }
        }
    }
    joined.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).flat_map(split_glued).collect()
}

/// The quantities a text names and the words it has besides.
pub fn parse(text: &str) -> Parsed {
    let toks = tokens(text);
    let mut out = Parsed::default();
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].as_str();
        if let Ok(n) = t.parse::<u32>() {
            let next = toks.get(i + 1).map(String::as_str).unwrap_or("");
            let q = if month_word(next) {
                Quantity { value: n, unit: Unit::Months }
            } else if year_word(next) && n <= 5 {
                Quantity { value: n * 12, unit: Unit::Months }
            } else if day_word(next) && n >= 28 {
                Quantity { value: (n as f32 / 30.42).round() as u32, unit: Unit::Months }
            } else if device_word(next) {
                Quantity { value: n, unit: Unit::Devices }
            } else {
                Quantity { value: n, unit: Unit::Plain }
            };
            out.quantities.push(q);
            // The unit word goes with its number: "года" in "proton vpn 2 года" is not a
            // word the product must match.
            i += if q.unit == Unit::Plain || next.is_empty() { 1 } else { 2 };
            continue;
        }
        if let Some(n) = roman(t) {
            out.quantities.push(Quantity { value: n, unit: Unit::Plain });
            i += 1;
            continue;
        }
        if year_word(t) && t.chars().count() > 1 {
            // "на год", "годовая": one year, with no number before it (a number before it
            // was read above).
            out.quantities.push(Quantity { value: 12, unit: Unit::Months });
        } else if t == "полгода" || (t == "half" && toks.get(i + 1).is_some_and(|n| year_word(n))) {
            out.quantities.push(Quantity { value: 6, unit: Unit::Months });
        } else if matches!(t, "месяц" | "month" | "monthly" | "месячная" | "месячный" | "месячную")
        {
            // "на месяц", "for a month": one month.
            out.quantities.push(Quantity { value: 1, unit: Unit::Months });
        } else if t == "квартал" || t == "quarter" {
            out.quantities.push(Quantity { value: 3, unit: Unit::Months });
        }
        words.push(t);
        i += 1;
    }
    out.quantities.sort();
    out.quantities.dedup();
    out.words = words.join(" ");
    out
}

/// How the quantities of a query meet a product's: how many of the query's it names, and
/// whether the product names another value of the same kind instead ("12 months" for a
/// query asking for 24) — a different variant, not just a less specific one.
pub fn compare(query: &[Quantity], product: &[Quantity]) -> (usize, bool) {
    let mut matched = 0;
    let mut conflict = false;
    for q in query {
        if product.iter().any(|p| q.matches(p)) {
            matched += 1;
        } else if q.unit != Unit::Plain && product.iter().any(|p| p.unit == q.unit) {
            conflict = true;
        }
    }
    (matched, conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Vec<(u32, Unit)> {
        parse(text).quantities.into_iter().map(|q| (q.value, q.unit)).collect()
    }

    #[test]
    fn thousands_read_the_same_however_they_are_written() {
        for t in ["steam 2800", "steam 2 800 ₽", "steam 2.800", "steam 2,800 руб", "Steam 2\u{a0}800"] {
            assert_eq!(q(t), vec![(2800, Unit::Plain)], "{t}");
        }
        assert_eq!(q("1 000 000"), vec![(1_000_000, Unit::Plain)]);
        // A sequel number next to a price stays two numbers; a decimal is not a thousand.
        assert_eq!(q("dark souls 3 за 1500"), vec![(3, Unit::Plain), (1500, Unit::Plain)]);
        assert_eq!(q("версия 2.5"), vec![(2, Unit::Plain), (5, Unit::Plain)]);
    }

    #[test]
    fn durations_read_as_months() {
        for t in ["12 мес", "на год", "1 год", "1 year", "12 months", "годовая подписка", "12мес", "yearly"]
        {
            assert_eq!(q(t), vec![(12, Unit::Months)], "{t}");
        }
        assert_eq!(q("на 2 года"), vec![(24, Unit::Months)]);
        assert_eq!(q("фотошоп на месяц"), vec![(1, Unit::Months)]);
        assert_eq!(q("3 месяца"), vec![(3, Unit::Months)]);
        assert_eq!(q("полгода"), vec![(6, Unit::Months)]);
        assert_eq!(q("365 дней"), vec![(12, Unit::Months)]);
        assert_eq!(q("30 days"), vec![(1, Unit::Months)]);
        assert_eq!(q("Dark Souls III"), vec![(3, Unit::Plain)]);
        // An edition year is not a duration.
        assert_eq!(q("Office 2021"), vec![(2021, Unit::Plain)]);
    }

    #[test]
    fn device_counts_are_their_own_unit() {
        assert_eq!(q("касперский на 3 устройства"), vec![(3, Unit::Devices)]);
        assert_eq!(q("Kaspersky Standard 3 ПК на 1 год"), vec![(3, Unit::Devices), (12, Unit::Months)]);
        assert_eq!(q("впн на 10 устройств"), vec![(10, Unit::Devices)]);
        assert_eq!(q("5 devices"), vec![(5, Unit::Devices)]);
        assert_eq!(q("win11"), vec![(11, Unit::Plain)]);
    }

    #[test]
    fn the_words_are_what_is_left() {
        assert_eq!(parse("гта 5 на пк").words, "гта на пк");
        assert_eq!(parse("Steam 2 800 ₽").words, "steam");
        assert_eq!(parse("proton vpn 2 года").words, "proton vpn");
        assert_eq!(parse("касперский на 3 устройства").words, "касперский на");
    }

    #[test]
    fn a_plain_number_matches_a_counted_one_but_units_do_not_mix() {
        let prod = parse("Kaspersky Plus 3 ПК 1 год").quantities;
        assert_eq!(compare(&parse("касперский 3").quantities, &prod), (1, false));
        assert_eq!(compare(&parse("касперский на 2 года").quantities, &prod), (0, true));
        assert_eq!(compare(&parse("3 месяца").quantities, &prod), (0, true));
        assert_eq!(compare(&parse("на 3 устройства на год").quantities, &prod), (2, false));
    }
}
