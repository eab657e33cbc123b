//! Job records of the durable queue and the job kinds. Handlers live in `crate::jobs`.

use super::{Millis, OrderId, UserId};
use serde::{Deserialize, Serialize};

/// A notice to a customer about their order or balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// The order was refunded to the balance (`late`: a pre-order past its deadline).
    Refunded {
        order_id: OrderId,
        amount: i64,
        #[serde(default)]
        late: bool,
    },
    /// A payment arrived after the order lapsed and went to the balance.
    LatePaymentCredited { order_id: OrderId, amount: i64 },
    /// A payment did not match its order and was credited to the balance.
    MismatchCredited { order_id: OrderId, amount: i64 },
    /// A pre-order was paid and handed to the supplier.
    PreorderAccepted { order_id: OrderId },
    /// The owner changed a pre-order's deadline.
    DeadlineExtended { order_id: OrderId, deadline: Millis },
    /// Free text from the shop (admin).
    Text { text: String },
}

/// What a job does. The payload is stored as JSON; new kinds may be added freely.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Send the goods of a paid order to the customer.
    DeliverOrder { order_id: OrderId },
    /// Tell the supplier about a paid pre-order.
    NotifySupplier { order_id: OrderId },
    /// Tell a customer something.
    NotifyUser { user_id: UserId, notice: Notice },
    /// A late pre-order was refunded automatically: tell its supplier and the admins.
    PreorderRefunded { order_id: OrderId },
    /// Tell the shop's admins something (payment mismatch, dead jobs).
    AlertAdmin { text: String },
    /// Handle one Telegram update (stored raw).
    ProcessUpdate { update_id: i64, update: serde_json::Value },
    /// Release reservations whose time ran out.
    ExpireReservations,
    /// Refund pre-orders whose deadline passed.
    RefundLatePrepaid,
    /// Delete old finished jobs and old dedupe records.
    PruneJobs,
    /// Write a snapshot backup into the data directory.
    Snapshot,
    /// A job that does nothing (benchmarks and tests).
    Noop { n: u64 },
    /// Send part `part` (a batch of recipients) of a broadcast; the next part is enqueued
    /// when this one is done.
    Broadcast { broadcast_id: u64, part: u32 },
    /// Take the spinner off a pressed button (`answerCallbackQuery`); the press itself is a
    /// `process_update` job of the normal lane.
    AnswerCallback { query_id: String },
}

/// Which workers run a job. Telegram times a few answers — a pre-checkout query must be
/// answered within 10 s or the payment fails, a pressed button spins until answered — so
/// they have a lane of their own that ordinary replies, deliveries and broadcasts cannot
/// fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    Urgent,
    Normal,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Urgent, Lane::Normal];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Urgent => "urgent",
            Lane::Normal => "normal",
        }
    }
}

impl JobKind {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::DeliverOrder { .. } => "deliver_order",
            JobKind::NotifySupplier { .. } => "notify_supplier",
            JobKind::NotifyUser { .. } => "notify_user",
            JobKind::PreorderRefunded { .. } => "preorder_refunded",
            JobKind::AlertAdmin { .. } => "alert_admin",
            JobKind::ProcessUpdate { .. } => "process_update",
            JobKind::ExpireReservations => "expire_reservations",
            JobKind::RefundLatePrepaid => "refund_late_prepaid",
            JobKind::PruneJobs => "prune_jobs",
            JobKind::Snapshot => "snapshot",
            JobKind::Noop { .. } => "noop",
            JobKind::Broadcast { .. } => "broadcast",
            JobKind::AnswerCallback { .. } => "answer_callback",
        }
    }

    /// The lane of this job (see [`Lane`]).
    pub fn lane(&self) -> Lane {
        match self {
            JobKind::AnswerCallback { .. } => Lane::Urgent,
            JobKind::ProcessUpdate { update, .. } if update.get("pre_checkout_query").is_some() => {
                Lane::Urgent
            }
            _ => Lane::Normal,
        }
    }

    /// How long after it was created running this job still makes sense; `None`: always.
    /// Telegram refuses a pre-checkout answer after 10 s and a button answer after about
    /// 15 s, so a backlog after an outage does not spend the lane on answers nobody waits for.
    pub fn useful_for(&self) -> Option<std::time::Duration> {
        match self.lane() {
            Lane::Urgent => Some(std::time::Duration::from_secs(30)),
            Lane::Normal => None,
        }
    }
}

/// How a job is de-duplicated at enqueue time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dedupe {
    /// At most one job with this key, ever (until pruned): e.g. one delivery per order.
    Once(String),
    /// At most one *unfinished* job with this key: e.g. one pending expiry sweep.
    WhilePending(String),
}

impl Dedupe {
    pub fn key(&self) -> &str {
        match self {
            Dedupe::Once(k) | Dedupe::WhilePending(k) => k,
        }
    }
}

/// Persistent job state. "Running" is deliberately absent: it lives only in memory, so a
/// crash leaves the job `Ready` and it runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Ready,
    Done,
    Dead,
}

impl JobState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ready" => Some(JobState::Ready),
            "done" => Some(JobState::Done),
            "dead" => Some(JobState::Dead),
            _ => None,
        }
    }
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: u64,
    pub kind: JobKind,
    pub state: JobState,
    #[serde(default)]
    pub dedupe: Option<Dedupe>,
    /// Failed runs so far (rate-limit waits do not count).
    pub attempts: u32,
    pub max_attempts: u32,
    /// Times the job was asked to wait (e.g. Telegram 429).
    #[serde(default)]
    pub throttled: u32,
    pub run_at: Millis,
    pub created_at: Millis,
    #[serde(default)]
    pub finished_at: Option<Millis>,
    #[serde(default)]
    pub last_error: Option<String>,
}
