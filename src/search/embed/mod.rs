//! Sentence embeddings. [`Embedder`] is the seam (tests may swap it); the real one is the
//! candle implementation of multilingual-e5-small.

use crate::error::Result;

/// Turns texts into L2-normalised vectors. Texts carry their own `query: ` / `passage: `
/// prefix. Blocking (CPU-bound): call it from the blocking pool.
pub trait Embedder: Send + Sync {
    /// Names the model and its weights; part of every stored vector's key.
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}
