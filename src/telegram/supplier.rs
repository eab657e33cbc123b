//! Suppliers answer in their chat (the `telegram_chat_id` of a supplier): `/fulfill <order>
//! <content>`, a reply to the order notification with the content, or a text file (with the
//! order in the caption or as a reply). Only orders of the chat's own suppliers are seen or
//! fulfilled; anyone else's order is "not found", exactly like a missing one.

use super::Telegram;
use super::bot::Ctx;
use crate::domain::{OrderStatus, Supplier};
use crate::error::{Conflict, Error};
use crate::queue::JobError;
use crate::store::orders::OrderFilter;
use crate::texts::supplier::{self as t, Refusal};
use crate::texts::{Lang, Loc};
use teloxide_core::net::Download;
use teloxide_core::prelude::*;
use teloxide_core::types::Message;

/// Largest supplier file accepted (the store keeps at most 16 KiB of content).
pub const MAX_FILE: u32 = 16_384;

/// The first `#123` (or a leading bare number) in a text.
pub fn order_ref(text: &str) -> Option<u64> {
    let t = text.trim_start();
    if let Some(n) = t.split_whitespace().next().and_then(|w| w.trim_start_matches('#').parse().ok()) {
        return Some(n);
    }
    let i = text.find('#')?;
    let digits: String = text[i + 1..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Telegram {
    /// The suppliers whose chat this is.
    pub(crate) async fn suppliers_of_chat(&self, chat: i64) -> Result<Vec<Supplier>, JobError> {
        Ok(self.store().suppliers().await?.into_iter().filter(|s| s.telegram_chat_id == Some(chat)).collect())
    }

    /// The suppliers' own language (their record's, else the shop's default).
    fn supplier_loc(&self, suppliers: &[Supplier]) -> Loc {
        let code = suppliers.iter().find_map(|s| s.lang.as_deref());
        self.shop().loc(code.and_then(Lang::parse).unwrap_or(self.settings().default_lang))
    }

    pub(crate) async fn on_supplier_message(
        &self,
        c: &Ctx,
        suppliers: &[Supplier],
        m: &Message,
        command: Option<(String, String)>,
    ) -> Result<(), JobError> {
        let l = &self.supplier_loc(suppliers);
        let suppliers: Vec<String> = suppliers.iter().map(|s| s.id.clone()).collect();
        let suppliers = suppliers.as_slice();
        if let Some((name, _)) = &command
            && name == "preorders"
        {
            return self.supplier_orders(c, l, suppliers).await;
        }
        // Which order: the command's first word, else the notification replied to.
        let (mut order, mut content) = match &command {
            Some((_, args)) => {
                let (first, rest) = args.split_once(char::is_whitespace).unwrap_or((args.as_str(), ""));
                (first.trim_start_matches('#').parse::<u64>().ok(), rest.trim().to_string())
            }
            None => (None, m.text().unwrap_or("").trim().to_string()),
        };
        if order.is_none()
            && let Some(r) = m.reply_to_message()
        {
            order = r.text().or(r.caption()).and_then(order_ref);
        }
        if order.is_none()
            && command.is_none()
            && let Some(caption) = m.caption()
        {
            order = order_ref(caption);
        }
        if let Some(doc) = m.document() {
            if doc.file.size > MAX_FILE {
                return self.reply(c, t::file_unusable(l)).await;
            }
            match self.download_text(&doc.file.id).await? {
                Some(text) => content = text,
                None => return self.reply(c, t::file_unusable(l)).await,
            }
        }
        let Some(order) = order.filter(|_| !content.trim().is_empty()) else {
            return self.reply(c, t::fulfil_usage(l)).await;
        };
        self.fulfil(c, l, suppliers, order, content).await
    }

    async fn download_text(&self, id: &teloxide_core::types::FileId) -> Result<Option<String>, JobError> {
        let bot = self.sender().bot();
        let file = bot.get_file(id.clone()).send().await.map_err(|e| JobError::Retry(e.to_string()))?;
        let mut buf: Vec<u8> = Vec::new();
        bot.download_file(&file.path, &mut buf).await.map_err(|e| JobError::Retry(e.to_string()))?;
        if buf.len() > MAX_FILE as usize {
            return Ok(None);
        }
        Ok(String::from_utf8(buf).ok())
    }

    async fn fulfil(
        &self,
        c: &Ctx,
        l: &Loc,
        suppliers: &[String],
        order: u64,
        content: String,
    ) -> Result<(), JobError> {
        let o = match self.store().order(order).await {
            Ok(o) => o,
            Err(Error::NotFound(_)) => {
                return self.reply(c, t::fulfil_refused(l, order, Refusal::NotFound)).await;
            }
            Err(e) => return Err(e.into()),
        };
        let p = self.store().product(o.product_id.clone()).await?;
        let Some(sup) = p.supplier.filter(|s| suppliers.contains(s)) else {
            tracing::warn!(
                order.id = order,
                chat.id = c.chat_id,
                "a supplier asked for another supplier's order"
            );
            return self.reply(c, t::fulfil_refused(l, order, Refusal::NotFound)).await;
        };
        if content.trim().len() > crate::store::orders::MAX_CONTENT {
            return self.reply(c, t::fulfil_refused(l, order, Refusal::TooLong)).await;
        }
        let r = self
            .store()
            .write(move |tx| crate::store::orders::fulfill_prepaid_order(tx, order, &content, Some(&sup)))
            .await;
        let why = match r {
            Ok(o) => return self.reply(c, t::fulfilled(l, o.id)).await,
            Err(Error::NotFound(_)) => Refusal::NotFound,
            Err(Error::Conflict(Conflict::AlreadyFulfilled(_))) => Refusal::AlreadyFulfilled,
            Err(Error::Conflict(Conflict::RefundedLate(_))) => Refusal::RefundedLate,
            Err(Error::Conflict(_)) => Refusal::NotPaid,
            Err(Error::BadInput(_)) => Refusal::Empty,
            Err(e) => return Err(e.into()),
        };
        self.reply(c, t::fulfil_refused(l, order, why)).await
    }

    async fn supplier_orders(&self, c: &Ctx, l: &Loc, suppliers: &[String]) -> Result<(), JobError> {
        let f =
            OrderFilter { status: Some(OrderStatus::Prepaid), user: None, before: None, limit: Some(1000) };
        let products = self.store().products().await?;
        let mine: std::collections::HashSet<_> = products
            .into_iter()
            .filter(|p| p.supplier.as_ref().is_some_and(|s| suppliers.contains(s)))
            .map(|p| p.id)
            .collect();
        let orders: Vec<_> = self
            .store()
            .orders(f)
            .await?
            .into_iter()
            .filter(|o| mine.contains(&o.product_id))
            .take(50)
            .collect();
        self.reply(c, t::open_orders(l, &orders)).await
    }
}

#[cfg(test)]
mod tests {
    use super::order_ref;

    #[test]
    fn order_references_are_found() {
        assert_eq!(order_ref("📦 Новый предзаказ #42: Pre × 1"), Some(42));
        assert_eq!(order_ref("#7"), Some(7));
        assert_eq!(order_ref("12 key"), Some(12));
        assert_eq!(order_ref("no order here"), None);
    }
}
