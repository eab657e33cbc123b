//! Record encoding: JSON bytes. Self-describing, so new optional fields need no migration,
//! and `lavka check`/admin dumps stay readable.

use crate::error::{Error, Result};

pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::from)
}

pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::storage(format!("corrupt record: {e}")))
}
