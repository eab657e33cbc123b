//! Product search: one entry point for the consultant, the bot and the Mini App.
//!
//! Two lists are fused: keywords (tantivy, [`keyword`]) and meaning (sentence embeddings,
//! [`embed`], scanned exactly in [`vectors`]). Both are derived from the store and kept in
//! step by [`Search::refresh`], which re-indexes only products whose searchable text
//! changed (a content hash per product is kept next to the index) and reuses stored
//! vectors while text and model are unchanged. Without a model, search runs on keywords
//! alone. Inactive products are never returned.

pub mod embed;
pub mod eval;
pub mod keyword;
pub mod model;
pub mod names;
pub mod query;
pub mod sound;
pub mod vectors;

use crate::domain::{Product, ProductId};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::embeddings::StoredVector;
use embed::Embedder;
use keyword::KeywordIndex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio_util::sync::CancellationToken;
use vectors::{FlatIndex, VectorIndex};

const HASHES_FILE: &str = "lavka-indexed.json";
/// Candidates taken from each list before fusion.
const CANDIDATES: usize = 30;
/// Results re-ordered by availability before the limit is applied.
const RERANK: usize = 10;
/// Texts per embedding call while indexing.
const EMBED_BATCH: usize = 16;

/// One search result.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    pub id: ProductId,
    pub title: String,
    /// Fused score, higher is better (comparable within one query only).
    pub score: f32,
    /// Rank in the keyword list (1 = best), if the product was there.
    pub keyword_rank: Option<usize>,
    /// Rank in the vector list, if the product was there.
    #[serde(default)]
    pub vector_rank: Option<usize>,
    /// Cosine similarity to the query, when vectors were used.
    #[serde(default)]
    pub similarity: Option<f32>,
    /// The share of the query's words the product contains (keyword list), 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f32>,
}

/// What ranking needs to know of a product besides the indexes.
#[derive(Clone, Debug)]
struct Meta {
    title: String,
    /// The English title, when the catalogue has one (else empty).
    title_en: String,
    active: bool,
    /// The quantities its title names (variants differ in them).
    quantities: Vec<query::Quantity>,
    /// Pre-orderable when out of stock.
    preorder: bool,
}

/// Where one query's time went, in microseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Timings {
    pub embed_us: u64,
    pub bm25_us: u64,
    pub scan_us: u64,
    pub fuse_us: u64,
    pub total_us: u64,
}

/// Which ranking to use (the hybrid is the product's; the others are for measurement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Keyword,
    Vector,
    /// Reciprocal rank fusion of both lists (k = 60), for comparison.
    Rrf,
    /// BM25 relative to the best hit, weighted, plus the cosine, for comparison.
    Weighted,
    Hybrid,
}

struct Inner {
    store: Store,
    keyword: KeywordIndex,
    embedder: RwLock<Option<Arc<dyn Embedder>>>,
    vectors: RwLock<FlatIndex>,
    /// product id → hash of its indexed text (and active flag), as in the index.
    indexed: Mutex<HashMap<String, String>>,
    /// product id → what ranking needs, refreshed with the index: results are shaped
    /// without reading the store's products on every query.
    meta: RwLock<HashMap<String, Meta>>,
    /// Every active product has its vector for the current model: until then the hybrid
    /// ranks by keywords alone (a partial vector list ranks wrongly).
    complete: std::sync::atomic::AtomicBool,
    /// Recent query embeddings: customers repeat queries ("каспер", "стим 1000"), and a
    /// query's embedding is most of its cost.
    query_vectors: Mutex<QueryCache>,
    /// product id → hash of the text its vector was computed from.
    embedded: Mutex<HashMap<String, [u8; 16]>>,
    /// Serialises refreshes (the index has one writer).
    refreshing: tokio::sync::Mutex<()>,
    /// Bumped after every refresh: readers of derived catalogue views (the consultant's
    /// catalogue summary) rebuild when it moves.
    generation: std::sync::atomic::AtomicU64,
    dir: PathBuf,
}

/// The last [`QueryCache::CAPACITY`] query embeddings, oldest evicted first.
#[derive(Default)]
struct QueryCache {
    map: HashMap<String, Arc<Vec<f32>>>,
    order: std::collections::VecDeque<String>,
}

impl QueryCache {
    const CAPACITY: usize = 1024;

    fn get(&self, q: &str) -> Option<Arc<Vec<f32>>> {
        self.map.get(q).cloned()
    }

    fn put(&mut self, q: &str, v: Arc<Vec<f32>>) {
        if self.map.insert(q.to_string(), v).is_none() {
            self.order.push_back(q.to_string());
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.map.remove(&old);
            }
        }
    }
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

/// The text a product's vector is computed from.
pub fn passage(p: &Product) -> String {
    let tags = if p.tags.is_empty() { String::new() } else { format!(" {}.", p.tags.join(", ")) };
    format!("passage: {}. {}. {}{}", p.title.trim(), p.category.trim(), p.description.trim(), tags)
}

/// The hash a stored vector is keyed by.
pub fn passage_hash(text: &str) -> [u8; 16] {
    let d = Sha256::digest(text.as_bytes());
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("search task: {e}")))?
}

impl Search {
    /// Opens (or rebuilds) the index in `dir` and brings it up to date with the store;
    /// `embedder` adds meaning to keywords.
    pub async fn open(dir: &Path, store: Store, embedder: Option<Arc<dyn Embedder>>) -> Result<Search> {
        let d = dir.to_path_buf();
        let (keyword, fresh) = blocking(move || KeywordIndex::open(&d)).await?;
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
                embedder: RwLock::new(None),
                meta: RwLock::new(HashMap::new()),
                complete: std::sync::atomic::AtomicBool::new(false),
                query_vectors: Mutex::new(QueryCache::default()),
                vectors: RwLock::new(FlatIndex::new(0)),
                indexed: Mutex::new(indexed),
                embedded: Mutex::new(HashMap::new()),
                refreshing: tokio::sync::Mutex::new(()),
                generation: std::sync::atomic::AtomicU64::new(0),
                dir: dir.to_path_buf(),
            }),
        };
        match embedder {
            Some(e) => s.set_embedder(e).await?,
            None => {
                let n = s.refresh().await?;
                if n > 0 {
                    tracing::info!(products = n, "search index updated");
                }
            }
        }
        Ok(s)
    }

    /// Adds meaning to keywords: loads the vectors stored for this model, computes the
    /// missing ones, and from then on ranks by both.
    pub async fn set_embedder(&self, e: Arc<dyn Embedder>) -> Result<()> {
        let _one = self.inner.refreshing.lock().await;
        self.inner.complete.store(false, std::sync::atomic::Ordering::Release);
        if let Ok(mut c) = self.inner.query_vectors.lock() {
            *c = QueryCache::default();
        }
        let mut flat = FlatIndex::new(e.dim());
        let mut embedded = HashMap::new();
        for v in self.inner.store.embeddings(e.model_id().to_string()).await? {
            flat.upsert(&v.product, &v.vector);
            embedded.insert(v.product.to_string(), v.text_hash);
        }
        *self.inner.vectors.write().map_err(|_| Error::internal("search lock"))? = flat;
        *self.inner.embedded.lock().map_err(|_| Error::internal("search lock"))? = embedded;
        *self.inner.embedder.write().map_err(|_| Error::internal("search lock"))? = Some(e);
        drop(_one);
        let n = self.refresh().await?;
        if n > 0 {
            tracing::info!(products = n, "search index updated");
        }
        Ok(())
    }

    fn embedder(&self) -> Option<Arc<dyn Embedder>> {
        self.inner.embedder.read().ok().and_then(|e| e.clone())
    }

    /// Whether meaning (vectors) takes part in ranking.
    pub fn semantic(&self) -> bool {
        self.embedder().is_some()
    }

    /// Re-indexes products whose searchable text changed since the last refresh and
    /// computes missing vectors; returns how many products changed.
    pub async fn refresh(&self) -> Result<usize> {
        let _one = self.inner.refreshing.lock().await;
        let products = self.inner.store.products().await?;
        let meta = products
            .iter()
            .map(|p| {
                let m = Meta {
                    title: p.title.clone(),
                    title_en: p.en.as_ref().and_then(|e| e.title.clone()).unwrap_or_default(),
                    active: p.active,
                    quantities: query::parse(&p.title).quantities,
                    preorder: p.lead_minutes().is_some(),
                };
                (p.id.to_string(), m)
            })
            .collect();
        *self.inner.meta.write().map_err(|_| Error::internal("search lock"))? = meta;
        let changed = self.refresh_keywords(&products).await?;
        self.inner.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        self.refresh_vectors(&products).await?;
        Ok(changed)
    }

    /// Moves whenever the catalogue may have changed (see [`Search::refresh`]).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn refresh_keywords(&self, products: &[Product]) -> Result<usize> {
        let (upsert, remove, next) = {
            let indexed = self.inner.indexed.lock().map_err(|_| Error::internal("search lock"))?;
            let mut next = HashMap::with_capacity(products.len());
            let mut upsert = Vec::new();
            for p in products {
                let h = text_hash(p);
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
        blocking(move || {
            inner.keyword.apply(&upsert, &remove)?;
            let tmp = inner.dir.join(format!("{HASHES_FILE}.tmp"));
            std::fs::write(&tmp, &json)?;
            std::fs::rename(&tmp, inner.dir.join(HASHES_FILE))?;
            Ok(())
        })
        .await?;
        *self.inner.indexed.lock().map_err(|_| Error::internal("search lock"))? = next;
        Ok(changed)
    }

    async fn refresh_vectors(&self, products: &[Product]) -> Result<()> {
        let Some(embedder) = self.embedder() else { return Ok(()) };
        let todo: Vec<(ProductId, String, [u8; 16])> = {
            let embedded = self.inner.embedded.lock().map_err(|_| Error::internal("search lock"))?;
            products
                .iter()
                .map(|p| {
                    let text = passage(p);
                    let h = passage_hash(&text);
                    (p.id.clone(), text, h)
                })
                .filter(|(id, _, h)| embedded.get(id.as_str()) != Some(h))
                .collect()
        };
        if !todo.is_empty() {
            self.inner.complete.store(false, std::sync::atomic::Ordering::Release);
        }
        let live: std::collections::HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
        {
            let mut v = self.inner.vectors.write().map_err(|_| Error::internal("search lock"))?;
            let mut embedded = self.inner.embedded.lock().map_err(|_| Error::internal("search lock"))?;
            let gone: Vec<String> = embedded.keys().filter(|k| !live.contains(k.as_str())).cloned().collect();
            for k in gone {
                if let Ok(id) = ProductId::parse(&k) {
                    v.remove(&id);
                }
                embedded.remove(&k);
            }
        }
        if !todo.is_empty() {
            tracing::info!(products = todo.len(), model = embedder.model_id(), "computing product vectors");
        }
        for chunk in todo.chunks(EMBED_BATCH) {
            let texts: Vec<String> = chunk.iter().map(|(_, t, _)| t.clone()).collect();
            let e = embedder.clone();
            let vecs = blocking(move || e.embed(&texts)).await?;
            let rows: Vec<StoredVector> = chunk
                .iter()
                .zip(vecs)
                .map(|((id, _, h), v)| StoredVector { product: id.clone(), text_hash: *h, vector: v })
                .collect();
            let model = embedder.model_id().to_string();
            let stored = rows.clone();
            self.inner.store.write(move |tx| crate::store::embeddings::put(tx, &model, &stored)).await?;
            let mut v = self.inner.vectors.write().map_err(|_| Error::internal("search lock"))?;
            let mut embedded = self.inner.embedded.lock().map_err(|_| Error::internal("search lock"))?;
            for r in rows {
                v.upsert(&r.product, &r.vector);
                embedded.insert(r.product.to_string(), r.text_hash);
            }
        }
        self.inner.complete.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Whether every product has its vector (the hybrid uses vectors only then).
    pub fn vectors_complete(&self) -> bool {
        self.semantic() && self.inner.complete.load(std::sync::atomic::Ordering::Acquire)
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

    /// Products matching `query`, best first, at most `limit`; none when nothing in the
    /// shop is about it.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        self.search_with(query, limit, Mode::Hybrid).await
    }

    /// The same for a customer's message, however long (its first words).
    pub async fn relevant(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        self.search(&bounded(query), limit).await
    }

    /// The same with a chosen ranking (for measurement).
    pub async fn search_with(&self, query: &str, limit: usize, mode: Mode) -> Result<Vec<Hit>> {
        Ok(self.search_timed(query, limit, mode).await?.0)
    }

    /// The same, with where the time went.
    pub async fn search_timed(&self, query: &str, limit: usize, mode: Mode) -> Result<(Vec<Hit>, Timings)> {
        let started = std::time::Instant::now();
        let mut t = Timings::default();
        let q = query.trim().to_string();
        if q.is_empty() {
            return Ok((Vec::new(), t));
        }
        if q.chars().count() > 500 {
            return Err(Error::bad("the search query is longer than 500 characters"));
        }
        let limit = limit.clamp(1, 100);
        // While vectors are incomplete (start, import, model change) the hybrid is the
        // keyword list: a partial vector list ranks whatever has a vector first.
        let mode = if mode == Mode::Hybrid && !self.vectors_complete() { Mode::Keyword } else { mode };
        let want_kw = mode != Mode::Vector;
        let want_vec = mode != Mode::Keyword;
        let k = CANDIDATES.max(limit);
        // Both lists at once: the query's embedding and BM25 each take a core.
        let inner = self.inner.clone();
        let q2 = q.clone();
        let kw_task = async move {
            if !want_kw {
                return Ok((Vec::new(), 0));
            }
            blocking(move || {
                let t = std::time::Instant::now();
                let kw = inner.keyword.search_scored(&q2, k)?;
                Ok((kw, t.elapsed().as_micros() as u64))
            })
            .await
        };
        let vec_task = async { if want_vec { self.vector_list(&q, k).await } else { (Vec::new(), 0, 0) } };
        let (kw, (vec, embed_us, scan_us)) = tokio::join!(kw_task, vec_task);
        let (mut kw, bm25_us) = kw?;
        (t.bm25_us, t.embed_us, t.scan_us) = (bm25_us, embed_us, scan_us);
        let fuse_started = std::time::Instant::now();
        if mode == Mode::Hybrid {
            kw = self.with_vector_coverage(&q, kw, &vec).await?;
        }
        let mut out = self.shape(&q, mode, &kw, &vec, limit)?;
        if matches!(mode, Mode::Hybrid | Mode::Keyword) && out.len() > 1 {
            out = self.prefer_available(out).await?;
        }
        t.fuse_us = fuse_started.elapsed().as_micros() as u64;
        t.total_us = started.elapsed().as_micros() as u64;
        Ok((out.into_iter().map(|(h, _)| h).take(limit).collect(), t))
    }

    /// The fused, floored, variant-adjusted list of active products, with whether each is
    /// pre-orderable.
    fn shape(
        &self,
        q: &str,
        mode: Mode,
        kw: &[keyword::KeywordHit],
        vec: &[(ProductId, f32)],
        limit: usize,
    ) -> Result<Vec<(Hit, bool)>> {
        let meta = self.inner.meta.read().map_err(|_| Error::internal("search lock"))?;
        let fused = match mode {
            Mode::Keyword => rank::floor(rank::relative(rank::only_keyword(kw)), false),
            Mode::Vector => rank::only_vector(vec),
            Mode::Rrf => rank::rrf(kw, vec),
            Mode::Weighted => rank::weighted(kw, vec),
            Mode::Hybrid => rank::floor(rank::fuse(kw, vec), true),
        };
        let fused = if matches!(mode, Mode::Hybrid | Mode::Keyword) {
            let want = query::parse(q).quantities;
            let fused =
                rank::variants(fused, &want, |id| meta.get(id.as_str()).map(|m| m.quantities.as_slice()));
            rank::editions(fused, q, |id| meta.get(id.as_str()).map(|m| m.title.as_str()))
        } else {
            fused
        };
        Ok(fused
            .into_iter()
            .filter_map(|mut h| {
                let m = meta.get(h.id.as_str())?;
                if !m.active {
                    return None;
                }
                h.title = m.title.clone();
                Some((h, m.preorder))
            })
            .take(limit.max(RERANK))
            .collect())
    }

    /// The keyword list extended by the vector list's products the keyword list did not
    /// reach but that match words of the query: a catalogue with 40 "Steam" products must
    /// not give the word's credit to the first 30 only.
    async fn with_vector_coverage(
        &self,
        q: &str,
        mut kw: Vec<keyword::KeywordHit>,
        vec: &[(ProductId, f32)],
    ) -> Result<Vec<keyword::KeywordHit>> {
        let missing: Vec<ProductId> =
            vec.iter().map(|(id, _)| id).filter(|id| !kw.iter().any(|k| &k.id == *id)).cloned().collect();
        if missing.is_empty() {
            return Ok(kw);
        }
        let inner = self.inner.clone();
        let q2 = q.to_string();
        let ids = missing.clone();
        let cov = blocking(move || inner.keyword.coverage_of(&q2, &ids)).await?;
        for (id, coverage) in missing.into_iter().zip(cov) {
            if coverage > 0.0 {
                kw.push(keyword::KeywordHit { id, score: 0.0, coverage });
            }
        }
        Ok(kw)
    }

    /// The products `text` names ([`names`]), on sale or not, with whether each is on sale;
    /// ordered by id.
    pub fn named(&self, text: &str) -> Result<Vec<(ProductId, bool)>> {
        let words = names::content_words(&bounded(text));
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let meta = self.inner.meta.read().map_err(|_| Error::internal("search lock"))?;
        let mut out: Vec<(ProductId, bool)> = meta
            .iter()
            .filter(|(_, m)| {
                names::names(&words, &m.title)
                    || (!m.title_en.is_empty() && names::names(&words, &m.title_en))
            })
            .filter_map(|(id, m)| ProductId::parse(id).ok().map(|id| (id, m.active)))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The raw lists of a query as the hybrid fuses them (for calibration).
    pub async fn lists(&self, q: &str) -> Result<(Vec<keyword::KeywordHit>, Vec<(ProductId, f32)>)> {
        let inner = self.inner.clone();
        let q2 = q.to_string();
        let kw = blocking(move || inner.keyword.search_scored(&q2, CANDIDATES)).await?;
        let vec = self.vector_list(q, CANDIDATES).await.0;
        Ok((self.with_vector_coverage(q, kw, &vec).await?, vec))
    }

    /// Each product's sale class (0 in stock, 1 pre-order, 2 sold out), by id.
    pub async fn stock_of(&self, ids: impl Iterator<Item = ProductId>) -> Result<HashMap<String, u8>> {
        let mut ids: Vec<ProductId> = ids.collect();
        ids.sort();
        ids.dedup();
        let counts = self.inner.store.stock_counts(ids.clone()).await?;
        let meta = self.inner.meta.read().map_err(|_| Error::internal("search lock"))?;
        Ok(ids
            .iter()
            .zip(counts)
            .map(|(id, n)| {
                let pre = meta.get(id.as_str()).is_some_and(|m| m.preorder);
                (
                    id.to_string(),
                    if n > 0 {
                        0
                    } else if pre {
                        1
                    } else {
                        2
                    },
                )
            })
            .collect())
    }

    /// Among equally good matches, what can be bought now comes first, then what can be
    /// pre-ordered, then what is sold out; otherwise the order stands.
    async fn prefer_available(&self, hits: Vec<(Hit, bool)>) -> Result<Vec<(Hit, bool)>> {
        let ids: Vec<ProductId> = hits.iter().map(|(h, _)| h.id.clone()).collect();
        let counts = self.inner.store.stock_counts(ids).await?;
        let mut ranked: Vec<(Hit, bool, u8)> = hits
            .into_iter()
            .zip(counts)
            .map(|((h, pre), n)| {
                let class = if n > 0 {
                    0
                } else if pre {
                    1
                } else {
                    2
                };
                (h, pre, class)
            })
            .collect();
        // Stable: ties (scores within a hair) are ordered by class, the rest keep their rank.
        let mut i = 0;
        while i < ranked.len() {
            let mut j = i + 1;
            while j < ranked.len() && ranked[i].0.score - ranked[j].0.score <= rank::TIE {
                j += 1;
            }
            ranked[i..j].sort_by_key(|r| r.2);
            i = j;
        }
        Ok(ranked.into_iter().map(|(h, pre, _)| (h, pre)).collect())
    }

    /// The vector list for a query, with the embedding's and the scan's time (µs); empty
    /// (with one warning per failure kind) when the model is missing or fails, so keywords
    /// still answer.
    async fn vector_list(&self, q: &str, k: usize) -> (Vec<(ProductId, f32)>, u64, u64) {
        let Some(e) = self.embedder() else { return (Vec::new(), 0, 0) };
        let t = std::time::Instant::now();
        let cached = self.inner.query_vectors.lock().ok().and_then(|c| c.get(q));
        let embedded = match cached {
            Some(v) => Ok(v),
            None => {
                let text = vec![format!("query: {q}")];
                blocking(move || e.embed(&text))
                    .await
                    .map(|v| Arc::new(v.into_iter().next().unwrap_or_default()))
            }
        };
        match embedded {
            Ok(qv) => {
                if let Ok(mut c) = self.inner.query_vectors.lock() {
                    c.put(q, qv.clone());
                }
                let embed_us = t.elapsed().as_micros() as u64;
                let t = std::time::Instant::now();
                let list = match self.inner.vectors.read() {
                    Ok(ix) if !qv.is_empty() => ix.search(&qv, k),
                    _ => Vec::new(),
                };
                (list, embed_us, t.elapsed().as_micros() as u64)
            }
            Err(err) => {
                tracing::warn!(error = %err, "query embedding failed; answering with keywords only");
                metrics::counter!("lavka_search_embedding_failures_total").increment(1);
                (Vec::new(), 0, 0)
            }
        }
    }

    /// Forgets the remembered query embeddings (benchmarks measure the cold cost).
    pub fn clear_query_cache(&self) {
        if let Ok(mut c) = self.inner.query_vectors.lock() {
            *c = QueryCache::default();
        }
    }

    /// Number of indexed (active) products.
    pub fn indexed(&self) -> u64 {
        self.inner.keyword.len()
    }

    /// Number of product vectors in memory.
    pub fn vectors(&self) -> usize {
        self.inner.vectors.read().map(|v| v.len()).unwrap_or(0)
    }
}

/// Fusion of the keyword and vector lists.
pub mod rank {
    use super::Hit;
    use super::keyword::KeywordHit;
    use super::query::{self, Quantity};
    use crate::domain::ProductId;
    use std::collections::HashMap;

    /// How much a full keyword match adds to a cosine similarity. The encoder's cosines are
    /// compressed (unrelated texts still score ~0.8), so a small weight moves ranks.
    pub const KEYWORD_WEIGHT: f32 = 0.02;

    /// Scores this close are equally good (availability then orders them).
    pub const TIE: f32 = 0.004;

    // The floor, calibrated on both labelled sets (`lavka bench search-quality --dump`):
    // the encoder puts unrelated queries at cosine 0.78–0.86 from the nearest product, and
    // their stray keyword matches (a "на", a "pro") cover at most half of them; real
    // queries clear one of the three bars below.
    /// Close enough in meaning on its own.
    pub const MIN_SIMILARITY: f32 = 0.84;
    /// Enough of the query's words (IDF-weighted) on its own.
    pub const MIN_COVERAGE: f32 = 0.5;
    /// Nearly as close in meaning, with some of the words.
    pub const NEAR_SIMILARITY: f32 = 0.82;
    pub const SOME_COVERAGE: f32 = 0.2;

    fn hit(id: &ProductId, score: f32) -> Hit {
        Hit {
            id: id.clone(),
            title: String::new(),
            score,
            keyword_rank: None,
            vector_rank: None,
            similarity: None,
            coverage: None,
        }
    }

    pub fn only_keyword(kw: &[KeywordHit]) -> Vec<Hit> {
        kw.iter()
            .enumerate()
            .map(|(i, k)| Hit {
                keyword_rank: Some(i + 1),
                coverage: Some(k.coverage),
                ..hit(&k.id, k.score)
            })
            .collect()
    }

    pub fn only_vector(vec: &[(ProductId, f32)]) -> Vec<Hit> {
        vec.iter()
            .enumerate()
            .map(|(i, (id, s))| Hit { vector_rank: Some(i + 1), similarity: Some(*s), ..hit(id, *s) })
            .collect()
    }

    /// Keywords alone on the fused scale: the share of the query's words, with a tenth of
    /// the BM25 score relative to the best as the tie-break, so that the variant bonus and
    /// the tie margin mean the same as with vectors (variants share their words; BM25 alone
    /// would let field lengths outweigh the duration asked for).
    pub fn relative(mut hits: Vec<Hit>) -> Vec<Hit> {
        let best = hits.iter().map(|h| h.score).fold(f32::EPSILON, f32::max);
        for h in &mut hits {
            h.score = h.coverage.unwrap_or(0.0) + 0.1 * h.score / best;
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits
    }

    fn sorted(hits: HashMap<ProductId, Hit>) -> Vec<Hit> {
        let mut out: Vec<Hit> = hits.into_values().collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Cosine similarity plus a keyword bonus of `KEYWORD_WEIGHT · coverage²`, where
    /// coverage is the IDF-weighted share of the query's words (numbers aside) the product
    /// contains. The bonus depends on how much of the *query* a product matches, not on its
    /// BM25 score relative to the best keyword hit: relative scores gave a full bonus to
    /// whatever matched one generic word ("template"). Products only the keyword list found
    /// get the lowest cosine of the vector list as their base.
    pub fn fuse(kw: &[KeywordHit], vec: &[(ProductId, f32)]) -> Vec<Hit> {
        if vec.is_empty() {
            return only_keyword(kw);
        }
        let floor = vec.last().map(|v| v.1).unwrap_or(0.0);
        let mut hits: HashMap<ProductId, Hit> =
            only_vector(vec).into_iter().map(|h| (h.id.clone(), h)).collect();
        for (i, k) in kw.iter().enumerate() {
            let h = hits.entry(k.id.clone()).or_insert_with(|| hit(&k.id, floor));
            h.keyword_rank = Some(i + 1);
            h.coverage = Some(k.coverage);
            h.score += KEYWORD_WEIGHT * k.coverage * k.coverage;
        }
        sorted(hits)
    }

    /// Reciprocal rank fusion (k = 60): the textbook baseline.
    pub fn rrf(kw: &[KeywordHit], vec: &[(ProductId, f32)]) -> Vec<Hit> {
        let mut hits: HashMap<ProductId, Hit> = HashMap::new();
        for (i, (id, s)) in vec.iter().enumerate() {
            let h = hits.entry(id.clone()).or_insert_with(|| hit(id, 0.0));
            h.vector_rank = Some(i + 1);
            h.similarity = Some(*s);
            h.score += 1.0 / (60.0 + (i + 1) as f32);
        }
        for (i, k) in kw.iter().enumerate() {
            let h = hits.entry(k.id.clone()).or_insert_with(|| hit(&k.id, 0.0));
            h.keyword_rank = Some(i + 1);
            h.coverage = Some(k.coverage);
            h.score += 1.0 / (60.0 + (i + 1) as f32);
        }
        sorted(hits)
    }

    /// A plain weighted sum: 0.3 · BM25 / best BM25 + cosine (min-max scaled over the list).
    pub fn weighted(kw: &[KeywordHit], vec: &[(ProductId, f32)]) -> Vec<Hit> {
        let best = kw.first().map(|k| k.score).unwrap_or(1.0).max(f32::EPSILON);
        let (lo, hi) = vec.iter().fold((f32::MAX, f32::MIN), |(lo, hi), (_, s)| (lo.min(*s), hi.max(*s)));
        let span = (hi - lo).max(f32::EPSILON);
        let mut hits: HashMap<ProductId, Hit> = HashMap::new();
        for (i, (id, s)) in vec.iter().enumerate() {
            let h = hits.entry(id.clone()).or_insert_with(|| hit(id, 0.0));
            h.vector_rank = Some(i + 1);
            h.similarity = Some(*s);
            h.score += 0.7 * (s - lo) / span;
        }
        for (i, k) in kw.iter().enumerate() {
            let h = hits.entry(k.id.clone()).or_insert_with(|| hit(&k.id, 0.0));
            h.keyword_rank = Some(i + 1);
            h.coverage = Some(k.coverage);
            h.score += 0.3 * k.score / best;
        }
        sorted(hits)
    }

    /// Nothing found is an answer: a result counts when it matches enough of the query's
    /// words or, with vectors, is close enough in meaning.
    pub fn floor(hits: Vec<Hit>, vectors: bool) -> Vec<Hit> {
        hits.into_iter()
            .filter(|h| {
                let cov = h.coverage.unwrap_or(0.0);
                let sim = h.similarity.unwrap_or(0.0);
                cov >= MIN_COVERAGE
                    || (!vectors && cov > 0.0)
                    || sim >= MIN_SIMILARITY
                    || (sim >= NEAR_SIMILARITY && cov >= SOME_COVERAGE)
            })
            .collect()
    }

    /// How much naming every quantity of the query ("12 months", "3 devices", "2800")
    /// adds; naming another value of the same kind (24 months for 12) takes as much away.
    pub const VARIANT_BONUS: f32 = 0.03;

    /// An edition the query does not ask for ("Digital Deluxe" for "standard edition") costs
    /// as much as a conflicting number.
    pub fn editions<'a>(
        mut hits: Vec<Hit>,
        q: &str,
        title: impl Fn(&ProductId) -> Option<&'a str>,
    ) -> Vec<Hit> {
        let mut changed = false;
        for h in &mut hits {
            if title(&h.id).is_some_and(|t| super::names::edition_conflict(q, t)) {
                h.score -= VARIANT_BONUS;
                changed = true;
            }
        }
        if changed {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        }
        hits
    }

    /// Numbers disambiguate, they do not decide: the query's quantities adjust only the
    /// results that are about the query's words already — those matching at least half as
    /// much of them as the best match does (keyword coverage), or, where no result matches
    /// a word, those as close in meaning as the best. A product that shares only the number
    /// ("IObit 3 ПК" for "дарк соулс 3") is never lifted.
    pub fn variants<'a>(
        mut hits: Vec<Hit>,
        want: &[Quantity],
        quantities: impl Fn(&ProductId) -> Option<&'a [Quantity]>,
    ) -> Vec<Hit> {
        if want.is_empty() || hits.is_empty() {
            return hits;
        }
        let best_cov = hits.iter().filter_map(|h| h.coverage).fold(0.0f32, f32::max);
        let best_sim = hits.iter().filter_map(|h| h.similarity).fold(f32::MIN, f32::max);
        for h in &mut hits {
            let about = if best_cov > 0.0 {
                h.coverage.unwrap_or(0.0) >= 0.5 * best_cov
            } else {
                h.similarity.is_some_and(|s| s >= best_sim - 2.0 * VARIANT_BONUS)
            };
            if !about {
                continue;
            }
            let Some(have) = quantities(&h.id) else { continue };
            let (matched, conflict) = query::compare(want, have);
            h.score += VARIANT_BONUS * matched as f32 / want.len() as f32;
            if conflict {
                h.score -= VARIANT_BONUS;
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits
    }
}

/// A customer's long message as a search query: its first words, within the query limit
/// (a 600-character question is answered, not refused).
pub fn bounded(query: &str) -> String {
    let mut out = String::new();
    for w in query.split_whitespace().take(40) {
        if out.chars().count() + w.chars().count() + 1 > 300 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}
