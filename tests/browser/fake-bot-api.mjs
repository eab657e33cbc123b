// A stand-in for the Telegram Bot API in the browser tests (no real Telegram is contacted):
// getUpdates waits briefly and returns nothing, createInvoiceLink returns a link naming the
// invoice's payload, every other method answers ok. Usage: node fake-bot-api.mjs PORT
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const method = (req.url.split('/').pop() || '').toLowerCase();
    let params = {};
    try { params = JSON.parse(body || '{}'); } catch { /* multipart uploads */ }
    const reply = (result) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, result }));
    };
    if (method === 'getupdates') setTimeout(() => reply([]), Math.min(Number(params.timeout || 0), 2) * 1000);
    else if (method === 'createinvoicelink') reply(`https://t.me/$invoice-${params.payload}`);
    else reply(true);
  });
}).listen(port, '127.0.0.1');
