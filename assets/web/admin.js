// The Lavka admin page: a client of the admin API (/admin/api, bearer token). The token is
// kept in sessionStorage only (gone when the tab closes) and is never the bot token.
import { $, h } from '/assets/dom.js';
const view = $('#view');
let lang = localStorage.getItem('lavka.lang') || (/^ru/i.test(navigator.language) ? 'ru' : 'en');
const L = (ru, en) => (lang === 'ru' ? ru : en);
let token = sessionStorage.getItem('lavka.admin.token') || '';
let tab = sessionStorage.getItem('lavka.admin.tab') || 'products';
let products = [];

function toast(text, bad = false) {
  const el = $('#toast');
  el.textContent = text;
  el.style.background = bad ? 'var(--bad)' : '';
  el.hidden = false;
  clearTimeout(toast.t);
  toast.t = setTimeout(() => { el.hidden = true; }, 3500);
}

async function api(path, { method = 'GET', body, text, raw } = {}) {
  const headers = { Authorization: 'Bearer ' + token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (text !== undefined) headers['Content-Type'] = 'text/plain; charset=utf-8';
  const r = await fetch('/admin/api' + path, {
    method, headers, body: body !== undefined ? JSON.stringify(body) : text,
  });
  if (r.status === 401) { logout(L('Неверный токен', 'Wrong token')); throw new Error('unauthorized'); }
  if (raw && r.ok) return r;
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error(data?.error?.message || r.statusText);
  return data;
}

const fmtTime = (ms) => (ms ? new Date(ms).toLocaleString(lang === 'ru' ? 'ru-RU' : 'en-GB', { dateStyle: 'short', timeStyle: 'short' }) : '');
// Crypto assets count in their own units (as src/domain/money.rs does).
const CRYPTO = { USDT: 6, USDC: 6, TON: 9, BTC: 8, ETH: 9, LTC: 8, BNB: 9, TRX: 6, SOL: 9, DOGE: 8, NOT: 9, GRAM: 9, DOGS: 9, MY: 9, SEND: 9, JET: 9 };
const digits = (cur) => (cur in CRYPTO ? CRYPTO[cur] : ['XTR', 'JPY', 'KRW'].includes(cur) ? 0 : 2);
const major = (minor, cur) => {
  const s = (minor / 10 ** digits(cur)).toFixed(digits(cur));
  return cur in CRYPTO ? s.replace(/(\.\d\d\d*?)0+$/, '$1') : s;
};
const money = (minor, cur) => `${major(minor, cur)} ${cur === 'RUB' ? '₽' : cur}`;

// ---- login ----

function logout(msg) {
  token = '';
  sessionStorage.removeItem('lavka.admin.token');
  loginPage(msg);
}

function loginPage(msg) {
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'current-password', placeholder: 'LAVKA_ADMIN_TOKEN' });
  const err = h('p', { class: 'err' }, msg || '');
  view.replaceChildren(h('form', { class: 'card login', onsubmit: async (e) => {
    e.preventDefault();
    token = input.value.trim();
    try {
      await api('/stats');
      sessionStorage.setItem('lavka.admin.token', token);
      start();
    } catch (e2) { if (e2.message !== 'unauthorized') err.textContent = e2.message; }
  } },
  h('h2', {}, L('Вход для владельца', 'Owner sign-in')),
  h('label', { for: 'token' }, L('Токен администратора (data/admin-token или LAVKA_ADMIN_TOKEN)', 'Admin token (data/admin-token or LAVKA_ADMIN_TOKEN)')),
  input, h('p', {}, h('button', { class: 'btn', type: 'submit' }, L('Войти', 'Sign in'))), err));
  input.focus();
}

// ---- navigation ----

const TABS = {
  products: [() => L('Товары', 'Products'), productsTab],
  stock: [() => L('Склад', 'Stock'), stockTab],
  orders: [() => L('Заказы', 'Orders'), ordersTab],
  payments: [() => L('Платежи', 'Payments'), paymentsTab],
  jobs: [() => L('Задачи', 'Jobs'), jobsTab],
  sales: [() => L('Продажи', 'Sales'), salesTab],
  backup: [() => L('Резервная копия', 'Backup'), backupTab],
};

function nav() {
  const n = $('#nav');
  n.hidden = false;
  n.replaceChildren(...Object.entries(TABS).map(([k, [label]]) => h('button', {
    class: k === tab ? 'on' : '', 'data-tab': k, onclick: () => { tab = k; sessionStorage.setItem('lavka.admin.tab', k); start(); },
  }, label())));
  $('#logout').hidden = false;
  $('#logout').textContent = L('Выйти', 'Sign out');
  $('#lang').textContent = lang === 'ru' ? 'EN' : 'RU';
}

// Warnings about how the shop runs (e.g. the dev payment provider in a public shop), above
// every tab.
const WARNINGS = {
  dev_payments_public: () => L(
    'Включена демо-оплата (payments.dev_payments = true), а магазин доступен публично: любой, у кого есть ссылка на оплату заказа, может отметить его оплаченным без денег. Подключите Crypto Pay или Telegram Stars или выключите payments.dev_payments.',
    'The dev payment provider is on (payments.dev_payments = true) in a public shop: anyone with an order\'s payment link can mark it paid without money. Configure Crypto Pay or Telegram Stars, or set payments.dev_payments = false.'),
};

async function banners() {
  const box = $('#warnings');
  try {
    const st = await api('/stats');
    const items = (st.warnings || []).map((w) => h('p', { class: 'warn', 'data-warning': w.code }, '⚠ ', WARNINGS[w.code] ? WARNINGS[w.code]() : w.message));
    if (st.unmatched_payments) items.push(h('p', { class: 'warn', 'data-warning': 'unmatched' }, '⚠ ', L(`Платежей без заказа: ${st.unmatched_payments} — см. «Платежи».`, `Unmatched payments: ${st.unmatched_payments} — see Payments.`)));
    box.replaceChildren(...items);
    box.hidden = !items.length;
  } catch (e) { box.hidden = true; }
}

async function start() {
  if (!token) { loginPage(); return; }
  nav();
  view.replaceChildren(h('p', { class: 'muted' }, '…'));
  banners();
  try { await TABS[tab][1](); } catch (e) { if (e.message !== 'unauthorized') view.replaceChildren(h('p', { class: 'err' }, e.message)); }
}

async function loadProducts() {
  products = (await api('/products')).products;
  return products;
}

// ---- products ----

async function productsTab() {
  await loadProducts();
  const formBox = h('div');
  const rows = products.map(({ product: p, availability: a }) => h('tr', { 'data-id': p.id },
    h('td', {}, h('code', {}, p.id)),
    h('td', {}, p.title, h('div', { class: 'muted' }, p.category)),
    h('td', { class: 'num' }, money(a.final_price, a.currency), a.discount_percent ? h('div', { class: 'muted' }, `−${a.discount_percent}%`) : null),
    h('td', { class: 'num' }, String(a.available), p.fulfillment_hours ? h('div', { class: 'muted' }, L(`под заказ ${p.fulfillment_hours} ч`, `pre-order ${p.fulfillment_hours} h`)) : null),
    h('td', {}, h('span', { class: 'pill ' + (p.active ? 'ok' : 'muted') }, p.active ? L('в продаже', 'active') : L('скрыт', 'inactive'))),
    h('td', {},
      h('button', { class: 'btn small sec', onclick: () => productForm(formBox, p) }, L('Изменить', 'Edit')), ' ',
      h('button', { class: 'btn small sec', onclick: async () => {
        try { await api(`/products/${p.id}/${p.active ? 'deactivate' : 'activate'}`, { method: 'POST' }); toast(L('Готово', 'Done')); productsTab(); } catch (e) { toast(e.message, true); }
      } }, p.active ? L('Снять', 'Deactivate') : L('Вернуть', 'Activate')))));
  view.replaceChildren(
    h('div', { class: 'row' }, h('h2', {}, L('Товары', 'Products') + ` (${products.length})`),
      h('button', { class: 'btn fit', id: 'new-product', onclick: () => productForm(formBox, null) }, L('+ Новый товар', '+ New product'))),
    formBox,
    h('div', { class: 'card scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, L('Название', 'Title')), h('th', { class: 'num' }, L('Цена', 'Price')),
        h('th', { class: 'num' }, L('В наличии', 'In stock')), h('th', {}, L('Статус', 'Status')), h('th', {}, ''))),
      h('tbody', {}, rows))));
}

function productForm(box, p) {
  const cur = p?.currency || 'RUB';
  const f = (name, label, value, attrs = {}) => h('div', {}, h('label', { for: 'f-' + name }, label), h(attrs.textarea ? 'textarea' : 'input', { id: 'f-' + name, name, value: value ?? '', ...attrs, textarea: null }));
  const form = h('form', { class: 'card', id: 'product-form', onsubmit: async (e) => {
    e.preventDefault();
    const v = Object.fromEntries(new FormData(form));
    const body = {
      title: v.title, description: v.description, category: v.category,
      tags: v.tags.split(',').map((x) => x.trim()).filter(Boolean),
      price: v.price.replace(',', '.'), discount_percent: Number(v.discount_percent || 0),
      active: form.querySelector('[name=active]').checked,
    };
    if (v.fulfillment_hours) body.fulfillment_hours = Number(v.fulfillment_hours);
    if (v.supplier) body.supplier = v.supplier;
    if (v.discount_until) body.discount_until = new Date(v.discount_until).toISOString().replace(/\.\d+Z$/, 'Z');
    try {
      const r = await api(`/products/${encodeURIComponent(v.id)}`, { method: 'PUT', body });
      toast(r.created ? L('Товар создан', 'Product created') : L('Сохранено', 'Saved'));
      productsTab();
    } catch (e2) { err.textContent = e2.message; }
  } },
  h('h2', {}, p ? L('Товар ', 'Product ') + p.id : L('Новый товар', 'New product')),
  h('div', { class: 'grid2' },
    f('id', 'id (a-z, 0-9, -)', p?.id, p ? { readonly: true } : { required: true, pattern: '[A-Za-z0-9._\\-]{1,64}' }),
    f('title', L('Название', 'Title'), p?.title, { required: true }),
    f('category', L('Категория', 'Category'), p?.category),
    f('tags', L('Теги (через запятую)', 'Tags (comma-separated)'), p?.tags?.join(', ')),
    f('price', L(`Цена, ${cur}`, `Price, ${cur}`), p ? major(p.price, cur) : '', { required: true, inputmode: 'decimal' }),
    f('discount_percent', L('Скидка, %', 'Discount, %'), p?.discount_percent ?? 0, { type: 'number', min: 0, max: 99 }),
    f('discount_until', L('Скидка до', 'Discount until'), p?.discount_until ? new Date(p.discount_until).toISOString().slice(0, 16) : '', { type: 'datetime-local' }),
    f('fulfillment_hours', L('Под заказ: часов на выполнение (пусто — только со склада)', 'Pre-order: hours to fulfil (empty: stock only)'), p?.fulfillment_hours ?? '', { type: 'number', min: 1 }),
    f('supplier', L('Поставщик (id)', 'Supplier (id)'), p?.supplier ?? '')),
  f('description', L('Описание', 'Description'), p?.description, { textarea: true }),
  h('label', {}, h('input', { type: 'checkbox', name: 'active', checked: p ? p.active : true, style: 'width:auto' }), ' ', L('В продаже', 'Active')),
  h('p', { class: 'row' }, h('button', { class: 'btn fit', type: 'submit' }, L('Сохранить', 'Save')),
    h('button', { class: 'btn sec fit', type: 'button', onclick: () => box.replaceChildren() }, L('Отмена', 'Cancel'))));
  const err = h('p', { class: 'err' });
  form.append(err);
  box.replaceChildren(form);
  form.scrollIntoView({ behavior: 'smooth' });
}

// ---- stock ----

function parseCsv(text) {
  // product_id,content — content may be quoted ("" escapes a quote).
  const out = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const i = line.indexOf(',');
    if (i < 0) continue;
    const pid = line.slice(0, i).trim().replace(/^"|"$/g, '');
    let content = line.slice(i + 1).trim();
    if (/^".*"$/.test(content)) content = content.slice(1, -1).replace(/""/g, '"');
    if (pid === 'product_id') continue;
    out.push([pid, content]);
  }
  return out;
}

async function stockTab() {
  await loadProducts();
  const sel = h('select', { id: 'stock-product' }, products.map(({ product: p, availability: a }) => h('option', { value: p.id }, `${p.title} (${p.id}) — ${a.available}`)));
  const area = h('textarea', { id: 'stock-lines', placeholder: L('Один товар на строку: ключ, логин:пароль, ссылка…\nили CSV с заголовком product_id,content', 'One item per line: key, login:password, link…\nor CSV with the header product_id,content') });
  const file = h('input', { type: 'file', accept: '.csv,.txt,text/plain,text/csv', onchange: async () => { area.value = await file.files[0].text(); } });
  const result = h('p', { id: 'stock-result' });
  const upload = async () => {
    const text = area.value;
    const batches = new Map();
    if (/^\s*product_id\s*,\s*content/i.test(text)) {
      for (const [pid, c] of parseCsv(text)) { if (!batches.has(pid)) batches.set(pid, []); batches.get(pid).push(c); }
    } else {
      batches.set(sel.value, text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean));
    }
    const lines = [];
    for (const [pid, items] of batches) {
      if (!items.length) continue;
      try {
        const r = await api(`/products/${encodeURIComponent(pid)}/stock`, { method: 'POST', body: { items } });
        lines.push(L(`${pid}: добавлено ${r.added}, повторов ${r.duplicates}`, `${pid}: added ${r.added}, duplicates ${r.duplicates}`));
      } catch (e) { lines.push(`${pid}: ${e.message}`); }
    }
    result.textContent = lines.join('; ') || L('Нечего загружать', 'Nothing to upload');
    if (lines.length) { area.value = ''; toast(result.textContent); }
    await loadProducts();
    const keep = sel.value;
    sel.replaceChildren(...products.map(({ product: p, availability: a }) => h('option', { value: p.id }, `${p.title} (${p.id}) — ${a.available}`)));
    sel.value = keep;
  };
  view.replaceChildren(h('div', { class: 'card' },
    h('h2', {}, L('Загрузка склада', 'Stock upload')),
    h('label', { for: 'stock-product' }, L('Товар', 'Product')), sel,
    h('label', { for: 'stock-lines' }, L('Строки или CSV (повторы не добавляются)', 'Lines or CSV (duplicates are skipped)')), area,
    h('label', {}, L('…или файл', '…or a file')), file,
    h('p', {}, h('button', { class: 'btn', id: 'stock-upload', onclick: upload }, L('Загрузить', 'Upload'))), result));
}

// ---- orders ----

const STATUSES = ['reserved', 'awaiting_payment', 'paid', 'prepaid', 'ready', 'delivered', 'expired', 'refunded'];

async function ordersTab() {
  const status = h('select', { id: 'order-status' }, h('option', { value: '' }, L('все', 'all')), STATUSES.map((s) => h('option', { value: s }, s)));
  const user = h('input', { id: 'order-user', placeholder: 'user id', inputmode: 'numeric' });
  const table = h('div', { class: 'card scroll' });
  const load = async () => {
    const q = new URLSearchParams({ limit: '200' });
    if (status.value) q.set('status', status.value);
    if (user.value.trim()) q.set('user', user.value.trim());
    const { orders } = await api('/orders?' + q);
    const act = async (o, what) => {
      try {
        if (what === 'refund') {
          if (!confirm(L(`Вернуть ${money(o.amount, o.currency)} на баланс покупателя?`, `Refund ${money(o.amount, o.currency)} to the customer's balance?`))) return;
          await api(`/orders/${o.id}/refund`, { method: 'POST', body: { reason: L('возврат магазином', 'refunded by the shop') } });
        } else if (what === 'fulfill') {
          const content = prompt(L('Содержимое для покупателя (ключ, доступ, ссылка):', 'Content for the customer (key, access, link):'));
          if (!content) return;
          await api(`/orders/${o.id}/fulfill`, { method: 'POST', body: { content } });
        } else if (what === 'confirm') {
          if (!confirm(L('Отметить заказ оплаченным (деньги получены)?', 'Mark the order paid (money received)?'))) return;
          await api(`/orders/${o.id}/confirm-payment`, { method: 'POST' });
        }
        toast(L('Готово', 'Done'));
        load();
      } catch (e) { toast(e.message, true); }
    };
    table.replaceChildren(orders.length ? h('table', {},
      h('thead', {}, h('tr', {}, ['#', L('Создан', 'Created'), L('Покупатель', 'Customer'), L('Товар', 'Product'), L('Сумма', 'Amount'), L('Статус', 'Status'), ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, orders.map((o) => h('tr', { 'data-order': o.id },
        h('td', {}, String(o.id)), h('td', {}, fmtTime(o.created_at)), h('td', {}, h('code', {}, String(o.user_id))),
        h('td', {}, o.title, o.kind === 'prepaid' ? h('div', { class: 'muted' }, L('предзаказ', 'pre-order')) : null),
        h('td', { class: 'num' }, money(o.amount, o.currency)),
        h('td', {}, h('span', { class: 'pill' }, o.status), o.note ? h('div', { class: 'muted' }, o.note) : null),
        h('td', {},
          o.status === 'reserved' || o.status === 'awaiting_payment' ? h('button', { class: 'btn small sec', onclick: () => act(o, 'confirm') }, L('Оплачен', 'Mark paid')) : null,
          o.status === 'prepaid' ? h('button', { class: 'btn small', onclick: () => act(o, 'fulfill') }, L('Выполнить', 'Fulfil')) : null, ' ',
          ['paid', 'prepaid', 'ready', 'delivered'].includes(o.status) ? h('button', { class: 'btn small danger', onclick: () => act(o, 'refund') }, L('Возврат', 'Refund')) : null)))))
      : h('p', { class: 'muted' }, L('Заказов нет', 'No orders')));
  };
  view.replaceChildren(h('div', { class: 'card row' },
    h('div', {}, h('label', { for: 'order-status' }, L('Статус', 'Status')), status),
    h('div', {}, h('label', { for: 'order-user' }, L('Покупатель', 'Customer')), user),
    h('button', { class: 'btn fit', onclick: load }, L('Показать', 'Show'))), table);
  status.onchange = load;
  await load();
}

// ---- jobs ----

async function jobsTab() {
  const state = h('select', { id: 'job-state' }, ['dead', 'ready', 'done'].map((s) => h('option', { value: s }, s)));
  const box = h('div');
  const load = async () => {
    const { jobs, counts } = await api('/jobs?state=' + state.value);
    box.replaceChildren(
      h('div', { class: 'counts' }, h('span', {}, `ready: ${counts.ready}`), h('span', { class: counts.dead ? 'bad' : '' }, `dead: ${counts.dead}`), h('span', { class: 'muted' }, `done: ${counts.done}`)),
      h('div', { class: 'card scroll' }, jobs.length ? h('table', {},
        h('thead', {}, h('tr', {}, ['id', L('Вид', 'Kind'), L('Попыток', 'Attempts'), L('Когда', 'Run at'), L('Ошибка', 'Last error'), ''].map((x) => h('th', {}, x)))),
        h('tbody', {}, jobs.map((j) => h('tr', {},
          h('td', {}, String(j.id)), h('td', {}, h('code', {}, JSON.stringify(j.kind))),
          h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`), h('td', {}, fmtTime(j.run_at)),
          h('td', { class: 'err' }, j.last_error || ''),
          h('td', {}, j.state === 'dead' ? h('button', { class: 'btn small', onclick: async () => {
            try { await api(`/jobs/${j.id}/retry`, { method: 'POST' }); toast(L('Задача снова в очереди', 'Job re-queued')); load(); } catch (e) { toast(e.message, true); }
          } }, L('Повторить', 'Retry')) : null)))))
        : h('p', { class: 'muted' }, L('Пусто', 'None'))));
  };
  state.onchange = load;
  view.replaceChildren(h('div', { class: 'card row' }, h('div', {}, h('label', { for: 'job-state' }, L('Состояние', 'State')), state)), box);
  await load();
}

// ---- payments ----

async function paymentsTab() {
  const { payments, topups, unmatched } = await api('/payments?limit=200');
  const outcome = { applied: L('зачтён', 'applied'), credited_to_balance: L('на баланс', 'to balance'), mismatch: L('не совпал', 'mismatch') };
  const table = (head, rows) => (rows.length ? h('table', {}, h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), h('tbody', {}, rows))
    : h('p', { class: 'muted' }, L('Пусто', 'None')));
  view.replaceChildren(
    h('div', { class: 'card scroll', id: 'unmatched' },
      h('h2', {}, L(`Платежи без заказа (${unmatched.length})`, `Unmatched payments (${unmatched.length})`)),
      h('p', { class: 'muted' }, L('Деньги получены, но их не к чему применить: неизвестный заказ, чужой payload, сумма или валюта не сходятся. Решите вручную: зачислите покупателю или верните.',
        'Money received that could not be applied: unknown order, a payload of no order, an amount or currency that does not match. Resolve by hand: credit the customer or refund.')),
      table([L('Когда', 'When'), L('Платёж', 'Payment'), L('Сумма', 'Amount'), L('Причина', 'Reason'), L('Заказ', 'Order'), 'payload'],
        unmatched.map((u) => h('tr', {},
          h('td', {}, fmtTime(u.at)), h('td', {}, h('code', {}, `${u.provider}:${u.external_id}`)),
          h('td', { class: 'num' }, `${u.amount} ${u.currency}`),
          h('td', {}, h('span', { class: 'pill bad' }, u.reason), h('div', { class: 'muted' }, u.detail)),
          h('td', {}, u.order_id ? `#${u.order_id}` : ''), h('td', {}, h('code', {}, u.payload || '')))))),
    h('div', { class: 'card scroll' },
      h('h2', {}, L('Платежи', 'Payments')),
      table([L('Когда', 'When'), L('Платёж', 'Payment'), L('Заказ', 'Order'), L('Покупатель', 'Customer'), L('Сумма', 'Amount'), L('Итог', 'Outcome')],
        payments.map((p) => h('tr', {},
          h('td', {}, fmtTime(p.at)), h('td', {}, h('code', {}, `${p.provider}:${p.external_id}`)),
          h('td', {}, `#${p.order_id}`), h('td', {}, String(p.user_id)), h('td', { class: 'num' }, money(p.amount, p.currency)),
          h('td', {}, h('span', { class: 'pill ' + (p.outcome === 'mismatch' ? 'bad' : p.outcome === 'applied' ? 'ok' : 'warn') }, outcome[p.outcome] || p.outcome)))))),
    h('div', { class: 'card scroll' },
      h('h2', {}, L('Пополнения баланса', 'Balance top-ups')),
      table([L('Когда', 'When'), L('Платёж', 'Payment'), L('Покупатель', 'Customer'), L('Сумма', 'Amount')],
        topups.map((t) => h('tr', {},
          h('td', {}, fmtTime(t.at)), h('td', {}, h('code', {}, `${t.provider}:${t.external_id}`)),
          h('td', {}, String(t.user_id)), h('td', { class: 'num' }, money(t.amount, t.currency)))))));
}

// ---- sales ----

function chart(days, cur) {
  const W = 720; const H = 220; const pad = 28;
  const vals = days.map((d) => d.revenue[cur] || 0);
  const max = Math.max(1, ...vals);
  const bw = (W - pad) / days.length;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const el = (tag, attrs, text) => {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    svg.append(e);
    return e;
  };
  el('text', { x: 0, y: 10 }, money(max, cur));
  days.forEach((d, i) => {
    const hgt = ((H - pad - 14) * vals[i]) / max;
    const r = el('rect', { class: 'bar', x: pad + i * bw + 1, y: H - pad - hgt, width: Math.max(1, bw - 2), height: hgt, rx: 2 });
    const tt = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    tt.textContent = `${d.date}: ${d.orders} · ${d.revenue_text || 0}`;
    r.append(tt);
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) el('text', { x: pad + i * bw, y: H - 10 }, d.date.slice(5));
  });
  return svg;
}

async function salesTab() {
  const daysSel = h('select', { id: 'sales-days' }, [7, 30, 90].map((d) => h('option', { value: d, selected: d === 30 }, L(`${d} дней`, `${d} days`))));
  const box = h('div');
  const load = async () => {
    const r = await api('/sales?days=' + daysSel.value);
    const total = r.days.reduce((s, d) => s + (d.revenue[r.currency] || 0), 0);
    const count = r.days.reduce((s, d) => s + d.orders, 0);
    box.replaceChildren(
      h('div', { class: 'card' }, h('h2', {}, L(`Выручка: ${money(total, r.currency)} · заказов: ${count}`, `Revenue: ${money(total, r.currency)} · orders: ${count}`)), chart(r.days, r.currency)),
      h('div', { class: 'card scroll' }, h('table', { id: 'sales-table' },
        h('thead', {}, h('tr', {}, [L('День', 'Day'), L('Заказов', 'Orders'), L('Возвратов', 'Refunded'), L('Выручка', 'Revenue')].map((x, i) => h('th', { class: i ? 'num' : '' }, x)))),
        h('tbody', {}, r.days.slice().reverse().filter((d) => d.orders || d.refunded).map((d) => h('tr', {},
          h('td', {}, d.date), h('td', { class: 'num' }, String(d.orders)), h('td', { class: 'num' }, String(d.refunded)), h('td', { class: 'num' }, d.revenue_text || '0')))))));
  };
  daysSel.onchange = load;
  view.replaceChildren(h('div', { class: 'card row' }, h('div', {}, h('label', { for: 'sales-days' }, L('Период', 'Period')), daysSel)), box);
  await load();
}

// ---- backup ----

async function backupTab() {
  const status = h('p', { class: 'muted' });
  view.replaceChildren(h('div', { class: 'card' },
    h('h2', {}, L('Резервная копия', 'Backup')),
    h('p', {}, L('Согласованный снимок базы (lavka.redb). Восстановление: остановить сервер и положить файл в каталог данных.', 'A consistent snapshot of the database (lavka.redb). To restore: stop the server and put the file into the data directory.')),
    h('button', { class: 'btn', id: 'backup', onclick: async () => {
      status.textContent = '…';
      try {
        const r = await api('/backup', { raw: true });
        const name = (r.headers.get('content-disposition') || '').match(/filename="([^"]+)"/)?.[1] || 'lavka.redb';
        const blob = await r.blob();
        const a = h('a', { href: URL.createObjectURL(blob), download: name });
        document.body.append(a); a.click(); a.remove();
        status.textContent = `${name} · ${(blob.size / 1024).toFixed(0)} KB`;
      } catch (e) { status.textContent = e.message; }
    } }, L('Скачать резервную копию', 'Download backup')), status));
}

$('#logout').addEventListener('click', () => logout());
$('#lang').addEventListener('click', () => { lang = lang === 'ru' ? 'en' : 'ru'; localStorage.setItem('lavka.lang', lang); start(); });
start();
