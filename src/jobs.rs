//! Handlers of every job kind. Each is idempotent: it may run again after a crash.

use crate::domain::{JobKind, JobRecord, Notice, OrderStatus, UserId};
use crate::messenger::{Messenger, Outgoing, SendError};
use crate::queue::{Handler, JobError};
use crate::store::Store;
use crate::texts::{self, Lang};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Handles a stored Telegram update (implemented by the Telegram channel).
#[async_trait::async_trait]
pub trait UpdateProcessor: Send + Sync {
    async fn process(&self, update: &serde_json::Value) -> Result<(), JobError>;
}

/// Settings the handlers need.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub admin_chat_ids: Vec<i64>,
    pub default_lang: Lang,
    pub backups_dir: PathBuf,
    pub snapshots_keep: usize,
    pub done_retention: Duration,
    pub outbox_keep: u64,
}

/// The job handler of the running shop.
pub struct ShopJobs {
    pub store: Store,
    pub messenger: Arc<dyn Messenger>,
    pub updates: Option<Arc<dyn UpdateProcessor>>,
    pub settings: JobSettings,
}

const SWEEP_LIMIT: usize = 500;

fn send_error(e: SendError) -> JobError {
    match e {
        SendError::RetryAfter(d) => JobError::RetryAfter(d, "rate limited".into()),
        SendError::Transient(m) | SendError::Uncertain(m) => JobError::Retry(m),
        SendError::Rejected(m) => JobError::Fatal(m),
        SendError::Unreachable => JobError::Fatal("recipient unreachable".into()),
    }
}

impl ShopJobs {
    async fn lang_of(&self, user: UserId) -> Result<Lang, JobError> {
        let u = self.store.user(user).await?;
        Ok(Lang::pick(u.as_ref().and_then(|u| u.lang.as_deref()), self.settings.default_lang))
    }

    /// Sends to a customer; a blocked bot marks them unreachable (and the error is returned).
    async fn send_to_user_with(
        &self,
        user: UserId,
        text: String,
        buttons: Vec<Vec<crate::ai::Button>>,
    ) -> Result<crate::messenger::Sent, JobError> {
        let mut msg = Outgoing::plain(user, text);
        msg.buttons = buttons;
        match self.messenger.send(&msg).await {
            Ok(s) => Ok(s),
            Err(SendError::Unreachable) => {
                self.store.write(move |tx| crate::store::ledger::set_unreachable(tx, user, true)).await?;
                Err(JobError::Fatal(format!("user {user} blocked the bot")))
            }
            Err(e) => Err(send_error(e)),
        }
    }

    async fn alert_admins(&self, text: &str) -> Result<(), JobError> {
        tracing::warn!(alert = %text, "admin alert");
        if self.settings.admin_chat_ids.is_empty() {
            let t = text.to_string();
            self.store.write(move |tx| crate::store::ledger::record_outbox(tx, 0, &t)).await?;
            return Ok(());
        }
        // One admin who blocked the bot must not keep the alert from the others; a retry
        // is asked for only when nobody got it.
        let (mut delivered, mut retry) = (0, None);
        for &chat in &self.settings.admin_chat_ids {
            match self.messenger.send(&Outgoing::plain(chat, text)).await {
                Ok(_) => delivered += 1,
                Err(e @ (SendError::Unreachable | SendError::Rejected(_))) => {
                    tracing::warn!(chat.id = chat, error = %e, "admin chat cannot receive alerts");
                }
                Err(e) => retry = Some(send_error(e)),
            }
        }
        match retry {
            Some(e) if delivered == 0 => Err(e),
            _ => Ok(()),
        }
    }

    /// Sends the goods of a paid order, at most once. A mark is committed before the send
    /// and cleared when the send surely failed; finding a mark from an earlier run means that
    /// run's outcome is unknown (a crash between send and commit, or a timeout after the
    /// request went out), so the order is recorded as delivered without a message id and
    /// the admins are asked to check — never a second message. The remaining window: a crash
    /// after Telegram accepted the message and before the commit leaves a delivered order
    /// flagged "uncertain" (admins alerted); a crash after the mark and before the request
    /// leaves an undelivered order flagged the same way (admins alerted, `/redeliver`).
    async fn deliver(&self, order_id: u64) -> Result<(), JobError> {
        use crate::store::telegram::{DeliveryStart, abort_delivery, begin_delivery, finish_delivery};
        let d = self.store.deliverable(order_id).await?;
        match d.order.status {
            OrderStatus::Paid | OrderStatus::Ready => {}
            OrderStatus::Delivered => return Ok(()),
            other => {
                tracing::info!(order.id = order_id, status = other.as_str(), "nothing to deliver");
                return Ok(());
            }
        }
        match self.store.write(move |tx| begin_delivery(tx, order_id)).await? {
            DeliveryStart::Go => {}
            DeliveryStart::Done => return Ok(()),
            DeliveryStart::Uncertain(at) => {
                tracing::error!(
                    order.id = order_id,
                    "a delivery of unknown outcome: not sent again, admins alerted"
                );
                self.store
                    .write(move |tx| crate::store::telegram::settle_uncertain_delivery(tx, order_id, at))
                    .await?;
                return Ok(());
            }
        }
        let lang = self.lang_of(d.order.user_id).await?;
        let msg = Outgoing {
            chat_id: d.order.user_id,
            text: texts::bot::delivery(lang, &d.order, &d.contents),
            html: true,
            buttons: Vec::new(),
        };
        let user = d.order.user_id;
        match self.messenger.send(&msg).await {
            Ok(sent) => {
                let mid = sent.message_id;
                self.store.write(move |tx| finish_delivery(tx, order_id, Some(mid))).await?;
                metrics::counter!("lavka_orders_delivered_total").increment(1);
                Ok(())
            }
            // The mark stays: the next run settles it without sending.
            Err(SendError::Uncertain(m)) => Err(JobError::Retry(m)),
            Err(e) => {
                self.store.write(move |tx| abort_delivery(tx, order_id)).await?;
                if e == SendError::Unreachable {
                    self.store.write(move |tx| crate::store::ledger::set_unreachable(tx, user, true)).await?;
                    return Err(JobError::Fatal(format!("user {user} blocked the bot")));
                }
                Err(send_error(e))
            }
        }
    }

    async fn notify_supplier(&self, order_id: u64) -> Result<(), JobError> {
        let o = self.store.order(order_id).await?;
        if o.status != OrderStatus::Prepaid {
            return Ok(());
        }
        let p = self.store.product(o.product_id.clone()).await?;
        let chat = match &p.supplier {
            Some(s) => self.store.supplier(s.clone()).await?.and_then(|s| s.telegram_chat_id),
            None => None,
        };
        match chat {
            Some(chat) => {
                let msg = Outgoing::plain(chat, texts::supplier_new_order(&o));
                self.messenger.send(&msg).await.map_err(send_error)?;
                Ok(())
            }
            None => self.alert_admins(&texts::admin_unassigned_preorder(&o)).await,
        }
    }

    async fn notify_user(&self, user: UserId, notice: &Notice) -> Result<(), JobError> {
        let lang = self.lang_of(user).await?;
        let mut buttons = Vec::new();
        let text = match notice {
            Notice::Refunded { order_id, amount } => {
                let o = self.store.order(*order_id).await?;
                let bal = self.store.balance(user).await?;
                texts::refunded(lang, *order_id, *amount, o.currency, Some(bal))
            }
            Notice::LatePaymentCredited { order_id, amount } => {
                let o = self.store.order(*order_id).await?;
                // Sold out meanwhile: when a supplier can deliver it, the customer may turn the
                // credited money into a pre-order (consent first, then pay from the balance).
                if let Ok(p) = self.store.product(o.product_id.clone()).await
                    && p.can_preorder()
                {
                    buttons.push(vec![crate::ai::Button::callback(
                        texts::consultant::preorder_button(lang),
                        crate::callback::Callback::PreOrder(p.id.clone()),
                    )]);
                }
                texts::late_payment_credited(lang, *order_id, *amount, o.currency)
            }
            Notice::MismatchCredited { order_id, amount } => {
                let o = self.store.order(*order_id).await?;
                texts::mismatch_credited(lang, *order_id, *amount, o.currency)
            }
            Notice::PreorderAccepted { order_id } => {
                let o = self.store.order(*order_id).await?;
                texts::preorder_accepted(lang, &o)
            }
            Notice::DeadlineExtended { order_id, deadline } => {
                texts::deadline_extended(lang, *order_id, *deadline)
            }
            Notice::Text { text } => text.clone(),
        };
        match self.send_to_user_with(user, text, buttons).await {
            // A notice to someone who blocked the bot is simply not deliverable.
            Err(JobError::Fatal(m)) if m.contains("blocked") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn sweep<T: Send + 'static>(
        &self,
        op: impl Fn(&crate::store::Tx<'_>) -> crate::Result<Vec<T>> + Send + Sync + Clone + 'static,
    ) -> Result<usize, JobError> {
        let mut total = 0;
        loop {
            let f = op.clone();
            let n = self.store.write(move |tx| f(tx)).await?.len();
            total += n;
            if n < SWEEP_LIMIT {
                return Ok(total);
            }
        }
    }
}

#[async_trait::async_trait]
impl Handler for ShopJobs {
    async fn handle(&self, job: &JobRecord) -> Result<(), JobError> {
        match &job.kind {
            JobKind::DeliverOrder { order_id } => self.deliver(*order_id).await,
            JobKind::NotifySupplier { order_id } => self.notify_supplier(*order_id).await,
            JobKind::NotifyUser { user_id, notice } => self.notify_user(*user_id, notice).await,
            JobKind::AlertAdmin { text } => self.alert_admins(text).await,
            JobKind::ProcessUpdate { update, .. } => match &self.updates {
                Some(p) => p.process(update).await,
                None => Err(JobError::Fatal("no Telegram channel is configured".into())),
            },
            JobKind::ExpireReservations => {
                let n = self.sweep(|tx| crate::store::orders::expire_reservations(tx, SWEEP_LIMIT)).await?;
                if n > 0 {
                    tracing::info!(orders = n, "reservations expired");
                    metrics::counter!("lavka_reservations_expired_total").increment(n as u64);
                }
                Ok(())
            }
            JobKind::RefundLatePrepaid => {
                let n = self.sweep(|tx| crate::store::orders::refund_late_prepaid(tx, SWEEP_LIMIT)).await?;
                if n > 0 {
                    tracing::warn!(orders = n, "late pre-orders refunded to balance");
                    metrics::counter!("lavka_preorders_refunded_total").increment(n as u64);
                }
                Ok(())
            }
            JobKind::PruneJobs => {
                let now = self.store.now();
                let before = now - self.settings.done_retention.as_millis() as i64;
                let updates_before = now - 7 * 24 * 3_600_000;
                let keep = self.settings.outbox_keep;
                let p = self
                    .store
                    .write(move |tx| crate::store::jobs::prune(tx, before, updates_before, keep, 10_000))
                    .await?;
                tracing::info!(jobs = p.jobs, updates = p.updates, outbox = p.outbox, "pruned");
                Ok(())
            }
            JobKind::Snapshot => {
                // The schedule also fires once at every start-up; a restart loop must not
                // fill the disk with snapshots, so a recent one is enough.
                if let Some(age) = crate::store::backup::newest_age(&self.settings.backups_dir)
                    && age < Duration::from_secs(20 * 3600)
                {
                    tracing::debug!(age_secs = age.as_secs(), "recent snapshot exists; skipped");
                    return Ok(());
                }
                let s = self
                    .store
                    .snapshot(self.settings.backups_dir.clone())
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                tracing::info!(path = %s.path.display(), bytes = s.bytes, "snapshot written");
                crate::store::backup::rotate(&self.settings.backups_dir, self.settings.snapshots_keep)
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Ok(())
            }
            JobKind::Noop { .. } => Ok(()),
            JobKind::Broadcast { broadcast_id, part } => {
                crate::telegram::broadcast::run(&self.store, self.messenger.as_ref(), *broadcast_id, *part)
                    .await
            }
        }
    }
}
