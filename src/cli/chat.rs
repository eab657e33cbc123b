//! `lavka chat`: talk to the consultant in the terminal, as a customer would in Telegram.
//! Buttons are numbered; typing a number presses one. Works on the data dir directly, or
//! through a running server's admin API.

use super::server_call;
use crate::app::{App, AppState, Parts};
use crate::callback::Callback;
use crate::config::Config;
use crate::shop::{Customer, Door};
use crate::texts::Lang;
use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

enum Backend {
    /// The shop opened on the data dir (consultant, payments, queue), no HTTP.
    Local(Box<AppState>),
    Server,
}

/// Runs the conversation until end of input or `/quit`.
pub async fn run(cfg: &Config, user: i64, lang: Option<String>) -> anyhow::Result<()> {
    let lang = Lang::pick(lang.as_deref(), cfg.lang());
    // A terminal chat is not a Telegram client: the bot stays off here.
    let mut local_cfg = cfg.clone();
    local_cfg.telegram_token = None;
    let backend = match App::build(local_cfg, Parts::default()).await {
        Ok(app) => {
            let state = app.state;
            if cfg.semantic_search {
                crate::search::model::attach(&state.search, &cfg.model_dir, cfg.model_fetch).await;
            }
            eprintln!(
                "{}",
                if state.shop.consultant().online() {
                    format!("consultant: Gemini ({})", cfg.ai.gemini_model)
                } else {
                    "consultant: offline (no GEMINI_API_KEY)".to_string()
                }
            );
            Backend::Local(Box::new(state))
        }
        Err(e) if format!("{e:#}").contains("in use") => {
            eprintln!("talking to the running server");
            Backend::Server
        }
        Err(e) => return Err(e),
    };
    let customer = Customer::new(user, lang, Door::Terminal);
    eprintln!("Type a message; a number presses a button; /reset forgets the conversation; /quit ends.");
    let mut buttons: Vec<(String, ButtonOrUrl)> = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        let reply: Value = if line == "/reset" {
            if let Backend::Local(s) = &backend {
                s.shop.forget(user).await?;
            }
            println!("(forgotten)");
            continue;
        } else if let Some(b) =
            line.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| buttons.get(i))
        {
            match &b.1 {
                ButtonOrUrl::Url(u) => {
                    match pay_order_of(u) {
                        // The payment page of an order: in the demo, pay it right here with the
                        // dev provider and show what the customer receives.
                        Some(order) => pay_dev(cfg, &backend, user, order, link_token(u)).await?,
                        None => println!("open: {u}"),
                    }
                    continue;
                }
                ButtonOrUrl::Callback(cb) => match &backend {
                    Backend::Local(s) => json!(s.shop.press(&customer, &Callback::parse(cb)?).await?),
                    Backend::Server => {
                        let body =
                            json!({"user_id": user, "button": cb, "lang": lang_code(lang)}).to_string();
                        server_call(cfg, reqwest::Method::POST, "/admin/api/chat", Some(body)).await?
                    }
                },
            }
        } else {
            match &backend {
                Backend::Local(s) => json!(s.shop.converse(&customer, &line).await?),
                Backend::Server => {
                    let body = json!({"user_id": user, "text": line, "lang": lang_code(lang)}).to_string();
                    server_call(cfg, reqwest::Method::POST, "/admin/api/chat", Some(body)).await?
                }
            }
        };
        buttons = print_reply(&reply).context("the consultant's answer")?;
    }
    Ok(())
}

enum ButtonOrUrl {
    Callback(String),
    Url(String),
}

fn lang_code(l: Lang) -> &'static str {
    match l {
        Lang::Ru => "ru",
        Lang::En => "en",
    }
}

fn print_reply(r: &Value) -> anyhow::Result<Vec<(String, ButtonOrUrl)>> {
    if let Some(err) = r.get("error") {
        println!("error: {err}");
        return Ok(Vec::new());
    }
    println!("\n{}", r["text"].as_str().unwrap_or_default());
    let mut out = Vec::new();
    for row in r["buttons"].as_array().into_iter().flatten() {
        let mut line = String::new();
        for b in row.as_array().into_iter().flatten() {
            let label = b["label"].as_str().unwrap_or_default().to_string();
            let target = if let Some(cb) = b["callback"].as_str() {
                ButtonOrUrl::Callback(cb.to_string())
            } else if let Some(u) = b["url"].as_str().or(b["web_app"].as_str()) {
                ButtonOrUrl::Url(u.to_string())
            } else {
                continue;
            };
            out.push((label.clone(), target));
            line.push_str(&format!("  [{}] {label}", out.len()));
        }
        if !line.is_empty() {
            println!("{line}");
        }
    }
    println!();
    Ok(out)
}

/// The order of a payment-page link (`…/pay/<order>?t=…`).
fn pay_order_of(url: &str) -> Option<u64> {
    let path = url.split('?').next()?;
    let rest = &path[path.find("/pay/")? + 5..];
    rest.parse().ok()
}

/// Pays an order with the dev provider and prints what the customer is sent.
/// The `t=` token of a payment link.
fn link_token(url: &str) -> &str {
    url.split_once("?t=").map(|(_, t)| t.split('&').next().unwrap_or("")).unwrap_or("")
}

async fn pay_dev(cfg: &Config, backend: &Backend, user: i64, order: u64, token: &str) -> anyhow::Result<()> {
    match backend {
        Backend::Local(s) => {
            if !s.payments.dev_enabled() {
                println!("this shop takes real payments: open the payment page in a browser");
                return Ok(());
            }
            let before = s.store.outbox(1).await?.first().map(|m| m.id).unwrap_or(0);
            let r = s.payments.pay_dev(order).await?;
            println!("(paid with the dev provider: order #{} is {})", r.order.id, r.order.status.as_str());
            // Run the delivery job here, as the server's workers would.
            s.queue.drain().await?;
            let mut sent = s.store.outbox(50).await?;
            sent.retain(|m| m.id > before && m.chat_id == user);
            sent.reverse();
            for m in sent {
                println!("\n{}\n", plain(&m.text));
            }
        }
        Backend::Server => {
            let r = super::server_request(
                cfg,
                reqwest::Method::POST,
                &format!("/pay/dev/{order}?t={token}"),
                None,
            )
            .await?;
            println!(
                "(paid with the dev provider: HTTP {}; the server delivers the item to the chat)",
                r.status()
            );
        }
    }
    Ok(())
}

/// Telegram HTML as terminal text: tags dropped, entities decoded.
fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn payment_links_and_html_are_read_for_the_terminal() {
        assert_eq!(super::pay_order_of("http://127.0.0.1:8080/pay/12?t=abc"), Some(12));
        assert_eq!(super::pay_order_of("https://t.me/CryptoBot?start=x"), None);
        assert_eq!(super::plain("<b>#1</b> <code>a&lt;b&amp;c</code>"), "#1 a<b&c");
    }
}
