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
