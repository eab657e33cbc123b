//! Every order operation and state transition, happy and unhappy, on a real redb file.

use crate::helpers::*;
use lavka::Error;
use lavka::domain::{
    Currency, JobKind, JobState, Notice, OrderKind, OrderStatus, PaymentOutcome, StockState,
};
use lavka::store::orders::{self as ops, Payment};
use lavka::store::{Store, ledger};
use std::time::Duration;

const TTL: i64 = 15 * 60 * 1000;

fn pay(id: &str, amount: i64) -> Payment {
    Payment { provider: "test".into(), external_id: id.into(), amount, currency: Currency::RUB }
}

async fn reserve(s: &Store, user: i64, product: &str, qty: u32) -> lavka::Result<lavka::domain::Order> {
    let p = pid(product);
    s.write(move |tx| ops::reserve_product_for_purchase(tx, user, &p, qty, TTL)).await
}

async fn prepaid(s: &Store, user: i64, product: &str) -> lavka::Result<lavka::domain::Order> {
    let p = pid(product);
    s.write(move |tx| ops::create_order_with_availability_check(tx, user, &p, 1, OrderKind::Prepaid, TTL))
        .await
}

async fn apply(s: &Store, order: u64, p: Payment) -> lavka::Result<ops::PaymentResult> {
    s.write(move |tx| ops::apply_payment(tx, order, &p)).await
}

async fn available(s: &Store, product: &str) -> u64 {
    s.availability(pid(product)).await.unwrap().available
}

fn deliver_jobs_for(jobs: &[lavka::domain::JobRecord], order: u64) -> usize {
    jobs.iter().filter(|j| j.kind == JobKind::DeliverOrder { order_id: order }).count()
}

#[tokio::test]
async fn reserve_then_complete_sells_the_item_and_enqueues_one_delivery() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    assert_eq!(o.status, OrderStatus::Reserved);
    assert_eq!(o.amount, 10_000);
    assert_eq!(o.expires_at, Some(T0 + TTL));
    assert_eq!(available(&t.store, "key").await, 2);

    let r = apply(&t.store, o.id, pay("p1", 10_000)).await.unwrap();
    assert_eq!(r.outcome, PaymentOutcome::Applied);
    assert!(!r.duplicate);
    assert_eq!(r.contents, vec!["K1".to_string()]);
    assert_eq!(r.order.status, OrderStatus::Paid);
    let items = t.store.stock_items(pid("key")).await.unwrap();
    assert_eq!(items.iter().filter(|i| i.state == StockState::Sold).count(), 1);
    let all = jobs_of_kind(&t.store, |_| true).await;
    assert_eq!(deliver_jobs_for(&all, o.id), 1);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_replayed_payment_changes_nothing_and_delivers_once() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    apply(&t.store, o.id, pay("p1", 10_000)).await.unwrap();
    let again = apply(&t.store, o.id, pay("p1", 10_000)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.outcome, PaymentOutcome::Applied);
    assert_eq!(again.contents, vec!["K1".to_string()]);
    let via_complete =
        t.store.write(move |tx| ops::complete_purchase(tx, o.id, &pay("p1", 10_000))).await.unwrap();
    assert!(via_complete.duplicate);
    let all = jobs_of_kind(&t.store, |_| true).await;
    assert_eq!(deliver_jobs_for(&all, o.id), 1);
    assert_eq!(t.store.payments(10).await.unwrap().len(), 1);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_second_different_payment_for_a_paid_order_goes_to_the_balance() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    apply(&t.store, o.id, pay("p1", 10_000)).await.unwrap();
    let r = apply(&t.store, o.id, pay("p2", 10_000)).await.unwrap();
    assert_eq!(r.outcome, PaymentOutcome::CreditedToBalance);
    assert_eq!(r.order.status, OrderStatus::Paid);
    assert_eq!(t.store.balance(1).await.unwrap(), 10_000);
    let notes = jobs_of_kind(&t.store, |k| {
        matches!(k, JobKind::NotifyUser { notice: Notice::LatePaymentCredited { .. }, .. })
    })
    .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(available(&t.store, "key").await, 2, "no second item is sold");
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_payment_with_the_wrong_amount_or_currency_is_recorded_and_leaves_the_order_unpaid() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    let r = apply(&t.store, o.id, pay("short", 9_999)).await.unwrap();
    assert_eq!(r.outcome, PaymentOutcome::Mismatch);
    assert_eq!(t.store.order(o.id).await.unwrap().status, OrderStatus::Reserved);
    assert_eq!(t.store.balance(1).await.unwrap(), 9_999, "money in the order's currency is credited");
    let usd = Payment { currency: Currency::parse("USD").unwrap(), ..pay("usd", 10_000) };
    assert_eq!(apply(&t.store, o.id, usd).await.unwrap().outcome, PaymentOutcome::Mismatch);
    assert_eq!(t.store.balance(1).await.unwrap(), 9_999, "money in another currency is held for the owner");
    let alerts = jobs_of_kind(&t.store, |k| matches!(k, JobKind::AlertAdmin { .. })).await;
    assert_eq!(alerts.len(), 2);
    assert_eq!(t.store.payments(10).await.unwrap().len(), 2);
    // The right payment still completes it.
    assert_eq!(apply(&t.store, o.id, pay("ok", 10_000)).await.unwrap().outcome, PaymentOutcome::Applied);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn bad_payment_input_is_refused_without_a_trace() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    assert!(matches!(apply(&t.store, o.id, pay("neg", -5)).await, Err(Error::BadInput(_))));
    assert!(matches!(apply(&t.store, o.id, pay("", 10_000)).await, Err(Error::BadInput(_))));
    assert!(matches!(apply(&t.store, 999, pay("x", 10_000)).await, Err(Error::NotFound(_))));
    assert!(t.store.payments(10).await.unwrap().is_empty());
    assert_eq!(t.store.order(o.id).await.unwrap().status, OrderStatus::Reserved);
}

#[tokio::test]
async fn reservations_are_refused_cleanly_when_stock_or_rules_say_no() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    assert!(matches!(reserve(&t.store, 1, "key", 4).await, Err(Error::OutOfStock(_))));
    assert!(matches!(reserve(&t.store, 1, "pre", 1).await, Err(Error::OutOfStock(_))));
    assert!(matches!(reserve(&t.store, 1, "off", 1).await, Err(Error::Conflict(_))));
    assert!(matches!(reserve(&t.store, 1, "nope", 1).await, Err(Error::NotFound(_))));
    assert!(matches!(reserve(&t.store, 1, "key", 0).await, Err(Error::BadInput(_))));
    assert!(matches!(reserve(&t.store, 1, "key", 101).await, Err(Error::BadInput(_))));
    assert_eq!(available(&t.store, "key").await, 3);
    assert!(t.store.orders(Default::default()).await.unwrap().is_empty());
    assert!(t.store.user(1).await.unwrap().is_none(), "a refused reservation creates no user");
    let o = reserve(&t.store, 1, "key", 3).await.unwrap();
    assert_eq!(o.stock_item_ids.len(), 3);
    assert_eq!(available(&t.store, "key").await, 0);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn discounts_set_the_price_and_lapse_at_their_end() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "sale", 1).await.unwrap();
    assert_eq!(o.unit_price, 9_990);
    assert_eq!(o.discount_percent, 10);
    assert_eq!(o.amount, 8_991);
    seed(
        &t.store,
        r#"{"products":[{"id":"sale","title":"Sale","price":99.90,"discount_percent":10,"discount_until":"2026-11-26T12:30:00Z"}]}"#,
    )
    .await;
    assert_eq!(t.store.availability(pid("sale")).await.unwrap().final_price, 8_991);
    t.clock.advance(Duration::from_secs(31 * 60));
    let a = t.store.availability(pid("sale")).await.unwrap();
    assert_eq!((a.discount_percent, a.final_price), (0, 9_990));
}

#[tokio::test]
async fn expired_reservations_return_their_items_to_stock() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 2).await.unwrap();
    let n = t.store.write(|tx| ops::expire_reservations(tx, 100)).await.unwrap();
    assert!(n.is_empty(), "nothing expires before its time");
    t.clock.advance(Duration::from_millis(TTL as u64 + 1));
    let n = t.store.write(|tx| ops::expire_reservations(tx, 100)).await.unwrap();
    assert_eq!(n, vec![o.id]);
    let o2 = t.store.order(o.id).await.unwrap();
    assert_eq!(o2.status, OrderStatus::Expired);
    assert!(o2.stock_item_ids.is_empty());
    assert_eq!(available(&t.store, "key").await, 3);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_late_payment_re_reserves_when_stock_allows() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    t.clock.advance(Duration::from_millis(TTL as u64 + 1));
    t.store.write(|tx| ops::expire_reservations(tx, 100)).await.unwrap();
    let r = apply(&t.store, o.id, pay("late", 10_000)).await.unwrap();
    assert_eq!(r.outcome, PaymentOutcome::Applied);
    assert_eq!(r.order.status, OrderStatus::Paid);
    assert_eq!(r.contents.len(), 1);
    assert_eq!(available(&t.store, "key").await, 2);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_late_payment_without_stock_is_credited_to_the_balance_and_the_customer_told() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "sale", 2).await.unwrap();
    t.clock.advance(Duration::from_millis(TTL as u64 + 1));
    t.store.write(|tx| ops::expire_reservations(tx, 100)).await.unwrap();
    reserve(&t.store, 2, "sale", 1).await.unwrap(); // someone else takes one
    let r = apply(&t.store, o.id, pay("late", o.amount)).await.unwrap();
    assert_eq!(r.outcome, PaymentOutcome::CreditedToBalance);
    assert_eq!(r.order.status, OrderStatus::Refunded);
    assert_eq!(r.balance, Some(o.amount));
    assert_eq!(t.store.balance(1).await.unwrap(), o.amount);
    let notes = jobs_of_kind(&t.store, |k| matches!(k, JobKind::NotifyUser { user_id: 1, .. })).await;
    assert_eq!(notes.len(), 1);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn pre_orders_need_a_pre_orderable_product_that_is_short_of_stock() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    assert!(matches!(prepaid(&t.store, 1, "key").await, Err(Error::Conflict(_))), "key is not pre-orderable");
    assert!(matches!(prepaid(&t.store, 1, "both").await, Err(Error::Conflict(_))), "both is in stock");
    assert!(matches!(prepaid(&t.store, 1, "off").await, Err(Error::Conflict(_))));
    let o = prepaid(&t.store, 1, "pre").await.unwrap();
    assert_eq!(o.status, OrderStatus::AwaitingPayment);
    assert_eq!(o.kind, OrderKind::Prepaid);
    assert!(o.stock_item_ids.is_empty());
    // Once "both" sells out, it can be pre-ordered.
    reserve(&t.store, 2, "both", 1).await.unwrap();
    assert!(prepaid(&t.store, 1, "both").await.is_ok());
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_paid_pre_order_notifies_the_supplier_once_and_is_fulfilled_then_delivered() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = prepaid(&t.store, 1, "pre").await.unwrap();
    let r = t.store.write(move |tx| ops::process_prepaid_payment(tx, o.id, &pay("pp", 5_000))).await.unwrap();
    assert_eq!(r.order.status, OrderStatus::Prepaid);
    assert_eq!(r.order.deadline, Some(T0 + 48 * 3_600_000));
    let again =
        t.store.write(move |tx| ops::process_prepaid_payment(tx, o.id, &pay("pp", 5_000))).await.unwrap();
    assert!(again.duplicate);
    let sup = jobs_of_kind(&t.store, |k| *k == JobKind::NotifySupplier { order_id: o.id }).await;
    assert_eq!(sup.len(), 1);

    // Not the product's supplier: looks like no such order.
    let wrong = t.store.write(move |tx| ops::fulfill_prepaid_order(tx, o.id, "CODE", Some("other"))).await;
    assert!(matches!(wrong, Err(Error::NotFound(_))));
    let empty = t.store.write(move |tx| ops::fulfill_prepaid_order(tx, o.id, "  ", Some("sup"))).await;
    assert!(matches!(empty, Err(Error::BadInput(_))));
    let f =
        t.store.write(move |tx| ops::fulfill_prepaid_order(tx, o.id, "CODE-123", Some("sup"))).await.unwrap();
    assert_eq!(f.status, OrderStatus::Ready);
    let twice = t.store.write(move |tx| ops::fulfill_prepaid_order(tx, o.id, "X", None)).await;
    assert!(matches!(twice, Err(Error::Conflict(_))));
    let all = jobs_of_kind(&t.store, |_| true).await;
    assert_eq!(deliver_jobs_for(&all, o.id), 1);
    let d = t.store.deliverable(o.id).await.unwrap();
    assert_eq!(d.contents, vec!["CODE-123".to_string()]);
    assert!(t.store.write(move |tx| ops::mark_delivered(tx, o.id, Some(9))).await.unwrap());
    assert!(!t.store.write(move |tx| ops::mark_delivered(tx, o.id, Some(9))).await.unwrap());
    assert_eq!(t.store.order(o.id).await.unwrap().status, OrderStatus::Delivered);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_pre_order_past_its_deadline_is_refunded_to_the_balance_once() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = prepaid(&t.store, 7, "pre").await.unwrap();
    apply(&t.store, o.id, pay("pp", 5_000)).await.unwrap();
    t.clock.advance(Duration::from_secs(47 * 3600));
    assert!(t.store.write(|tx| ops::refund_late_prepaid(tx, 100)).await.unwrap().is_empty());
    t.clock.advance(Duration::from_secs(3600 + 1));
    let r = t.store.write(|tx| ops::refund_late_prepaid(tx, 100)).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].amount, 5_000);
    assert_eq!(t.store.balance(7).await.unwrap(), 5_000);
    assert!(t.store.write(|tx| ops::refund_late_prepaid(tx, 100)).await.unwrap().is_empty());
    let again = t.store.write(move |tx| ops::process_refund(tx, o.id, "again")).await.unwrap();
    assert!(again.already);
    assert_eq!(t.store.balance(7).await.unwrap(), 5_000);
    let late = t.store.write(move |tx| ops::fulfill_prepaid_order(tx, o.id, "CODE", None)).await;
    assert!(matches!(late, Err(Error::Conflict(_))));
    let notes =
        jobs_of_kind(&t.store, |k| matches!(k, JobKind::NotifyUser { notice: Notice::Refunded { .. }, .. }))
            .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(t.store.ledger(7).await.unwrap().len(), 1);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn the_owner_can_extend_a_pre_order_deadline() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = prepaid(&t.store, 7, "pre").await.unwrap();
    apply(&t.store, o.id, pay("pp", 5_000)).await.unwrap();
    let new_deadline = T0 + 72 * 3_600_000;
    t.store.write(move |tx| ops::extend_deadline(tx, o.id, new_deadline)).await.unwrap();
    t.clock.advance(Duration::from_secs(49 * 3600));
    assert!(t.store.write(|tx| ops::refund_late_prepaid(tx, 100)).await.unwrap().is_empty());
    let past = t.store.write(move |tx| ops::extend_deadline(tx, o.id, T0)).await;
    assert!(matches!(past, Err(Error::BadInput(_))));
    assert_check(&t.store).await;
}

#[tokio::test]
async fn refunds_need_a_paid_order() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 1, "key", 1).await.unwrap();
    let r = t.store.write(move |tx| ops::process_refund(tx, o.id, "x")).await;
    assert!(matches!(r, Err(Error::Conflict(_))));
    apply(&t.store, o.id, pay("p", 10_000)).await.unwrap();
    let r = t.store.write(move |tx| ops::process_refund(tx, o.id, "owner")).await.unwrap();
    assert_eq!((r.amount, r.balance, r.already), (10_000, 10_000, false));
    assert_check(&t.store).await;
}

#[tokio::test]
async fn paying_from_the_balance_debits_and_completes_in_one_step() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let o = reserve(&t.store, 5, "key", 1).await.unwrap();
    let poor = t.store.write(move |tx| ops::pay_from_balance(tx, o.id, 5)).await;
    assert!(matches!(poor, Err(Error::InsufficientBalance { need: 10_000, have: 0 })));
    assert_eq!(t.store.order(o.id).await.unwrap().status, OrderStatus::Reserved);
    t.store.write(|tx| ledger::credit_balance(tx, 5, 15_000, Currency::RUB, "gift")).await.unwrap();
    let other = t.store.write(move |tx| ops::pay_from_balance(tx, o.id, 6)).await;
    assert!(matches!(other, Err(Error::NotFound(_))), "someone else's order");
    let r = t.store.write(move |tx| ops::pay_from_balance(tx, o.id, 5)).await.unwrap();
    assert_eq!(r.order.status, OrderStatus::Paid);
    assert_eq!(r.balance, Some(5_000));
    assert_eq!(t.store.balance(5).await.unwrap(), 5_000);
    let twice = t.store.write(move |tx| ops::pay_from_balance(tx, o.id, 5)).await;
    assert!(matches!(twice, Err(Error::Conflict(_))));
    assert_eq!(t.store.balance(5).await.unwrap(), 5_000);
    let all = jobs_of_kind(&t.store, |_| true).await;
    assert_eq!(deliver_jobs_for(&all, o.id), 1);
    // A pre-order paid from the balance goes to the supplier.
    let p = prepaid(&t.store, 5, "pre").await.unwrap();
    t.store.write(move |tx| ops::pay_from_balance(tx, p.id, 5)).await.unwrap();
    assert_eq!(t.store.order(p.id).await.unwrap().status, OrderStatus::Prepaid);
    assert_eq!(t.store.balance(5).await.unwrap(), 0);
    assert!(t.store.write(|tx| ledger::credit_balance(tx, 5, 0, Currency::RUB, "zero")).await.is_err());
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_failing_operation_in_a_batch_leaves_the_others_committed() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let mut tasks = Vec::new();
    for i in 0..40i64 {
        let s = t.store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |tx| {
                ledger::credit_balance(tx, 100 + i, 1_000, Currency::RUB, "batch")?;
                if i % 10 == 3 {
                    // Fails after writing: the writer must drop this op's writes.
                    return Err(Error::Internal("boom".into()));
                }
                if i % 10 == 5 {
                    // A rejection after a write is a bug in an operation, but even then
                    // its half-change must not be stored.
                    return Err(Error::conflict("rejected after writing"));
                }
                Ok(i)
            })
            .await
        }));
    }
    let mut ok = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match (i % 10, task.await.unwrap()) {
            (3, r) => assert!(matches!(r, Err(Error::Internal(_)))),
            (5, r) => assert!(matches!(r, Err(Error::Conflict(_)))),
            (_, r) => {
                r.unwrap();
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 32);
    for i in 0..40i64 {
        let b = t.store.balance(100 + i).await.unwrap();
        match i % 10 {
            3 | 5 => assert_eq!(b, 0, "a failed op's writes are gone"),
            _ => assert_eq!(b, 1_000),
        }
    }
    assert_check(&t.store).await;
}

#[tokio::test]
async fn deliveries_and_notifications_run_through_the_messenger() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    let o = reserve(app.store(), 42, "key", 1).await.unwrap();
    apply(app.store(), o.id, pay("p1", 10_000)).await.unwrap();
    app.drain_jobs().await;
    let msgs = app.messenger.messages_to(42);
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("K1"), "{}", msgs[0]);
    let d = app.store().order(o.id).await.unwrap();
    assert_eq!(d.status, OrderStatus::Delivered);
    assert_eq!(d.delivery_message_id, Some(1));
    // A delivery job that runs again does not send again.
    let job = jobs_of_kind(app.store(), |k| *k == JobKind::DeliverOrder { order_id: o.id }).await;
    assert_eq!(job[0].state, JobState::Done);

    let p = prepaid(app.store(), 42, "pre").await.unwrap();
    apply(app.store(), p.id, pay("pp", 5_000)).await.unwrap();
    app.drain_jobs().await;
    let sup = app.messenger.messages_to(777);
    assert_eq!(sup.len(), 1);
    assert!(sup[0].contains(&format!("/fulfill {}", p.id)));
    assert_eq!(app.messenger.messages_to(42).len(), 2, "pre-order confirmation");
    app.stop().await;
}
