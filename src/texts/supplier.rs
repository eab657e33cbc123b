//! What suppliers read (in the supplier's own language).

use super::{Loc, Rich};
use crate::domain::Order;

/// A paid pre-order to fulfil.
pub fn new_order(l: &Loc, o: &Order) -> Rich {
    let by = o.deadline.map(|d| l.when(d)).unwrap_or_default();
    Rich::new()
        .t(l.s("📦 Новый предзаказ ", "📦 New pre-order "))
        .b(format!("#{}", o.id))
        .t(": ")
        .t(&o.title)
        .t(format!(" × {}\n", o.quantity))
        .t(l.s(&format!("Срок: {by}\n"), &format!("Deadline: {by}\n")))
        .t(l.s("Отправьте товар командой:\n", "Send the goods with:\n"))
        .code(format!("/fulfill {} ", o.id))
        .t(l.s(
            "<содержимое>\n(или ответьте на это сообщение текстом или файлом)",
            "<content>\n(or reply to this message with text or a file)",
        ))
}

/// A pre-order the supplier did not fulfil in time was refunded to the customer.
pub fn refunded(l: &Loc, o: &Order) -> Rich {
    Rich::new()
        .t(l.s("⌛ Предзаказ ", "⌛ Pre-order "))
        .b(format!("#{}", o.id))
        .t(" (")
        .t(&o.title)
        .t(l.s(
            ") не выполнен в срок: деньги возвращены покупателю на баланс. Выдавать его больше не нужно.",
            ") was not fulfilled in time: the customer got the money back to their balance. It no longer needs delivering.",
        ))
}

pub fn fulfil_usage(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Формат: /fulfill <номер заказа> <содержимое> — или ответьте на уведомление о заказе текстом или файлом.",
        "Usage: /fulfill <order number> <content> — or reply to the order notification with text or a file.",
    ))
}

pub fn fulfilled(l: &Loc, id: u64) -> Rich {
    Rich::from(l.s(
        &format!("✅ Заказ #{id} принят, товар отправляется покупателю."),
        &format!("✅ Order #{id} accepted; the goods are on their way to the customer."),
    ))
}

/// Why a fulfilment was refused, in the supplier's language.
pub enum Refusal {
    NotFound,
    AlreadyFulfilled,
    RefundedLate,
    NotPaid,
    Empty,
    TooLong,
}

pub fn fulfil_refused(l: &Loc, id: u64, why: Refusal) -> Rich {
    let reason = match why {
        Refusal::NotFound => l.s("такого предзаказа у вас нет.", "you have no such pre-order."),
        Refusal::AlreadyFulfilled => l.s("он уже выполнен.", "it is already fulfilled."),
        Refusal::RefundedLate => l.s(
            "срок истёк, деньги уже возвращены покупателю.",
            "the deadline passed and the customer was refunded.",
        ),
        Refusal::NotPaid => l.s("он ещё не оплачен.", "it is not paid yet."),
        Refusal::Empty => l.s("содержимое пустое.", "the content is empty."),
        Refusal::TooLong => l.s("содержимое длиннее 16 КБ.", "the content is longer than 16 KB."),
    };
    Rich::from(
        l.s(&format!("Заказ #{id} не принят: {reason}"), &format!("Order #{id} not accepted: {reason}")),
    )
}

pub fn file_unusable(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Файл не подошёл: нужен текстовый файл (UTF-8) до 16 КБ.",
        "That file cannot be used: send a UTF-8 text file of up to 16 KB.",
    ))
}

/// A supplier's open pre-orders.
pub fn open_orders(l: &Loc, orders: &[Order]) -> Rich {
    if orders.is_empty() {
        return Rich::from(l.s("Открытых предзаказов нет.", "No open pre-orders."));
    }
    let mut r = Rich::new().b(l.s("Открытые предзаказы", "Open pre-orders"));
    for o in orders {
        let by = o.deadline.map(|d| l.when(d)).unwrap_or_default();
        r = r.t(format!("\n#{} ", o.id)).t(&o.title).t(format!(
            " × {} — {}",
            o.quantity,
            l.s(&format!("срок {by}"), &format!("due {by}"))
        ));
    }
    r
}
