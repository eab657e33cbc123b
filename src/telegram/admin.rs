//! Admin commands, for the configured admin ids only (anyone else gets a refusal that
//! reveals nothing): stats, stock, add stock, an order, refund, re-delivery, failed jobs and
//! their retry, a backup sent as a file, and broadcasts.

use super::Telegram;
use super::bot::Ctx;
use crate::domain::{JobState, ProductId, StockState};
use crate::error::Error;
use crate::messenger::Outgoing;
use crate::queue::JobError;
use crate::texts::{Loc, Rich, admin as ta, customer as t};

fn id_arg(args: &str) -> Option<u64> {
    args.split_whitespace().next().and_then(|w| w.trim_start_matches('#').parse().ok())
}

impl Telegram {
    /// Admin commands; for everyone else every unknown command is just unknown.
    pub(crate) async fn admin_command(&self, c: &Ctx, name: &str, args: &str) -> Result<(), JobError> {
        const ADMIN: [&str; 12] = [
            "admin",
            "stats",
            "stock",
            "addstock",
            "order",
            "refund",
            "refundstars",
            "redeliver",
            "jobs",
            "retry",
            "backup",
            "broadcast",
        ];
        let (name, args) = match name.strip_prefix("retry_") {
            Some(n) => ("retry", n.to_string()),
            None => (name, args.to_string()),
        };
        if !ADMIN.contains(&name) {
            return self.reply(c, t::unknown_command(&c.loc(self))).await;
        }
        let l = &c.loc(self);
        if !self.is_admin(c) {
            tracing::warn!(user.id = c.user_id, command = name, "admin command refused");
            return self.reply(c, ta::only_admins(l)).await;
        }
        let r = match name {
            "stats" => self.stats().await,
            "stock" => self.stock(&args).await,
            "addstock" => self.add_stock(&args).await,
            "order" => self.admin_order(l, &args).await,
            "refund" => self.refund(&args).await,
            "refundstars" => self.refund_stars_cmd(&args).await,
            "redeliver" => self.redeliver(&args).await,
            "jobs" => self.failed_jobs().await,
            "retry" => self.retry(&args).await,
            "backup" => return self.backup(c).await,
            "broadcast" => self.start_broadcast(c, &args).await,
            _ => Ok(ta::help(l)),
        };
        match r {
            Ok(text) => self.reply(c, text).await,
            Err(e) if e.is_rejection() => self.reply(c, Rich::from(format!("⛔ {e}"))).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn stats(&self) -> crate::Result<Rich> {
        let orders = self.store().order_status_counts().await?;
        let q = self.store().queue_counts().await?;
        let (users, reachable) = self.store().user_counts().await?;
        let mut s = format!("users: {users} ({reachable} reachable)\norders:");
        for st in crate::domain::OrderStatus::ALL {
            if let Some(n) = orders.get(&st) {
                s.push_str(&format!("\n  {}: {n}", st.as_str()));
            }
        }
        s.push_str(&format!("\njobs: {} ready ({} due), {} dead", q.ready, q.due, q.dead));
        Ok(Rich::new().b("Stats").t("\n").t(s))
    }

    async fn stock(&self, args: &str) -> crate::Result<Rich> {
        let id = ProductId::parse(args.split_whitespace().next().unwrap_or(""))?;
        let p = self.store().product(id.clone()).await?;
        let items = self.store().stock_items(id.clone()).await?;
        let count = |st: StockState| items.iter().filter(|i| i.state == st).count();
        Ok(Rich::new().b(&p.title).t(format!(
            " ({})\navailable {}, reserved {}, sold {}, removed {}{}",
            p.id,
            count(StockState::Available),
            count(StockState::Reserved),
            count(StockState::Sold),
            count(StockState::Removed),
            if p.active { "" } else { "\n(inactive)" }
        )))
    }

    /// `/addstock <product>` then one item per line (duplicates are skipped).
    async fn add_stock(&self, args: &str) -> crate::Result<Rich> {
        let mut lines = args.lines();
        let first = lines.next().unwrap_or("").trim();
        let (pid, rest_of_first) = first.split_once(char::is_whitespace).unwrap_or((first, ""));
        let id = ProductId::parse(pid)?;
        let items: Vec<String> = std::iter::once(rest_of_first)
            .chain(lines)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if items.is_empty() {
            return Err(Error::bad("usage: /addstock <product> then one item per line"));
        }
        let added = self.store().write(move |tx| crate::store::products::add_stock(tx, &id, &items)).await?;
        Ok(Rich::from(format!("Added {}, duplicates skipped {}.", added.added, added.duplicates)))
    }

    async fn admin_order(&self, l: &Loc, args: &str) -> crate::Result<Rich> {
        let id = id_arg(args).ok_or_else(|| Error::bad("usage: /order <id>"))?;
        let d = self.store().deliverable(id).await?;
        Ok(ta::order(l, &d.order, &d.contents))
    }

    async fn refund(&self, args: &str) -> crate::Result<Rich> {
        let id = id_arg(args).ok_or_else(|| Error::bad("usage: /refund <id> [reason]"))?;
        let reason = args.split_once(char::is_whitespace).map(|(_, r)| r.trim()).filter(|r| !r.is_empty());
        let reason = reason.unwrap_or("refunded by the shop").to_string();
        let r = self.store().write(move |tx| crate::store::orders::process_refund(tx, id, &reason)).await?;
        let c = r.order.currency;
        Ok(Rich::from(if r.already {
            format!("Order #{id} was already refunded.")
        } else {
            format!(
                "Order #{id}: {} refunded to user {}; their balance is {}.",
                crate::domain::Money::new(r.amount, c),
                r.order.user_id,
                crate::domain::Money::new(r.balance, c)
            )
        }))
    }

    /// Refunds a Stars-paid order to the customer's Stars.
    async fn refund_stars_cmd(&self, args: &str) -> crate::Result<Rich> {
        let id = id_arg(args).ok_or_else(|| Error::bad("usage: /refundstars <id>"))?;
        let o = self.refund_stars(id).await?;
        Ok(Rich::from(format!(
            "Order #{id}: {} refunded to user {}'s Telegram Stars.",
            crate::domain::Money::new(o.amount, o.currency),
            o.user_id
        )))
    }

    /// Sends an order's goods again, by hand (after an uncertain delivery).
    async fn redeliver(&self, args: &str) -> crate::Result<Rich> {
        let id = id_arg(args).ok_or_else(|| Error::bad("usage: /redeliver <id>"))?;
        let d = self.store().deliverable(id).await?;
        if d.contents.is_empty() || !matches!(d.order.status, crate::domain::OrderStatus::Delivered) {
            return Err(Error::conflict(format!(
                "order {id} is {}: nothing to send again",
                d.order.status.as_str()
            )));
        }
        let lang = self.lang_of(d.order.user_id).await?;
        let msg = Outgoing::new(d.order.user_id, t::delivery(&self.shop().loc(lang), &d.order, &d.contents));
        Ok(Rich::from(match self.messenger().send(&msg).await {
            Ok(s) => format!("Order #{id} sent again (message {}).", s.message_id),
            Err(e) => format!("Order #{id} could not be sent: {e}"),
        }))
    }

    pub(crate) async fn lang_of(&self, user: i64) -> crate::Result<crate::texts::Lang> {
        let code = self.store().lang_code(user).await?;
        Ok(crate::texts::Lang::pick(code.as_deref(), self.settings().default_lang))
    }

    async fn failed_jobs(&self) -> crate::Result<Rich> {
        let dead = self.store().jobs_in_state(JobState::Dead, 10).await?;
        let failing: Vec<_> = self
            .store()
            .jobs_in_state(JobState::Ready, 1000)
            .await?
            .into_iter()
            .filter(|j| j.attempts > 0)
            .take(10)
            .collect();
        let q = self.store().queue_counts().await?;
        let mut s = Rich::new().b("Jobs").t(format!(": {} ready, {} dead", q.ready, q.dead));
        let line = |j: &crate::domain::JobRecord| {
            format!(
                "\n/retry_{} {} — {} attempts — {}",
                j.id,
                j.kind.name(),
                j.attempts,
                j.last_error.clone().unwrap_or_default().chars().take(120).collect::<String>()
            )
        };
        if !dead.is_empty() {
            s = s.t("\n\n").b("Dead").t(" (tap to retry):");
            for j in &dead {
                s = s.t(line(j));
            }
        }
        if !failing.is_empty() {
            s = s.t("\n\n").b("Failing, will retry").t(":");
            for j in &failing {
                s = s.t(format!(
                    "\n#{} {} — {} attempts — {}",
                    j.id,
                    j.kind.name(),
                    j.attempts,
                    j.last_error.clone().unwrap_or_default().chars().take(120).collect::<String>()
                ));
            }
        }
        Ok(s)
    }

    async fn retry(&self, args: &str) -> crate::Result<Rich> {
        let id = id_arg(args).ok_or_else(|| Error::bad("usage: /retry <job id>"))?;
        let job = self.store().write(move |tx| crate::store::jobs::redrive(tx, id)).await?;
        Ok(Rich::from(format!("Job #{} ({}) is queued again.", job.id, job.kind.name())))
    }

    async fn backup(&self, c: &Ctx) -> Result<(), JobError> {
        let dir = self.settings().backups_dir.clone();
        let snap = self.store().snapshot(dir.clone()).await?;
        let caption = format!("Lavka backup, {} bytes", snap.bytes);
        let sent = self.sender().send_document(c.chat_id, &snap.path, &caption).await;
        if let Err(e) = crate::store::backup::rotate(&dir, self.settings().snapshots_keep) {
            tracing::warn!(error = %e, "rotating snapshots failed");
        }
        match sent {
            Ok(_) => Ok(()),
            Err(crate::messenger::SendError::RetryAfter(d)) => {
                Err(JobError::RetryAfter(d, "Telegram rate limit".into()))
            }
            Err(e) => {
                let text = format!("⛔ The backup was written to {} but not sent: {e}", snap.path.display());
                self.reply(c, Rich::from(text)).await
            }
        }
    }

    async fn start_broadcast(&self, c: &Ctx, args: &str) -> crate::Result<Rich> {
        let key = format!("update:{}", c.update_id);
        let text = args.to_string();
        let b =
            self.store().write(move |tx| crate::store::telegram::create_broadcast(tx, &text, &key)).await?;
        Ok(Rich::from(format!(
            "Broadcast #{} is queued; it goes to every reachable customer within Telegram's limits.",
            b.id
        )))
    }
}
