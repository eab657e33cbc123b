//! Error type of the embedding engine.
//!
//! Every failure that can come from the model file or from the input is
//! reported through [`Error`]; nothing derived from input data panics.

use std::path::PathBuf;

/// Errors from loading the E5S1 file, tokenising or running the encoder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be opened or read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file ends before a field that the format requires.
    #[error("E5S1 file truncated: need {need} bytes for {what} at offset {offset}, file has {len}")]
    Truncated { what: &'static str, offset: u64, need: u64, len: u64 },
    /// The bytes are not a well-formed E5S1 file.
    #[error("malformed E5S1 file: {0}")]
    Format(String),
    /// The file parsed but does not describe a model this engine can run.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// A tensor operation failed (shape mismatch and the like).
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// Result alias used throughout the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for [`Error::Format`].
pub(crate) fn format_err(msg: impl Into<String>) -> Error {
    Error::Format(msg.into())
}
