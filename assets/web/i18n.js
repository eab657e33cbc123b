// Russian and English texts of the shop page. The language: the customer's choice (kept in
// localStorage), else Telegram's language_code, else the browser's.
const T = {
  ru: {
    tab_shop: 'Каталог', tab_chat: 'Консультант', tab_orders: 'Мои заказы',
    search: 'Поиск: ключ Windows, шаблоны презентаций…', search_btn: 'Найти', all: 'Все',
    nothing: 'Ничего не нашлось. Попробуйте другие слова или спросите консультанта.',
    results: 'Результаты поиска', catalogue: 'Каталог',
    in_stock: 'В наличии: {n}', preorder: 'Под заказ: готово за {h} ч', sold_out: 'Нет в наличии',
    discount_until: 'скидка до {d}',
    buy: 'Купить за {p}', preorder_btn: 'Заказать за {p} (предоплата)',
    preorder_note: 'Товара нет в наличии. Поставщик выполнит заказ в течение {h} ч после оплаты; если не успеет — деньги вернутся на баланс.',
    back: '← Назад', order: 'Заказ №{id}', pay: 'Перейти к оплате', pay_stars: 'Оплатить {n} ⭐', pay_balance: 'Оплатить с баланса ({b})',
    cancel: 'Отменить заказ', pay_until: 'Оплатите до {d} — товар забронирован за вами.',
    waiting: 'Ждём оплату… статус обновится сам.', deadline: 'Будет готово до {d}',
    your_item: 'Ваш товар', copy: 'Копировать', copied: 'Скопировано',
    sent_chat: 'Товар также отправлен в чат.',
    st_reserved: 'Ожидает оплаты', st_awaiting_payment: 'Ожидает оплаты', st_paid: 'Оплачен',
    st_prepaid: 'Оплачен, ждём поставщика', st_ready: 'Готов', st_delivered: 'Выдан',
    st_expired: 'Истёк', st_refunded: 'Возврат на баланс',
    balance: 'Баланс: {b}', no_orders: 'Заказов пока нет.', orders: 'Мои заказы',
    chat_hello: 'Здравствуйте! Напишите, что вы ищете, — подберу товар, забронирую и пришлю ссылку на оплату.',
    chat_ph: 'Например: нужны шаблоны презентаций', send: 'Отправить',
    open_tg: 'Откройте магазин в Telegram, чтобы покупать.',
    demo: 'Демо-режим: оплата тестовая, деньги не списываются.',
    error: 'Ошибка: {m}', retry: 'Повторить', details: 'Подробнее',
    out_of_stock: 'Товар закончился. Обновите страницу.',
    err_insufficient_balance: 'На балансе не хватает денег для этого заказа.',
    err_reservation_limit: 'У вас уже есть неоплаченные заказы — больше за раз не оформить. Оплатите или отмените один из них в «Мои заказы».',
    err_too_many_sessions: 'Слишком много новых посетителей с вашего адреса. Попробуйте позже.',
    err_conflict: 'Этот заказ уже нельзя оплатить или отменить. Обновите страницу.',
    err_not_found: 'Не нашлось — возможно, заказ или товар уже недоступен.',
    err_bad_input: 'Проверьте введённые данные.',
    err_unavailable: 'Сервис временно недоступен, попробуйте ещё раз.',
  },
  en: {
    tab_shop: 'Catalogue', tab_chat: 'Consultant', tab_orders: 'My orders',
    search: 'Search: Windows key, presentation templates…', search_btn: 'Search', all: 'All',
    nothing: 'Nothing found. Try other words or ask the consultant.',
    results: 'Search results', catalogue: 'Catalogue',
    in_stock: 'In stock: {n}', preorder: 'Made to order: ready in {h} h', sold_out: 'Sold out',
    discount_until: 'discount until {d}',
    buy: 'Buy for {p}', preorder_btn: 'Pre-order for {p} (prepaid)',
    preorder_note: 'Out of stock. The supplier fulfils the order within {h} h of payment; if not, the money goes back to your balance.',
    back: '← Back', order: 'Order #{id}', pay: 'Go to payment', pay_stars: 'Pay {n} ⭐', pay_balance: 'Pay from balance ({b})',
    cancel: 'Cancel order', pay_until: 'Pay by {d} — the item is reserved for you.',
    waiting: 'Waiting for payment… the status updates by itself.', deadline: 'Ready by {d}',
    your_item: 'Your item', copy: 'Copy', copied: 'Copied',
    sent_chat: 'The item was also sent to your chat.',
    st_reserved: 'Awaiting payment', st_awaiting_payment: 'Awaiting payment', st_paid: 'Paid',
    st_prepaid: 'Paid, waiting for the supplier', st_ready: 'Ready', st_delivered: 'Delivered',
    st_expired: 'Expired', st_refunded: 'Refunded to balance',
    balance: 'Balance: {b}', no_orders: 'No orders yet.', orders: 'My orders',
    chat_hello: 'Hello! Tell me what you are looking for — I will find it, reserve it and send a payment link.',
    chat_ph: 'E.g.: I need presentation templates', send: 'Send',
    open_tg: 'Open the shop in Telegram to buy.',
    demo: 'Demo mode: payments are simulated, no money moves.',
    error: 'Error: {m}', retry: 'Retry', details: 'Details',
    out_of_stock: 'Sold out meanwhile. Reload the page.',
    err_insufficient_balance: 'Your balance does not cover this order.',
    err_reservation_limit: 'You already have unpaid orders — no more can wait at once. Pay for or cancel one in My orders.',
    err_too_many_sessions: 'Too many new visitors from your address. Please try again later.',
    err_conflict: 'This order can no longer be paid or cancelled. Reload the page.',
    err_not_found: 'Not found — the order or product may no longer be available.',
    err_bad_input: 'Please check what you entered.',
    err_unavailable: 'Temporarily unavailable, please try again.',
  },
};

export let lang = 'ru';

export function pickLang(telegramCode) {
  const saved = localStorage.getItem('lavka.lang');
  const code = saved || telegramCode || navigator.language || 'ru';
  lang = /^(ru|uk|be|kk|uz|ky|tg|hy|az)/i.test(code) ? 'ru' : 'en';
  document.documentElement.lang = lang;
  return lang;
}

export function setLang(l) {
  lang = l;
  localStorage.setItem('lavka.lang', l);
  document.documentElement.lang = l;
}

export function t(key, vars = {}) {
  const s = (T[lang] && T[lang][key]) || T.ru[key] || key;
  return s.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : ''));
}

// What a customer reads for a failed request: the shop's own words for each error code
// (the API's message is for developers), else the message itself.
export function errorText(e) {
  const key = 'err_' + (e && e.code);
  return (T[lang] && T[lang][key]) || T.ru[key] || t('error', { m: e && e.message });
}

export function fmtDate(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', {
    day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
}
