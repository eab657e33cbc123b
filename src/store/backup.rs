//! Consistent snapshots of the live database: every table is copied from one read
//! transaction into a fresh database file, which is synced and atomically renamed into place.
//! (Copying the live file while writes happen is not safe with redb.)

use super::Store;
use crate::error::{Error, Result};
use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, Value, WriteTransaction,
};
use std::path::{Path, PathBuf};

fn copy_table<K: Key + 'static, V: Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    let mut n = 0;
    for row in from.iter()? {
        let (k, v) = row?;
        to.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Copies every table of `src` into a new database at `dest` (which must not exist).
pub(crate) fn snapshot_into(src: &ReadTransaction, dest: &Path) -> Result<u64> {
    let db = Database::create(dest)?;
    let wtx = db.begin_write()?;
    let mut rows = 0u64;
    macro_rules! t {
        ($d:expr) => {
            rows += copy_table(src, &wtx, $d)?;
        };
    }
    crate::for_each_table!(t);
    wtx.commit()?;
    drop(db);
    Ok(rows)
}

/// A finished snapshot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Snapshot {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
}

impl Store {
    /// Writes a consistent snapshot into `dir` as `lavka-<timestamp>.redb` and returns it.
    /// Runs on the blocking pool; writes go on meanwhile.
    pub async fn snapshot(&self, dir: PathBuf) -> Result<Snapshot> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.snapshot_now(&dir))
            .await
            .map_err(|e| Error::internal(format!("snapshot task: {e}")))?
    }

    /// The same as [`Store::snapshot`], on the calling thread.
    pub fn snapshot_now(&self, dir: &Path) -> Result<Snapshot> {
        std::fs::create_dir_all(dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let final_path = dir.join(format!("lavka-{stamp}.redb"));
        let tmp = dir.join(format!(".lavka-{stamp}.redb.partial"));
        let _ = std::fs::remove_file(&tmp);
        let rtx = self.db().begin_read()?;
        let result = snapshot_into(&rtx, &tmp).and_then(|rows| {
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &final_path)?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(rows)
        });
        match result {
            Ok(rows) => {
                let bytes = std::fs::metadata(&final_path)?.len();
                Ok(Snapshot { path: final_path, bytes, rows })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// Keeps the newest `keep` snapshots in `dir`, deleting older `lavka-*.redb` files.
pub fn rotate(dir: &Path, keep: usize) -> Result<usize> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("lavka-") && n.ends_with(".redb"))
        })
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep);
    for p in &files[..excess] {
        std::fs::remove_file(p)?;
    }
    Ok(excess)
}

/// How old the newest snapshot in `dir` is, if there is one.
pub fn newest_age(dir: &Path) -> Option<std::time::Duration> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("lavka-") && n.ends_with(".redb")))
        .filter_map(|e| e.metadata().ok()?.modified().ok()?.elapsed().ok())
        .min()
}

/// Opens a database file read-only for checking (e.g. a snapshot) — it must not be in use.
pub fn open_for_check(path: &Path) -> Result<Database> {
    if !path.exists() {
        return Err(Error::not_found(format!("database file {}", path.display())));
    }
    Ok(Database::open(path)?)
}

/// Checks a database file that no process has open (e.g. a snapshot).
pub fn check_file(path: &Path) -> Result<super::CheckReport> {
    let db = open_for_check(path)?;
    let rtx = db.begin_read()?;
    super::check::check(&rtx)
}
