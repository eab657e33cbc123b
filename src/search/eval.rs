//! Search quality on a labelled query set: hit@1, hit@3 and mean reciprocal rank, overall
//! and per kind of query. Used by `lavka bench search-quality` and by the tests.

use super::Search;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The labelled set shipped with the tests (over the demo catalogue).
pub const DEMO_QUERIES: &str = include_str!("../../tests/fixtures/search_queries.json");

#[derive(Clone, Debug, Deserialize)]
pub struct LabelledQuery {
    pub q: String,
    #[serde(default)]
    pub lang: String,
    #[serde(default)]
    pub kind: String,
    /// Products a good search puts in the top 3 (any of them counts as a hit).
    pub relevant: Vec<String>,
}

#[derive(Deserialize)]
struct QuerySet {
    queries: Vec<LabelledQuery>,
}

pub fn parse_queries(json: &str) -> Result<Vec<LabelledQuery>> {
    let set: QuerySet = serde_json::from_str(json).map_err(|e| Error::bad(format!("query set: {e}")))?;
    Ok(set.queries)
}

/// Aggregated quality figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Quality {
    pub queries: usize,
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    pub mrr: f64,
}

/// A full report: overall, per kind and per language, and the queries that missed the top 3.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub overall: Quality,
    pub by_kind: BTreeMap<String, Quality>,
    pub by_lang: BTreeMap<String, Quality>,
    pub misses: Vec<String>,
    /// Queries whose best answer was not first (rank 2 or 3).
    pub not_first: Vec<String>,
}

#[derive(Default)]
struct Acc {
    n: usize,
    h1: usize,
    h3: usize,
    rr: f64,
}

impl Acc {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank {
            self.h1 += (r == 1) as usize;
            self.h3 += (r <= 3) as usize;
            self.rr += 1.0 / r as f64;
        }
    }
    fn quality(&self) -> Quality {
        let n = self.n.max(1) as f64;
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        Quality {
            queries: self.n,
            hit_at_1: r(self.h1 as f64 / n),
            hit_at_3: r(self.h3 as f64 / n),
            mrr: r(self.rr / n),
        }
    }
}

/// Runs every query through `search` (with `run`, which picks the ranking to evaluate).
pub async fn evaluate<F, Fut>(queries: &[LabelledQuery], mut run: F) -> Result<Report>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<super::Hit>>>,
{
    let mut all = Acc::default();
    let mut kinds: BTreeMap<String, Acc> = BTreeMap::new();
    let mut langs: BTreeMap<String, Acc> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut not_first = Vec::new();
    for q in queries {
        let hits = run(q.q.clone()).await?;
        // A query the shop has nothing for is answered well by "nothing found".
        let rank = if q.relevant.is_empty() {
            hits.is_empty().then_some(1)
        } else {
            hits.iter().position(|h| q.relevant.iter().any(|r| r == h.id.as_str())).map(|i| i + 1)
        };
        all.add(rank);
        kinds.entry(q.kind.clone()).or_default().add(rank);
        langs.entry(q.lang.clone()).or_default().add(rank);
        let got: Vec<&str> = hits.iter().take(3).map(|h| h.id.as_str()).collect();
        match rank {
            Some(1) => {}
            Some(2 | 3) => not_first.push(format!("{:?} → {:?} (want {:?})", q.q, got, q.relevant)),
            _ => misses.push(format!("{:?} → {:?} (want {:?})", q.q, got, q.relevant)),
        }
    }
    Ok(Report {
        overall: all.quality(),
        by_kind: kinds.into_iter().map(|(k, a)| (k, a.quality())).collect(),
        by_lang: langs.into_iter().map(|(k, a)| (k, a.quality())).collect(),
        misses,
        not_first,
    })
}

impl Search {
    /// Evaluates one ranking of this engine on a labelled set.
    pub async fn evaluate(&self, queries: &[LabelledQuery], mode: super::Mode) -> Result<Report> {
        evaluate(queries, |q| async move { self.search_with(&q, 10, mode).await }).await
    }
}
