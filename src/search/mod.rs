//! Product search: one entry point for the consultant, the bot and the Mini App.
//!
//! The keyword index (tantivy) is derived from the store and kept in step by
//! [`Search::refresh`], which re-indexes only products whose searchable text changed (a
//! content hash per product is kept next to the index). The store signals every committed
//! product change, and the running app refreshes on that signal.

pub mod eval;
pub mod keyword;
pub mod model;

use crate::domain::{Product, ProductId};
use crate::error::{Error, Result};
use crate::store::Store;
use keyword::KeywordIndex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const HASHES_FILE: &str = "lavka-indexed.json";

/// One search result.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    pub id: ProductId,
    pub title: String,
    /// Fused score, higher is better (comparable within one query only).
    pub score: f32,
    /// Rank in the keyword list (1 = best), if the product was there.
    pub keyword_rank: Option<usize>,
}

struct Inner {
    store: Store,
    keyword: KeywordIndex,
    /// product id → hash of its indexed text (and active flag), as in the index.
    indexed: Mutex<HashMap<String, String>>,
    /// Serialises refreshes (the index has one writer).
    refreshing: tokio::sync::Mutex<()>,
    dir: PathBuf,
}

/// A cheap handle to the search engine.
#[derive(Clone)]
pub struct Search {
    inner: Arc<Inner>,
}

fn text_hash(p: &Product) -> String {
    let mut h = Sha256::new();
    for part in [p.title.as_str(), &p.tags.join("\u{1f}"), &p.category, &p.description] {
        h.update(part.as_bytes());
        h.update([0x1e]);
    }
    h.update([p.active as u8]);
    hex::encode(&h.finalize()[..12])
}

impl Search {
    /// Opens (or rebuilds) the index in `dir` and brings it up to date with the store.
    pub async fn open(dir: &Path, store: Store) -> Result<Search> {
        let d = dir.to_path_buf();
        let (keyword, fresh) = tokio::task::spawn_blocking(move || KeywordIndex::open(&d))
            .await
            .map_err(|e| Error::internal(format!("index task: {e}")))??;
        let indexed = if fresh {
            HashMap::new()
        } else {
            match std::fs::read(dir.join(HASHES_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                Some(m) => m,
                None => {
                    // The index exists but we do not know what is in it: start over.
                    keyword.clear()?;
                    HashMap::new()
                }
            }
        };
        let s = Search {
            inner: Arc::new(Inner {
                store,
                keyword,
                indexed: Mutex::new(indexed),
                refreshing: tokio::sync::Mutex::new(()),
                dir: dir.to_path_buf(),
            }),
        };
        let n = s.refresh().await?;
        if n > 0 {
            tracing::info!(products = n, "keyword index updated");
        }
        Ok(s)
    }

    /// Re-indexes products whose searchable text changed since the last refresh; returns how
    /// many documents changed.
    pub async fn refresh(&self) -> Result<usize> {
        let _one = self.inner.refreshing.lock().await;
        let products = self.inner.store.products().await?;
        let (upsert, remove, next) = {
            let indexed = self.inner.indexed.lock().map_err(|_| Error::internal("search lock"))?;
            let mut next = HashMap::with_capacity(products.len());
            let mut upsert = Vec::new();
            for p in products {
                let h = text_hash(&p);
                if indexed.get(p.id.as_str()) != Some(&h) {
                    upsert.push(p.clone());
                }
                next.insert(p.id.to_string(), h);
            }
            let remove: Vec<ProductId> = indexed
                .keys()
                .filter(|k| !next.contains_key(*k))
                .filter_map(|k| ProductId::parse(k).ok())
                .collect();
            (upsert, remove, next)
        };
        let changed = upsert.len() + remove.len();
        if changed == 0 {
            return Ok(0);
        }
        let inner = self.inner.clone();
        let json = serde_json::to_vec(&next)?;
        tokio::task::spawn_blocking(move || -> Result<()> {
            inner.keyword.apply(&upsert, &remove)?;
            let tmp = inner.dir.join(format!("{HASHES_FILE}.tmp"));
            std::fs::write(&tmp, &json)?;
            std::fs::rename(&tmp, inner.dir.join(HASHES_FILE))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("index task: {e}")))??;
        *self.inner.indexed.lock().map_err(|_| Error::internal("search lock"))? = next;
        Ok(changed)
    }

    /// Keeps the index in step with the store until `cancel` fires.
    pub fn spawn_refresher(&self, tracker: &tokio_util::task::TaskTracker, cancel: CancellationToken) {
        let s = self.clone();
        let signal = self.inner.store.products_signal();
        tracker.spawn(async move {
            loop {
                let notified = signal.notified();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = notified => {}
                }
                if let Err(e) = s.refresh().await {
                    tracing::error!(error = %e, "search index refresh failed");
                }
            }
        });
    }

    /// Products matching `query`, best first, at most `limit`. Inactive products never appear.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        let q = query.trim().to_string();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        if q.chars().count() > 500 {
            return Err(Error::bad("the search query is longer than 500 characters"));
        }
        let inner = self.inner.clone();
        let limit = limit.clamp(1, 100);
        let kw = tokio::task::spawn_blocking(move || inner.keyword.search(&q, limit))
            .await
            .map_err(|e| Error::internal(format!("search task: {e}")))??;
        let products = self.inner.store.products().await?;
        let titles: HashMap<&str, &Product> = products.iter().map(|p| (p.id.as_str(), p)).collect();
        Ok(kw
            .into_iter()
            .enumerate()
            .filter_map(|(i, (id, score))| {
                let p = titles.get(id.as_str()).filter(|p| p.active)?;
                Some(Hit { title: p.title.clone(), id, score, keyword_rank: Some(i + 1) })
            })
            .collect())
    }

    /// Number of indexed (active) products.
    pub fn indexed(&self) -> u64 {
        self.inner.keyword.len()
    }
}
