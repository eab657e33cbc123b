//! `lavka chat`: talk to the consultant in the terminal, as a customer would in Telegram.
//! Buttons are numbered; typing a number presses one. Works on the data dir directly, or
//! through a running server's admin API.

use super::{open_local, server_call};
use crate::ai::{Consultant, Customer};
use crate::callback::Callback;
use crate::config::Config;
use crate::texts::Lang;
use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

enum Backend {
    Local(Consultant),
    Server,
}

/// Runs the conversation until end of input or `/quit`.
pub async fn run(cfg: &Config, user: i64, lang: Option<String>) -> anyhow::Result<()> {
    let lang = Lang::pick(lang.as_deref(), cfg.lang());
    let backend = match open_local(cfg).await? {
        Some(store) => {
            crate::app::import_demo_if_empty(cfg, &store).await?;
            let search = crate::search::Search::open(&cfg.index_dir(), store.clone(), None).await?;
            if cfg.semantic_search {
                crate::search::model::attach(&search, &cfg.model_dir, cfg.model_fetch).await;
            }
            let c = crate::app::consultant(cfg, &store, &search)?;
            eprintln!(
                "{}",
                if c.online() {
                    format!("consultant: Gemini ({})", cfg.ai.gemini_model)
                } else {
                    "consultant: offline (no GEMINI_API_KEY)".to_string()
                }
            );
            Backend::Local(c)
        }
        None => {
            eprintln!("talking to the running server");
            Backend::Server
        }
    };
    let customer = Customer { user_id: user, chat_id: user, lang, first_name: None };
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
            if let Backend::Local(c) = &backend {
                c.forget(user).await?;
            }
            println!("(forgotten)");
            continue;
        } else if let Some(b) =
            line.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| buttons.get(i))
        {
            match &b.1 {
                ButtonOrUrl::Url(u) => {
                    println!("open: {u}");
                    continue;
                }
                ButtonOrUrl::Callback(cb) => match &backend {
                    Backend::Local(c) => json!(c.press(&customer, &Callback::parse(cb)?).await?),
                    Backend::Server => {
                        let body =
                            json!({"user_id": user, "button": cb, "lang": lang_code(lang)}).to_string();
                        server_call(cfg, reqwest::Method::POST, "/admin/api/chat", Some(body)).await?
                    }
                },
            }
        } else {
            match &backend {
                Backend::Local(c) => json!(c.answer(&customer, &line).await?),
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
