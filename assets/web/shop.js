// The Lavka shop page: catalogue and search, product page, buy → payment page → order status
// (polled until the goods arrive), my orders and balance, and the consultant chat.
// Inside Telegram it authenticates with initData and uses the theme, MainButton and
// BackButton; in a plain browser (demo mode) the server keeps a session cookie.
import { t, lang, pickLang, setLang, fmtDate, errorText } from '/assets/i18n.js';
import { $, h } from '/assets/dom.js';

const view = $('#view');
let tg = null;
let catalogue = null;
let me = null;
let pollTimer = null;
let mainAction = null;

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (body) headers['Content-Type'] = 'application/json';
  if (tg) headers.Authorization = 'tma ' + tg.initData;
  const r = await fetch('/api' + path, {
    method, headers, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin',
  });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data?.error?.code, data?.error?.message || r.statusText);
  return data;
}

// ---- Telegram ----

function inTelegram() {
  return /tgWebAppData=/.test(location.hash) || !!window.TelegramWebviewProxy ||
    !!sessionStorage.getItem('__telegram__initParams');
}

function loadScript(src) {
  return new Promise((resolve) => {
    const s = document.createElement('script');
    s.src = src; s.onload = resolve; s.onerror = resolve;
    document.head.append(s);
    setTimeout(resolve, 5000);
  });
}

async function initTelegram() {
  if (!window.Telegram?.WebApp && inTelegram()) await loadScript('https://telegram.org/js/telegram-web-app.js');
  const w = window.Telegram?.WebApp;
  if (!w || !w.initData) return null;
  w.ready();
  w.expand?.();
  document.body.classList.add('tg');
  applyTheme(w);
  w.onEvent?.('themeChanged', () => applyTheme(w));
  w.BackButton.onClick(() => history.back());
  w.MainButton.onClick(() => mainAction && mainAction());
  return w;
}

// Telegram's colours as --tg-theme-* variables (the SDK sets them too; shop.css reads them).
function applyTheme(w) {
  for (const [k, v] of Object.entries(w.themeParams || {})) {
    document.documentElement.style.setProperty('--tg-theme-' + k.replace(/_/g, '-'), v);
  }
}

function setMainButton(text, action) {
  mainAction = action;
  if (!tg) return;
  if (text) { tg.MainButton.setText(text); tg.MainButton.show(); } else tg.MainButton.hide();
}

function openLink(url) {
  if (tg) tg.openLink(url); else window.open(url, '_blank', 'noopener');
}

// ---- routing ----

function go(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.target || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin === location.origin && url.pathname.startsWith('/app')) {
    e.preventDefault();
    go(url.pathname + url.search);
  }
});
window.addEventListener('popstate', () => render());

function render() {
  clearTimeout(pollTimer);
  setMainButton(null);
  const path = location.pathname.replace(/\/+$/, '');
  let m;
  let tab = 'home';
  if ((m = path.match(/^\/app\/p\/([\w.-]+)$/))) productPage(decodeURIComponent(m[1]));
  else if ((m = path.match(/^\/app\/o\/(\d+)$/))) { tab = 'orders'; orderPage(Number(m[1])); }
  else if (path === '/app/orders') { tab = 'orders'; ordersPage(); }
  else if (path === '/app/chat') { tab = 'chat'; chatPage(); }
  else homePage();
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('on', a.dataset.tab === tab);
  if (tg) { if (tab === 'home' && !m) tg.BackButton.hide(); else tg.BackButton.show(); }
  window.scrollTo(0, 0);
}

function show(...nodes) { view.replaceChildren(...nodes); }

function failure(e) {
  return h('div', { class: 'card error' }, errorText(e), ' ',
    h('button', { class: 'link', onclick: render }, t('retry')));
}

function staticTexts() {
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('#lang').textContent = lang === 'ru' ? 'EN' : 'RU';
  $('#demo').textContent = t('demo');
  if (me) {
    $('#balance').textContent = t('balance', { b: me.balance_text });
    $('#balance').hidden = false;
  }
}

// ---- catalogue ----

async function loadCatalogue(force = false) {
  if (!catalogue || force) catalogue = await api('/products');
  return catalogue;
}

function stateLine(p) {
  if (p.state === 'in_stock') return h('span', { class: 'ok' }, t('in_stock', { n: p.available }));
  if (p.state === 'preorder') return h('span', { class: 'warn' }, t('preorder', { h: p.fulfillment_hours }));
  return h('span', { class: 'muted' }, t('sold_out'));
}

function price(p) {
  return h('span', { class: 'price' },
    p.discount_percent > 0 ? [h('s', { class: 'muted' }, p.price_text), ' '] : null,
    h('b', {}, p.final_price_text),
    p.discount_percent > 0 ? [' ', h('span', { class: 'badge' }, `−${p.discount_percent}%`)] : null);
}

function productCard(p) {
  return h('a', { class: 'card product', href: `/app/p/${encodeURIComponent(p.id)}`, 'data-id': p.id },
    h('div', { class: 'cat muted' }, p.category),
    h('div', { class: 'title' }, p.title),
    price(p),
    h('div', { class: 'small' }, stateLine(p)));
}

async function homePage() {
  const params = new URLSearchParams(location.search);
  const q = params.get('q') || '';
  const cat = params.get('c') || '';
  const input = h('input', { type: 'search', name: 'q', value: q, placeholder: t('search'), autocomplete: 'off', 'aria-label': t('search') });
  const form = h('form', { class: 'search', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const v = input.value.trim();
    go(v ? `/app?q=${encodeURIComponent(v)}` : '/app');
  } }, input, h('button', { type: 'submit' }, t('search_btn')));
  const list = h('div', { class: 'grid', id: 'products' }, h('p', { class: 'muted' }, '…'));
  const chips = h('div', { class: 'chips' });
  show(form, chips, h('h2', {}, q ? t('results') : cat || t('catalogue')), list);
  try {
    const c = await loadCatalogue();
    chips.append(h('a', { class: 'chip' + (!cat && !q ? ' on' : ''), href: '/app' }, t('all')),
      ...c.categories.map((name) => h('a', { class: 'chip' + (cat === name ? ' on' : ''), href: `/app?c=${encodeURIComponent(name)}` }, name)));
    let products;
    if (q) {
      const r = await api(`/search?q=${encodeURIComponent(q)}&limit=12`);
      products = r.products;
    } else {
      products = c.products.filter((p) => !cat || p.category === cat);
    }
    list.replaceChildren(...(products.length ? products.map(productCard) : [h('p', { class: 'muted' }, t('nothing'))]));
  } catch (e) { list.replaceChildren(failure(e)); }
}

async function productPage(id) {
  show(h('p', { class: 'muted' }, '…'));
  let p;
  try { p = await api(`/products/${encodeURIComponent(id)}`); } catch (e) { show(failure(e)); return; }
  const status = h('div', { class: 'status' });
  const canBuy = p.state !== 'sold_out';
  const label = p.state === 'in_stock' ? t('buy', { p: p.final_price_text }) : t('preorder_btn', { p: p.final_price_text });
  const buy = async () => {
    btn.disabled = true;
    try {
      const r = await api('/orders', { method: 'POST', body: { product_id: p.id, preorder: p.state === 'preorder' } });
      go(`/app/o/${r.order.id}`);
    } catch (e) {
      btn.disabled = false;
      status.replaceChildren(h('p', { class: 'error' }, e.code === 'out_of_stock' ? t('out_of_stock') : errorText(e)));
    }
  };
  const btn = h('button', { class: 'btn primary', id: 'buy', onclick: buy, disabled: !canBuy || (!me && !tg) }, label);
  show(h('article', { class: 'card page' },
    h('a', { class: 'link back', href: '/app', onclick: (e) => { if (history.length > 1) { e.preventDefault(); history.back(); } } }, t('back')),
    h('div', { class: 'cat muted' }, p.category),
    h('h1', {}, p.title),
    h('div', { class: 'big' }, price(p)),
    p.discount_percent > 0 && p.discount_until ? h('div', { class: 'small muted' }, t('discount_until', { d: fmtDate(p.discount_until) })) : null,
    h('p', { class: 'avail' }, stateLine(p)),
    h('p', { class: 'desc' }, p.description),
    p.state === 'preorder' ? h('p', { class: 'note' }, t('preorder_note', { h: p.fulfillment_hours })) : null,
    p.tags.length ? h('div', { class: 'tags' }, p.tags.map((x) => h('span', { class: 'tag' }, x))) : null,
    canBuy ? (tg ? null : btn) : null,
    !me && !tg ? h('p', { class: 'muted' }, t('open_tg')) : null,
    status));
  if (canBuy && tg) setMainButton(label, buy);
}

// ---- orders ----

const FINAL = ['delivered', 'expired', 'refunded'];

function statusBadge(o) {
  return h('span', { class: `st st-${o.status}`, 'data-status': o.status }, t('st_' + o.status));
}

function contentsBox(contents) {
  return h('div', { class: 'goods', id: 'goods' },
    h('div', { class: 'small muted' }, t('your_item')),
    contents.map((c) => h('div', { class: 'item' },
      h('code', {}, c),
      h('button', { class: 'link', onclick: async (e) => {
        try { await navigator.clipboard.writeText(c); e.target.textContent = t('copied'); } catch { /* not allowed */ }
      } }, t('copy')))));
}

// Pays an order with Telegram Stars inside Telegram: the invoice opens over the Mini App;
// the order page's polling shows the result.
async function payStars(o) {
  try {
    const inv = await api(`/orders/${o.id}/stars-invoice`, { method: 'POST' });
    tg.openInvoice(inv.url, (status) => { if (status === 'paid') render(); });
  } catch (e) { alert(errorText(e)); }
}

// The body of an order (the order page; `compact` in chat offers, whose own buttons pay and
// cancel); re-rendered by polling.
function orderBody(o, compact = false) {
  const parts = [
    h('div', { class: 'row' }, h('b', {}, t('order', { id: o.id })), statusBadge(o)),
    h('div', { class: 'title' }, o.title),
    h('div', { class: 'big' }, h('b', {}, o.amount_text)),
  ];
  if (!compact && (o.status === 'reserved' || o.status === 'awaiting_payment')) {
    if (o.expires_at) parts.push(h('p', { class: 'small muted' }, t('pay_until', { d: fmtDate(o.expires_at) })));
    if (tg && o.stars) {
      parts.push(h('button', { class: 'btn primary stars', onclick: () => payStars(o) }, t('pay_stars', { n: o.stars })));
    }
    if (o.pay_url) {
      parts.push(h('a', { class: 'btn primary pay', href: o.pay_url, target: '_blank', rel: 'noopener', onclick: (e) => {
        if (tg) { e.preventDefault(); tg.openLink(o.pay_url); }
      } }, t('pay')));
    }
    if (me && me.balance >= o.amount) {
      parts.push(h('button', { class: 'btn', onclick: async () => {
        try { await api(`/orders/${o.id}/pay-balance`, { method: 'POST' }); await refreshMe(); render(); } catch (e) { alert(errorText(e)); }
      } }, t('pay_balance', { b: me.balance_text })));
    }
    parts.push(h('button', { class: 'btn ghost', onclick: async () => {
      try { await api(`/orders/${o.id}/cancel`, { method: 'POST' }); render(); } catch (e) { alert(errorText(e)); }
    } }, t('cancel')));
    parts.push(h('p', { class: 'small muted' }, t('waiting')));
  }
  if (o.status === 'prepaid' && o.deadline) parts.push(h('p', { class: 'small' }, t('deadline', { d: fmtDate(o.deadline) })));
  if (o.contents && o.contents.length) {
    parts.push(contentsBox(o.contents));
    if (tg) parts.push(h('p', { class: 'small muted' }, t('sent_chat')));
  }
  if (o.note && o.status === 'refunded') parts.push(h('p', { class: 'small muted' }, o.note));
  return parts;
}

// Polls an order until it is final or shows its goods; `box` is re-filled each time.
function watchOrder(id, box, onUpdate, compact = false) {
  let stopped = false;
  const tick = async () => {
    if (stopped || !box.isConnected) return;
    try {
      const o = await api(`/orders/${id}`);
      box.replaceChildren(...orderBody(o, compact));
      onUpdate && onUpdate(o);
      const done = FINAL.includes(o.status) || (o.contents && o.contents.length);
      if (!done) pollTimer = setTimeout(tick, 1500);
      else refreshMe();
    } catch (e) {
      box.replaceChildren(failure(e));
    }
  };
  tick();
  return () => { stopped = true; };
}

function orderPage(id) {
  const box = h('article', { class: 'card page order', id: 'order' }, h('p', { class: 'muted' }, '…'));
  show(h('a', { class: 'link back', href: '/app/orders' }, t('back')), box);
  watchOrder(id, box, (o) => {
    const pending = o.status === 'reserved' || o.status === 'awaiting_payment';
    if (tg && o.stars && pending) setMainButton(t('pay_stars', { n: o.stars }), () => payStars(o));
    else if (tg && o.pay_url && pending) setMainButton(t('pay'), () => tg.openLink(o.pay_url));
    else setMainButton(null);
  });
}

async function ordersPage() {
  const list = h('div', { class: 'list' }, h('p', { class: 'muted' }, '…'));
  const bal = h('p', { class: 'balance-line' });
  show(h('h2', {}, t('orders')), bal, list);
  try {
    await refreshMe();
    if (me) bal.textContent = t('balance', { b: me.balance_text });
    const r = await api('/orders');
    list.replaceChildren(...(r.orders.length ? r.orders.map((o) =>
      h('a', { class: 'card orow', href: `/app/o/${o.id}` },
        h('div', { class: 'row' }, h('b', {}, t('order', { id: o.id })), statusBadge(o)),
        h('div', {}, o.title),
        h('div', { class: 'row small muted' }, h('span', {}, fmtDate(o.created_at)), h('span', {}, o.amount_text))))
      : [h('p', { class: 'muted' }, t('no_orders'))]));
  } catch (e) {
    list.replaceChildren(e.status === 401 ? h('p', { class: 'muted' }, t('open_tg')) : failure(e));
  }
}

// ---- consultant chat ----

const chatLog = JSON.parse(sessionStorage.getItem('lavka.chat') || '[]');

function saveChat() { sessionStorage.setItem('lavka.chat', JSON.stringify(chatLog.slice(-40))); }

function productIdsOf(reply) {
  const ids = [];
  for (const row of reply.buttons || []) {
    for (const b of row) {
      const m = b.callback && b.callback.match(/^(?:p|b|po):([\w.-]+)$/);
      if (m && !ids.includes(m[1])) ids.push(m[1]);
    }
  }
  return ids;
}

function bubble(msg, log) {
  if (msg.role === 'me') return h('div', { class: 'msg me' }, msg.text);
  const r = msg.reply;
  const cards = catalogue ? productIdsOf(r).map((id) => catalogue.products.find((p) => p.id === id)).filter(Boolean) : [];
  const orderBox = r.offer ? h('div', { class: 'card order mini', 'data-order': r.offer.order_id }) : null;
  const el = h('div', { class: 'msg bot' },
    h('div', { class: 'text' }, r.text),
    cards.length ? h('div', { class: 'cards' }, cards.map(productCard)) : null,
    (r.buttons || []).map((row) => h('div', { class: 'btns' }, row.map((b) => h('button', {
      class: 'btn small' + (b.url ? ' primary' : ''),
      'data-callback': b.callback || null,
      onclick: () => (b.url ? openLink(b.url) : sendChat({ button: b.callback }, b.label, log)),
    }, b.label)))),
    orderBox);
  if (orderBox) setTimeout(() => watchOrder(r.offer.order_id, orderBox, null, true), 0);
  return el;
}

async function sendChat(body, shown, log) {
  chatLog.push({ role: 'me', text: shown });
  log.append(bubble(chatLog.at(-1), log));
  const wait = h('div', { class: 'msg bot typing' }, '…');
  log.append(wait);
  wait.scrollIntoView({ block: 'end' });
  try {
    const reply = await api('/chat', { method: 'POST', body: { ...body, lang } });
    chatLog.push({ role: 'bot', reply });
    saveChat();
    wait.replaceWith(bubble(chatLog.at(-1), log));
  } catch (e) {
    wait.replaceWith(h('div', { class: 'msg bot error' }, e.status === 401 ? t('open_tg') : errorText(e)));
  }
  log.lastElementChild?.scrollIntoView({ block: 'end' });
}

async function chatPage() {
  await loadCatalogue().catch(() => null);
  const log = h('div', { class: 'chatlog', id: 'chatlog' }, h('div', { class: 'msg bot' }, t('chat_hello')));
  for (const m of chatLog) log.append(bubble(m, log));
  const input = h('input', { type: 'text', name: 'text', placeholder: t('chat_ph'), autocomplete: 'off', 'aria-label': t('chat_ph') });
  const form = h('form', { class: 'chatform', onsubmit: (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    sendChat({ text }, text, log);
  } }, input, h('button', { type: 'submit' }, t('send')));
  show(h('section', { class: 'chat' }, log, form));
  log.lastElementChild?.scrollIntoView({ block: 'end' });
  if (!tg) input.focus();
}

// ---- start ----

async function refreshMe() {
  try { me = await api('/me'); } catch { me = null; }
  staticTexts();
  return me;
}

async function start() {
  tg = await initTelegram();
  pickLang(tg?.initDataUnsafe?.user?.language_code);
  if (tg && location.hash) history.replaceState(null, '', location.pathname + location.search);
  $('#lang').addEventListener('click', () => { setLang(lang === 'ru' ? 'en' : 'ru'); staticTexts(); render(); });
  await refreshMe();
  if (me) {
    $('#brand').textContent = me.shop_name;
    $('#demo').hidden = !me.demo_payments;
  }
  staticTexts();
  render();
}

start();
