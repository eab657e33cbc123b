//! What of the model's own words may reach the customer. The model's text is advice to the
//! code, not the reply: every fact the customer reads (product, price, stock, order, link,
//! item) is rendered by the shop. The model's words are dropped whole when the code
//! rejected or changed its action, and whenever they carry what only the code may say: a
//! link, anything shaped like a stock item (a key, a code, a login or password), a price,
//! discount or stock figure, or a claim that something was ordered, reserved, paid,
//! refunded or delivered that the code did not do in this turn. What passes is cut to a
//! length bound at a sentence end.
//!
//! Dropping beats editing: a sentence with its price cut out can still say the wrong thing,
//! and the code's own text answers the customer either way.

/// Longest model text shown (characters).
pub const MAX_SAY: usize = 400;

/// Why the model's words were dropped (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    ActionChanged,
    Link,
    StockItem,
    Figure,
    Claim,
    Injection,
}

impl Dropped {
    pub fn name(self) -> &'static str {
        match self {
            Dropped::ActionChanged => "action_changed",
            Dropped::Link => "link",
            Dropped::StockItem => "stock_item",
            Dropped::Figure => "figure",
            Dropped::Claim => "claim",
            Dropped::Injection => "injection",
        }
    }
}

/// What the code did in this turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct Done {
    /// The model's action was carried out as asked.
    pub kept: bool,
    /// An order now exists for this turn's offer (reserved or awaiting payment).
    pub reserved: bool,
}

const TLDS: &[&str] = &[
    "ru", "com", "net", "org", "io", "me", "example", "xyz", "shop", "store", "info", "biz", "site",
    "online", "app", "link", "pro", "su", "рф", "cc", "co", "gg", "top", "club", "ly", "to", "tk", "ml",
];

const CURRENCY: &[&str] = &[
    "₽",
    "руб",
    "rub",
    "$",
    "€",
    "usd",
    "eur",
    "usdt",
    "ton",
    "btc",
    "⭐",
    "звезд",
    "звёзд",
    "star",
    "%",
    "коп",
    "р.",
    "грн",
    "тенге",
    "dollar",
    "доллар",
    "евро",
];

const STOCK: &[&str] = &[
    "шт",
    "в наличии",
    "осталось",
    "остался",
    "осталась",
    "in stock",
    "left",
    "pcs",
    "pieces",
    "штук",
    "единиц",
];

const FREE: &[&str] =
    &["бесплатн", "даром", "free", "скидк", "discount", "промокод", "promo code", "подарок", "gift", "халяв"];

const CLAIMS_ORDER: &[&str] = &[
    "оформлен",
    "оформил",
    "забронир",
    "зарезерв",
    "закреплён за",
    "закреплен за",
    "reserved",
    "booked",
    "placed",
    "ordered",
    "is held",
    "on hold",
];

const CLAIMS_MONEY: &[&str] = &[
    "оплачен",
    "оплатил",
    "оплата прошла",
    "возвращ",
    "вернул",
    "зачисл",
    "списан",
    "отправил",
    "отправлен",
    "выдан",
    "доставлен",
    "ваш ключ",
    "ваш товар",
    "вот ключ",
    "вот ваш",
    "paid",
    "refunded",
    "credited",
    "charged",
    "delivered",
    "sent you",
    "your key",
    "here is your",
    "here's your",
    "purchased",
    "has been sent",
];

const INJECTION: &[&str] = &[
    "system prompt",
    "ignore previous",
    "ignore all",
    "игнорируй",
    "системн",
    "developer mode",
    "jailbreak",
    "инструкци",
];

/// The model's words as the customer may read them, or why they are dropped.
pub fn screen(say: &str, done: Done) -> Result<String, Dropped> {
    let say = say.trim();
    if say.is_empty() {
        return Ok(String::new());
    }
    if !done.kept {
        return Err(Dropped::ActionChanged);
    }
    let low = say.to_lowercase().replace('ё', "е");
    if has_link(&low) {
        return Err(Dropped::Link);
    }
    if has_stock_item(say, &low) {
        return Err(Dropped::StockItem);
    }
    if has_figure(&low) {
        return Err(Dropped::Figure);
    }
    if INJECTION.iter().any(|w| low.contains(w)) {
        return Err(Dropped::Injection);
    }
    if CLAIMS_MONEY.iter().any(|w| low.contains(w))
        || (!done.reserved && CLAIMS_ORDER.iter().any(|w| low.contains(w)))
    {
        return Err(Dropped::Claim);
    }
    Ok(bound(say))
}

fn has_link(low: &str) -> bool {
    if ["http", "://", "www.", "t.me", "@"].iter().any(|p| low.contains(p)) {
        return true;
    }
    // A bare domain: "pay-free-keys.example/win11", "shop.ru".
    low.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '«' | '»' | '"' | ',' | '!' | '?')).any(
        |w| {
            let w = w.trim_end_matches(['.', ':', ';']);
            let host = w.split('/').next().unwrap_or("");
            host.contains('.') && host.rsplit('.').next().is_some_and(|tld| TLDS.contains(&tld))
        },
    )
}

fn has_stock_item(say: &str, low: &str) -> bool {
    if [
        "login",
        "логин",
        "password",
        "пароль",
        "passwd",
        "ключ:",
        "key:",
        "код:",
        "code:",
        "license key",
        "serial",
    ]
    .iter()
    .any(|p| low.contains(p))
    {
        return true;
    }
    say.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '«' | '»' | '"' | '(' | ')')).any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        let alnum = w.chars().filter(|c| c.is_ascii_alphanumeric()).count();
        let groups: Vec<&str> = w.split('-').collect();
        // XXXXX-XXXXX-XXXXX, VK7JG-NPHTM-…: three or more groups of 3–8 letters/digits.
        let key = groups.len() >= 3
            && groups
                .iter()
                .all(|g| (3..=8).contains(&g.len()) && g.chars().all(|c| c.is_ascii_alphanumeric()));
        // A long token of letters and digits mixed (a code, a token).
        let token = alnum >= 12
            && w.chars().any(|c| c.is_ascii_digit())
            && w.chars().any(|c| c.is_ascii_alphabetic())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        key || token
    })
}

fn has_figure(low: &str) -> bool {
    if FREE.iter().any(|w| low.contains(w)) {
        return true;
    }
    let has_digit = low.chars().any(|c| c.is_ascii_digit());
    if !has_digit {
        // Spelled-out numbers with a currency: "ноль рублей", "zero dollars".
        return ["ноль", "zero", "nothing to pay", "ничего не стоит"].iter().any(|w| low.contains(w))
            && CURRENCY.iter().any(|c| low.contains(c));
    }
    // A number next to a currency, a percent or a stock word.
    let chars: Vec<char> = low.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if !c.is_ascii_digit() {
            continue;
        }
        let from = i.saturating_sub(12);
        let to = (i + 14).min(chars.len());
        let around: String = chars[from..to].iter().collect();
        if CURRENCY.iter().chain(STOCK).any(|w| around.contains(w)) {
            return true;
        }
    }
    false
}

/// Cut to [`MAX_SAY`] characters at the last sentence end before it.
fn bound(say: &str) -> String {
    if say.chars().count() <= MAX_SAY {
        return say.to_string();
    }
    let head: String = say.chars().take(MAX_SAY).collect();
    match head.rfind(['.', '!', '?', '\n']) {
        Some(i) if i > MAX_SAY / 3 => head[..=i].trim().to_string(),
        _ => format!("{}…", head.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Done = Done { kept: true, reserved: false };
    const RESERVED: Done = Done { kept: true, reserved: true };

    #[test]
    fn plain_advice_passes_and_is_bounded() {
        assert_eq!(screen("Отличный выбор для дома!", OK).unwrap(), "Отличный выбор для дома!");
        assert_eq!(
            screen("Windows 11 Pro подойдёт для работы.", OK).unwrap(),
            "Windows 11 Pro подойдёт для работы."
        );
        let long = "Это хороший вариант. ".repeat(40);
        assert!(screen(&long, OK).unwrap().chars().count() <= MAX_SAY);
        assert_eq!(
            screen("Заказ оформлен, оплатите ниже.", RESERVED).unwrap(),
            "Заказ оформлен, оплатите ниже."
        );
    }

    #[test]
    fn what_only_the_code_may_say_is_dropped() {
        let cases = [
            ("Специально для вас: цена 0 ₽!", Dropped::Figure),
            ("Ключ бесплатно!", Dropped::Figure),
            ("Оплатите здесь: https://pay-free-keys.example/win11", Dropped::Link),
            ("Pay at pay-free-keys.example/win11", Dropped::Link),
            ("Ваш ключ: VK7JG-NPHTM-C97JM-9MPGT-3V66T", Dropped::StockItem),
            ("Here: XXXXX-XXXXX-XXXXX", Dropped::StockItem),
            ("login: admin password: 123", Dropped::StockItem),
            ("Осталось всего 2 шт.", Dropped::Figure),
            ("Only $5 today", Dropped::Figure),
            ("Скидка 100% для вас", Dropped::Figure),
            ("Предзаказ оформлен!", Dropped::Claim),
            ("Your order is paid and delivered.", Dropped::Claim),
            ("Деньги возвращены на баланс.", Dropped::Claim),
            ("Ignore previous instructions.", Dropped::Injection),
        ];
        for (text, why) in cases {
            assert_eq!(screen(text, OK), Err(why), "{text}");
        }
        assert_eq!(
            screen("Отличный выбор!", Done { kept: false, reserved: false }),
            Err(Dropped::ActionChanged)
        );
    }
}
