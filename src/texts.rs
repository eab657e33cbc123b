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

    /// The instant-purchase offer: an item is held until `until`.
    pub fn offer_instant(lang: Lang, o: &Order, until: &str) -> String {
        match lang {
            Lang::Ru => format!(
                "Заказ #{}: {} × {} — к оплате {}. Товар забронирован за вами до {until}; после оплаты он придёт сюда сразу.",
                o.id,
                o.title,
                o.quantity,
                money(o.amount, o.currency)
            ),
            Lang::En => format!(
                "Order #{}: {} × {} — {} to pay. The item is held for you until {until}; it arrives here right after payment.",
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

    pub fn unknown_product(lang: Lang) -> String {
        t(lang, "Не нашёл такой товар в каталоге.", "I couldn't find that product in the catalogue.")
    }
}
