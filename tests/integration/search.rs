//! Search: the keyword index follows the store, rebuilds itself, and never shows inactive
//! products.

use crate::helpers::*;
use lavka::catalog;
use lavka::domain::Currency;
use lavka::search::Search;
use lavka::store::products;

async fn demo(t: &TestStore) {
    let cat = catalog::parse_json(catalog::DEMO_CATALOG, Currency::RUB).unwrap();
    t.store.write(move |tx| catalog::apply(tx, &cat)).await.unwrap();
}

fn ids(hits: &[lavka::search::Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

#[tokio::test]
async fn presentation_templates_come_first_for_a_russian_request() {
    let t = test_store();
    demo(&t).await;
    let s = Search::open(&t.dir.path().join("index"), t.store.clone(), None).await.unwrap();
    let hits = s.search("нужны шаблоны для презентации", 5).await.unwrap();
    assert!(ids(&hits)[0].starts_with("ppt-"), "{hits:?}");
    let typo = s.search("шаблоны презинтаций", 5).await.unwrap();
    assert!(ids(&typo)[..3].iter().filter(|i| i.starts_with("ppt-")).count() >= 2, "{typo:?}");
    assert!(s.search("   ", 5).await.unwrap().is_empty());
    assert!(s.search(&"x".repeat(600), 5).await.is_err());
}

#[tokio::test]
async fn inactive_products_never_appear_and_changes_show_after_refresh() {
    let t = test_store();
    demo(&t).await;
    let s = Search::open(&t.dir.path().join("index"), t.store.clone(), None).await.unwrap();
    // win10-pro is inactive in the demo catalogue.
    assert!(!ids(&s.search("windows 10", 10).await.unwrap()).contains(&"win10-pro"));
    let p = pid("vpn-1m");
    t.store.write(move |tx| products::set_product_active(tx, &p, false)).await.unwrap();
    assert_eq!(s.refresh().await.unwrap(), 1);
    assert!(!ids(&s.search("vpn", 10).await.unwrap()).contains(&"vpn-1m"));
    // A new product is found; an unchanged catalogue re-indexes nothing.
    seed(&t.store, r#"{"products":[{"id":"quokka-kit","title":"Набор стикеров квокка","price":99}]}"#).await;
    assert_eq!(s.refresh().await.unwrap(), 1);
    assert_eq!(ids(&s.search("квокка", 3).await.unwrap()), vec!["quokka-kit"]);
    assert_eq!(s.refresh().await.unwrap(), 0);
}

#[tokio::test]
async fn a_deleted_or_corrupt_index_is_rebuilt_from_the_store() {
    let t = test_store();
    demo(&t).await;
    let dir = t.dir.path().join("index");
    let n = {
        let s = Search::open(&dir, t.store.clone(), None).await.unwrap();
        s.indexed()
    };
    assert!(n > 20);
    std::fs::remove_dir_all(&dir).unwrap();
    let s = Search::open(&dir, t.store.clone(), None).await.unwrap();
    assert_eq!(s.indexed(), n);
    drop(s);
    // Garbage in the index files: rebuilt, not a crash.
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json")
            && p.file_name().unwrap().to_str().unwrap().starts_with("meta")
        {
            std::fs::write(&p, b"{ not json").unwrap();
        }
    }
    let s = Search::open(&dir, t.store.clone(), None).await.unwrap();
    assert_eq!(s.indexed(), n);
    assert!(!s.search("minecraft", 3).await.unwrap().is_empty());
    drop(s);
    // An index from another version is rebuilt too.
    std::fs::write(dir.join("lavka-index-version"), "lavka-keyword-0").unwrap();
    let s = Search::open(&dir, t.store.clone(), None).await.unwrap();
    assert_eq!(s.indexed(), n);
}

#[tokio::test]
async fn the_running_app_reindexes_on_product_changes_and_serves_search() {
    let app = spawn_app().await;
    seed(app.store(), SMALL).await;
    // The refresher is woken by the commit; wait (bounded) for it.
    let mut found = Vec::new();
    for _ in 0..200 {
        let r = app.client.get(format!("{}/api/search?q=sale", app.base)).send().await.unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        found =
            v["results"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(found, vec!["sale".to_string()]);
    app.stop().await;
}
