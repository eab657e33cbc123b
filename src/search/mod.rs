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
}

/// Which ranking to use (the hybrid is the product's; the others are for measurement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Keyword,
    Vector,
    Hybrid,
}

struct Inner {
    store: Store,
    keyword: KeywordIndex,
    embedder: RwLock<Option<Arc<dyn Embedder>>>,
    vectors: RwLock<FlatIndex>,
    /// product id → hash of its indexed text (and active flag), as in the index.
    indexed: Mutex<HashMap<String, String>>,
    /// product id → (title, active), refreshed with the index: results are shaped without
    /// reading the store on every query.
    titles: RwLock<HashMap<String, (String, bool)>>,
    /// product id → hash of the text its vector was computed from.
    embedded: Mutex<HashMap<String, [u8; 16]>>,
    /// Serialises refreshes (the index has one writer).
    refreshing: tokio::sync::Mutex<()>,
    /// Bumped after every refresh: readers of derived catalogue views (the consultant's
    /// catalogue summary) rebuild when it moves.
    generation: std::sync::atomic::AtomicU64,
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
                titles: RwLock::new(HashMap::new()),
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
        let titles = products.iter().map(|p| (p.id.to_string(), (p.title.clone(), p.active))).collect();
        *self.inner.titles.write().map_err(|_| Error::internal("search lock"))? = titles;
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
        Ok(())
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

    /// Products matching `query`, best first, at most `limit`.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        self.search_with(query, limit, Mode::Hybrid).await
    }

    /// Results worth showing a customer: the vector list always returns something, so a
    /// result with no keyword match must be close in meaning.
    pub async fn relevant(&self, query: &str, limit: usize) -> Result<Vec<Hit>> {
        Ok(self
            .search(&bounded(query), limit)
            .await?
            .into_iter()
            .filter(|h| h.keyword_rank.is_some() || h.similarity.is_some_and(|s| s >= 0.80))
            .collect())
    }

    /// The same with a chosen ranking (for measurement).
    pub async fn search_with(&self, query: &str, limit: usize, mode: Mode) -> Result<Vec<Hit>> {
        let q = query.trim().to_string();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        if q.chars().count() > 500 {
            return Err(Error::bad("the search query is longer than 500 characters"));
        }
        let limit = limit.clamp(1, 100);
        let inner = self.inner.clone();
        let q2 = q.clone();
        let kw = if mode == Mode::Vector {
            Vec::new()
        } else {
            blocking(move || inner.keyword.search_scored(&q2, CANDIDATES.max(limit))).await?
        };
        let want_vectors = mode != Mode::Keyword && !(mode == Mode::Hybrid && rank::decisive(&kw));
        let vec = if want_vectors { self.vector_list(&q, CANDIDATES.max(limit)).await } else { Vec::new() };
        let fused = match mode {
            Mode::Keyword => rank::only_keyword(&kw),
            Mode::Vector => rank::only_vector(&vec),
            Mode::Hybrid => rank::fuse(&kw, &vec),
        };
        let titles = self.inner.titles.read().map_err(|_| Error::internal("search lock"))?;
        let fused = if mode == Mode::Hybrid {
            rank::prefer_variant(fused, &q, |id| titles.get(id.as_str()).map(|t| t.0.as_str()))
        } else {
            fused
        };
        Ok(fused
            .into_iter()
            .filter_map(|mut h| {
                let (title, active) = titles.get(h.id.as_str())?;
                if !active {
                    return None;
                }
                h.title = title.clone();
                Some(h)
            })
            .take(limit)
            .collect())
    }

    /// The vector list for a query; empty (with one warning per failure kind) when the
    /// model is missing or fails, so keywords still answer.
    async fn vector_list(&self, q: &str, k: usize) -> Vec<(ProductId, f32)> {
        let Some(e) = self.embedder() else { return Vec::new() };
        let text = vec![format!("query: {q}")];
        match blocking(move || e.embed(&text)).await {
            Ok(v) => match v.into_iter().next() {
                Some(qv) => match self.inner.vectors.read() {
                    Ok(ix) => ix.search(&qv, k),
                    Err(_) => Vec::new(),
                },
                None => Vec::new(),
            },
            Err(err) => {
                tracing::warn!(error = %err, "query embedding failed; answering with keywords only");
                metrics::counter!("lavka_search_embedding_failures_total").increment(1);
                Vec::new()
            }
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
    use crate::domain::ProductId;
    use std::collections::HashMap;

    /// How much a full keyword match adds to a cosine similarity. The encoder's cosines are
    /// compressed (unrelated texts still score ~0.8), so a small weight moves ranks.
    pub const KEYWORD_WEIGHT: f32 = 0.05;

    /// The keyword list alone answers when it is unambiguous: the best hit contains every
    /// word of the query and is the only hit, or scores at least three times the runner-up.
    /// A lone hit on a generic word ("template") is not decisive: the meaning may point
    /// elsewhere.
    pub fn decisive(kw: &[KeywordHit]) -> bool {
        match kw {
            [a] => a.coverage >= FULL,
            [a, b, ..] => a.coverage >= FULL && a.score >= 3.0 * b.score,
            [] => false,
        }
    }

    /// Coverage at or above this is "every word of the query".
    const FULL: f32 = 0.999;

    pub fn only_keyword(kw: &[KeywordHit]) -> Vec<Hit> {
        kw.iter()
            .enumerate()
            .map(|(i, k)| Hit {
                id: k.id.clone(),
                title: String::new(),
                score: k.score,
                keyword_rank: Some(i + 1),
                vector_rank: None,
                similarity: None,
            })
            .collect()
    }

    pub fn only_vector(vec: &[(ProductId, f32)]) -> Vec<Hit> {
        vec.iter()
            .enumerate()
            .map(|(i, (id, s))| Hit {
                id: id.clone(),
                title: String::new(),
                score: *s,
                keyword_rank: None,
                vector_rank: Some(i + 1),
                similarity: Some(*s),
            })
            .collect()
    }

    /// How much a title that names every number of the query (the variant asked for: "12
    /// months", "1000 ₽", "Windows 10") adds to the fused score.
    pub const VARIANT_BONUS: f32 = 0.03;

    /// The numbers a text names, with "year"/"год" read as 12 (months) and a "1" right before
    /// it dropped: "на год" and "1 год" and "12 месяцев" all name 12.
    pub fn numbers(text: &str) -> Vec<u32> {
        let lower = text.to_lowercase();
        let words: Vec<&str> =
            lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let mut out: Vec<u32> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if is_year_word(w) {
                if i > 0 && words[i - 1] == "1" {
                    out.retain(|&n| n != 1);
                }
                out.push(12);
            } else if let Ok(n) = w.parse::<u32>() {
                out.push(n);
            } else {
                // "10usd", "500₽" and "win11" split into their digits.
                let digits: String =
                    w.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<u32>() {
                    out.push(n);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn is_year_word(w: &str) -> bool {
        matches!(
            w,
            "год"
                | "года"
                | "году"
                | "годовая"
                | "годовой"
                | "годовую"
                | "year"
                | "years"
                | "yearly"
                | "annual"
                | "annually"
        )
    }

    /// Adds [`VARIANT_BONUS`] to hits whose title names every number of the query, then
    /// re-sorts. A query without numbers is left as it is.
    pub fn prefer_variant<'a>(
        mut hits: Vec<Hit>,
        query: &str,
        title: impl Fn(&ProductId) -> Option<&'a str>,
    ) -> Vec<Hit> {
        let want = numbers(query);
        if want.is_empty() {
            return hits;
        }
        for h in &mut hits {
            if let Some(t) = title(&h.id) {
                let have = numbers(t);
                if want.iter().all(|n| have.contains(n)) {
                    h.score += VARIANT_BONUS;
                }
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits
    }

    /// Cosine similarity plus a keyword bonus of `KEYWORD_WEIGHT · coverage²`, where
    /// coverage is the IDF-weighted share of the query's words the product contains. The
    /// bonus depends on how much of the *query* a product matches, not on its BM25 score
    /// relative to the best keyword hit: relative scores gave a full bonus to whatever matched
    /// one generic word ("template") and made the hybrid worse than vectors alone on a
    /// catalogue without tags (MRR 0.935 vs 0.965); with coverage it never falls below
    /// vectors there and beats both lists on the shipped set. Products only the keyword list
    /// found get the lowest cosine of the vector list as their base.
    pub fn fuse(kw: &[KeywordHit], vec: &[(ProductId, f32)]) -> Vec<Hit> {
        if vec.is_empty() {
            return only_keyword(kw);
        }
        let floor = vec.last().map(|v| v.1).unwrap_or(0.0);
        let mut hits: HashMap<ProductId, Hit> =
            only_vector(vec).into_iter().map(|h| (h.id.clone(), h)).collect();
        for (i, k) in kw.iter().enumerate() {
            let h = hits.entry(k.id.clone()).or_insert_with(|| Hit {
                id: k.id.clone(),
                title: String::new(),
                score: floor,
                keyword_rank: None,
                vector_rank: None,
                similarity: None,
            });
            h.keyword_rank = Some(i + 1);
            h.score += KEYWORD_WEIGHT * k.coverage * k.coverage;
        }
        let mut out: Vec<Hit> = hits.into_values().collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        out
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
