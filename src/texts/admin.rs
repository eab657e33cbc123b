//! What the shop's admins read: alerts and the replies to admin commands (in the shop's
//! default language).

use super::{Loc, Rich};
use crate::domain::{Order, OrderKind};

pub fn only_admins(l: &Loc) -> Rich {
    Rich::from(
        l.s("Эта команда только для администраторов магазина.", "This command is for the shop's admins."),
    )
}

pub fn help(l: &Loc) -> Rich {
    Rich::new().b(l.s("Команды администратора", "Admin commands")).t(l.s(
        "\n/stats — сводка\n/stock <товар> — остатки\n/addstock <товар>, затем по одной позиции в строке\n\
         /order <номер>\n/refund <номер> [причина] — на баланс\n/refundstars <номер> — на звёзды покупателя\n\
         /redeliver <номер> — выдать ещё раз\n/jobs — задачи с ошибками\n/retry <задача>\n/backup\n/broadcast <текст>",
        "\n/stats — summary\n/stock <product> — stock\n/addstock <product>, then one item per line\n\
         /order <id>\n/refund <id> [reason] — to the balance\n/refundstars <id> — to the customer's Stars\n\
         /redeliver <id> — send the goods again\n/jobs — failing jobs\n/retry <job>\n/backup\n/broadcast <text>",
    ))
}

/// An order with everything the admin needs (contents included).
pub fn order(l: &Loc, o: &Order, contents: &[String]) -> Rich {
    let kind = if o.kind == OrderKind::Prepaid {
        l.s("предзаказ", "pre-order")
    } else {
        l.s("сразу", "instant")
    };
    let mut r = Rich::new().b(format!("#{}", o.id)).t(" ").t(&o.title).t(format!(
        " × {} — {}\nuser {} · {} · {kind}\n{} {}",
        o.quantity,
        l.money(o.amount, o.currency),
        o.user_id,
        o.status.as_str(),
        l.s("создан", "created"),
        l.when(o.created_at)
    ));
    if let Some(p) = &o.payment {
        r = r.t(format!("\n{} {} ({})", l.s("оплачен через", "paid via"), p.provider, p.external_id));
    }
    if let Some(d) = o.deadline {
        r = r.t(format!("\n{} {}", l.s("срок", "deadline"), l.when(d)));
    }
    if let Some(t) = o.delivered_at {
        let mid =
            o.delivery_message_id.map(|m| m.to_string()).unwrap_or_else(|| l.s("неизвестно", "unknown"));
        r = r.t(format!(
            "\n{} {} ({} {mid})",
            l.s("выдан", "delivered"),
            l.when(t),
            l.s("сообщение", "message")
        ));
    }
    if let Some(n) = &o.note {
        r = r.t(format!("\n{}: ", l.s("заметка", "note"))).t(n);
    }
    for c in contents {
        r = r.t("\n").code(c);
    }
    r
}

/// A paid pre-order whose product has no supplier chat.
pub fn unassigned_preorder(l: &Loc, o: &Order) -> Rich {
    let by = o.deadline.map(|d| l.when(d)).unwrap_or_default();
    Rich::from(l.s(
        &format!("⚠️ Предзаказ #{} ({} × {}) оплачен, но у товара нет чата поставщика. Выполните его через админ-API до {by}.", o.id, o.title, o.quantity),
        &format!("⚠️ Pre-order #{} ({} × {}) is paid but its product has no supplier chat. Fulfil it from the admin API before {by}.", o.id, o.title, o.quantity),
    ))
}

/// A late pre-order was refunded automatically.
pub fn preorder_refunded(l: &Loc, o: &Order, supplier: Option<&str>) -> Rich {
    let who = supplier.unwrap_or("—");
    Rich::from(l.s(
        &format!("⌛ Предзаказ #{} ({}) не выполнен в срок (поставщик: {who}): {} возвращено покупателю {} на баланс.", o.id, o.title, l.money(o.amount, o.currency), o.user_id),
        &format!("⌛ Pre-order #{} ({}) was not fulfilled in time (supplier: {who}): {} refunded to customer {}'s balance.", o.id, o.title, l.money(o.amount, o.currency), o.user_id),
    ))
}

/// A paid order could not be delivered: the customer blocked the bot.
pub fn customer_unreachable(l: &Loc, o: &Order) -> Rich {
    Rich::from(l.s(
        &format!("⚠️ Заказ #{} ({}) оплачен, но покупатель {} заблокировал бота. Товар будет выдан, как только он снова напишет боту; /order {} — содержимое.", o.id, o.title, o.user_id, o.id),
        &format!("⚠️ Order #{} ({}) is paid, but customer {} has blocked the bot. The goods go out as soon as they write to the bot again; /order {} shows the contents.", o.id, o.title, o.user_id, o.id),
    ))
}
