//! Cached product embeddings, keyed by product, model and text hash, so a vector is
//! computed once per (text, model) and the in-memory index is rebuilt from here at start.

use super::schema::EMBEDDINGS;
use super::{Store, Tx};
use crate::domain::ProductId;
use crate::error::{Error, Result};
use redb::ReadableTable;

/// One stored vector.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredVector {
    pub product: ProductId,
    pub text_hash: [u8; 16],
    pub vector: Vec<f32>,
}

fn encode(text_hash: &[u8; 16], v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + v.len() * 4);
    out.extend_from_slice(text_hash);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn decode(product: &str, raw: &[u8]) -> Result<StoredVector> {
    if raw.len() < 16 || !(raw.len() - 16).is_multiple_of(4) {
        return Err(Error::storage(format!("corrupt embedding of {product}")));
    }
    let mut text_hash = [0u8; 16];
    text_hash.copy_from_slice(&raw[..16]);
    let vector = raw[16..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(StoredVector { product: ProductId::parse(product)?, text_hash, vector })
}

/// Stores (replaces) vectors computed by `model`.
pub fn put(tx: &Tx, model: &str, rows: &[StoredVector]) -> Result<()> {
    let mut t = tx.embeddings()?;
    for r in rows {
        t.insert((r.product.as_str(), model), encode(&r.text_hash, &r.vector).as_slice())?;
    }
    Ok(())
}

impl Store {
    /// Every vector stored for `model`.
    pub async fn embeddings(&self, model: String) -> Result<Vec<StoredVector>> {
        self.read(move |rtx, _| {
            let t = rtx.open_table(EMBEDDINGS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                let (product, m) = k.value();
                if m == model {
                    out.push(decode(product, v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }
}
