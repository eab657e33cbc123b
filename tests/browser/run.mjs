// Browser tests of the shop, the consultant chat and the admin page, in Debian's chromium
// driven by playwright-core. scripts/browser-tests.sh starts `lavka serve` (demo mode) and
// passes LAVKA_BASE, LAVKA_ADMIN_TOKEN and SCREENSHOTS; optionally LAVKA_TG_BASE, a second
// server with a bot token, for the Telegram Mini App test.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const BASE = process.env.LAVKA_BASE;
const TOKEN = process.env.LAVKA_ADMIN_TOKEN;
const SHOTS = process.env.SCREENSHOTS || 'target/screenshots';
const TG_BASE = process.env.LAVKA_TG_BASE;
const TG_TOKEN = process.env.LAVKA_TG_TOKEN;
assert(BASE && TOKEN, 'LAVKA_BASE and LAVKA_ADMIN_TOKEN must be set');
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  // playwright gives every launch a fresh, empty user-data-dir of its own.
});

const results = [];
const weights = [];
async function test(name, fn) {
  const started = Date.now();
  const context = await browser.newContext({ viewport: { width: 420, height: 860 }, locale: 'ru-RU', acceptDownloads: true });
  context.setDefaultTimeout(15000);
  try {
    await fn(context);
    results.push([name, 'ok', Date.now() - started]);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push([name, 'FAIL', Date.now() - started]);
    console.log(`FAIL ${name}\n${e.stack}`);
    for (const [i, p] of context.pages().entries()) {
      await p.screenshot({ path: join(SHOTS, `failure-${name.replace(/\W+/g, '-')}-${i}.png`), fullPage: true }).catch(() => {});
    }
  } finally {
    await context.close();
  }
}

async function shot(page, name, fullPage = false) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

// Bytes transferred for the page's first load (document, scripts, styles, API calls).
async function weight(page, name) {
  const w = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const sum = (xs) => xs.reduce((s, e) => s + (e.transferSize || 0), 0);
    const isApi = (e) => new URL(e.name).pathname.startsWith('/api/');
    return { page: nav.transferSize + sum(res.filter((e) => !isApi(e))), api: sum(res.filter(isApi)), requests: res.length + 1 };
  });
  weights.push([name, w]);
  return w;
}

// The payment page opened by a "Pay" link: choose the demo provider and pay.
async function payInPopup(context, click) {
  const [pay] = await Promise.all([context.waitForEvent('page'), click()]);
  await pay.waitForLoadState();
  await shot(pay, 'pay-page');
  await pay.getByText('Оплатить (демо)').click();
  await pay.getByRole('button', { name: /Оплатить/ }).click();
  await pay.getByText('Спасибо').waitFor();
  await shot(pay, 'pay-dev-done');
  await pay.close();
}

await test('shop: search, open the product, buy with the dev provider, see the goods', async (context) => {
  const page = await context.newPage();
  await page.goto(BASE + '/');
  await page.locator('#products .product').first().waitFor();
  await page.waitForLoadState('networkidle');
  await shot(page, 'shop-catalogue');
  const w = await weight(page, 'shop (/app)');
  assert(w.page > 0 && w.page < 200_000, `page weight ${w.page}`);
  await page.getByRole('searchbox').fill('шаблоны презентаций');
  await page.getByRole('searchbox').press('Enter');
  await page.waitForURL(/q=/);
  const first = page.locator('#products .product').first();
  await first.waitFor();
  assert.match(await first.locator('.title').innerText(), /презентаций/i);
  await shot(page, 'shop-search');
  await first.click();
  await page.locator('h1').waitFor();
  const title = await page.locator('h1').innerText();
  assert.match(title, /презентаций/i);
  assert.match(await page.locator('.big .price').innerText(), /₽/);
  await page.locator('.avail').getByText(/В наличии/).waitFor();
  await shot(page, 'shop-product');
  await page.locator('#buy').click();
  await page.waitForURL(/\/app\/o\/\d+$/);
  await page.locator('[data-status=reserved]').waitFor();
  await shot(page, 'shop-order-awaiting-payment');
  await payInPopup(context, () => page.locator('a.pay').click());
  // The order page polls: the goods appear without a reload.
  const goods = page.locator('#goods code').first();
  await goods.waitFor();
  assert((await goods.innerText()).trim().length > 0);
  assert.match(await page.locator('.st').innerText(), /Оплачен|Выдан/);
  await shot(page, 'shop-order-delivered');
  await page.locator('#tabs [data-tab=orders]').click();
  await page.locator('.orow').first().waitFor();
  assert.match(await page.locator('.orow').first().innerText(), new RegExp(title.slice(0, 20)));
  await shot(page, 'shop-my-orders');
  // English UI, switchable.
  await page.locator('#lang').click();
  await page.locator('#tabs [data-tab=home]').getByText('Catalogue').waitFor();
  await page.getByText('My orders', { exact: true }).first().waitFor();
});

await test('chat: ask in free text, get cards, buy, pay, receive the item', async (context) => {
  const page = await context.newPage();
  await page.goto(BASE + '/app/chat');
  await page.waitForLoadState('networkidle');
  await weight(page, 'chat (/app/chat)');
  const input = page.locator('.chatform input');
  await input.fill('нужны шаблоны презентаций');
  await input.press('Enter');
  const reply = page.locator('.msg.bot').filter({ has: page.locator('[data-callback^="b:"]') }).first();
  await reply.waitFor();
  assert((await reply.locator('.cards .product').count()) > 0, 'product cards in the reply');
  await shot(page, 'chat-cards');
  await reply.locator('[data-callback^="b:"]').first().click();
  const offer = page.locator('.msg.bot').filter({ has: page.locator('.order.mini') }).last();
  await offer.locator('[data-status=reserved]').waitFor();
  await shot(page, 'chat-offer');
  await payInPopup(context, () => offer.locator('.btns .btn.primary').first().click());
  const goods = offer.locator('.goods code').first();
  await goods.waitFor();
  assert((await goods.innerText()).trim().length > 0);
  await goods.scrollIntoViewIfNeeded();
  await shot(page, 'chat-delivered');
});

await test('admin: sign in, create a product, upload stock, see it in the shop', async (context) => {
  const page = await context.newPage();
  await page.goto(BASE + '/admin');
  await weight(page, 'admin (/admin)');
  await page.locator('#token').fill('wrong-token-wrong-token');
  await page.locator('#token').press('Enter');
  await page.locator('.err').getByText(/Неверный|Wrong/).waitFor();
  await page.locator('#token').fill(TOKEN);
  await page.locator('#token').press('Enter');
  await page.locator('tr[data-id]').first().waitFor();
  await page.setViewportSize({ width: 1280, height: 900 });
  await shot(page, 'admin-products', true);
  // A new product (stock only, nothing in stock yet).
  await page.locator('#new-product').click();
  await page.locator('#f-id').fill('browser-test-key');
  await page.locator('#f-title').fill('Тестовый ключ из браузера');
  await page.locator('#f-category').fill('Программы');
  await page.locator('#f-price').fill('123.45');
  await page.locator('#f-description').fill('Создан браузерным тестом.');
  await page.locator('#product-form button[type=submit]').click();
  await page.locator('tr[data-id="browser-test-key"]').waitFor();
  // Stock: paste two lines.
  await page.locator('nav [data-tab=stock]').click();
  await page.locator('#stock-product').selectOption('browser-test-key');
  await page.locator('#stock-lines').fill('BROWSER-KEY-1\nBROWSER-KEY-2\n');
  await page.locator('#stock-upload').click();
  await page.locator('#stock-result').getByText(/browser-test-key: (добавлено|added) 2/).waitFor();
  await shot(page, 'admin-stock', true);
  // The shop shows it with its stock.
  const shop = await context.newPage();
  await shop.goto(BASE + '/app?c=' + encodeURIComponent('Программы'));
  const card = shop.locator('.product[data-id="browser-test-key"]');
  await card.waitFor();
  // Prices read as the shop's language writes them (Russian: decimal comma).
  assert.match(await card.innerText(), /123,45\s₽/);
  assert.match(await card.innerText(), /В наличии: 2/);
  await shop.close();
  // Orders (the two bought above), jobs, sales, backup.
  await page.locator('nav [data-tab=orders]').click();
  await page.locator('tr[data-order]').first().waitFor();
  assert((await page.locator('tr[data-order]').count()) >= 2);
  await shot(page, 'admin-orders', true);
  await page.locator('nav [data-tab=jobs]').click();
  await page.locator('.counts').waitFor();
  await page.locator('nav [data-tab=sales]').click();
  await page.locator('svg.chart').waitFor();
  assert((await page.locator('#sales-table tbody tr').count()) >= 1, 'today has sales');
  await shot(page, 'admin-sales', true);
  await page.locator('nav [data-tab=backup]').click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#backup').click()]);
  assert.match(download.suggestedFilename(), /redb$/);
});

// Inside Telegram: initData signed with the bot token (as Telegram would), the WebApp object
// mocked (MainButton, BackButton, theme). Needs the second server (with a bot token).
if (TG_BASE && TG_TOKEN) {
  await test('telegram: the Mini App authenticates with initData, buys with the MainButton and pays with Stars', async (context) => {
    const user = { id: 5551234567, first_name: 'Анна', language_code: 'ru' };
    const fields = { auth_date: String(Math.floor(Date.now() / 1000)), query_id: 'AAHdF6IQAAAAAN0XohDhrOrc', user: JSON.stringify(user) };
    const check = Object.keys(fields).sort().map((k) => `${k}=${fields[k]}`).join('\n');
    const secret = createHmac('sha256', 'WebAppData').update(TG_TOKEN).digest();
    const hash = createHmac('sha256', secret).update(check).digest('hex');
    const initData = new URLSearchParams({ ...fields, hash }).toString();
    await context.addInitScript(({ initData, user }) => {
      const btn = () => ({ text: '', visible: false, cb: null, setText(t) { this.text = t; }, show() { this.visible = true; }, hide() { this.visible = false; }, onClick(cb) { this.cb = cb; } });
      window.__opened = [];
      window.__invoices = [];
      const themeParams = { bg_color: '#1c2733', secondary_bg_color: '#0e1621', text_color: '#f5f5f5', hint_color: '#7d8b99', link_color: '#62bcf9', button_color: '#5288c1', button_text_color: '#ffffff' };
      window.Telegram = { WebApp: { initData, initDataUnsafe: { user }, themeParams, ready() {}, expand() {}, onEvent() {}, MainButton: btn(), BackButton: btn(), openLink(u) { window.__opened.push(u); }, openInvoice(u) { window.__invoices.push(u); } } };
    }, { initData, user });
    const page = await context.newPage();
    await page.goto(TG_BASE + '/app/p/win11-pro');
    await page.locator('h1').waitFor();
    await page.locator('#balance').waitFor();
    const main = await page.evaluate(() => ({ text: Telegram.WebApp.MainButton.text, visible: Telegram.WebApp.MainButton.visible, back: Telegram.WebApp.BackButton.visible }));
    assert.match(main.text, /Купить/);
    assert(main.visible && main.back, 'MainButton and BackButton shown');
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(14, 22, 33)', "Telegram's theme");
    assert(await page.locator('#buy').count() === 0, 'the MainButton replaces the page button');
    await shot(page, 'telegram-product');
    await page.evaluate(() => Telegram.WebApp.MainButton.cb());
    await page.waitForURL(/\/app\/o\/\d+$/);
    await page.locator('[data-status=reserved]').waitFor();
    // This shop takes Telegram Stars: the MainButton pays with them, through an invoice
    // opened over the Mini App (and there is no dev payment page).
    await page.waitForFunction(() => Telegram.WebApp.MainButton.visible && /⭐/.test(Telegram.WebApp.MainButton.text));
    assert.match(await page.evaluate(() => Telegram.WebApp.MainButton.text), /Оплатить \d+ ⭐/);
    assert(await page.locator('a.pay').count() === 0, 'no payment-page link in a Stars shop');
    await shot(page, 'telegram-order');
    await page.evaluate(() => Telegram.WebApp.MainButton.cb());
    await page.waitForFunction(() => window.__invoices.length > 0);
    const invoices = await page.evaluate(() => window.__invoices);
    assert.match(invoices[0], /^https:\/\/t\.me\/\$invoice-order:\d+$/);
  });
}

await browser.close();
console.log('\npage weights (bytes transferred on first load, fresh browser):');
for (const [name, w] of weights) {
  console.log(`  ${name}: ${(w.page / 1024).toFixed(1)} KB page + ${(w.api / 1024).toFixed(1)} KB API, ${w.requests} requests`);
}
console.log(`\nscreenshots: ${SHOTS}`);
const failed = results.filter((r) => r[1] !== 'ok').length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
