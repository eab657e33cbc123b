//! Processing of one stored update (the `process_update` job): who is talking (the user is
//! remembered, reachable again, language picked), then the command, button or free text is
//! routed to the customer, supplier or admin handlers. Handlers are safe to run again (the
//! job is retried after a 429): buying reuses a live reservation, payments and fulfilment
//! are idempotent in the store, read-only answers just repeat.

use super::Telegram;
use crate::callback::Callback;
use crate::jobs::UpdateProcessor;
use crate::messenger::{Outgoing, SendError};
use crate::queue::JobError;
use crate::shop::{Customer, Door, Reply};
use crate::store::ledger::UserInfo;
use crate::texts::{Lang, Loc, Rich, customer as t};
use teloxide_core::types::{CallbackQuery, ChatMemberUpdated, Message, Update, UpdateKind};

/// Who is talking, in which chat and language.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub update_id: i64,
    pub user_id: i64,
    pub chat_id: i64,
    pub lang: Lang,
    /// `lang` is the customer's (their conversation's, chosen, or their client's), not
    /// the shop's default.
    pub lang_told: bool,
    pub first_name: String,
    pub private: bool,
    /// The message a catalogue button was pressed on: the answer replaces it.
    pub edit: Option<i64>,
}

impl Ctx {
    /// The customer, for the shop's use cases.
    pub fn customer(&self) -> Customer {
        Customer {
            user_id: self.user_id,
            chat_id: self.chat_id,
            lang: self.lang,
            lang_told: self.lang_told,
            first_name: Some(self.first_name.clone()).filter(|n| !n.trim().is_empty()),
            door: Door::Telegram { private: self.private },
        }
    }

    /// How texts are written for this reader now.
    pub fn loc(&self, tg: &Telegram) -> Loc {
        tg.shop().loc(self.lang)
    }
}

/// A command: `/name@bot args` → ("name", "args").
pub fn parse_command(text: &str) -> Option<(String, String)> {
    let t = text.trim_start();
    let rest = t.strip_prefix('/')?;
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let (word, args) = rest.split_at(end);
    let name = word.split('@').next().unwrap_or("").to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    Some((name, args.trim().to_string()))
}

/// The command menu shown by Telegram.
pub fn command_menu(l: Lang) -> serde_json::Value {
    let list: [(&str, &str, &str); 6] = [
        ("start", "Главное меню", "Main menu"),
        ("catalog", "Каталог", "Catalogue"),
        ("orders", "Мои заказы", "My orders"),
        ("balance", "Баланс", "Balance"),
        ("help", "Помощь", "Help"),
        ("paysupport", "Вопросы по оплате", "Payment support"),
    ];
    serde_json::Value::Array(
        list.iter()
            .map(|(c, ru, en)| {
                serde_json::json!({ "command": c, "description": if l == Lang::Ru { ru } else { en } })
            })
            .collect(),
    )
}

#[async_trait::async_trait]
impl UpdateProcessor for Telegram {
    async fn process(&self, update: &serde_json::Value) -> Result<(), JobError> {
        // From text, not from the `Value`: teloxide's update kinds do not deserialize from a
        // buffered `Value` (every kind comes out as `UpdateKind::Error`).
        let u: Update = match serde_json::from_str(&update.to_string()) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "an update that cannot be read was skipped");
                return Ok(());
            }
        };
        let update_id = u.id.0 as i64;
        // The answer can go out only at the chat's next slot: wait for it before the work.
        if let Some(chat) = u.chat().map(|c| c.id.0) {
            self.sender().ready(chat).map_err(|e| match e {
                SendError::RetryAfter(d) => {
                    JobError::RetryAfter(d, "waiting for the chat's next send slot".into())
                }
                e => JobError::Retry(e.to_string()),
            })?;
        }
        match u.kind {
            UpdateKind::Message(m) => self.on_message(update_id, m).await,
            UpdateKind::CallbackQuery(q) => self.on_callback(update_id, q).await,
            UpdateKind::MyChatMember(m) => self.on_membership(m).await,
            UpdateKind::PreCheckoutQuery(q) => self.pre_checkout(&q).await,
            UpdateKind::Error(v) => {
                tracing::warn!(update.id = update_id, raw = %v.to_string().chars().take(300).collect::<String>(), "an update of an unknown kind was skipped");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn answer_callback(&self, query_id: &str) -> Result<(), JobError> {
        self.sender().answer_callback(query_id, None).await.map_err(|e| match e {
            SendError::RetryAfter(d) => JobError::RetryAfter(d, "Telegram rate limit".into()),
            e => JobError::Retry(e.to_string()),
        })
    }
}

impl Telegram {
    /// Remembers the user and returns the conversation context.
    async fn context(
        &self,
        update_id: i64,
        from: &teloxide_core::types::User,
        chat_id: i64,
        private: bool,
    ) -> Result<Ctx, JobError> {
        let user_id = from.id.0 as i64;
        let mut name = from.first_name.clone();
        if let Some(l) = &from.last_name {
            name.push(' ');
            name.push_str(l);
        }
        let info = UserInfo { name, username: from.username.clone(), lang: from.language_code.clone() };
        let chat = private.then_some(chat_id);
        let (user, tu) = self
            .store()
            .write(move |tx| crate::store::telegram::touch_user(tx, user_id, &info, chat))
            .await?;
        let code = tu.lang.as_deref().or(user.lang.as_deref());
        // The language the customer writes in (or chose last) outranks the client's.
        let talked = self.store().conversation(user_id).await?.lang;
        Ok(Ctx {
            update_id,
            user_id,
            chat_id,
            lang: talked.unwrap_or_else(|| Lang::pick(code, self.settings().default_lang)),
            lang_told: talked.is_some() || code.is_some(),
            first_name: from.first_name.clone(),
            private,
            edit: None,
        })
    }

    pub(crate) fn is_admin(&self, c: &Ctx) -> bool {
        self.settings().admins.contains(&c.user_id)
    }

    /// Sends through the one sender; a blocked bot marks the user unreachable and ends the
    /// run, a rate limit reschedules the job.
    pub(crate) async fn say(&self, c: &Ctx, msg: Outgoing) -> Result<(), JobError> {
        if let Some(id) = c.edit.filter(|_| msg.chat_id == c.chat_id) {
            match self.sender().edit(id, &msg).await {
                Ok(true) => return Ok(()),
                // Too old, deleted or too long to edit: a new message instead.
                Ok(false) => {}
                Err(e) => return self.said(c, Err(e)).await,
            }
        }
        let sent = self.messenger().send(&msg).await.map(|_| serde_json::Value::Null);
        self.said(c, sent).await
    }

    /// What a Bot API call's outcome means for the update job.
    pub(crate) async fn said(
        &self,
        c: &Ctx,
        sent: Result<serde_json::Value, SendError>,
    ) -> Result<(), JobError> {
        match sent {
            Ok(_) | Err(SendError::AlreadyDone) => Ok(()),
            Err(SendError::Unreachable) => {
                let u = c.user_id;
                if c.private {
                    self.store()
                        .write(move |tx| crate::store::telegram::set_unreachable(tx, u, true))
                        .await?;
                }
                Err(JobError::Unreachable(u))
            }
            Err(SendError::RetryAfter(d)) => Err(JobError::RetryAfter(d, "Telegram rate limit".into())),
            Err(SendError::Transient(m)) => Err(JobError::Retry(m)),
            // It may have arrived: running the handler again could say it twice.
            Err(SendError::Uncertain(m)) => {
                tracing::warn!(error = %m, "a reply may not have arrived");
                Ok(())
            }
            Err(SendError::Rejected(m)) => Err(JobError::Fatal(m)),
        }
    }

    /// A reply without buttons.
    pub(crate) async fn reply(&self, c: &Ctx, text: Rich) -> Result<(), JobError> {
        self.say(c, Outgoing::new(c.chat_id, text)).await
    }

    /// Renders a use case's reply: the Stars invoice it asks for, then its text and buttons.
    pub(crate) async fn render(&self, c: &Ctx, r: Reply) -> Result<(), JobError> {
        if let Some(i) = &r.invoice {
            self.send_invoice(c, i).await?;
        }
        if r.text.is_empty() && r.buttons.is_empty() {
            return Ok(());
        }
        self.say(c, Outgoing::with(c.chat_id, r.text, r.buttons)).await
    }

    /// Shows "typing…" in the chat while the model works on an answer (Telegram shows it for
    /// five seconds, so it is sent again every four and a half).
    async fn typing_while<T>(&self, chat: i64, work: impl std::future::Future<Output = T>) -> T {
        if !self.shop().consultant().online() {
            return work.await;
        }
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(4500));
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = tick.tick() => {
                    let body = serde_json::json!({"chat_id": chat, "action": "typing"});
                    if let Err(e) = self.call("sendChatAction", body).await {
                        tracing::debug!(error = %e, "sendChatAction failed");
                    }
                }
            }
        }
    }

    /// Runs a use case and renders its answer; a failure the customer can do nothing about
    /// is retried (storage) or answered with "something went wrong".
    async fn answer(&self, c: &Ctx, r: crate::Result<Reply>) -> Result<(), JobError> {
        match r {
            Ok(r) => self.render(c, r).await,
            Err(e) if e.is_retryable() => Err(JobError::Retry(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "a customer action failed");
                self.reply(c, t::went_wrong(&c.loc(self))).await
            }
        }
    }

    async fn on_membership(&self, m: ChatMemberUpdated) -> Result<(), JobError> {
        if !m.chat.is_private() {
            return Ok(());
        }
        let user = m.from.id.0 as i64;
        let gone = m.new_chat_member.kind.is_banned() || m.new_chat_member.kind.is_left();
        self.store().write(move |tx| crate::store::telegram::set_unreachable(tx, user, gone)).await?;
        Ok(())
    }

    async fn on_message(&self, update_id: i64, m: Message) -> Result<(), JobError> {
        let Some(from) = m.from.as_ref().filter(|f| !f.is_bot) else { return Ok(()) };
        let c = self.context(update_id, from, m.chat.id.0, m.chat.is_private()).await?;
        if let Some(sp) = m.successful_payment() {
            return self.successful_payment(&c, sp).await;
        }
        let suppliers = self.suppliers_of_chat(c.chat_id).await?;
        let text = m.text().or(m.caption()).unwrap_or("").to_string();
        let command = parse_command(&text);
        if !suppliers.is_empty() {
            let supplier_cmd = command
                .as_ref()
                .is_some_and(|(n, _)| matches!(n.as_str(), "fulfill" | "fulfil" | "preorders"));
            let is_reply_or_file = m.reply_to_message().is_some() || m.document().is_some();
            if supplier_cmd || (command.is_none() && is_reply_or_file) {
                return self.on_supplier_message(&c, &suppliers, &m, command).await;
            }
        }
        let shop = self.shop();
        let who = c.customer();
        let Some((name, args)) = command else {
            if text.trim().is_empty() {
                // A sticker, photo or voice message: say what the bot understands.
                return self.render(&c, shop.unreadable(&who)).await;
            }
            let r = self.typing_while(c.chat_id, shop.converse(&who, &text)).await;
            return self.answer(&c, r).await;
        };
        match name.as_str() {
            "start" => self.render(&c, shop.start(&who)).await,
            "catalog" | "catalogue" | "shop" => self.answer(&c, shop.browse(&who, 0, 0).await).await,
            "orders" => self.answer(&c, shop.my_orders(&who).await).await,
            "balance" => self.answer(&c, shop.balance(&who).await).await,
            "help" => self.render(&c, shop.help(&who)).await,
            "paysupport" | "support" => self.render(&c, shop.paysupport(&who)).await,
            "lang" | "language" => self.set_lang(&c, &args).await,
            "fulfill" | "fulfil" | "preorders" => self.reply(&c, t::unknown_command(&c.loc(self))).await,
            _ => self.admin_command(&c, &name, &args).await,
        }
    }

    /// A pressed button (its spinner is taken off by the urgent lane's `answer_callback`
    /// job, queued with this update).
    async fn on_callback(&self, update_id: i64, q: CallbackQuery) -> Result<(), JobError> {
        let chat = q.message.as_ref().map(|m| m.chat().id.0).unwrap_or(q.from.id.0 as i64);
        let private = q.message.as_ref().map(|m| m.chat().is_private()).unwrap_or(true);
        let mut c = self.context(update_id, &q.from, chat, private).await?;
        let Some(data) = q.data.as_deref() else { return Ok(()) };
        let cb = match Callback::parse(data) {
            Ok(cb) => cb,
            Err(_) => {
                tracing::info!(data = %data.chars().take(64).collect::<String>(), "unknown button data ignored");
                return self.reply(&c, t::button_outdated(&c.loc(self))).await;
            }
        };
        if cb.unwrap_in_place().1 {
            c.edit = q.message.as_ref().map(|m| m.id().0 as i64);
        }
        let r = self.shop().press(&c.customer(), &cb).await;
        self.answer(&c, r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_parsed_with_bot_names_and_multiline_arguments() {
        assert_eq!(parse_command("/start"), Some(("start".into(), "".into())));
        assert_eq!(parse_command("/Start@shop_bot promo"), Some(("start".into(), "promo".into())));
        assert_eq!(parse_command("/addstock key\nA\nB"), Some(("addstock".into(), "key\nA\nB".into())));
        assert_eq!(parse_command("hello"), None);
        assert_eq!(parse_command("/"), None);
    }
}
