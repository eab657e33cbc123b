//! Sentence embeddings. [`Embedder`] is the seam (tests may swap it); [`E5`] is the real one:
//! multilingual-e5-small from the 4-bit "E5S1" file ([`e5s1`]), its own SentencePiece
//! tokenizer ([`unigram`]) and a BERT encoder on candle ([`bert`], fused ops in `ops` and
//! `kernels`). The 4-bit word table stays 4-bit (rows dequantised on demand), so the model
//! costs about 160 MB of memory instead of 750.

pub mod bert;
pub mod e5s1;
mod engine;
mod error;
pub mod hf;
mod kernels;
mod ops;
#[cfg(test)]
mod tests;
pub mod unigram;

pub use engine::E5;
pub use error::Error as EmbedError;

use crate::error::Result;

/// Turns texts into L2-normalised vectors. Texts carry their own `query: ` / `passage: `
/// prefix. Blocking (CPU-bound): call it from the blocking pool.
pub trait Embedder: Send + Sync {
    /// Names the model and its weights; part of every stored vector's key.
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

impl From<error::Error> for crate::Error {
    fn from(e: error::Error) -> Self {
        crate::Error::Internal(format!("embedding model: {e}"))
    }
}

impl Embedder for hf::HfModel {
    fn model_id(&self) -> &str {
        hf::HfModel::model_id(self)
    }
    fn dim(&self) -> usize {
        hf::HfModel::dim(self)
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(hf::HfModel::embed(self, &refs)?)
    }
}

impl Embedder for E5 {
    fn model_id(&self) -> &str {
        self.model_id_str()
    }
    fn dim(&self) -> usize {
        E5::DIM
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(E5::embed(self, &refs)?)
    }
}
