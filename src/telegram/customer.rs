//! The one customer command that is the bot's own: `/lang`, the language the bot speaks
//! to this user (kept with the Telegram user). Everything else a customer does is a shop
//! use case (`crate::shop`), dispatched in [`super::bot`].

use super::Telegram;
use super::bot::Ctx;
use crate::queue::JobError;
use crate::texts::{Lang, customer as t};

impl Telegram {
    pub(crate) async fn set_lang(&self, c: &Ctx, args: &str) -> Result<(), JobError> {
        let Some(l) = Lang::parse(args) else {
            return self.reply(c, t::lang_usage(&c.loc(self))).await;
        };
        let (user, code) = (c.user_id, l.code().to_string());
        self.store().write(move |tx| crate::store::telegram::set_lang(tx, user, Some(&code))).await?;
        self.shop().set_lang(user, l).await?;
        let c2 = Ctx { lang: l, ..c.clone() };
        self.reply(&c2, t::lang_set(&c2.loc(self))).await
    }
}
