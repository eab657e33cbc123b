//! What customers read, in every door (bot, web shop, consultant, terminal).

use super::{Lang, Loc, Rich};
use crate::domain::{Currency, Order, OrderKind, OrderStatus, Sale};

/// Button labels.
pub mod button {
    use super::Loc;

    pub fn catalog(l: &Loc) -> String {
        l.s("🛍 Каталог", "🛍 Catalogue")
    }
    pub fn open_shop(l: &Loc) -> String {
        l.s("🌐 Открыть магазин", "🌐 Open the shop")
    }
    pub fn buy(l: &Loc, price: &str) -> String {
        l.s(&format!("🛒 Купить — {price}"), &format!("🛒 Buy — {price}"))
    }
    pub fn preorder(l: &Loc) -> String {
        l.s("🕒 Предзаказ", "🕒 Pre-order")
    }
    pub fn details(l: &Loc) -> String {
        l.s("Подробнее", "Details")
    }
    pub fn more(l: &Loc) -> String {
        l.s("Ещё варианты", "More")
    }
    pub fn agree(l: &Loc) -> String {
        l.s("✅ Согласен, оформить", "✅ I agree, place it")
    }
    pub fn pay(l: &Loc) -> String {
        l.s("💳 Оплатить", "💳 Pay")
    }
    pub fn pay_stars(l: &Loc, stars: u32) -> String {
        l.s(&format!("⭐ Оплатить {stars} звёзд"), &format!("⭐ Pay {stars} Stars"))
    }
    pub fn pay_balance(l: &Loc, balance: &str) -> String {
        l.s(&format!("💰 Оплатить с баланса ({balance})"), &format!("💰 Pay from balance ({balance})"))
    }
    pub fn cancel(l: &Loc) -> String {
        l.s("✖️ Отменить", "✖️ Cancel")
    }
    pub fn cancel_order(l: &Loc, id: u64) -> String {
        l.s(&format!("✖️ Отменить #{id}"), &format!("✖️ Cancel #{id}"))
    }
    pub fn back(l: &Loc) -> String {
        l.s("⬅️ Назад", "⬅️ Back")
    }
    pub fn categories(l: &Loc) -> String {
        l.s("⬅️ Категории", "⬅️ Categories")
    }
    pub fn topup(l: &Loc) -> String {
        l.s("💰 Пополнить", "💰 Top up")
    }
    pub fn prev() -> String {
        "◀️".into()
    }
    pub fn next() -> String {
        "▶️".into()
    }
}

pub fn greeting(l: &Loc, shop: &str, name: Option<&str>) -> Rich {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let hi = Rich::new().t(l.s("Здравствуйте", "Hello"));
    let hi = match name {
        Some(n) => hi.t(", ").t(n),
        None => hi,
    };
    match l.lang {
        Lang::Ru => hi.t("! Это ").b(shop).t(
            " — магазин цифровых товаров.\n\nНапишите своими словами, что ищете («ключ Windows подешевле», \
             «шаблоны для презентации»), и консультант подберёт товар, или откройте каталог.\n\n\
             /catalog — каталог\n/orders — мои заказы\n/balance — баланс\n/help — помощь",
        ),
        Lang::En => hi.t("! This is ").b(shop).t(
            ", a shop of digital goods.\n\nTell me in your own words what you are looking for (\"cheap Windows \
             key\", \"presentation templates\") and the consultant will find it, or open the catalogue.\n\n\
             /catalog — catalogue\n/orders — my orders\n/balance — balance\n/help — help",
        ),
    }
}

pub fn help(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Как купить: выберите товар в /catalog или просто напишите, что нужно. Нажмите «Купить» — товар \
         закрепится за вами на время оплаты; после оплаты он придёт сюда же. Нет в наличии — можно \
         оформить предзаказ: если поставщик не успеет, деньги вернутся на баланс.\n\n\
         /catalog — каталог\n/orders — мои заказы\n/balance — баланс\n/lang ru|en — язык\n\
         /paysupport — вопросы по оплате",
        "How to buy: pick a product in /catalog or just write what you need. Tap “Buy” — the item is \
         held for you while you pay; after payment it arrives right here. Out of stock? Pre-order it: \
         if the supplier is late, the money returns to your balance.\n\n\
         /catalog — catalogue\n/orders — my orders\n/balance — balance\n/lang ru|en — language\n\
         /paysupport — payment questions",
    ))
}

/// A message without text (a sticker, photo, voice message).
pub fn media_unsupported(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Я понимаю только текст: напишите, что ищете, или откройте /catalog. Мои заказы — /orders, баланс — /balance.",
        "I only understand text: write what you are looking for, or open /catalog. Your orders — /orders, balance — /balance.",
    ))
}

pub fn paysupport(l: &Loc, contact: &str) -> Rich {
    let c = Some(contact.trim()).filter(|c| !c.is_empty());
    Rich::from(match l.lang {
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
    })
}

// --- the catalogue ---

pub fn categories(l: &Loc) -> Rich {
    Rich::from(l.s("Выберите категорию:", "Choose a category:"))
}

pub fn other_category(l: &Loc) -> String {
    l.s("Разное", "Other")
}

pub fn catalog_empty(l: &Loc) -> Rich {
    Rich::from(l.s("Каталог пока пуст.", "The catalogue is empty for now."))
}

pub fn products_page(l: &Loc, category: &str, page: usize, pages: usize) -> Rich {
    let head = if category.is_empty() { Rich::new() } else { Rich::new().b(category).t("\n") };
    let pg = if pages > 1 { format!(" ({}/{pages})", page + 1) } else { String::new() };
    head.t(l.s("Выберите товар:", "Choose a product:")).t(pg)
}

/// A price with its discount: "2 511 ₽ (−10%)".
pub fn price_short(l: &Loc, final_price: i64, discount: u8, c: Currency) -> String {
    if discount > 0 {
        format!("{} (−{discount}%)", l.money(final_price, c))
    } else {
        l.money(final_price, c)
    }
}

/// A product's line on a button: "🕒 Title — 2 790 ₽".
pub fn product_label(title: &str, sale: Sale, price: &str) -> String {
    let mark = match sale {
        Sale::InStock { .. } => "",
        Sale::PreOrder { .. } => "🕒 ",
        Sale::SoldOut => "❌ ",
    };
    format!("{mark}{} — {price}", short(title, 36))
}

/// What the customer can do: "✅ В наличии: 5 шт.", "🕒 Предзаказ: ...", "❌ Нет в наличии."
pub fn sale_state(l: &Loc, sale: Sale) -> String {
    match sale {
        Sale::InStock { available } => l.s(
            &format!("✅ В наличии: {available} шт. Выдача сразу после оплаты."),
            &format!("✅ In stock: {available}. Delivered right after payment."),
        ),
        Sale::PreOrder { minutes } => {
            let t = l.span_minutes(minutes as i64);
            l.s(
                &format!("🕒 Нет в наличии — предзаказ, выдача в течение {t} после оплаты."),
                &format!("🕒 Out of stock — pre-order, delivered within {t} of payment."),
            )
        }
        Sale::SoldOut => l.s("❌ Нет в наличии.", "❌ Out of stock."),
    }
}

/// Short state for a list line: "в наличии: 5", "предзаказ, 48 ч", "нет в наличии".
pub fn sale_short(l: &Loc, sale: Sale) -> String {
    match sale {
        Sale::InStock { available } => {
            l.s(&format!("в наличии: {available}"), &format!("in stock: {available}"))
        }
        Sale::PreOrder { minutes } => {
            let t = l.span_minutes(minutes as i64);
            l.s(&format!("под заказ, {t}"), &format!("pre-order, {t}"))
        }
        Sale::SoldOut => l.s("нет в наличии", "out of stock"),
    }
}

/// The product card.
#[allow(clippy::too_many_arguments)]
pub fn card(
    l: &Loc,
    title: &str,
    description: &str,
    price: i64,
    final_price: i64,
    discount: u8,
    c: Currency,
    sale: Sale,
) -> Rich {
    let mut r = Rich::new().b(title);
    let desc = description.trim();
    if !desc.is_empty() {
        r = r.t("\n\n").t(short(desc, 900));
    }
    r = r.t("\n\n").t(l.s("Цена: ", "Price: "));
    if discount > 0 {
        r = r.strike(l.money(price, c)).t(" ").b(l.money(final_price, c)).t(format!(" (−{discount}%)"));
    } else {
        r = r.b(l.money(final_price, c));
    }
    r.t("\n").t(sale_state(l, sale))
}

/// One product line of a list: "1. Title — 990 ₽ · in stock: 3".
pub fn list_line(l: &Loc, n: usize, title: &str, price: &str, sale: Sale) -> Rich {
    Rich::new().t(format!("{n}. ")).b(title).t(format!(" — {price} · {}", sale_short(l, sale)))
}

pub fn found(l: &Loc, n: usize) -> Rich {
    Rich::from(if n == 1 {
        l.s("Вот что нашлось:", "Here is what I found:")
    } else {
        l.s("Вот что подходит лучше всего:", "These match best:")
    })
}

pub fn nothing_found(l: &Loc, categories: &[String]) -> Rich {
    let cats = categories.join(", ");
    Rich::from(if cats.is_empty() {
        l.s(
            "Ничего подходящего не нашлось. Попробуйте сказать иначе.",
            "I couldn't find anything matching. Try other words.",
        )
    } else {
        l.s(
            &format!("Ничего подходящего не нашлось. Попробуйте сказать иначе или выберите раздел: {cats}."),
            &format!("I couldn't find anything matching. Try other words or pick a category: {cats}."),
        )
    })
}

pub fn no_more(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Больше ничего подходящего нет. Уточните, что ищете?",
        "That's all I have for this. Anything else?",
    ))
}

pub fn ask_what(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Что именно вы хотите купить? Напишите название или опишите товар.",
        "What would you like to buy? Name or describe it.",
    ))
}

pub fn ask_which(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Какой из них? Нажмите «Купить» под нужным или напишите номер, например «второй».",
        "Which one? Tap “Buy” under it or write its number, for example “the second one”.",
    ))
}

pub fn not_found(l: &Loc) -> Rich {
    Rich::from(l.s("Не нашёл такого товара в каталоге.", "I couldn't find that product in the catalogue."))
}

pub fn not_on_sale(l: &Loc) -> Rich {
    Rich::from(l.s("Этот товар сейчас не продаётся.", "This product is not on sale right now."))
}

pub fn sold_out(l: &Loc, title: &str) -> Rich {
    match l.lang {
        Lang::Ru => {
            Rich::new().t("К сожалению, «").b(title).t("» закончился, и предзаказ на него недоступен.")
        }
        Lang::En => Rich::new().t("Sorry, ").b(title).t(" is sold out and cannot be pre-ordered."),
    }
}

pub fn off_sale(l: &Loc, title: &str) -> Rich {
    match l.lang {
        Lang::Ru => Rich::new().t("«").b(title).t("» сейчас не продаётся."),
        Lang::En => Rich::new().b(title).t(" is not on sale right now."),
    }
}

pub fn no_cheaper(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Дешевле из подходящего ничего нет — это самый доступный вариант:",
        "Nothing that fits costs less — this is the most affordable option:",
    ))
}

/// What the shop sells, for a greeting or "what can you do?".
pub fn what_we_sell(l: &Loc, categories: &[String]) -> Rich {
    if categories.is_empty() {
        return Rich::new();
    }
    let cats = categories.join(", ");
    Rich::from(l.s(
        &format!("Я подберу товар, покажу цену и наличие, оформлю покупку или предзаказ. Разделы: {cats}."),
        &format!("I can find a product, tell its price and stock, and take the order or a pre-order. Categories: {cats}."),
    ))
}

pub fn similar(l: &Loc) -> Rich {
    Rich::from(l.s("Похожие товары:", "Similar products:"))
}

/// Asking consent to a prepaid pre-order (nothing is created yet).
pub fn preorder_consent(l: &Loc, title: &str, minutes: u32, price: &str) -> Rich {
    let t = l.span_minutes(minutes as i64);
    match l.lang {
        Lang::Ru => Rich::new().b(title).t(format!(
            " сейчас нет в наличии. Можно оформить предзаказ: оплата 100% ({price}), поставщик выдаст товар \
             в течение {t} после оплаты. Если не успеет — деньги вернутся на ваш баланс.\n\nОформить?"
        )),
        Lang::En => Rich::new().b(title).t(format!(
            " is out of stock. You can pre-order it: 100% prepayment ({price}), the supplier delivers within {t} \
             of payment. If they do not, the money returns to your balance.\n\nPlace the pre-order?"
        )),
    }
}

/// The payment offer of a pending order.
pub fn offer(l: &Loc, o: &Order, balance: Option<(i64, Currency)>) -> Rich {
    let amount = l.money(o.amount, o.currency);
    let until = o.expires_at.map(|t| l.when(t)).unwrap_or_default();
    let qty = if o.quantity > 1 { format!(" × {}", o.quantity) } else { String::new() };
    let mut r = match (l.lang, o.kind) {
        (Lang::Ru, OrderKind::Prepaid) => {
            Rich::new().t("🧾 Предзаказ ").b(format!("#{}", o.id)).t(": ").t(&o.title).t(qty)
        }
        (Lang::Ru, OrderKind::Instant) => {
            Rich::new().t("🧾 Заказ ").b(format!("#{}", o.id)).t(": ").t(&o.title).t(qty)
        }
        (Lang::En, OrderKind::Prepaid) => {
            Rich::new().t("🧾 Pre-order ").b(format!("#{}", o.id)).t(": ").t(&o.title).t(qty)
        }
        (Lang::En, OrderKind::Instant) => {
            Rich::new().t("🧾 Order ").b(format!("#{}", o.id)).t(": ").t(&o.title).t(qty)
        }
    };
    r = r.t("\n").t(l.s("К оплате: ", "To pay: ")).b(amount).t("\n");
    r = r.t(match o.kind {
        OrderKind::Instant => l.s(
            &format!("Товар закреплён за вами — оплатите {until}; после оплаты он придёт сюда сразу."),
            &format!("The item is held for you — pay {until}; it arrives here right after payment."),
        ),
        OrderKind::Prepaid => l.s(&format!("Оплатите {until}."), &format!("Pay {until}.")),
    });
    if let Some((b, c)) = balance.filter(|(b, _)| *b > 0) {
        r = r.t("\n").t(l.s("На балансе: ", "Balance: ")).t(l.money(b, c));
    }
    r
}

pub fn paid_from_balance(l: &Loc, o: &Order, left: i64) -> Rich {
    let left = l.money(left, o.currency);
    Rich::from(match (l.lang, o.kind) {
        (Lang::Ru, OrderKind::Prepaid) => {
            format!("✅ Предзаказ #{} оплачен с баланса (остаток {left}). Поставщик уже получил заказ.", o.id)
        }
        (Lang::Ru, _) => format!(
            "✅ Заказ #{} оплачен с баланса (остаток {left}). Товар придёт следующим сообщением.",
            o.id
        ),
        (Lang::En, OrderKind::Prepaid) => {
            format!("✅ Pre-order #{} is paid from your balance ({left} left). The supplier has it.", o.id)
        }
        (Lang::En, _) => format!(
            "✅ Order #{} is paid from your balance ({left} left). The item follows in the next message.",
            o.id
        ),
    })
}

pub fn insufficient_balance(l: &Loc, need: i64, have: i64, c: Currency) -> Rich {
    Rich::from(l.s(
        &format!("Недостаточно средств на балансе: нужно {}, есть {}.", l.money(need, c), l.money(have, c)),
        &format!("Not enough balance: {} needed, {} available.", l.money(need, c), l.money(have, c)),
    ))
}

pub fn cannot_pay(l: &Loc, id: u64, status: OrderStatus) -> Rich {
    Rich::from(l.s(
        &format!("Заказ #{id} уже не ждёт оплаты ({}).", status_name(l.lang, status)),
        &format!("Order #{id} is not awaiting payment ({}).", status_name(l.lang, status)),
    ))
}

pub fn cannot_cancel(l: &Loc, id: u64, status: OrderStatus) -> Rich {
    Rich::from(l.s(
        &format!("Заказ #{id} уже нельзя отменить ({}).", status_name(l.lang, status)),
        &format!("Order #{id} can no longer be cancelled ({}).", status_name(l.lang, status)),
    ))
}

pub fn order_not_found(l: &Loc) -> Rich {
    Rich::from(l.s("Заказ не найден.", "Order not found."))
}

pub fn cancelled(l: &Loc, id: u64) -> Rich {
    Rich::from(l.s(&format!("Заказ #{id} отменён."), &format!("Order #{id} is cancelled.")))
}

pub fn status_name(l: Lang, s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Reserved => {
            l.pick_str("ждёт оплаты (товар забронирован)", "awaiting payment (item held)")
        }
        OrderStatus::AwaitingPayment => l.pick_str("предзаказ ждёт оплаты", "pre-order awaiting payment"),
        OrderStatus::Paid => l.pick_str("оплачен, выдаётся", "paid, being delivered"),
        OrderStatus::Prepaid => l.pick_str("оплачен, ждёт поставщика", "paid, waiting for the supplier"),
        OrderStatus::Ready => l.pick_str("готов, выдаётся", "ready, being delivered"),
        OrderStatus::Delivered => l.pick_str("выдан", "delivered"),
        OrderStatus::Expired => l.pick_str("истёк или отменён", "expired or cancelled"),
        OrderStatus::Refunded => l.pick_str("возвращён на баланс", "refunded to balance"),
    }
}

pub fn orders(l: &Loc, orders: &[Order]) -> Rich {
    if orders.is_empty() {
        return Rich::from(
            l.s("Заказов пока нет. /catalog — каталог", "No orders yet. /catalog — catalogue"),
        );
    }
    let mut r = Rich::new().b(l.s("Ваши заказы", "Your orders"));
    for o in orders {
        r = r.t(format!("\n#{} ", o.id)).t(&o.title).t(format!(
            " — {} — {}",
            l.money(o.amount, o.currency),
            status_name(l.lang, o.status)
        ));
    }
    r
}

/// One order, for its owner.
pub fn order(l: &Loc, o: &Order) -> Rich {
    let mut r = Rich::new().b(format!("#{}", o.id)).t(" ").t(&o.title).t(format!(" × {}\n", o.quantity));
    r = r.t(l.s("Сумма: ", "Amount: ")).t(l.money(o.amount, o.currency)).t("\n");
    r = r.t(l.s("Статус: ", "Status: ")).t(status_name(l.lang, o.status));
    if let Some(d) = o.deadline.filter(|_| o.status == OrderStatus::Prepaid) {
        r = r.t("\n").t(l.s("Срок выдачи: ", "Deadline: ")).t(l.when(d));
    }
    r
}

pub fn balance(l: &Loc, amount: i64, c: Currency) -> Rich {
    Rich::new().t(l.s("💰 Ваш баланс: ", "💰 Your balance: ")).b(l.money(amount, c)).t(l.s(
        ". Им можно оплатить покупку целиком — кнопка «Оплатить с баланса».",
        ". It pays for a whole purchase — the “Pay from balance” button.",
    ))
}

pub fn topup_ask(l: &Loc) -> Rich {
    Rich::from(l.s(
        "На какую сумму пополнить баланс? Выберите или напишите, например: «пополнить баланс на 700».",
        "How much would you like to add? Pick an amount or write e.g. \"top up balance 700\".",
    ))
}

pub fn topup_offer(l: &Loc, amount: i64, balance: i64, c: Currency) -> Rich {
    Rich::from(l.s(
        &format!(
            "Пополнение баланса на {}. Сейчас на балансе {}. Баланс можно тратить на любые покупки.",
            l.money(amount, c),
            l.money(balance, c)
        ),
        &format!(
            "Top-up of {}. Your balance now: {}. The balance pays for any purchase.",
            l.money(amount, c),
            l.money(balance, c)
        ),
    ))
}

pub fn topup_unavailable(l: &Loc) -> Rich {
    Rich::from(
        l.s("Пополнение баланса сейчас недоступно.", "Topping up the balance is not available right now."),
    )
}

/// A refusal of the shop's quantity or reservation rules.
/// One customer holds as much unpaid as allowed (orders waiting for payment, items held).
pub fn reservation_limit(l: &Loc, max_orders: u32, max_items: u32) -> Rich {
    Rich::from(l.s(
        &format!(
            "У вас уже есть неоплаченные заказы: одновременно можно держать не больше {max_orders} заказов и {max_items} шт. товара. \
             Оплатите или отмените один из них — и оформим новый."
        ),
        &format!(
            "You already have unpaid orders: at most {max_orders} orders and {max_items} items can wait for payment at once. \
             Pay for or cancel one of them, then place the new one."
        ),
    ))
}

pub fn quantity_refused(l: &Loc, max: u32) -> Rich {
    Rich::from(l.s(
        &format!("В одном заказе можно взять от 1 до {max} шт."),
        &format!("One order can hold 1 to {max} items."),
    ))
}

// --- Telegram Stars ---

pub fn stars_invoice_description(l: &Loc, o: &Order) -> String {
    l.s(
        &format!(
            "Заказ #{}: {} × {}. Товар придёт в этот чат сразу после оплаты.",
            o.id, o.title, o.quantity
        ),
        &format!(
            "Order #{}: {} × {}. The item arrives in this chat right after payment.",
            o.id, o.title, o.quantity
        ),
    )
}

pub fn stars_only_in_chat(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Оплата звёздами Telegram доступна в чате с ботом.",
        "Paying with Telegram Stars works in the chat with the bot.",
    ))
}

pub fn stars_price_changed(l: &Loc) -> String {
    l.s("Цена изменилась — откройте заказ заново.", "The price has changed — please open the order again.")
}

pub fn stars_sold_out(l: &Loc) -> String {
    l.s("Бронь истекла, и товар закончился.", "The reservation lapsed and the item is sold out.")
}

pub fn stars_paid(l: &Loc, o: &Order) -> Rich {
    Rich::from(match (l.lang, o.kind) {
        (Lang::Ru, OrderKind::Prepaid) => {
            format!("⭐ Предзаказ #{} оплачен. Поставщик уже получил заказ.", o.id)
        }
        (Lang::Ru, _) => format!("⭐ Заказ #{} оплачен. Товар придёт следующим сообщением.", o.id),
        (Lang::En, OrderKind::Prepaid) => format!("⭐ Pre-order #{} is paid. The supplier has it.", o.id),
        (Lang::En, _) => format!("⭐ Order #{} is paid. The item comes in the next message.", o.id),
    })
}

/// Stars of the wrong amount, sent back to the customer's Stars.
pub fn stars_returned(l: &Loc, id: u64) -> Rich {
    Rich::from(l.s(
        &format!("Оплата заказа #{id} не совпала с суммой заказа, поэтому звёзды возвращены вам. Вопросы — /paysupport"),
        &format!("The payment for order #{id} does not match the order, so the Stars were returned to you. Questions — /paysupport"),
    ))
}

/// Stars of the wrong amount that could not be sent back automatically.
pub fn stars_held(l: &Loc, id: u64) -> Rich {
    Rich::from(l.s(
        &format!("Оплата заказа #{id} не совпала с суммой заказа. Мы вернём звёзды вручную — администратор уже знает. Вопросы — /paysupport"),
        &format!("The payment for order #{id} does not match the order. We will return the Stars by hand — the admins know. Questions — /paysupport"),
    ))
}

// --- notices ---

/// The message that carries purchased goods; every item in its own code block.
pub fn delivery(l: &Loc, o: &Order, contents: &[String]) -> Rich {
    let mut r = Rich::new()
        .t(l.s("✅ Заказ ", "✅ Order "))
        .b(format!("#{}", o.id))
        .t(l.s(" оплачен: ", " is paid: "));
    r = r.t(&o.title).t(format!(" × {}\n", o.quantity)).t(l.s("Ваш товар:", "Your item:"));
    for c in contents {
        r = r.t("\n\n").code(c);
    }
    r.t(l.s("\n\nСпасибо за покупку! Вопросы — /paysupport", "\n\nThank you! Questions — /paysupport"))
}

pub fn refunded(l: &Loc, order_id: u64, amount: i64, c: Currency, balance: i64) -> Rich {
    Rich::from(l.s(
        &format!(
            "↩️ Предзаказ #{order_id} не выполнен вовремя: {} возвращено на ваш баланс. Баланс: {}. Им можно оплатить следующие покупки.",
            l.money(amount, c),
            l.money(balance, c)
        ),
        &format!(
            "↩️ Pre-order #{order_id} was not fulfilled in time: {} was refunded to your balance. Balance: {}. You can pay for your next purchases with it.",
            l.money(amount, c),
            l.money(balance, c)
        ),
    ))
}

/// The owner refunded an order to the balance.
pub fn refunded_by_shop(l: &Loc, order_id: u64, amount: i64, c: Currency, balance: i64) -> Rich {
    Rich::from(l.s(
        &format!(
            "↩️ Заказ #{order_id}: {} возвращено на ваш баланс. Баланс: {}.",
            l.money(amount, c),
            l.money(balance, c)
        ),
        &format!(
            "↩️ Order #{order_id}: {} was refunded to your balance. Balance: {}.",
            l.money(amount, c),
            l.money(balance, c)
        ),
    ))
}

pub fn late_payment_credited(l: &Loc, order_id: u64, amount: i64, c: Currency) -> Rich {
    Rich::from(l.s(
        &format!("Оплата заказа #{order_id} пришла, когда товар уже нельзя было выдать. {} зачислено на ваш баланс — им можно оплатить другой товар или предзаказ.", l.money(amount, c)),
        &format!("The payment for order #{order_id} arrived when the item could no longer be issued. {} was credited to your balance — use it for another item or a pre-order.", l.money(amount, c)),
    ))
}

/// A second payment for an order that was already paid.
pub fn second_payment_credited(l: &Loc, order_id: u64, amount: i64, c: Currency) -> Rich {
    Rich::from(l.s(
        &format!("Заказ #{order_id} уже был оплачен, поэтому вторая оплата ({}) зачислена на ваш баланс — ею можно оплатить следующие покупки.", l.money(amount, c)),
        &format!("Order #{order_id} was already paid, so the second payment ({}) was credited to your balance — use it for your next purchases.", l.money(amount, c)),
    ))
}

pub fn mismatch_credited(l: &Loc, order_id: u64, amount: i64, c: Currency) -> Rich {
    Rich::from(l.s(
        &format!("Сумма оплаты не совпала с суммой заказа #{order_id}. {} зачислено на ваш баланс — им можно оплатить заказ или другой товар.", l.money(amount, c)),
        &format!("The payment did not match the amount of order #{order_id}. {} was credited to your balance — use it to pay for the order or another item.", l.money(amount, c)),
    ))
}

pub fn preorder_accepted(l: &Loc, o: &Order) -> Rich {
    let by = o.deadline.map(|d| l.when(d)).unwrap_or_default();
    Rich::from(l.s(
        &format!("🕒 Предзаказ #{} оплачен: {}. Поставщик уже получил заказ и выдаст товар {by}. Если не успеет — деньги вернутся на баланс.", o.id, o.title),
        &format!("🕒 Pre-order #{} is paid: {}. The supplier has it and will deliver {by}. If not, the money returns to your balance.", o.id, o.title),
    ))
}

pub fn deadline_extended(l: &Loc, order_id: u64, deadline: i64) -> Rich {
    Rich::from(l.s(
        &format!("Срок выдачи предзаказа #{order_id} продлён: {}.", l.when(deadline)),
        &format!("The delivery deadline of pre-order #{order_id} is now {}.", l.when(deadline)),
    ))
}

// --- the bot's own answers ---

pub fn lang_set(l: &Loc) -> Rich {
    Rich::from(l.s("Язык: русский.", "Language: English."))
}

pub fn lang_usage(l: &Loc) -> Rich {
    Rich::from(l.s("Язык: /lang ru или /lang en", "Language: /lang ru or /lang en"))
}

pub fn unknown_command(l: &Loc) -> Rich {
    Rich::from(l.s("Не знаю такой команды. /help — что я умею.", "Unknown command. /help — what I can do."))
}

pub fn went_wrong(l: &Loc) -> Rich {
    Rich::from(l.s("Что-то пошло не так, попробуйте ещё раз.", "Something went wrong, please try again."))
}

pub fn button_outdated(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Эта кнопка устарела. Откройте /catalog или напишите, что ищете.",
        "That button is out of date. Open /catalog or write what you are looking for.",
    ))
}

pub fn consultant_down(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Консультант сейчас недоступен. Посмотрите /catalog или напишите позже.",
        "The consultant is unavailable now. See /catalog or write again later.",
    ))
}

pub fn rate_limited(l: &Loc) -> Rich {
    Rich::from(l.s(
        "Вы пишете очень часто — дайте мне минутку. Пока вот что нашлось по вашему запросу:",
        "You're writing faster than I can think — give me a minute. Meanwhile, here is what I found:",
    ))
}

/// At most `max` characters, with an ellipsis when cut.
pub fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}
