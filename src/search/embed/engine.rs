//! The embedding engine: [`E5`] ties the E5S1 file, the tokenizer and the encoder together.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::{bert, e5s1, unigram};

/// Texts per forward pass, at most.
const MAX_BATCH_TEXTS: usize = 64;
/// Tokens per forward pass, at most (bounds activation memory: the FFN
/// activations are tokens × 1536 f32, 25 MB at 4096 tokens).
const MAX_BATCH_TOKENS: usize = 4096;

/// The embedding engine: tokenizer + encoder, immutable after loading.
pub struct E5 {
    tokenizer: unigram::Unigram,
    bert: bert::Bert,
    model_id: String,
}

impl E5 {
    /// Embedding dimension of multilingual-e5-small.
    pub const DIM: usize = 384;

    /// Load an E5S1 model file.
    pub fn load(path: impl AsRef<Path>) -> Result<E5> {
        let path = path.as_ref();
        let digest = sha256_file(path)?;
        Self::build(e5s1::E5s1::open(path)?, &digest)
    }

    /// Load from the bytes of an E5S1 file held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<E5> {
        let digest = hex(&Sha256::digest(bytes));
        Self::build(e5s1::E5s1::from_bytes(bytes)?, &digest)
    }

    fn build(mut file: e5s1::E5s1, digest: &str) -> Result<E5> {
        let cfg = file.config.clone();
        if cfg.hidden != Self::DIM {
            return Err(Error::Unsupported(format!("hidden size {} (expected {})", cfg.hidden, Self::DIM)));
        }
        let bert = bert::Bert::new(&mut file)?;
        let tokenizer = unigram::Unigram::new(file.tokenizer, cfg.max_pos)?;
        if tokenizer.vocab_size() > cfg.vocab {
            return Err(Error::Format(format!(
                "tokenizer has {} pieces but the embedding table {} rows",
                tokenizer.vocab_size(),
                cfg.vocab
            )));
        }
        Ok(E5 { tokenizer, bert, model_id: format!("e5s1:{}", &digest[..16]) })
    }

    /// Embedding dimension (384).
    pub fn dim() -> usize {
        Self::DIM
    }

    /// Identifies the model file: `"e5s1:"` + the first 16 hex digits of its sha256.
    pub fn model_id(&self) -> String {
        self.model_id.clone()
    }

    /// [`E5::model_id`] without the copy.
    pub fn model_id_str(&self) -> &str {
        &self.model_id
    }

    /// Assemble from parts (tests use a tiny model with another hidden size).
    #[cfg(test)]
    pub(super) fn from_parts(tokenizer: unigram::Unigram, bert: bert::Bert, model_id: String) -> E5 {
        E5 { tokenizer, bert, model_id }
    }

    /// Token ids of one text: `<s>` … `</s>`, at most 512.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &unigram::Unigram {
        &self.tokenizer
    }

    /// L2-normalised embeddings, one per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        self.embed_ids(&ids)
    }

    /// Embeddings of already tokenised texts (each `<s>` … `</s>`, ≤ 512 ids).
    /// Consecutive texts are packed into forward passes of at most
    /// `MAX_BATCH_TOKENS` tokens; the result keeps input order.
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        embed_packed(&self.bert, ids)
    }
}

/// Runs `ids` through `bert` in consecutive packs of at most `MAX_BATCH_TEXTS` texts and
/// `MAX_BATCH_TOKENS` tokens; the result keeps input order.
pub(super) fn embed_packed(bert: &bert::Bert, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    {
        let mut out = Vec::with_capacity(ids.len());
        let mut start = 0;
        while start < ids.len() {
            let mut end = start + 1;
            let mut tokens = ids[start].len();
            while end < ids.len()
                && end - start < MAX_BATCH_TEXTS
                && tokens + ids[end].len() <= MAX_BATCH_TOKENS
            {
                tokens += ids[end].len();
                end += 1;
            }
            out.extend(bert.embed_ids(&ids[start..end])?);
            start = end;
        }
        Ok(out)
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
