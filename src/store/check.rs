//! `lavka check`: the store's invariants, verified over one consistent snapshot.
//!
//! - a stock item is sold at most once, and every sold item belongs to exactly one paid order;
//! - a reserved item has a live pending order that holds it;
//! - the available index, the counts and the items agree;
//! - balance = sum(ledger) ≥ 0 for every user;
//! - no payment is applied twice, and every applied payment's order names it;
//! - every paid instant order and every ready pre-order is delivered or has a live delivery
//!   job; every paid pre-order has had its supplier notified;
//! - the job due index and the job records agree;
//! - an outbox message naming an order is that order's delivery message, and in outbox mode
//!   (no channel) every delivered order has its message in the outbox.

use super::schema::*;
use super::{Store, decode};
use crate::domain::{
    Dedupe, JobKind, JobRecord, JobState, LedgerEntry, Order, OrderKind, OrderStatus, OutboxMessage,
    PaymentOutcome, PaymentRecord, StockItem, StockState,
};
use crate::error::Result;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};
use std::collections::{HashMap, HashSet};

/// The outcome of a check.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub products: u64,
    pub stock_items: u64,
    pub orders: u64,
    pub users: u64,
    pub payments: u64,
    pub jobs: u64,
    pub violations: Vec<String>,
    /// Not broken, but needs the owner (e.g. a delivery that failed for good).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "checked {} products, {} stock items, {} orders, {} users, {} payments, {} jobs",
            self.products, self.stock_items, self.orders, self.users, self.payments, self.jobs
        )?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if self.ok() {
            write!(f, "all invariants hold")
        } else {
            writeln!(f, "{} violation(s):", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  - {v}")?;
            }
            Ok(())
        }
    }
}

/// What the check is told about how the shop runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckOptions {
    /// Outbox mode (no channel configured): every delivered order's message is in the outbox.
    pub outbox: bool,
}

impl Store {
    /// Verifies every invariant on a snapshot.
    pub async fn check(&self) -> Result<Report> {
        self.check_with(CheckOptions::default()).await
    }

    /// The same, with the rules of how the shop runs.
    pub async fn check_with(&self, opts: CheckOptions) -> Result<Report> {
        self.read(move |rtx, _| check_with(rtx, opts)).await
    }
}

/// Verifies every invariant inside a read transaction.
pub fn check(rtx: &ReadTransaction) -> Result<Report> {
    check_with(rtx, CheckOptions::default())
}

/// Verifies every invariant inside a read transaction, with the rules of how the shop runs.
pub fn check_with(rtx: &ReadTransaction, opts: CheckOptions) -> Result<Report> {
    let mut r = Report::default();
    let mut v: Vec<String> = Vec::new();

    // Orders.
    let orders_t = rtx.open_table(ORDERS)?;
    let mut orders: HashMap<u64, Order> = HashMap::new();
    for row in orders_t.iter()? {
        let (k, val) = row?;
        let o: Order = decode(val.value())?;
        if o.id != k.value() {
            v.push(format!("order key {} holds order {}", k.value(), o.id));
        }
        orders.insert(o.id, o);
    }
    r.orders = orders.len() as u64;

    // Stock items and which order holds them.
    let items_t = rtx.open_table(STOCK_ITEMS)?;
    let avail_t = rtx.open_table(STOCK_AVAILABLE)?;
    let counts_t = rtx.open_table(STOCK_COUNTS)?;
    let mut holders: HashMap<u64, Vec<u64>> = HashMap::new();
    for o in orders.values() {
        for &i in &o.stock_item_ids {
            holders.entry(i).or_default().push(o.id);
        }
    }
    let mut avail_count: HashMap<String, u64> = HashMap::new();
    let mut index_set: HashSet<(String, u64)> = HashSet::new();
    for row in avail_t.iter()? {
        let (k, _) = row?;
        let (product, id) = k.value();
        index_set.insert((product.to_string(), id));
    }
    for row in items_t.iter()? {
        let (_, val) = row?;
        let item: StockItem = decode(val.value())?;
        r.stock_items += 1;
        let held_by = holders.get(&item.id).cloned().unwrap_or_default();
        if held_by.len() > 1 {
            v.push(format!("stock item {} is held by several orders {:?}", item.id, held_by));
        }
        let in_index = index_set.contains(&(item.product_id.to_string(), item.id));
        match item.state {
            StockState::Available | StockState::Removed => {
                if !held_by.is_empty() {
                    v.push(format!(
                        "stock item {} is {:?} but held by order {:?}",
                        item.id, item.state, held_by
                    ));
                }
                if (item.state == StockState::Available) != in_index {
                    v.push(format!(
                        "stock item {} is {:?}; in available index: {in_index}",
                        item.id, item.state
                    ));
                }
                if item.state == StockState::Available {
                    *avail_count.entry(item.product_id.to_string()).or_default() += 1;
                }
            }
            StockState::Reserved => {
                let live = held_by
                    .first()
                    .and_then(|id| orders.get(id))
                    .is_some_and(|o| o.status == OrderStatus::Reserved);
                if !live || item.order_id != held_by.first().copied() {
                    v.push(format!("stock item {} is reserved without a live reserved order", item.id));
                }
                if in_index {
                    v.push(format!("reserved stock item {} is in the available index", item.id));
                }
            }
            StockState::Sold => {
                let paid = held_by.first().and_then(|id| orders.get(id)).is_some_and(|o| o.was_paid());
                if held_by.len() != 1 || !paid || item.order_id != held_by.first().copied() {
                    v.push(format!("sold stock item {} does not belong to exactly one paid order", item.id));
                }
                if in_index {
                    v.push(format!("sold stock item {} is in the available index", item.id));
                }
            }
        }
    }
    for row in counts_t.iter()? {
        let (k, n) = row?;
        let want = avail_count.get(k.value()).copied().unwrap_or(0);
        if n.value() != want {
            v.push(format!("product {} counts {} available but has {want}", k.value(), n.value()));
        }
    }
    for (product, n) in &avail_count {
        if counts_t.get(product.as_str())?.is_none() {
            v.push(format!("product {product} has {n} available items but no count"));
        }
    }
    let items_by_id = |id: u64| -> crate::error::Result<Option<StockItem>> {
        items_t.get(id)?.map(|x| decode::<StockItem>(x.value())).transpose()
    };
    for (product, id) in &index_set {
        match items_by_id(*id)? {
            Some(i) if i.state == StockState::Available && i.product_id.as_str() == product => {}
            _ => {
                v.push(format!("available index of {product} names item {id}, which is not available there"))
            }
        }
    }
    let products_t = rtx.open_table(PRODUCTS)?;
    r.products = products_t.len()?;

    // The due-time index and the orders agree both ways.
    let due_orders_t = rtx.open_table(ORDERS_BY_STATUS_DEADLINE)?;
    let mut indexed = HashSet::new();
    for row in due_orders_t.iter()? {
        let (k, _) = row?;
        let (code, at, id) = k.value();
        indexed.insert(id);
        let ok = orders.get(&id).is_some_and(|o| {
            o.status.code() == code
                && match o.status {
                    OrderStatus::Reserved | OrderStatus::AwaitingPayment => o.expires_at == Some(at),
                    OrderStatus::Prepaid => o.deadline == Some(at),
                    _ => false,
                }
        });
        if !ok {
            v.push(format!("due index entry ({code}, {at}, {id}) does not match its order"));
        }
    }
    for o in orders.values() {
        let needs =
            matches!(o.status, OrderStatus::Reserved | OrderStatus::AwaitingPayment | OrderStatus::Prepaid);
        if needs && !indexed.contains(&o.id) {
            v.push(format!("order {} is {} but missing from the due index", o.id, o.status.as_str()));
        }
    }

    // Per-order rules.
    for o in orders.values() {
        let items_ok = match o.status {
            OrderStatus::Reserved => {
                o.kind == OrderKind::Instant && o.stock_item_ids.len() == o.quantity as usize
            }
            OrderStatus::Paid => o.stock_item_ids.len() == o.quantity as usize,
            OrderStatus::Expired | OrderStatus::AwaitingPayment => o.stock_item_ids.is_empty(),
            _ => true,
        };
        if !items_ok {
            v.push(format!(
                "order {} is {} holding {} items for quantity {}",
                o.id,
                o.status.as_str(),
                o.stock_item_ids.len(),
                o.quantity
            ));
        }
        for &i in &o.stock_item_ids {
            let st = items_t.get(i)?.map(|x| decode::<StockItem>(x.value())).transpose()?;
            let want =
                if o.status == OrderStatus::Reserved { StockState::Reserved } else { StockState::Sold };
            if st.as_ref().map(|s| s.state) != Some(want) {
                v.push(format!(
                    "order {} ({}) holds item {i} in state {:?}",
                    o.id,
                    o.status.as_str(),
                    st.map(|s| s.state)
                ));
            }
        }
        if matches!(
            o.status,
            OrderStatus::Paid | OrderStatus::Prepaid | OrderStatus::Ready | OrderStatus::Delivered
        ) && o.payment.is_none()
        {
            v.push(format!("order {} is {} without a payment", o.id, o.status.as_str()));
        }
    }

    // Money taken that no order or balance shows: the owner must settle it by hand.
    let mut unmatched = Vec::new();
    for row in rtx.open_table(UNMATCHED_PAYMENTS)?.iter()? {
        let (_, val) = row?;
        let u: crate::domain::UnmatchedPayment = decode(val.value())?;
        unmatched
            .push(format!("{}:{} ({}, {} {})", u.provider, u.external_id, u.reason, u.amount, u.currency));
    }
    if !unmatched.is_empty() {
        r.warnings.push(format!(
            "{} signed payment(s) could not be applied to any order or balance (admin page → Payments): {}",
            unmatched.len(),
            unmatched.join(", ")
        ));
    }

    // Payments: each applied once, and the order names it.
    let pay_t = rtx.open_table(PAYMENTS)?;
    let mut applied_per_order: HashMap<u64, u32> = HashMap::new();
    let mut applied_keys: HashSet<(String, String)> = HashSet::new();
    let mut credited_per_order: HashMap<u64, u32> = HashMap::new();
    for row in pay_t.iter()? {
        let (_, val) = row?;
        let p: PaymentRecord = decode(val.value())?;
        r.payments += 1;
        let Some(o) = orders.get(&p.order_id) else {
            v.push(format!("payment {}:{} names missing order {}", p.provider, p.external_id, p.order_id));
            continue;
        };
        if p.outcome == PaymentOutcome::CreditedToBalance {
            *credited_per_order.entry(o.id).or_default() += 1;
        }
        if p.outcome == PaymentOutcome::Applied {
            applied_keys.insert((p.provider.clone(), p.external_id.clone()));
            *applied_per_order.entry(o.id).or_default() += 1;
            let names_it = o
                .payment
                .as_ref()
                .is_some_and(|r| r.provider == p.provider && r.external_id == p.external_id);
            if !names_it {
                v.push(format!(
                    "applied payment {}:{} is not the payment of order {}",
                    p.provider, p.external_id, o.id
                ));
            }
        }
    }
    for (id, n) in applied_per_order {
        if n > 1 {
            v.push(format!("order {id} has {n} applied payments"));
        }
    }
    for o in orders.values() {
        if let Some(pr) = &o.payment
            && !applied_keys.contains(&(pr.provider.clone(), pr.external_id.clone()))
        {
            v.push(format!(
                "order {} names payment {}:{}, which was not applied",
                o.id, pr.provider, pr.external_id
            ));
        }
    }

    // Ledger and balances.
    let ledger_t = rtx.open_table(LEDGER)?;
    let mut sums: HashMap<i64, i64> = HashMap::new();
    let mut ledger_credits: HashMap<u64, u32> = HashMap::new();
    for row in ledger_t.iter()? {
        let (_, val) = row?;
        let e: LedgerEntry = decode(val.value())?;
        *sums.entry(e.user_id).or_default() += e.amount;
        if let Some(o) = e.order_id
            && e.amount > 0
        {
            *ledger_credits.entry(o).or_default() += 1;
        }
    }
    let bal_t = rtx.open_table(BALANCES)?;
    let mut seen = HashSet::new();
    for row in bal_t.iter()? {
        let (k, b) = row?;
        let want = sums.get(&k.value()).copied().unwrap_or(0);
        seen.insert(k.value());
        if b.value() != want {
            v.push(format!("user {} balance {} but ledger sums to {want}", k.value(), b.value()));
        }
        if b.value() < 0 {
            v.push(format!("user {} balance is negative ({})", k.value(), b.value()));
        }
    }
    for (u, s) in &sums {
        if !seen.contains(u) && *s != 0 {
            v.push(format!("user {u} has ledger sum {s} but no balance"));
        }
    }
    for o in orders.values() {
        let credits = ledger_credits.get(&o.id).copied().unwrap_or(0);
        if o.status == OrderStatus::Refunded && credits == 0 {
            v.push(format!("order {} is refunded without a ledger credit", o.id));
        }
        let owed = credited_per_order.get(&o.id).copied().unwrap_or(0);
        if credits < owed {
            v.push(format!(
                "order {} has {owed} payment(s) credited to the balance but {credits} credit(s)",
                o.id
            ));
        }
    }
    r.users = rtx.open_table(USERS)?.len()?;

    // Jobs: index agreement, and follow-up work for paid orders.
    let jobs_t = rtx.open_table(JOBS)?;
    // Every job read once, in id order (a later job for an order decides). One this version
    // cannot read (a kind from a newer version) is a warning, not an error: the queue sets it
    // aside when it is due.
    let mut jobs: std::collections::BTreeMap<u64, JobRecord> = Default::default();
    let mut unreadable = HashSet::new();
    for row in jobs_t.iter()? {
        let (id, val) = row?;
        r.jobs += 1;
        match decode::<JobRecord>(val.value()) {
            Ok(j) => {
                jobs.insert(id.value(), j);
            }
            Err(_) => {
                unreadable.insert(id.value());
                r.warnings.push(format!("job {} cannot be read by this version of Lavka", id.value()));
            }
        }
    }
    let mut due_ids = HashSet::new();
    for lane in crate::domain::Lane::ALL {
        for row in rtx.open_table(crate::store::jobs::due_index(lane))?.iter()? {
            let (k, _) = row?;
            let (at, id) = k.value();
            due_ids.insert(id);
            match jobs.get(&id) {
                Some(j) if j.state == JobState::Ready && j.run_at == at && j.kind.lane() == lane => {}
                None if unreadable.contains(&id) => {}
                _ => {
                    v.push(format!("{} due index entry ({at}, {id}) has no matching ready job", lane.name()))
                }
            }
        }
    }
    let mut delivery: HashMap<u64, JobState> = HashMap::new();
    let mut supplier: HashMap<u64, JobState> = HashMap::new();
    let dedupe_t = rtx.open_table(JOBS_BY_DEDUPE)?;
    for j in jobs.values() {
        if j.state == JobState::Ready && !due_ids.contains(&j.id) {
            v.push(format!("ready job {} is missing from the due index", j.id));
        }
        if let Some(Dedupe::WhilePending(k)) = &j.dedupe
            && j.state == JobState::Ready
            && dedupe_t.get(k.as_str())?.map(|x| x.value()) != Some(j.id)
        {
            v.push(format!("pending job {} does not own its dedupe key {k:?}", j.id));
        }
        match &j.kind {
            JobKind::DeliverOrder { order_id } => {
                delivery.insert(*order_id, j.state);
            }
            JobKind::NotifySupplier { order_id } => {
                supplier.insert(*order_id, j.state);
            }
            _ => {}
        }
    }
    // A while-pending key must belong to a ready job, or every later enqueue is swallowed.
    for row in dedupe_t.iter()? {
        let (k, id) = row?;
        if let Some(j) = jobs.get(&id.value())
            && matches!(j.dedupe, Some(Dedupe::WhilePending(_)))
            && j.state != JobState::Ready
        {
            v.push(format!("while-pending key {:?} is held by finished job {}", k.value(), j.id));
        }
    }
    for o in orders.values() {
        if matches!(o.status, OrderStatus::Paid | OrderStatus::Ready) {
            match delivery.get(&o.id) {
                Some(JobState::Ready) => {}
                Some(JobState::Dead) => r.warnings.push(format!(
                    "order {} is {} and its delivery failed for good (dead job: retry it or refund)",
                    o.id,
                    o.status.as_str()
                )),
                _ if unreachable(rtx, o.user_id)? => r.warnings.push(format!(
                    "order {} is {} and waits for its customer, who blocked the bot, to write again",
                    o.id,
                    o.status.as_str()
                )),
                _ => v.push(format!("order {} is {} with no live delivery job", o.id, o.status.as_str())),
            }
        }
        if o.status == OrderStatus::Prepaid {
            match supplier.get(&o.id) {
                Some(JobState::Dead) => r
                    .warnings
                    .push(format!("pre-order {} is paid but the supplier could not be notified", o.id)),
                Some(_) => {}
                // The job may have been pruned; its once-key stays.
                None if dedupe_t.get(format!("supplier:{}", o.id).as_str())?.is_some() => {}
                None => v.push(format!("pre-order {} is paid but its supplier was never notified", o.id)),
            }
        }
    }
    check_outbox(rtx, &orders, opts, &dedupe_t, &mut v, &mut r.warnings)?;
    r.violations = v;
    Ok(r)
}

/// An outbox message that names an order is that order's delivery message, and an order
/// delivered to the outbox has its message there (unless pruned as old); in outbox mode, an
/// order delivered with no message at all is reported too.
fn check_outbox(
    rtx: &ReadTransaction,
    orders: &HashMap<u64, Order>,
    opts: CheckOptions,
    dedupe_t: &redb::ReadOnlyTable<&'static str, u64>,
    v: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let outbox_t = rtx.open_table(OUTBOX)?;
    let mut outbox: HashMap<u64, OutboxMessage> = HashMap::new();
    for row in outbox_t.iter()? {
        let (_, val) = row?;
        let m: OutboxMessage = decode(val.value())?;
        if let Some(oid) = m.order_id {
            let names_it = orders.get(&oid).is_some_and(|o| o.delivery_message_id == Some(m.id as i64));
            if !names_it {
                v.push(format!("outbox message {} carries order {oid}, which does not name it", m.id));
            }
        }
        outbox.insert(m.id, m);
    }
    let oldest_kept = outbox.keys().min().copied().unwrap_or(u64::MAX);
    let mut delivered: Vec<&Order> = orders.values().filter(|o| o.status == OrderStatus::Delivered).collect();
    delivered.sort_by_key(|o| o.id);
    for o in delivered {
        match o.delivery_message_id {
            // Through the outbox: its message is there (unless pruned with the old ones).
            Some(m) if o.delivered_to_outbox => {
                let kept = (m as u64) >= oldest_kept;
                let there = outbox
                    .get(&(m as u64))
                    .is_some_and(|msg| msg.chat_id == o.user_id && msg.order_id == Some(o.id));
                if kept && !there {
                    v.push(format!("order {} is delivered but its outbox message {m} is not there", o.id));
                }
            }
            // A chat message (delivered through a channel, maybe before the shop ran without one).
            Some(_) => {}
            None if !opts.outbox => {}
            // A delivery of unknown outcome from a version that sent outside the delivery's
            // transaction (or through a channel): the admins were alerted then.
            None if dedupe_t.get(format!("uncertain:{}", o.id).as_str())?.is_some() => warnings.push(format!(
                "order {} is delivered with no outbox message (unknown outcome, admins alerted; /redeliver {} sends it)",
                o.id, o.id
            )),
            None => v.push(format!("order {} is delivered with no outbox message", o.id)),
        }
    }
    Ok(())
}

/// Whether a user blocked the bot (their paid goods wait for them to come back).
fn unreachable(rtx: &redb::ReadTransaction, user: crate::domain::UserId) -> Result<bool> {
    let t = rtx.open_table(USERS)?;
    let u: Option<crate::domain::User> = t.get(user)?.map(|v| super::decode(v.value())).transpose()?;
    Ok(u.is_some_and(|u| u.unreachable))
}
