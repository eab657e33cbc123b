//! Many buyers, few items: no oversell, clean refusals, invariants hold.

use crate::helpers::*;
use lavka::Error;
use lavka::domain::{Currency, JobKind, StockState};
use lavka::store::orders::{self as ops, Payment};

#[tokio::test]
async fn sixty_four_buyers_for_ten_items_buy_exactly_ten() {
    let t = test_store();
    let items: Vec<String> = (0..10).map(|i| format!("\"ITEM-{i}\"")).collect();
    seed(
        &t.store,
        &format!(
            r#"{{"products":[{{"id":"hot","title":"Hot","price":10}}],"stock":[{{"product_id":"hot","items":[{}]}}]}}"#,
            items.join(",")
        ),
    )
    .await;
    let mut tasks = Vec::new();
    for buyer in 0..64i64 {
        let s = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let p = pid("hot");
            let o = s.write(move |tx| ops::reserve_product_for_purchase(tx, buyer, &p, 1, 900_000)).await?;
            let pay = Payment {
                provider: "t".into(),
                external_id: format!("b{buyer}"),
                amount: o.amount,
                currency: Currency::RUB,
            };
            let id = o.id;
            let r = s.write(move |tx| ops::complete_purchase(tx, id, &pay)).await?;
            Ok::<_, Error>(r.contents)
        }));
    }
    let (mut bought, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(c) => bought.extend(c),
            Err(Error::OutOfStock(_)) => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(bought.len(), 10);
    assert_eq!(refused, 54);
    bought.sort();
    bought.dedup();
    assert_eq!(bought.len(), 10, "every buyer got a different item");
    let items = t.store.stock_items(pid("hot")).await.unwrap();
    assert!(items.iter().all(|i| i.state == StockState::Sold));
    assert_eq!(t.store.availability(pid("hot")).await.unwrap().available, 0);
    let deliveries = jobs_of_kind(&t.store, |k| matches!(k, JobKind::DeliverOrder { .. })).await;
    assert_eq!(deliveries.len(), 10);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn concurrent_duplicate_payments_apply_once() {
    let t = test_store();
    seed(&t.store, SMALL).await;
    let p = pid("key");
    let o = t.store.write(move |tx| ops::reserve_product_for_purchase(tx, 1, &p, 1, 900_000)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = t.store.clone();
        let id = o.id;
        tasks.push(tokio::spawn(async move {
            let pay = Payment {
                provider: "t".into(),
                external_id: "same".into(),
                amount: 10_000,
                currency: Currency::RUB,
            };
            s.write(move |tx| ops::apply_payment(tx, id, &pay)).await.unwrap()
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        if !task.await.unwrap().duplicate {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    let deliveries = jobs_of_kind(&t.store, |k| matches!(k, JobKind::DeliverOrder { .. })).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(t.store.balance(1).await.unwrap(), 0);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn group_commit_batches_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = lavka::store::Store::open(
        &dir.path().join("lavka.redb"),
        lavka::store::StoreOptions { gather: std::time::Duration::from_millis(100), ..Default::default() },
    )
    .unwrap();
    let before = store.writer_stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    let mut tasks = Vec::new();
    for i in 0..50i64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.write(move |tx| lavka::store::ledger::credit_balance(tx, i + 1, 1, Currency::RUB, "x")).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let commits = store.writer_stats().commits.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(commits < 50, "50 concurrent writes took {commits} commits");
    for i in 0..50 {
        assert_eq!(store.balance(i + 1).await.unwrap(), 1);
    }
}
