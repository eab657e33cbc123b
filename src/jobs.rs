//! Handlers of every job kind. Each is idempotent: it may run again after a crash.

pub mod broadcast;

use crate::callback::{Button, Callback};
use crate::domain::{JobKind, JobRecord, Notice, OrderStatus, UserId};
use crate::messenger::{Messenger, Outgoing, SendError};
use crate::queue::{Handler, JobError};
use crate::store::Store;
use crate::texts::{Lang, Loc, Rich, Zone, admin as ta, customer as t, supplier as ts};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Handles a stored Telegram update (implemented by the Telegram channel).
#[async_trait::async_trait]
pub trait UpdateProcessor: Send + Sync {
    async fn process(&self, update: &serde_json::Value) -> Result<(), JobError>;
    /// Takes the spinner off a pressed button.
    async fn answer_callback(&self, query_id: &str) -> Result<(), JobError>;
}

/// Settings the handlers need.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub admin_chat_ids: Vec<i64>,
    pub default_lang: Lang,
    pub zone: Zone,
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
        SendError::AlreadyDone => JobError::Fatal("already done".into()),
    }
}

impl ShopJobs {
    /// How texts are written for a reader of `lang` now.
    fn loc(&self, lang: Lang) -> Loc {
        Loc::new(lang, self.settings.zone, self.store.now())
    }

    /// A customer's language: the one they chose with `/lang`, else Telegram's.
    async fn lang_of(&self, user: UserId) -> Result<Lang, JobError> {
        let code = self.store.lang_code(user).await?;
        Ok(Lang::pick(code.as_deref(), self.settings.default_lang))
    }

    /// Sends to a customer; a blocked bot marks them unreachable and ends the job.
    async fn send_to_user(
        &self,
        user: UserId,
        text: Rich,
        buttons: Vec<Vec<Button>>,
    ) -> Result<(), JobError> {
        match self.messenger.send(&Outgoing::with(user, text, buttons)).await {
            Ok(_) => Ok(()),
            Err(SendError::Unreachable) => {
                self.store.write(move |tx| crate::store::telegram::set_unreachable(tx, user, true)).await?;
                Err(JobError::Unreachable(user))
            }
            Err(e) => Err(send_error(e)),
        }
    }

    async fn alert_admins(&self, text: Rich) -> Result<(), JobError> {
        tracing::warn!(alert = %text.plain(), "admin alert");
        if self.settings.admin_chat_ids.is_empty() {
            let t = text.plain();
            self.store.write(move |tx| crate::store::ledger::record_outbox(tx, 0, &t)).await?;
            return Ok(());
        }
        // One admin who blocked the bot must not keep the alert from the others; a retry
        // is asked for only when nobody got it.
        let (mut delivered, mut retry) = (0, None);
        for &chat in &self.settings.admin_chat_ids {
            match self.messenger.send(&Outgoing::new(chat, text.clone())).await {
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
        if self.messenger.is_outbox() {
            return self.deliver_to_outbox(&d).await;
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
        let msg = Outgoing::new(d.order.user_id, t::delivery(&self.loc(lang), &d.order, &d.contents));
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
                    // The goods wait for the customer: sent when they write again (the store
                    // queues the delivery then); the admins hear of it now.
                    let alert =
                        ta::customer_unreachable(&self.loc(self.settings.default_lang), &d.order).plain();
                    let key = format!("unreachable:{order_id}");
                    self.store
                        .write(move |tx| {
                            crate::store::telegram::set_unreachable(tx, user, true)?;
                            crate::store::jobs::enqueue(
                                tx,
                                JobKind::AlertAdmin { text: alert.clone() },
                                crate::store::jobs::EnqueueOpts::once(key.clone()),
                            )
                            .map(|_| ())
                        })
                        .await?;
                    return Err(JobError::Unreachable(user));
                }
                Err(send_error(e))
            }
        }
    }

    /// [`ShopJobs::deliver`] in outbox mode: the message and the delivery in one commit.
    async fn deliver_to_outbox(&self, d: &crate::store::orders::Deliverable) -> Result<(), JobError> {
        use crate::store::telegram::{OutboxDelivery, deliver_to_outbox, settle_uncertain_delivery};
        let lang = self.lang_of(d.order.user_id).await?;
        let text = t::delivery(&self.loc(lang), &d.order, &d.contents).plain();
        let (order_id, chat) = (d.order.id, d.order.user_id);
        match self.store.write(move |tx| deliver_to_outbox(tx, order_id, chat, &text)).await? {
            OutboxDelivery::Delivered(id) => {
                tracing::info!(
                    order.id = order_id,
                    outbox.id = id,
                    "delivered to the outbox (no channel configured)"
                );
                metrics::counter!("lavka_orders_delivered_total").increment(1);
            }
            OutboxDelivery::Nothing => {}
            OutboxDelivery::Uncertain(at) => {
                tracing::error!(
                    order.id = order_id,
                    "a delivery of unknown outcome: not sent again, admins alerted"
                );
                self.store.write(move |tx| settle_uncertain_delivery(tx, order_id, at)).await?;
            }
        }
        Ok(())
    }

    /// The chat and language of the supplier of an order's product, when it has one.
    async fn supplier_of(&self, o: &crate::domain::Order) -> Result<Option<(String, i64, Loc)>, JobError> {
        let p = self.store.product(o.product_id.clone()).await?;
        let Some(id) = p.supplier else { return Ok(None) };
        let Some(s) = self.store.supplier(id.clone()).await? else { return Ok(None) };
        let lang = s.lang.as_deref().and_then(Lang::parse).unwrap_or(self.settings.default_lang);
        Ok(s.telegram_chat_id.map(|chat| (s.name.clone(), chat, self.loc(lang))))
    }

    async fn notify_supplier(&self, order_id: u64) -> Result<(), JobError> {
        let o = self.store.order(order_id).await?;
        if o.status != OrderStatus::Prepaid {
            return Ok(());
        }
        match self.supplier_of(&o).await? {
            Some((_, chat, l)) => {
                self.messenger.send(&Outgoing::new(chat, ts::new_order(&l, &o))).await.map_err(send_error)?;
                Ok(())
            }
            None => {
                self.alert_admins(ta::unassigned_preorder(&self.loc(self.settings.default_lang), &o)).await
            }
        }
    }

    /// A late pre-order was refunded: its supplier need not deliver, the admins know.
    async fn preorder_refunded(&self, order_id: u64) -> Result<(), JobError> {
        let o = self.store.order(order_id).await?;
        let supplier = self.supplier_of(&o).await?;
        if let Some((_, chat, l)) = &supplier {
            match self.messenger.send(&Outgoing::new(*chat, ts::refunded(l, &o))).await {
                Ok(_) => {}
                Err(e @ (SendError::Unreachable | SendError::Rejected(_))) => {
                    tracing::warn!(chat.id = chat, error = %e, "the supplier's chat cannot be written to");
                }
                Err(e) => return Err(send_error(e)),
            }
        }
        let l = self.loc(self.settings.default_lang);
        self.alert_admins(ta::preorder_refunded(&l, &o, supplier.as_ref().map(|s| s.0.as_str()))).await
    }

    async fn notify_user(&self, user: UserId, notice: &Notice) -> Result<(), JobError> {
        let l = &self.loc(self.lang_of(user).await?);
        let mut buttons = Vec::new();
        let text = match notice {
            Notice::Refunded { order_id, amount, late } => {
                let o = self.store.order(*order_id).await?;
                let bal = self.store.balance(user).await?;
                if *late {
                    t::refunded(l, *order_id, *amount, o.currency, bal)
                } else {
                    t::refunded_by_shop(l, *order_id, *amount, o.currency, bal)
                }
            }
            Notice::LatePaymentCredited { order_id, amount } => {
                let o = self.store.order(*order_id).await?;
                if o.payment.is_some() {
                    // The order was paid by another payment: this one was a second one.
                    t::second_payment_credited(l, *order_id, *amount, o.currency)
                } else {
                    // Sold out meanwhile: when a supplier can deliver it, the customer may turn the
                    // credited money into a pre-order (consent first, then pay from the balance).
                    if let Ok(p) = self.store.product(o.product_id.clone()).await
                        && p.can_preorder()
                    {
                        buttons.push(vec![Button::callback(
                            t::button::preorder(l),
                            Callback::PreOrder(p.id.clone()),
                        )]);
                    }
                    t::late_payment_credited(l, *order_id, *amount, o.currency)
                }
            }
            Notice::MismatchCredited { order_id, amount } => {
                let o = self.store.order(*order_id).await?;
                t::mismatch_credited(l, *order_id, *amount, o.currency)
            }
            Notice::PreorderAccepted { order_id } => {
                let o = self.store.order(*order_id).await?;
                t::preorder_accepted(l, &o)
            }
            Notice::DeadlineExtended { order_id, deadline } => t::deadline_extended(l, *order_id, *deadline),
            Notice::Text { text } => Rich::from(text.as_str()),
        };
        // A notice to someone who blocked the bot is simply not deliverable.
        self.send_to_user(user, text, buttons).await
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
            JobKind::AlertAdmin { text } => self.alert_admins(Rich::from(text.as_str())).await,
            JobKind::PreorderRefunded { order_id } => self.preorder_refunded(*order_id).await,
            JobKind::ProcessUpdate { update, .. } => match &self.updates {
                Some(p) => p.process(update).await,
                None => Err(JobError::Fatal("no Telegram channel is configured".into())),
            },
            JobKind::AnswerCallback { query_id } => match &self.updates {
                Some(p) => p.answer_callback(query_id).await,
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
                broadcast::run(&self.store, self.messenger.as_ref(), *broadcast_id, *part).await
            }
        }
    }
}
