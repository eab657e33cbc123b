//! Catalogue import: JSON and CSV, idempotent, all-or-nothing, errors that name the line.

use crate::helpers::*;
use lavka::catalog;
use lavka::domain::Currency;
use std::path::PathBuf;

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(p)
}

async fn import(t: &TestStore, path: &std::path::Path) -> lavka::Result<catalog::ImportSummary> {
    let cat = catalog::load_path(path, Currency::RUB)?;
    t.store.write(move |tx| catalog::apply(tx, &cat)).await
}

#[tokio::test]
async fn a_csv_directory_imports_and_a_second_import_changes_nothing() {
    let t = test_store();
    let s = import(&t, &fixture("good")).await.unwrap();
    assert_eq!(s.products_created, 3);
    assert_eq!(s.stock_added, 5);
    assert_eq!(s.suppliers_created, vec!["main".to_string()]);
    let slides = t.store.product(pid("imp-slides-pack")).await.unwrap();
    assert_eq!(slides.price, 34_990);
    assert!(slides.description.contains("\"Минимализм\""), "{}", slides.description);
    let items = t.store.stock_items(pid("imp-slides-pack")).await.unwrap();
    assert!(items.iter().any(|i| i.content.contains(", пароль к архиву: \"Imp-2\"")));
    let course = t.store.product(pid("imp-course-sql")).await.unwrap();
    assert!(course.active && course.fulfillment_hours == Some(48));
    let win = t.store.availability(pid("imp-win11-pro")).await.unwrap();
    assert_eq!((win.discount_percent, win.final_price, win.available), (10, 179_100, 3));

    let again = import(&t, &fixture("good")).await.unwrap();
    assert_eq!((again.products_created, again.products_updated), (0, 3));
    assert_eq!((again.stock_added, again.stock_duplicates), (0, 5));
    assert_eq!(t.store.stock_items(pid("imp-win11-pro")).await.unwrap().len(), 3);
    assert_check(&t.store).await;
}

#[tokio::test]
async fn a_bad_price_names_its_line_and_imports_nothing() {
    let t = test_store();
    let err = import(&t, &fixture("bad_price/products.csv")).await.unwrap_err().to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("12,5x"), "{err}");
    assert!(t.store.products().await.unwrap().is_empty());
}

#[tokio::test]
async fn broken_json_names_its_line_and_imports_nothing() {
    let t = test_store();
    let err = import(&t, &fixture("bad_json.json")).await.unwrap_err().to_string();
    assert!(err.contains("line 13"), "{err}");
    assert!(t.store.products().await.unwrap().is_empty());
}

#[tokio::test]
async fn stock_for_an_unknown_product_imports_nothing() {
    let t = test_store();
    let err = import(&t, &fixture("unknown_product_stock.json")).await.unwrap_err().to_string();
    assert!(err.contains("no-such-product"), "{err}");
    assert!(t.store.products().await.unwrap().is_empty(), "not even the valid product");
}

#[tokio::test]
async fn invalid_fields_are_refused_with_the_product_named() {
    let t = test_store();
    for (json, needle) in [
        (r#"{"products":[{"id":"a b","title":"x","price":1}]}"#, "product id"),
        (r#"{"products":[{"id":"a","title":" ","price":1}]}"#, "title is empty"),
        (r#"{"products":[{"id":"a","title":"x","price":-1}]}"#, "negative"),
        (r#"{"products":[{"id":"a","title":"x","price":1.005}]}"#, "decimal places"),
        (r#"{"products":[{"id":"a","title":"x","price":1,"discount_percent":120}]}"#, "discount_percent"),
        (r#"{"products":[{"id":"a","title":"x","price":1,"discount_until":"tomorrow"}]}"#, "RFC 3339"),
        (r#"{"products":[{"id":"a","title":"x","price":1,"prise":2}]}"#, "unknown field"),
        (r#"{"products":[{"id":"a","title":"x","price":1},{"id":"a","title":"y","price":2}]}"#, "twice"),
        (r#"{"currency":"RUBLES","products":[]}"#, "currency"),
    ] {
        let err = catalog::parse_json(json, Currency::RUB).unwrap_err().to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
    assert!(t.store.products().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_demo_catalogue_imports_cleanly() {
    let t = test_store();
    let cat = catalog::parse_json(catalog::DEMO_CATALOG, Currency::RUB).unwrap();
    assert!(cat.products.len() >= 25);
    let s = t.store.write(move |tx| catalog::apply(tx, &cat)).await.unwrap();
    assert!(s.stock_added > 50);
    let avail = t.store.available_stock_with_discounts().await.unwrap();
    assert!(
        avail.iter().any(|a| a.available == 0 && a.can_fulfill && a.fulfillment_hours.is_some()),
        "pre-order only products"
    );
    assert!(avail.iter().any(|a| a.discount_percent > 0), "a discount in force");
    assert!(avail.iter().any(|a| !a.active));
    assert_check(&t.store).await;
}
