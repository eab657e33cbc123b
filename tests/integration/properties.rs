//! Property test of the order state machine: random sequences of operations (including
//! invalid and duplicate ones) never break an invariant of `lavka check`, and money is
//! conserved: every accepted payment is settled, credited, or recorded as a mismatch.

use crate::helpers::*;
use lavka::domain::{Currency, OrderKind, PaymentOutcome};
use lavka::store::orders::{self as ops, Payment};
use lavka::store::{ledger, products};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Reserve { user: i64, product: usize, qty: u32 },
    Prepaid { user: i64, product: usize },
    Pay { order: u64, ext: u8, wrong: bool },
    PayBalance { order: u64, user: i64 },
    Credit { user: i64, amount: i64 },
    Advance { minutes: u64 },
    Expire,
    RefundLate,
    Refund { order: u64 },
    Fulfill { order: u64 },
    Delivered { order: u64 },
    AddStock { product: usize, n: u8 },
}

const PRODUCTS: [&str; 5] = ["key", "pre", "both", "off", "sale"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..4i64, 0..5usize, 1..3u32).prop_map(|(user, product, qty)| Op::Reserve { user, product, qty }),
        2 => (1..4i64, 0..5usize).prop_map(|(user, product)| Op::Prepaid { user, product }),
        4 => (1..12u64, 0..4u8, prop::bool::weighted(0.15)).prop_map(|(order, ext, wrong)| Op::Pay { order, ext, wrong }),
        1 => (1..12u64, 1..4i64).prop_map(|(order, user)| Op::PayBalance { order, user }),
        1 => (1..4i64, 1..20_000i64).prop_map(|(user, amount)| Op::Credit { user, amount }),
        2 => (1..3000u64).prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::Expire),
        1 => Just(Op::RefundLate),
        1 => (1..12u64).prop_map(|order| Op::Refund { order }),
        1 => (1..12u64).prop_map(|order| Op::Fulfill { order }),
        1 => (1..12u64).prop_map(|order| Op::Delivered { order }),
        1 => (0..5usize, 1..3u8).prop_map(|(product, n)| Op::AddStock { product, n }),
    ]
}

async fn run(ops_list: Vec<Op>) -> Result<(), TestCaseError> {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let mut stock_seq = 0u32;
    let mut accepted_payments = 0usize;
    for op in ops_list {
        let s = &t.store;
        // Results are ignored: refusals are part of the game; invariants are what counts.
        match op {
            Op::Reserve { user, product, qty } => {
                let p = pid(PRODUCTS[product]);
                let _ =
                    s.write(move |tx| ops::reserve_product_for_purchase(tx, user, &p, qty, 900_000)).await;
            }
            Op::Prepaid { user, product } => {
                let p = pid(PRODUCTS[product]);
                let _ = s
                    .write(move |tx| {
                        ops::create_order_with_availability_check(
                            tx,
                            user,
                            &p,
                            1,
                            OrderKind::Prepaid,
                            900_000,
                        )
                    })
                    .await;
            }
            Op::Pay { order, ext, wrong } => {
                if let Ok(o) = s.order(order).await {
                    let pay = Payment {
                        provider: "p".into(),
                        external_id: format!("{order}-{ext}"),
                        amount: if wrong { o.amount + 1 } else { o.amount },
                        currency: Currency::RUB,
                    };
                    if let Ok(r) = s.write(move |tx| ops::apply_payment(tx, order, &pay)).await
                        && !r.duplicate
                    {
                        accepted_payments += 1;
                        prop_assert!(matches!(
                            r.outcome,
                            PaymentOutcome::Applied
                                | PaymentOutcome::CreditedToBalance
                                | PaymentOutcome::Mismatch
                        ));
                    }
                }
            }
            Op::PayBalance { order, user } => {
                if s.write(move |tx| ops::pay_from_balance(tx, order, user)).await.is_ok() {
                    accepted_payments += 1;
                }
            }
            Op::Credit { user, amount } => {
                let _ =
                    s.write(move |tx| ledger::credit_balance(tx, user, amount, Currency::RUB, "prop")).await;
            }
            Op::Advance { minutes } => t.clock.advance(Duration::from_secs(minutes * 60)),
            Op::Expire => {
                let _ = s.write(|tx| ops::expire_reservations(tx, 100)).await;
            }
            Op::RefundLate => {
                let _ = s.write(|tx| ops::refund_late_prepaid(tx, 100)).await;
            }
            Op::Refund { order } => {
                let _ = s.write(move |tx| ops::process_refund(tx, order, "prop")).await;
            }
            Op::Fulfill { order } => {
                let _ = s.write(move |tx| ops::fulfill_prepaid_order(tx, order, "SUPPLIED", None)).await;
            }
            Op::Delivered { order } => {
                let _ = s.write(move |tx| ops::mark_delivered(tx, order, Some(1))).await;
            }
            Op::AddStock { product, n } => {
                let p = pid(PRODUCTS[product]);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        stock_seq += 1;
                        format!("NEW-{stock_seq}")
                    })
                    .collect();
                let _ = s.write(move |tx| products::add_stock(tx, &p, &items)).await;
            }
        }
    }
    let report = t.store.check().await.unwrap();
    prop_assert!(report.ok(), "{}", report);
    prop_assert_eq!(t.store.payments(10_000).await.unwrap().len(), accepted_payments);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_never_break_an_invariant(ops_list in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops_list))?;
    }
}
