//! Whether a customer's words *name* a product: every word that says which product
//! (not "купить", "ключ", "please") is in the product's title — as written, with another
//! ending ("месяц" / "месяца"), in the other script ("касперский" / "Kaspersky", "maynkraft" /
//! "Майнкрафт") or one typo apart. Naming is stricter than relevance: search finds Windows 11
//! Pro for "windows 10 pro", but only Windows 10 Pro is named by it, so the shop may reserve
//! nothing else without asking.

use super::sound;

/// Words that do not say which product: verbs of buying, politeness, the kind of goods
/// every title has.
const FILLER: &[&str] = &[
    "купить",
    "куплю",
    "покупаю",
    "покупка",
    "хочу",
    "хотел",
    "хотела",
    "бы",
    "нужен",
    "нужна",
    "нужно",
    "нужны",
    "надо",
    "мне",
    "можно",
    "пожалуйста",
    "пж",
    "плиз",
    "дайте",
    "дай",
    "возьму",
    "беру",
    "оформи",
    "оформить",
    "закажи",
    "заказать",
    "ключ",
    "ключик",
    "ключи",
    "код",
    "для",
    "на",
    "за",
    "и",
    "а",
    "с",
    "в",
    "по",
    "есть",
    "ли",
    "у",
    "вас",
    "это",
    "этот",
    "эту",
    "мой",
    "один",
    "одну",
    "шт",
    "buy",
    "purchase",
    "want",
    "wanna",
    "need",
    "i",
    "i'd",
    "i'll",
    "like",
    "to",
    "take",
    "get",
    "me",
    "please",
    "pls",
    "a",
    "an",
    "the",
    "key",
    "code",
    "for",
    "of",
    "one",
    "order",
    "can",
    "do",
    "you",
    "have",
    "is",
    "there",
    "some",
    "any",
    "it",
    "its",
    "license",
    "licence",
    "лицензия",
    "лицензию",
    "лицензии",
    "subscription",
    "подписка",
    "подписку",
    "подписки",
    // Units: the number before them says which variant ("3 месяца" and "3 months" both
    // name "… — 3 месяца").
    "месяц",
    "месяца",
    "месяцев",
    "мес",
    "month",
    "months",
    "год",
    "года",
    "лет",
    "year",
    "years",
    "день",
    "дня",
    "дней",
    "day",
    "days",
    "устройство",
    "устройства",
    "устройств",
    "device",
    "devices",
    "пк",
    "pc",
];

/// Words of conversation around what is asked for, in both languages and in Russian typed
/// in Latin letters ("est", "nuzhen"): a search for them finds nothing but dilutes the rest.
const CHAT: &[&str] = &[
    "хочу",
    "хотел",
    "хотела",
    "бы",
    "нужен",
    "нужна",
    "нужно",
    "нужны",
    "надо",
    "ищу",
    "подскажите",
    "посоветуйте",
    "пожалуйста",
    "пж",
    "есть",
    "ли",
    "у",
    "вас",
    "можно",
    "мне",
    "а",
    "ну",
    "вот",
    "подскажи",
    "посоветуй",
    "найди",
    "покажи",
    "looking",
    "look",
    "i",
    "i'm",
    "im",
    "need",
    "want",
    "wanna",
    "please",
    "do",
    "you",
    "have",
    "any",
    "is",
    "there",
    "can",
    "could",
    "get",
    "show",
    "me",
    "find",
    "some",
    "my",
    "a",
    "an",
    "the",
    "est",
    "li",
    "u",
    "vas",
    "nuzhen",
    "nuzhna",
    "nuzhno",
    "hochu",
    "kupit",
    "mozhno",
    "pozhaluysta",
    "pls",
    "ischu",
    "na",
    "mne",
    "plz",
    "hi",
    "hello",
    "привет",
    "здравствуйте",
];

/// `text` without the words of conversation around it (itself when nothing is left).
pub fn query_words(text: &str) -> String {
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|w| {
            let bare: String =
                w.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect();
            !CHAT.contains(&bare.as_str())
        })
        .collect();
    if kept.is_empty() { text.to_string() } else { kept.join(" ") }
}

/// The words of `text` that could say which product it means (lower case, `ё` → `е`).
pub fn content_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace('ё', "е");
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '+'))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && !FILLER.contains(w))
        .map(str::to_string)
        .collect()
}

fn same_word(q: &str, t: &str) -> bool {
    if q == t {
        return true;
    }
    let digits = |w: &str| w.chars().any(|c| c.is_ascii_digit());
    if digits(q) || digits(t) {
        return false;
    }
    let (short, long) = if q.chars().count() <= t.chars().count() { (q, t) } else { (t, q) };
    let (ns, nl) = (short.chars().count(), long.chars().count());
    if ns >= 4 && nl - ns <= 3 && long.starts_with(short) {
        return true;
    }
    match (sound::key(q), sound::key(t)) {
        (Some(a), Some(b)) => {
            let (s, l) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
            // The same word in the other script, with a typo, or with a Russian ending
            // ("профессиональная" / "Professional").
            let scripts = sound::is_cyrillic(q) != sound::is_cyrillic(t);
            a == b
                || ((s.len() >= 5 || (scripts && s.len() >= 4)) && one_edit(&a, &b))
                || (s.len() >= 6 && l.len() - s.len() <= 5 && l.starts_with(s.as_str()))
        }
        _ => false,
    }
}

/// Levenshtein distance ≤ 1.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (s, l) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if l.len() - s.len() > 1 {
        return false;
    }
    let i = s.iter().zip(l.iter()).take_while(|(x, y)| x == y).count();
    if s.len() == l.len() { s[i + 1..] == l[i + 1..] || i == s.len() } else { s[i..] == l[i + 1..] }
}

/// Whether every content word of `words` is in `title` (and there is at least one).
pub fn names(words: &[String], title: &str) -> bool {
    !words.is_empty() && share_named(words, title) >= 1.0
}

/// The share of the content words of `words` that are in `title` (0 when there are none).
pub fn share_named(words: &[String], title: &str) -> f32 {
    if words.is_empty() {
        return 0.0;
    }
    let title_words = content_words(title);
    // "11pro", "win11": a word may also be the title's words run together.
    let joined: Vec<String> = title_words.windows(2).map(|w| format!("{}{}", w[0], w[1])).collect();
    let found =
        words.iter().filter(|q| title_words.iter().chain(joined.iter()).any(|t| same_word(q, t))).count();
    found as f32 / words.len() as f32
}

/// Edition words: a title naming one the request does not ("Digital Deluxe" for "standard
/// edition") is another product, though it shares every other word.
const EDITIONS: &[(&str, &[&str])] = &[
    ("standard", &["standard", "стандарт", "стандартная", "стандартное", "обычная", "обычное"]),
    ("deluxe", &["deluxe", "делюкс", "делюкса"]),
    ("ultimate", &["ultimate", "ультимейт", "ультимат"]),
    ("gold", &["gold", "голд", "золотое"]),
    ("premium", &["premium", "премиум"]),
    ("complete", &["complete", "комплит"]),
    ("goty", &["goty"]),
];

fn editions(text: &str) -> Vec<&'static str> {
    let words = content_words(text);
    EDITIONS
        .iter()
        .filter(|(_, forms)| words.iter().any(|w| forms.contains(&w.as_str())))
        .map(|(e, _)| *e)
        .collect()
}

/// Whether `title` names an edition that `request` names another of.
pub fn edition_conflict(request: &str, title: &str) -> bool {
    let want = editions(request);
    !want.is_empty() && editions(title).iter().any(|e| !want.contains(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(q: &str, title: &str) -> bool {
        names(&content_words(q), title)
    }

    #[test]
    fn a_product_is_named_by_all_its_distinguishing_words_in_either_script() {
        assert!(named("купить windows 10 pro", "Windows 10 Pro — ключ активации"));
        assert!(!named("купить windows 10 pro", "Windows 11 Pro — ключ активации"));
        assert!(named("касперский", "Kaspersky Standard — 1 год, 3 устройства"));
        assert!(named("maynkraft", "Майнкрафт: Java Edition"));
        assert!(named("хочу купить офис 2021", "Microsoft Office 2021 Professional Plus — ключ"));
        assert!(named("ютуб премиум на 3 месяца", "YouTube Premium — 3 месяца (готовый аккаунт)"));
        assert!(!named("ютуб премиум на 3 месяца", "YouTube Premium — 12 месяцев (готовый аккаунт)"));
        assert!(named("Windows 11 Home", "Ключ Windows 11 Home Retail"));
        assert!(!named("купить", "Windows 11 Home"), "no distinguishing word names nothing");
        assert!(named("ключ windows 7 профессиональная", "Windows 7 Professional — ключ"));
        assert!(edition_conflict(
            "baldurs gate 3 ps5 standard edition",
            "Baldurs Gate 3 — Digital Deluxe Edition"
        ));
        assert!(!edition_conflict("baldurs gate 3 ps5 standard edition", "Baldurs Gate 3 [PS5, TR]"));
        assert!(!edition_conflict("baldurs gate 3", "Baldurs Gate 3 — Digital Deluxe Edition"));
        assert!(named("чатгпт плюс", "ChatGPT Plus — подписка на 1 месяц"));
        assert!(named("spotify premium 12 months", "Spotify Premium — 12 месяцев (готовый аккаунт)"));
        assert!(!named("пицца", "Пополнение Steam — код на 500 ₽"));
    }
}
