//! The keyword index (tantivy) in `data/index/`: title, tags, category and description,
//! lower-cased, `ё` folded to `е`, stemmed for Russian and then English (each stemmer leaves
//! the other alphabet alone), with one-typo tolerance on longer words. Derived state: it is
//! rebuilt from the store when missing, corrupt or of another schema version. Only active
//! products are indexed. One writer, behind a mutex.

use crate::domain::{Product, ProductId};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

/// Bumped whenever the schema or the analysis changes: an index of another version is rebuilt.
const INDEX_VERSION: &str = "lavka-keyword-2";
const VERSION_FILE: &str = "lavka-index-version";
const ANALYZER: &str = "lavka_ru_en";
/// The sounds field holds precomputed keys ([`super::sound::key`]), split on spaces only.
const KEYS: &str = "lavka_keys";
/// A query word found only by its sound counts this much (a title word counts 3).
const SOUND_WEIGHT: f32 = 2.0;

/// Field weights: a word in the title counts more than one in the description.
const WEIGHTS: [(&str, f32); 4] = [("title", 3.0), ("tags", 2.0), ("category", 1.5), ("description", 1.0)];

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::Russian))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// `ё` and `е` are one letter to searchers.
pub fn fold(text: &str) -> String {
    text.replace('ё', "е").replace('Ё', "Е")
}

fn tantivy_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("keyword index: {e}"))
}

struct Fields {
    id: Field,
    text: Vec<(Field, f32)>,
    sounds: Field,
}

/// The sound keys of a product's title and tags, as indexed.
fn sound_keys(p: &Product) -> String {
    let mut keys: Vec<String> = p
        .title
        .split(|c: char| !c.is_alphanumeric())
        .chain(p.tags.iter().flat_map(|t| t.split(|c: char| !c.is_alphanumeric())))
        .filter_map(super::sound::key)
        .collect();
    keys.sort();
    keys.dedup();
    keys.join(" ")
}

/// The tantivy index and its single writer.
pub struct KeywordIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    dir: PathBuf,
}

impl KeywordIndex {
    /// Opens the index in `dir`, or creates it afresh (wiping whatever is there) when it is
    /// missing, unreadable or of another version. Returns whether it was created afresh.
    pub fn open(dir: &Path) -> Result<(KeywordIndex, bool)> {
        let current = std::fs::read_to_string(dir.join(VERSION_FILE)).ok();
        if current.as_deref().map(str::trim) == Some(INDEX_VERSION) {
            match Self::open_existing(dir) {
                Ok(ix) => return Ok((ix, false)),
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "keyword index unreadable; rebuilding")
                }
            }
        } else if dir.exists() {
            tracing::info!(dir = %dir.display(), "keyword index missing or of another version; rebuilding");
        }
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let index = Index::create_in_dir(dir, schema()).map_err(tantivy_err)?;
        let ix = Self::from_index(index, dir)?;
        std::fs::write(dir.join(VERSION_FILE), INDEX_VERSION)?;
        Ok((ix, true))
    }

    fn open_existing(dir: &Path) -> Result<KeywordIndex> {
        let index = Index::open_in_dir(dir).map_err(tantivy_err)?;
        Self::from_index(index, dir)
    }

    fn from_index(index: Index, dir: &Path) -> Result<KeywordIndex> {
        index.tokenizers().register(ANALYZER, analyzer());
        index.tokenizers().register(
            KEYS,
            TextAnalyzer::builder(tantivy::tokenizer::WhitespaceTokenizer::default()).build(),
        );
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name).map_err(tantivy_err);
        let fields = Fields {
            id: field("id")?,
            text: WEIGHTS.iter().map(|(n, w)| Ok((field(n)?, *w))).collect::<Result<_>>()?,
            sounds: field("sounds")?,
        };
        let writer = index.writer_with_num_threads(1, 30_000_000).map_err(tantivy_err)?;
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(tantivy_err)?;
        Ok(KeywordIndex { reader, writer: Mutex::new(writer), fields, dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the documents of `upsert` (indexing only active ones) and deletes `remove`,
    /// then commits and makes the change visible.
    pub fn apply(&self, upsert: &[Product], remove: &[ProductId]) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| Error::internal("keyword writer lock poisoned"))?;
        for id in remove.iter().chain(upsert.iter().map(|p| &p.id)) {
            w.delete_term(Term::from_field_text(self.fields.id, id.as_str()));
        }
        for p in upsert.iter().filter(|p| p.active) {
            let [title, tags, category, description] = [0, 1, 2, 3].map(|i| self.fields.text[i].0);
            w.add_document(doc!(
                self.fields.id => p.id.as_str(),
                title => fold(&p.title),
                tags => fold(&p.tags.join(" ")),
                category => fold(&p.category),
                description => fold(&p.description),
                self.fields.sounds => sound_keys(p),
            ))
            .map_err(tantivy_err)?;
        }
        w.commit().map_err(tantivy_err)?;
        drop(w);
        self.reader.reload().map_err(tantivy_err)
    }

    /// Removes every document.
    pub fn clear(&self) -> Result<()> {
        let mut w = self.writer.lock().map_err(|_| Error::internal("keyword writer lock poisoned"))?;
        w.delete_all_documents().map_err(tantivy_err)?;
        w.commit().map_err(tantivy_err)?;
        drop(w);
        self.reader.reload().map_err(tantivy_err)
    }

    /// Number of indexed (active) products.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The analysed terms of a text, as the index sees them.
    pub fn terms(text: &str) -> Vec<String> {
        let mut a = analyzer();
        let folded = fold(text);
        let mut stream = a.token_stream(&folded);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    /// BM25 over the weighted fields, plus one-edit fuzzy matches of words of 5+ letters.
    /// Best first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(ProductId, f32)>> {
        Ok(self.search_scored(query, limit)?.into_iter().map(|h| (h.id, h.score)).collect())
    }

    /// The same, with each hit's share of the query it matches ([`KeywordHit::coverage`]).
    /// Numbers are left out when the query has words besides them: they pick among the
    /// variants the words found ([`super::rank::variants`]), they do not find products.
    pub fn search_scored(&self, query: &str, limit: usize) -> Result<Vec<KeywordHit>> {
        let searcher = self.reader.searcher();
        let (terms, per_term) = self.prepare(&searcher, query)?;
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let q = BooleanQuery::new(
            per_term.iter().map(|q| (Occur::Should, Box::new(q.clone()) as Box<dyn Query>)).collect(),
        );
        let top = searcher.search(&q, &TopDocs::with_limit(limit).order_by_score()).map_err(tantivy_err)?;
        let coverage = self.coverage(&searcher, &terms, &per_term, &top)?;
        let mut out = Vec::with_capacity(top.len());
        for ((score, addr), coverage) in top.into_iter().zip(coverage) {
            let d: TantivyDocument = searcher.doc(addr).map_err(tantivy_err)?;
            if let Some(id) = d.get_first(self.fields.id).and_then(|v| v.as_str()) {
                out.push(KeywordHit { id: ProductId::parse(id)?, score, coverage });
            }
        }
        Ok(out)
    }

    /// The coverage of the query ([`KeywordHit::coverage`]) for products found otherwise
    /// (the vector list), so that equally good matches beyond the keyword list's length get
    /// the same credit. 0 for products not indexed.
    pub fn coverage_of(&self, query: &str, ids: &[ProductId]) -> Result<Vec<f32>> {
        let searcher = self.reader.searcher();
        let (terms, per_term) = self.prepare(&searcher, query)?;
        if terms.is_empty() {
            return Ok(vec![0.0; ids.len()]);
        }
        let mut found: Vec<(usize, tantivy::DocAddress)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let q =
                TermQuery::new(Term::from_field_text(self.fields.id, id.as_str()), IndexRecordOption::Basic);
            if let Some((_, addr)) =
                searcher.search(&q, &TopDocs::with_limit(1).order_by_score()).map_err(tantivy_err)?.first()
            {
                found.push((i, *addr));
            }
        }
        let top: Vec<(f32, tantivy::DocAddress)> = found.iter().map(|(_, a)| (0.0, *a)).collect();
        let cov = self.coverage(&searcher, &terms, &per_term, &top)?;
        let mut out = vec![0.0; ids.len()];
        for ((i, _), c) in found.into_iter().zip(cov) {
            out[i] = c;
        }
        Ok(out)
    }

    /// The query's words (numbers and their unit words aside, unless there is nothing
    /// else) as analysed terms, each with its query: the stem in every field, and the sound
    /// for a word the catalogue does not have.
    fn prepare(&self, searcher: &tantivy::Searcher, query: &str) -> Result<(Vec<String>, Vec<BooleanQuery>)> {
        let parsed = super::query::parse(query);
        let text =
            if parsed.words.chars().any(char::is_alphabetic) { parsed.words } else { query.to_string() };
        // One pass of the analyzer: each token's stem, and the word it came from (its sound).
        let folded = fold(&text);
        let mut tokens: Vec<(String, std::ops::Range<usize>)> = Vec::new();
        let mut a = analyzer();
        let mut stream = a.token_stream(&folded);
        while let Some(t) = stream.next() {
            tokens.push((t.text.clone(), t.offset_from..t.offset_to));
        }
        let mut words: Vec<(String, Option<String>)> = Vec::new();
        for (term, at) in tokens {
            let raw = &folded[at];
            if words.iter().any(|(t, _)| *t == term) {
                continue;
            }
            // A word the catalogue does not have may be a brand typed in the other script
            // (or misspelt): then its sound is looked up too.
            let known = self.doc_freq(searcher, &term)? > 0;
            let sound = if known { None } else { super::sound::key(raw) };
            words.push((term, sound));
        }
        let per_term = words.iter().map(|(t, s)| self.term_query(t, s.as_deref())).collect();
        Ok((words.into_iter().map(|(t, _)| t).collect(), per_term))
    }

    /// In how many products the analysed term occurs, in its most common field.
    fn doc_freq(&self, searcher: &tantivy::Searcher, t: &str) -> Result<u64> {
        let mut df = 0u64;
        for &(field, _) in &self.fields.text {
            df = df.max(searcher.doc_freq(&Term::from_field_text(field, t)).map_err(tantivy_err)?);
        }
        Ok(df)
    }

    /// One analysed term in any field: exact (weighted by field) or, for 5+ letters, one
    /// edit away at a third of the weight; and, for a word the catalogue lacks, its sound.
    fn term_query(&self, t: &str, sound: Option<&str>) -> BooleanQuery {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for &(field, weight) in &self.fields.text {
            let term = Term::from_field_text(field, t);
            let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(exact), weight))));
            if t.chars().count() >= 5 {
                let fuzzy = FuzzyTermQuery::new(term, 1, true);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(fuzzy), weight * 0.3))));
            }
        }
        if let Some(k) = sound {
            let term = Term::from_field_text(self.fields.sounds, k);
            let q: Box<dyn Query> = if k.chars().count() >= 4 {
                Box::new(FuzzyTermQuery::new(term, 1, true))
            } else {
                Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))
            };
            clauses.push((Occur::Should, Box::new(BoostQuery::new(q, SOUND_WEIGHT))));
        }
        BooleanQuery::new(clauses)
    }

    /// For each hit, the IDF-weighted share of the query's terms it contains (exactly or
    /// one typo away): 1.0 when every word of the query is found in the product. Found by
    /// seeking each term's postings to the hits' documents, so the cost grows with the
    /// number of hits and terms, not with the catalogue.
    fn coverage(
        &self,
        searcher: &tantivy::Searcher,
        terms: &[String],
        per_term: &[BooleanQuery],
        top: &[(f32, tantivy::DocAddress)],
    ) -> Result<Vec<f32>> {
        let n = searcher.num_docs().max(1) as f32;
        let mut idf = Vec::with_capacity(terms.len());
        for t in terms {
            let df = self.doc_freq(searcher, t)?;
            idf.push((1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln().max(0.05));
        }
        let total: f32 = idf.iter().sum();
        let mut matched = vec![0f32; top.len()];
        let mut order: Vec<usize> = (0..top.len()).collect();
        order.sort_by_key(|&i| (top[i].1.segment_ord, top[i].1.doc_id));
        let scoring = tantivy::query::EnableScoring::disabled_from_searcher(searcher);
        for (q, w) in per_term.iter().zip(&idf) {
            let weight = q.weight(scoring).map_err(tantivy_err)?;
            let mut current: Option<(u32, Box<dyn tantivy::query::Scorer>)> = None;
            for &i in &order {
                let addr = top[i].1;
                if current.as_ref().map(|c| c.0) != Some(addr.segment_ord) {
                    let reader = searcher.segment_reader(addr.segment_ord);
                    current = Some((addr.segment_ord, weight.scorer(reader, 1.0).map_err(tantivy_err)?));
                }
                if let Some((_, scorer)) = current.as_mut() {
                    use tantivy::DocSet;
                    let at =
                        if scorer.doc() >= addr.doc_id { scorer.doc() } else { scorer.seek(addr.doc_id) };
                    if at == addr.doc_id {
                        matched[i] += w;
                    }
                }
            }
        }
        Ok(matched.into_iter().map(|m| if total > 0.0 { (m / total).min(1.0) } else { 0.0 }).collect())
    }
}

/// A keyword match: BM25 score and the share of the query matched.
#[derive(Debug, Clone)]
pub struct KeywordHit {
    pub id: ProductId,
    pub score: f32,
    /// IDF-weighted share of the query's distinct terms found in the product, 0..=1.
    pub coverage: f32,
}

fn schema() -> Schema {
    let mut sb = Schema::builder();
    sb.add_text_field("id", STRING | STORED);
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    for (name, _) in WEIGHTS {
        sb.add_text_field(name, text.clone());
    }
    sb.add_text_field(
        "sounds",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer(KEYS).set_index_option(IndexRecordOption::WithFreqs),
        ),
    );
    sb.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_and_english_words_are_stemmed_and_yo_folded() {
        assert_eq!(KeywordIndex::terms("Шаблоны презентаций"), KeywordIndex::terms("шаблон презентация"));
        assert_eq!(KeywordIndex::terms("templates"), KeywordIndex::terms("template"));
        assert_eq!(KeywordIndex::terms("ёлка"), KeywordIndex::terms("елка"));
    }
}
