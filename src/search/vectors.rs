//! The in-memory vector index: an exact dot-product scan over contiguous rows (vectors are
//! L2-normalised, so the dot product is the cosine). Exact search is fine up to ~100k
//! products; the [`VectorIndex`] trait keeps the door open for an approximate one.

use crate::domain::ProductId;
use std::collections::HashMap;

/// A nearest-neighbour index over product vectors.
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces a product's vector.
    fn upsert(&mut self, id: &ProductId, v: &[f32]);
    fn remove(&mut self, id: &ProductId);
    /// The `k` most similar products, best first.
    fn search(&self, q: &[f32], k: usize) -> Vec<(ProductId, f32)>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Exact scan over a flat `n × dim` array.
pub struct FlatIndex {
    dim: usize,
    ids: Vec<ProductId>,
    rows: Vec<f32>,
    pos: HashMap<ProductId, usize>,
}

impl FlatIndex {
    pub fn new(dim: usize) -> Self {
        FlatIndex { dim, ids: Vec::new(), rows: Vec::new(), pos: HashMap::new() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Dot product in 8 independent lanes so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

impl VectorIndex for FlatIndex {
    fn upsert(&mut self, id: &ProductId, v: &[f32]) {
        if v.len() != self.dim {
            return;
        }
        match self.pos.get(id) {
            Some(&i) => self.rows[i * self.dim..(i + 1) * self.dim].copy_from_slice(v),
            None => {
                self.pos.insert(id.clone(), self.ids.len());
                self.ids.push(id.clone());
                self.rows.extend_from_slice(v);
            }
        }
    }

    fn remove(&mut self, id: &ProductId) {
        let Some(i) = self.pos.remove(id) else { return };
        let last = self.ids.len() - 1;
        if i != last {
            let moved = self.ids[last].clone();
            self.rows.copy_within(last * self.dim..(last + 1) * self.dim, i * self.dim);
            self.ids[i] = moved.clone();
            self.pos.insert(moved, i);
        }
        self.ids.pop();
        self.rows.truncate(last * self.dim);
    }

    fn search(&self, q: &[f32], k: usize) -> Vec<(ProductId, f32)> {
        if q.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(usize, f32)> =
            self.rows.chunks_exact(self.dim).map(|r| dot(r, q)).enumerate().collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().map(|(i, s)| (self.ids[i].clone(), s)).collect()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ProductId {
        ProductId::parse(s).unwrap()
    }

    #[test]
    fn the_scan_finds_the_nearest_and_survives_removals() {
        let mut ix = FlatIndex::new(3);
        ix.upsert(&id("a"), &[1.0, 0.0, 0.0]);
        ix.upsert(&id("b"), &[0.0, 1.0, 0.0]);
        ix.upsert(&id("c"), &[0.6, 0.8, 0.0]);
        let top = ix.search(&[0.0, 1.0, 0.0], 2);
        assert_eq!(top[0].0, id("b"));
        assert_eq!(top[1].0, id("c"));
        ix.remove(&id("b"));
        assert_eq!(ix.search(&[0.0, 1.0, 0.0], 1)[0].0, id("c"));
        ix.upsert(&id("c"), &[0.0, 0.0, 1.0]);
        assert_eq!(ix.search(&[0.0, 0.0, 1.0], 1)[0], (id("c"), 1.0));
        assert_eq!(ix.len(), 2);
        assert!(ix.search(&[1.0, 0.0], 1).is_empty(), "wrong dimension");
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..13).map(|i| i as f32).collect();
        let want: f32 = a.iter().map(|x| x * x).sum();
        assert_eq!(dot(&a, &a), want);
    }
}
