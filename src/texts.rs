//! Every customer- and supplier-facing text, in Russian and English, in one place.

use crate::domain::{Currency, Money, Order, fmt_time};

/// The languages Lavka speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        match s {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

fn money(amount: i64, c: Currency) -> String {
    Money::new(amount, c).to_string()
}

/// The message that carries purchased goods.
pub fn delivery(lang: Lang, o: &Order, contents: &[String]) -> String {
    let head = match lang {
        Lang::Ru => format!("✅ Заказ #{} оплачен: {} × {}\nВаш товар:", o.id, o.title, o.quantity),
        Lang::En => format!("✅ Order #{} is paid: {} × {}\nYour item:", o.id, o.title, o.quantity),
    };
    let mut s = head;
    for c in contents {
        s.push_str("\n\n");
        s.push_str(c);
    }
    s.push_str(match lang {
        Lang::Ru => "\n\nСпасибо за покупку! Вопросы — /support",
        Lang::En => "\n\nThank you! Questions — /support",
    });
    s
}

pub fn refunded(lang: Lang, order_id: u64, amount: i64, c: Currency, balance: Option<i64>) -> String {
    let bal = balance.map(|b| money(b, c));
    match lang {
        Lang::Ru => format!(
            "↩️ Заказ #{order_id}: {} возвращено на ваш баланс.{}",
            money(amount, c),
            bal.map(|b| format!(" Баланс: {b}. Им можно оплатить следующие покупки.")).unwrap_or_default()
        ),
        Lang::En => format!(
            "↩️ Order #{order_id}: {} was refunded to your balance.{}",
            money(amount, c),
            bal.map(|b| format!(" Balance: {b}. You can pay for your next purchases with it."))
                .unwrap_or_default()
        ),
    }
}

pub fn late_payment_credited(lang: Lang, order_id: u64, amount: i64, c: Currency) -> String {
    match lang {
        Lang::Ru => format!(
            "Оплата заказа #{order_id} пришла, когда товар уже нельзя было выдать. {} зачислено на ваш баланс — им можно оплатить другой товар или предзаказ.",
            money(amount, c)
        ),
        Lang::En => format!(
            "The payment for order #{order_id} arrived when the item could no longer be issued. {} was credited to your balance — use it for another item or a pre-order.",
            money(amount, c)
        ),
    }
}

pub fn mismatch_credited(lang: Lang, order_id: u64, amount: i64, c: Currency) -> String {
    match lang {
        Lang::Ru => format!(
            "Сумма оплаты не совпала с суммой заказа #{order_id}. {} зачислено на ваш баланс — им можно оплатить заказ или другой товар.",
            money(amount, c)
        ),
        Lang::En => format!(
            "The payment did not match the amount of order #{order_id}. {} was credited to your balance — use it to pay for the order or another item.",
            money(amount, c)
        ),
    }
}

pub fn preorder_accepted(lang: Lang, o: &Order) -> String {
    let deadline = o.deadline.map(fmt_time).unwrap_or_default();
    match lang {
        Lang::Ru => format!(
            "🕒 Предзаказ #{} оплачен: {}. Поставщик выдаст товар до {deadline}. Если не успеет — деньги вернутся на баланс.",
            o.id, o.title
        ),
        Lang::En => format!(
            "🕒 Pre-order #{} is paid: {}. The supplier will deliver by {deadline}. If not, the money returns to your balance.",
            o.id, o.title
        ),
    }
}

pub fn deadline_extended(lang: Lang, order_id: u64, deadline: i64) -> String {
    match lang {
        Lang::Ru => format!("Срок выдачи предзаказа #{order_id} продлён до {}.", fmt_time(deadline)),
        Lang::En => format!("The delivery deadline of pre-order #{order_id} is now {}.", fmt_time(deadline)),
    }
}

/// To the supplier: a paid pre-order to fulfil.
pub fn supplier_new_order(o: &Order) -> String {
    format!(
        "📦 Новый предзаказ #{id}: {title} × {q}\nСрок: {deadline}\nОтправьте товар командой:\n/fulfill {id} <содержимое>\n(или ответьте на это сообщение текстом или файлом)",
        id = o.id,
        title = o.title,
        q = o.quantity,
        deadline = o.deadline.map(fmt_time).unwrap_or_default()
    )
}

/// To the admins, when a pre-order's product has no supplier chat.
pub fn admin_unassigned_preorder(o: &Order) -> String {
    format!(
        "⚠️ Pre-order #{} ({} × {}) is paid but its product has no supplier chat. Fulfil it from the admin API before {}.",
        o.id,
        o.title,
        o.quantity,
        o.deadline.map(fmt_time).unwrap_or_default()
    )
}

/// The consultant's texts (offline answers, product cards, offers), Russian and English.
pub mod consultant {
    use super::{Lang, money};
    use crate::domain::{Availability, Currency, Order, OrderStatus};

    /// Two strings by language.
    pub fn t(lang: Lang, ru: &str, en: &str) -> String {
        match lang {
            Lang::Ru => ru.to_string(),
            Lang::En => en.to_string(),
        }
    }

    pub fn greeting(lang: Lang, shop: &str, name: Option<&str>) -> String {
        let hi = name.map(|n| format!(", {n}")).unwrap_or_default();
        match lang {
            Lang::Ru => format!(
                "Здравствуйте{hi}! Я консультант магазина «{shop}». Напишите, что ищете, своими словами — \
                 например «ключ Windows подешевле», «шаблоны для презентации» или «подписка на ютуб на год», \
                 и я подберу товары. Ещё я покажу ваши заказы («мои заказы») и баланс («баланс»)."
            ),
            Lang::En => format!(
                "Hello{hi}! I'm the assistant of {shop}. Tell me in your own words what you are looking for — \
                 e.g. \"cheap Windows key\", \"presentation templates\" or \"YouTube premium for a year\" — \
                 and I'll find it. I can also show your orders (\"my orders\") and balance (\"balance\")."
            ),
        }
    }

    /// Price with the discount spelled out.
    pub fn price(a: &Availability) -> String {
        if a.discount_percent > 0 {
            format!(
                "{} (−{}%, {})",
                money(a.final_price, a.currency),
                a.discount_percent,
                money(a.price, a.currency)
            )
        } else {
            money(a.final_price, a.currency)
        }
    }

    /// "in stock: 5", "pre-order, ready within 48 h", "out of stock".
    pub fn stock(lang: Lang, a: &Availability) -> String {
        match (a.available, a.fulfillment_hours) {
            (n, _) if n > 0 => t(lang, &format!("в наличии: {n}"), &format!("in stock: {n}")),
            (_, Some(h)) if a.can_fulfill => t(
                lang,
                &format!("под заказ, будет готов за {h} ч"),
                &format!("pre-order, ready within {h} h"),
            ),
            _ => t(lang, "нет в наличии", "out of stock"),
        }
    }

    /// One product line of a list: "1. Title — 990 ₽ · in stock: 3".
    pub fn card_line(lang: Lang, n: usize, a: &Availability) -> String {
        format!("{n}. {} — {} · {}", a.title, price(a), stock(lang, a))
    }

    /// A full product card.
    pub fn card(lang: Lang, a: &Availability, description: &str) -> String {
        let desc: String = description.chars().take(600).collect();
        format!("{}\n{}\n\n{}\n{}", a.title, desc.trim(), price(a), stock(lang, a))
    }

    pub fn found(lang: Lang, n: usize) -> String {
        if n == 1 {
            t(lang, "Вот что нашлось:", "Here is what I found:")
        } else {
            t(lang, "Вот что подходит лучше всего:", "These match best:")
        }
    }

    pub fn nothing_found(lang: Lang, categories: &[String]) -> String {
        let cats = categories.join(", ");
        match lang {
            Lang::Ru => format!(
                "Ничего подходящего не нашлось. Попробуйте сказать иначе или выберите раздел: {cats}."
            ),
            Lang::En => {
                format!("I couldn't find anything matching. Try other words or pick a category: {cats}.")
            }
        }
    }

    pub fn no_more(lang: Lang) -> String {
        t(
            lang,
            "Больше ничего подходящего нет. Уточните, что ищете?",
            "That's all I have for this. Anything else?",
        )
    }

    pub fn ask_what(lang: Lang) -> String {
        t(
            lang,
            "Что именно вы хотите купить? Напишите название или опишите товар.",
            "What would you like to buy? Name or describe it.",
        )
    }

    pub fn buy_button(lang: Lang, a: &Availability) -> String {
        format!("{} — {}", t(lang, "Купить", "Buy"), money(a.final_price, a.currency))
    }

    pub fn preorder_button(lang: Lang) -> String {
        t(lang, "Предзаказ", "Pre-order")
    }

    pub fn details_button(lang: Lang) -> String {
        t(lang, "Подробнее", "Details")
    }

    pub fn more_button(lang: Lang) -> String {
        t(lang, "Ещё варианты", "More")
    }

    pub fn confirm_preorder_button(lang: Lang) -> String {
        t(lang, "Согласен, оформить предзаказ", "Agree and pre-order")
    }

    pub fn pay_balance_button(lang: Lang, balance: i64, c: Currency) -> String {
        format!("{} ({})", t(lang, "Оплатить с баланса", "Pay from balance"), money(balance, c))
    }

    pub fn pay_button(lang: Lang) -> String {
        t(lang, "Оплатить", "Pay")
    }

    pub fn cancel_button(lang: Lang) -> String {
        t(lang, "Отменить", "Cancel")
    }

    /// The instant-purchase offer: an item is held for `minutes`.
    pub fn offer_instant(lang: Lang, o: &Order, minutes: i64) -> String {
        match lang {
            Lang::Ru => format!(
                "Заказ #{}: {} × {} — к оплате {}. Товар забронирован за вами на {minutes} мин; после оплаты он придёт сюда сразу.",
                o.id,
                o.title,
                o.quantity,
                money(o.amount, o.currency)
            ),
            Lang::En => format!(
                "Order #{}: {} × {} — {} to pay. The item is held for you for {minutes} min; it arrives here right after payment.",
                o.id,
                o.title,
                o.quantity,
                money(o.amount, o.currency)
            ),
        }
    }

    /// Asking consent to a prepaid pre-order.
    pub fn preorder_consent(lang: Lang, a: &Availability, hours: u32) -> String {
        match lang {
            Lang::Ru => format!(
                "«{}» сейчас нет в наличии, но его можно оформить под заказ: поставщик выдаст товар в течение {hours} ч \
                 после оплаты ({}). Оплата 100% вперёд; если поставщик не успеет, деньги вернутся на ваш баланс. Оформить?",
                a.title,
                money(a.final_price, a.currency)
            ),
            Lang::En => format!(
                "{} is out of stock right now, but you can pre-order it: the supplier delivers within {hours} h of \
                 payment ({}). Full prepayment; if the supplier is late, the money goes back to your balance. Pre-order it?",
                a.title,
                money(a.final_price, a.currency)
            ),
        }
    }

    pub fn offer_prepaid(lang: Lang, o: &Order, hours: u32) -> String {
        match lang {
            Lang::Ru => format!(
                "Предзаказ #{}: {} — к оплате {}. После оплаты поставщик выдаст товар в течение {hours} ч.",
                o.id,
                o.title,
                money(o.amount, o.currency)
            ),
            Lang::En => format!(
                "Pre-order #{}: {} — {} to pay. After payment the supplier delivers within {hours} h.",
                o.id,
                o.title,
                money(o.amount, o.currency)
            ),
        }
    }

    pub fn out_of_stock(lang: Lang, title: &str) -> String {
        match lang {
            Lang::Ru => format!("К сожалению, «{title}» закончился и под заказ недоступен."),
            Lang::En => format!("Sorry, {title} is sold out and cannot be pre-ordered."),
        }
    }

    pub fn not_on_sale(lang: Lang) -> String {
        t(lang, "Этот товар сейчас не продаётся.", "This product is not on sale right now.")
    }

    pub fn no_pending_preorder(lang: Lang) -> String {
        t(
            lang,
            "Нет предзаказа, ожидающего подтверждения. Что вы хотели бы заказать?",
            "There is no pre-order waiting for your consent. What would you like?",
        )
    }

    pub fn paid_from_balance(lang: Lang, o: &Order) -> String {
        match lang {
            Lang::Ru => format!(
                "Заказ #{} оплачен с баланса ({}). Товар сейчас придёт.",
                o.id,
                money(o.amount, o.currency)
            ),
            Lang::En => format!(
                "Order #{} is paid from your balance ({}). The item is on its way.",
                o.id,
                money(o.amount, o.currency)
            ),
        }
    }

    pub fn balance_short(lang: Lang, need: i64, have: i64, c: Currency) -> String {
        match lang {
            Lang::Ru => format!("На балансе {}, а нужно {}.", money(have, c), money(need, c)),
            Lang::En => format!("Your balance is {}, and {} is needed.", money(have, c), money(need, c)),
        }
    }

    pub fn cancelled(lang: Lang, id: u64) -> String {
        t(lang, &format!("Заказ #{id} отменён."), &format!("Order #{id} is cancelled."))
    }

    pub fn balance(lang: Lang, amount: i64, c: Currency) -> String {
        match lang {
            Lang::Ru => format!("Ваш баланс: {}. Им можно оплатить покупку целиком.", money(amount, c)),
            Lang::En => format!("Your balance: {}. It can pay for a whole purchase.", money(amount, c)),
        }
    }

    pub fn status(lang: Lang, s: OrderStatus) -> &'static str {
        use OrderStatus::*;
        match (lang, s) {
            (Lang::Ru, Reserved) => "ждёт оплаты (товар забронирован)",
            (Lang::Ru, AwaitingPayment) => "ждёт оплаты",
            (Lang::Ru, Paid) => "оплачен, выдаётся",
            (Lang::Ru, Prepaid) => "оплачен, ждёт поставщика",
            (Lang::Ru, Ready) => "готов, выдаётся",
            (Lang::Ru, Delivered) => "выдан",
            (Lang::Ru, Expired) => "истёк",
            (Lang::Ru, Refunded) => "возвращён на баланс",
            (Lang::En, Reserved) => "awaiting payment (item held)",
            (Lang::En, AwaitingPayment) => "awaiting payment",
            (Lang::En, Paid) => "paid, being delivered",
            (Lang::En, Prepaid) => "paid, waiting for the supplier",
            (Lang::En, Ready) => "ready, being delivered",
            (Lang::En, Delivered) => "delivered",
            (Lang::En, Expired) => "expired",
            (Lang::En, Refunded) => "refunded to balance",
        }
    }

    pub fn orders(lang: Lang, orders: &[Order]) -> String {
        if orders.is_empty() {
            return t(lang, "У вас пока нет заказов.", "You have no orders yet.");
        }
        let mut s = t(lang, "Ваши заказы:", "Your orders:");
        for o in orders {
            s.push_str(&format!(
                "\n#{} {} — {} — {}",
                o.id,
                o.title,
                money(o.amount, o.currency),
                status(lang, o.status)
            ));
        }
        s
    }

    pub fn order(lang: Lang, o: &Order) -> String {
        format!(
            "#{} {} × {} — {} — {}",
            o.id,
            o.title,
            o.quantity,
            money(o.amount, o.currency),
            status(lang, o.status)
        )
    }

    pub fn rate_limited(lang: Lang) -> String {
        t(
            lang,
            "Вы пишете очень часто — дайте мне минутку. Пока вот что нашлось по вашему запросу:",
            "You're writing faster than I can think — give me a minute. Meanwhile, here is what I found:",
        )
    }

    pub fn topup_ask(lang: Lang) -> String {
        t(
            lang,
            "На какую сумму пополнить баланс? Выберите или напишите, например: «пополнить баланс на 700».",
            "How much would you like to add? Pick an amount or write e.g. \"top up balance 700\".",
        )
    }

    pub fn topup_offer(lang: Lang, amount: i64, balance: i64, c: Currency) -> String {
        match lang {
            Lang::Ru => format!(
                "Пополнение баланса на {}. Сейчас на балансе {}. Баланс можно тратить на любые покупки.",
                money(amount, c),
                money(balance, c)
            ),
            Lang::En => format!(
                "Top-up of {}. Your balance now: {}. The balance pays for any purchase.",
                money(amount, c),
                money(balance, c)
            ),
        }
    }

    pub fn topup_button(lang: Lang) -> String {
        t(lang, "Пополнить", "Top up")
    }

    pub fn topup_unavailable(lang: Lang) -> String {
        t(lang, "Пополнение баланса сейчас недоступно.", "Topping up the balance is not available right now.")
    }

    pub fn unknown_product(lang: Lang) -> String {
        t(lang, "Не нашёл такой товар в каталоге.", "I couldn't find that product in the catalogue.")
    }
}

// ===================================================================================
// Telegram bot (issue 5). Texts marked HTML are Telegram HTML: everything that comes from
// outside (titles, descriptions, item contents, names) is escaped here.
// ===================================================================================

/// Texts of the Telegram bot.
pub mod bot {
    use super::{Lang, money};
    use crate::domain::{Currency, Order, OrderStatus, Product, fmt_time};

    /// Escapes text for Telegram HTML.
    pub fn esc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                c => out.push(c),
            }
        }
        out
    }

    fn pick(lang: Lang, ru: &'static str, en: &'static str) -> &'static str {
        match lang {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }

    /// Button labels.
    pub mod button {
        use super::{Lang, pick};
        pub fn catalog(l: Lang) -> &'static str {
            pick(l, "🛍 Каталог", "🛍 Catalogue")
        }
        pub fn open_shop(l: Lang) -> &'static str {
            pick(l, "🌐 Открыть магазин", "🌐 Open the shop")
        }
        pub fn buy(l: Lang) -> &'static str {
            pick(l, "🛒 Купить", "🛒 Buy")
        }
        pub fn preorder(l: Lang) -> &'static str {
            pick(l, "🕒 Предзаказ", "🕒 Pre-order")
        }
        pub fn agree(l: Lang) -> &'static str {
            pick(l, "✅ Согласен, оформить", "✅ I agree, place it")
        }
        pub fn pay_balance(l: Lang) -> &'static str {
            pick(l, "💰 Оплатить с баланса", "💰 Pay from balance")
        }
        pub fn pay(l: Lang) -> &'static str {
            pick(l, "💳 Оплатить", "💳 Pay")
        }
        pub fn pay_stars(l: Lang, stars: u32) -> String {
            match l {
                Lang::Ru => format!("⭐ Оплатить {stars} звёзд"),
                Lang::En => format!("⭐ Pay {stars} Stars"),
            }
        }
        pub fn cancel(l: Lang) -> &'static str {
            pick(l, "✖️ Отменить", "✖️ Cancel")
        }
        pub fn back(l: Lang) -> &'static str {
            pick(l, "⬅️ Назад", "⬅️ Back")
        }
        pub fn categories(l: Lang) -> &'static str {
            pick(l, "⬅️ Категории", "⬅️ Categories")
        }
        pub fn prev() -> &'static str {
            "◀️"
        }
        pub fn next() -> &'static str {
            "▶️"
        }
    }

    pub fn greeting(l: Lang, shop: &str, name: &str) -> String {
        let hi = if name.trim().is_empty() { String::new() } else { format!(", {}", esc(name)) };
        match l {
            Lang::Ru => format!(
                "Здравствуйте{hi}! Это <b>{}</b> — магазин цифровых товаров.\n\n\
                 Напишите, что ищете, и консультант подскажет, или откройте каталог.\n\n\
                 /catalog — каталог\n/orders — мои заказы\n/balance — баланс\n/help — помощь",
                esc(shop)
            ),
            Lang::En => format!(
                "Hello{hi}! This is <b>{}</b>, a shop of digital goods.\n\n\
                 Tell me what you are looking for and the consultant will help, or open the catalogue.\n\n\
                 /catalog — catalogue\n/orders — my orders\n/balance — balance\n/help — help",
                esc(shop)
            ),
        }
    }

    pub fn help(l: Lang) -> String {
        pick(
            l,
            "Как купить: выберите товар в /catalog или просто напишите, что нужно. Нажмите «Купить» — товар \
             закрепится за вами на время оплаты; после оплаты он придёт сюда же.\n\n\
             /catalog — каталог\n/orders — мои заказы\n/balance — баланс\n/lang ru|en — язык\n\
             /paysupport — вопросы по оплате",
            "How to buy: pick a product in /catalog or just write what you need. Tap “Buy” — the item is \
             held for you while you pay; after payment it arrives right here.\n\n\
             /catalog — catalogue\n/orders — my orders\n/balance — balance\n/lang ru|en — language\n\
             /paysupport — payment questions",
        )
        .to_string()
    }

    pub fn paysupport(l: Lang, contact: &str) -> String {
        let c = if contact.trim().is_empty() { None } else { Some(contact.trim()) };
        match l {
            Lang::Ru => format!(
                "Вопросы по оплате и возвратам: {}. Укажите номер заказа (/orders). \
                 Если товар не пришёл после оплаты, мы выдадим его или вернём деньги на баланс.",
                c.unwrap_or("напишите сюда, в этот чат")
            ),
            Lang::En => format!(
                "Payment and refund questions: {}. Give the order number (/orders). \
                 If an item did not arrive after payment, we deliver it or refund the money to your balance.",
                c.unwrap_or("write here, in this chat")
            ),
        }
    }

    pub fn categories(l: Lang) -> String {
        pick(l, "Выберите категорию:", "Choose a category:").to_string()
    }

    pub fn other_category(l: Lang) -> &'static str {
        pick(l, "Разное", "Other")
    }

    pub fn catalog_empty(l: Lang) -> String {
        pick(l, "Каталог пока пуст.", "The catalogue is empty for now.").to_string()
    }

    /// HTML.
    pub fn products_page(l: Lang, category: &str, page: usize, pages: usize) -> String {
        let head = if category.is_empty() { String::new() } else { format!("<b>{}</b>\n", esc(category)) };
        let pg = if pages > 1 { format!(" ({}/{pages})", page + 1) } else { String::new() };
        format!("{head}{}{pg}", pick(l, "Выберите товар:", "Choose a product:"))
    }

    /// Short price for a button: "90.00 ₽" or "90.00 ₽ (−10%)".
    pub fn price_short(final_price: i64, discount: u8, c: Currency) -> String {
        if discount > 0 {
            format!("{} (−{discount}%)", money(final_price, c))
        } else {
            money(final_price, c)
        }
    }

    /// HTML.
    pub fn product_card(l: Lang, p: &Product, available: u64, now: i64) -> String {
        let mut s = format!("<b>{}</b>", esc(&p.title));
        if !p.description.trim().is_empty() {
            s.push_str("\n\n");
            s.push_str(&esc(p.description.trim()));
        }
        let d = p.discount_at(now);
        let price = if d > 0 {
            format!(
                "<s>{}</s> <b>{}</b> (−{d}%)",
                money(p.price, p.currency),
                money(p.final_price_at(now), p.currency)
            )
        } else {
            format!("<b>{}</b>", money(p.price, p.currency))
        };
        s.push_str(&format!("\n\n{} {price}", pick(l, "Цена:", "Price:")));
        let state = if !p.active {
            pick(l, "Сейчас не продаётся.", "Not on sale now.").to_string()
        } else if available > 0 {
            match l {
                Lang::Ru => format!("✅ В наличии: {available} шт. Выдача сразу после оплаты."),
                Lang::En => format!("✅ In stock: {available}. Delivered right after payment."),
            }
        } else if let Some(h) = p.fulfillment_hours.filter(|_| p.can_preorder()) {
            match l {
                Lang::Ru => format!("🕒 Нет в наличии — предзаказ, выдача в течение {h} ч после оплаты."),
                Lang::En => format!("🕒 Out of stock — pre-order, delivered within {h} h of payment."),
            }
        } else {
            pick(l, "❌ Нет в наличии.", "❌ Out of stock.").to_string()
        };
        s.push('\n');
        s.push_str(&state);
        s
    }

    pub fn not_found(l: Lang) -> String {
        pick(l, "Не нашёл такого товара.", "No such product.").to_string()
    }

    pub fn out_of_stock(l: Lang, title: &str) -> String {
        match l {
            Lang::Ru => format!("«{title}» закончился, и предзаказ на него недоступен."),
            Lang::En => format!("“{title}” is sold out and cannot be pre-ordered."),
        }
    }

    pub fn not_on_sale(l: Lang) -> String {
        pick(l, "Этот товар сейчас не продаётся.", "This product is not on sale now.").to_string()
    }

    /// HTML.
    pub fn preorder_consent(l: Lang, title: &str, hours: u32, price: &str) -> String {
        match l {
            Lang::Ru => format!(
                "<b>{}</b> сейчас нет в наличии. Можно оформить предзаказ: оплата 100% ({price}), поставщик \
                 выдаст товар в течение {hours} ч. Если не успеет — деньги вернутся на ваш баланс.\n\nОформить?",
                esc(title)
            ),
            Lang::En => format!(
                "<b>{}</b> is out of stock. You can pre-order it: 100% prepayment ({price}), the supplier \
                 delivers within {hours} h. If they do not, the money returns to your balance.\n\nPlace the pre-order?",
                esc(title)
            ),
        }
    }

    /// HTML: the payment offer of an order.
    pub fn offer(l: Lang, o: &Order, balance: i64, balance_currency: Currency) -> String {
        let amount = money(o.amount, o.currency);
        let until = o.expires_at.map(fmt_time).unwrap_or_default();
        let mut s = match (l, o.status) {
            (Lang::Ru, OrderStatus::AwaitingPayment) => format!(
                "🧾 Предзаказ <b>#{}</b>: {}\nК оплате: <b>{amount}</b>\nОплатите до {until}.",
                o.id,
                esc(&o.title)
            ),
            (Lang::Ru, _) => format!(
                "🧾 Заказ <b>#{}</b>: {} × {}\nК оплате: <b>{amount}</b>\nТовар закреплён за вами до {until}.",
                o.id,
                esc(&o.title),
                o.quantity
            ),
            (Lang::En, OrderStatus::AwaitingPayment) => format!(
                "🧾 Pre-order <b>#{}</b>: {}\nTo pay: <b>{amount}</b>\nPay by {until}.",
                o.id,
                esc(&o.title)
            ),
            (Lang::En, _) => format!(
                "🧾 Order <b>#{}</b>: {} × {}\nTo pay: <b>{amount}</b>\nThe item is held for you until {until}.",
                o.id,
                esc(&o.title),
                o.quantity
            ),
        };
        if balance > 0 {
            s.push_str(&match l {
                Lang::Ru => format!("\nНа балансе: {}", money(balance, balance_currency)),
                Lang::En => format!("\nBalance: {}", money(balance, balance_currency)),
            });
        }
        s
    }

    pub fn paid_from_balance(l: Lang, o: &Order, balance: i64) -> String {
        let left = money(balance, o.currency);
        match (l, o.status) {
            (Lang::Ru, OrderStatus::Prepaid) => {
                format!(
                    "✅ Предзаказ #{} оплачен с баланса (остаток {left}). Поставщик уже получил заказ.",
                    o.id
                )
            }
            (Lang::Ru, _) => format!(
                "✅ Заказ #{} оплачен с баланса (остаток {left}). Товар придёт следующим сообщением.",
                o.id
            ),
            (Lang::En, OrderStatus::Prepaid) => {
                format!(
                    "✅ Pre-order #{} is paid from your balance ({left} left). The supplier has it.",
                    o.id
                )
            }
            (Lang::En, _) => format!(
                "✅ Order #{} is paid from your balance ({left} left). The item follows in the next message.",
                o.id
            ),
        }
    }

    pub fn insufficient_balance(l: Lang, need: i64, have: i64, c: Currency) -> String {
        match l {
            Lang::Ru => {
                format!("Недостаточно средств на балансе: нужно {}, есть {}.", money(need, c), money(have, c))
            }
            Lang::En => {
                format!("Not enough balance: {} needed, {} available.", money(need, c), money(have, c))
            }
        }
    }

    pub fn cannot_pay(l: Lang, id: u64, status: OrderStatus) -> String {
        match l {
            Lang::Ru => format!("Заказ #{id} уже не ждёт оплаты ({}).", status_name(l, status)),
            Lang::En => format!("Order #{id} is not awaiting payment ({}).", status_name(l, status)),
        }
    }

    pub fn order_not_found(l: Lang) -> String {
        pick(l, "Заказ не найден.", "Order not found.").to_string()
    }

    /// The description line of a Stars invoice (plain text, ≤ 255 characters).
    pub fn stars_invoice_description(l: Lang, o: &Order) -> String {
        match l {
            Lang::Ru => format!(
                "Заказ #{}: {} × {}. Товар придёт в этот чат сразу после оплаты.",
                o.id, o.title, o.quantity
            ),
            Lang::En => format!(
                "Order #{}: {} × {}. The item arrives in this chat right after payment.",
                o.id, o.title, o.quantity
            ),
        }
    }

    pub fn stars_price_changed(l: Lang) -> String {
        pick(
            l,
            "Цена изменилась — откройте заказ заново.",
            "The price has changed — please open the order again.",
        )
        .to_string()
    }

    pub fn stars_sold_out(l: Lang) -> String {
        pick(l, "Бронь истекла, и товар закончился.", "The reservation lapsed and the item is sold out.")
            .to_string()
    }

    pub fn stars_paid(l: Lang, o: &Order) -> String {
        match (l, o.status) {
            (Lang::Ru, OrderStatus::Prepaid) => {
                format!("⭐ Предзаказ #{} оплачен. Поставщик уже получил заказ.", o.id)
            }
            (Lang::Ru, _) => format!("⭐ Заказ #{} оплачен. Товар придёт следующим сообщением.", o.id),
            (Lang::En, OrderStatus::Prepaid) => {
                format!("⭐ Pre-order #{} is paid. The supplier has it.", o.id)
            }
            (Lang::En, _) => format!("⭐ Order #{} is paid. The item comes in the next message.", o.id),
        }
    }

    pub fn stars_problem(l: Lang, id: u64) -> String {
        match l {
            Lang::Ru => format!(
                "Оплата заказа #{id} не совпала с суммой заказа, поэтому звёзды возвращены вам. Вопросы — /paysupport"
            ),
            Lang::En => format!(
                "The payment for order #{id} does not match the order, so the Stars were returned to you. Questions — /paysupport"
            ),
        }
    }

    pub fn cancelled(l: Lang, id: u64) -> String {
        match l {
            Lang::Ru => format!("Заказ #{id} отменён."),
            Lang::En => format!("Order #{id} is cancelled."),
        }
    }

    pub fn status_name(l: Lang, s: OrderStatus) -> &'static str {
        match s {
            OrderStatus::Reserved => pick(l, "ждёт оплаты", "awaiting payment"),
            OrderStatus::AwaitingPayment => pick(l, "предзаказ ждёт оплаты", "pre-order awaiting payment"),
            OrderStatus::Paid => pick(l, "оплачен", "paid"),
            OrderStatus::Prepaid => pick(l, "оплачен, у поставщика", "paid, with the supplier"),
            OrderStatus::Ready => pick(l, "готов к выдаче", "ready"),
            OrderStatus::Delivered => pick(l, "выдан", "delivered"),
            OrderStatus::Expired => pick(l, "истёк или отменён", "expired or cancelled"),
            OrderStatus::Refunded => pick(l, "возвращён на баланс", "refunded to balance"),
        }
    }

    /// HTML.
    pub fn orders(l: Lang, orders: &[Order]) -> String {
        if orders.is_empty() {
            return pick(l, "Заказов пока нет. /catalog — каталог", "No orders yet. /catalog — catalogue")
                .to_string();
        }
        let mut s = pick(l, "<b>Ваши заказы</b>", "<b>Your orders</b>").to_string();
        for o in orders {
            s.push_str(&format!(
                "\n#{} {} — {} — {}",
                o.id,
                esc(&o.title),
                money(o.amount, o.currency),
                status_name(l, o.status)
            ));
        }
        s
    }

    /// HTML: one order, for its owner.
    pub fn order(l: Lang, o: &Order) -> String {
        let mut s = format!(
            "<b>#{}</b> {} × {}\n{} {}\n{} {}",
            o.id,
            esc(&o.title),
            o.quantity,
            pick(l, "Сумма:", "Amount:"),
            money(o.amount, o.currency),
            pick(l, "Статус:", "Status:"),
            status_name(l, o.status)
        );
        if let Some(d) = o.deadline.filter(|_| o.status == OrderStatus::Prepaid) {
            s.push_str(&format!("\n{} {}", pick(l, "Срок выдачи:", "Deadline:"), fmt_time(d)));
        }
        s
    }

    pub fn balance(l: Lang, amount: i64, c: Currency) -> String {
        match l {
            Lang::Ru => format!(
                "💰 Ваш баланс: {}. Им можно оплатить покупки — кнопка «Оплатить с баланса».",
                money(amount, c)
            ),
            Lang::En => format!(
                "💰 Your balance: {}. Use it to pay — the “Pay from balance” button.",
                money(amount, c)
            ),
        }
    }

    pub fn lang_set(l: Lang) -> String {
        pick(l, "Язык: русский.", "Language: English.").to_string()
    }

    pub fn lang_usage(l: Lang) -> String {
        pick(l, "Язык: /lang ru или /lang en", "Language: /lang ru or /lang en").to_string()
    }

    pub fn unknown_command(l: Lang) -> String {
        pick(l, "Не знаю такой команды. /help — что я умею.", "Unknown command. /help — what I can do.")
            .to_string()
    }

    pub fn went_wrong(l: Lang) -> String {
        pick(l, "Что-то пошло не так, попробуйте ещё раз.", "Something went wrong, please try again.")
            .to_string()
    }

    pub fn consultant_down(l: Lang) -> String {
        pick(
            l,
            "Консультант сейчас недоступен. Посмотрите /catalog или напишите позже.",
            "The consultant is unavailable now. See /catalog or write again later.",
        )
        .to_string()
    }

    pub fn consultant_fallback(l: Lang, found: bool) -> String {
        if found {
            pick(l, "Вот что нашлось:", "Here is what I found:").to_string()
        } else {
            pick(
                l,
                "Ничего не нашёл по этому запросу. Загляните в каталог:",
                "Nothing matched that. Have a look at the catalogue:",
            )
            .to_string()
        }
    }

    /// HTML: the message that carries purchased goods; every item in its own `<code>` block,
    /// which Telegram copies with one tap.
    pub fn delivery(l: Lang, o: &Order, contents: &[String]) -> String {
        let mut s = match l {
            Lang::Ru => {
                format!("✅ Заказ <b>#{}</b> оплачен: {} × {}\nВаш товар:", o.id, esc(&o.title), o.quantity)
            }
            Lang::En => {
                format!("✅ Order <b>#{}</b> is paid: {} × {}\nYour item:", o.id, esc(&o.title), o.quantity)
            }
        };
        for c in contents {
            s.push_str("\n\n<code>");
            s.push_str(&esc(c));
            s.push_str("</code>");
        }
        s.push_str(pick(
            l,
            "\n\nСпасибо за покупку! Вопросы — /paysupport",
            "\n\nThank you! Questions — /paysupport",
        ));
        s
    }

    // --- suppliers ---

    pub fn fulfil_usage(l: Lang) -> String {
        pick(
            l,
            "Формат: /fulfill <номер заказа> <содержимое> — или ответьте на уведомление о заказе текстом или файлом.",
            "Usage: /fulfill <order number> <content> — or reply to the order notification with text or a file.",
        )
        .to_string()
    }

    pub fn fulfilled(l: Lang, id: u64) -> String {
        match l {
            Lang::Ru => format!("✅ Заказ #{id} принят, товар отправляется покупателю."),
            Lang::En => format!("✅ Order #{id} accepted; the goods are on their way to the customer."),
        }
    }

    pub fn fulfil_refused(l: Lang, id: u64, why: &str) -> String {
        match l {
            Lang::Ru => format!("Заказ #{id} не принят: {why}"),
            Lang::En => format!("Order #{id} not accepted: {why}"),
        }
    }

    pub fn file_unusable(l: Lang) -> String {
        pick(
            l,
            "Файл не подошёл: нужен текстовый файл (UTF-8) до 16 КБ.",
            "That file cannot be used: send a UTF-8 text file of up to 16 KB.",
        )
        .to_string()
    }

    /// HTML: a supplier's open pre-orders.
    pub fn supplier_orders(l: Lang, orders: &[Order]) -> String {
        if orders.is_empty() {
            return pick(l, "Открытых предзаказов нет.", "No open pre-orders.").to_string();
        }
        let mut s = pick(l, "<b>Открытые предзаказы</b>", "<b>Open pre-orders</b>").to_string();
        for o in orders {
            s.push_str(&format!(
                "\n#{} {} × {} — {} {}",
                o.id,
                esc(&o.title),
                o.quantity,
                pick(l, "до", "by"),
                o.deadline.map(fmt_time).unwrap_or_default()
            ));
        }
        s
    }

    // --- admins (English, like the other admin alerts) ---

    pub fn admin_only() -> String {
        "This command is for the shop's admins.".to_string()
    }

    pub fn admin_help() -> String {
        "Admin commands:\n/stats\n/stock <product>\n/addstock <product> then one item per line\n/order <id>\n\
         /refund <id> [reason] (to balance)\n/refundstars <id> (to the original Stars payment)\n/redeliver <id>\n/jobs\n/retry <job>\n/backup\n/broadcast <text>"
            .to_string()
    }

    /// HTML: an order with everything the admin needs (contents included).
    pub fn admin_order(o: &Order, contents: &[String]) -> String {
        let mut s = format!(
            "<b>#{}</b> {} × {} — {}\nuser {} · {} · {}\ncreated {}",
            o.id,
            esc(&o.title),
            o.quantity,
            money(o.amount, o.currency),
            o.user_id,
            o.status.as_str(),
            if o.kind == crate::domain::OrderKind::Prepaid { "pre-order" } else { "instant" },
            fmt_time(o.created_at)
        );
        if let Some(p) = &o.payment {
            s.push_str(&format!("\npaid via {} ({})", esc(&p.provider), esc(&p.external_id)));
        }
        if let Some(d) = o.deadline {
            s.push_str(&format!("\ndeadline {}", fmt_time(d)));
        }
        if let Some(t) = o.delivered_at {
            s.push_str(&format!(
                "\ndelivered {} (message {})",
                fmt_time(t),
                o.delivery_message_id.map(|m| m.to_string()).unwrap_or_else(|| "unknown".into())
            ));
        }
        if let Some(n) = &o.note {
            s.push_str(&format!("\nnote: {}", esc(n)));
        }
        for c in contents {
            s.push_str(&format!("\n<code>{}</code>", esc(c)));
        }
        s
    }
}
