//! The on-disk feature cache: features are computed once per (input content,
//! feature settings) and reused by every later run.
//!
//! Key: SHA-256 over the input bytes, the feature settings as JSON and the
//! cache format version. Value: a small binary file (names, then f64
//! columns, little-endian), written atomically (temp file + rename) so a
//! killed process never leaves a half-written entry. A damaged entry is
//! treated as a miss and rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::settings::FeatureSettings;
use sha2::{Digest, Sha256};

use crate::{DataError, FeatureMatrix};

/// Bump when feature definitions change so old entries are not reused.
const FORMAT_VERSION: &str = "tradelab-features-v1";
const MAGIC: &[u8; 8] = b"TLFEAT01";

/// The hex SHA-256 of arbitrary bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The cache key for `input` under `settings`; `context` holds anything else
/// the result depends on (the repair policy, say).
pub fn feature_key(input: &[u8], context: &str, settings: &FeatureSettings) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT_VERSION.as_bytes());
    h.update(context.as_bytes());
    h.update([0u8]);
    h.update(serde_json::to_vec(settings).expect("feature settings serialise"));
    h.update(input);
    hex::encode(h.finalize())
}

/// A folder of cached feature matrices, one `<key>.features` file per key
/// (see [`feature_key`]).
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    /// A cache in `dir`; the folder is created on the first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FeatureCache { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.features"))
    }

    /// The cached matrix for `key`, if present and intact.
    pub fn get(&self, key: &str) -> Option<FeatureMatrix> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        decode(&bytes)
    }

    /// Stores `m` under `key` atomically.
    pub fn put(&self, key: &str, m: &FeatureMatrix) -> Result<(), DataError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| DataError::io(&self.dir, e))?;
        write_atomic(&self.path(key), &encode(m))
    }

    /// Returns the cached matrix, or computes and stores it. The flag is true
    /// on a cache hit.
    pub fn get_or_compute(
        &self,
        key: &str,
        compute: impl FnOnce() -> FeatureMatrix,
    ) -> Result<(FeatureMatrix, bool), DataError> {
        if let Some(m) = self.get(key) {
            return Ok((m, true));
        }
        let m = compute();
        self.put(key, &m)?;
        Ok((m, false))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so readers see either the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| DataError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

fn encode(m: &FeatureMatrix) -> Vec<u8> {
    let rows = m.columns.first().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(32 + m.columns.len() * rows * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(m.names.len() as u64).to_le_bytes());
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    for name in &m.names {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    for col in &m.columns {
        for v in col {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn decode(bytes: &[u8]) -> Option<FeatureMatrix> {
    let mut pos = 0;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = bytes.get(pos..pos + n)?;
        pos += n;
        Some(s)
    };
    if take(8)? != MAGIC {
        return None;
    }
    let u64_at = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes")) as usize;
    let ncols = u64_at(take(8)?);
    let rows = u64_at(take(8)?);
    if ncols > 10_000 || rows > bytes.len() {
        return None;
    }
    let mut names = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let len = u64_at(take(8)?);
        names.push(String::from_utf8(take(len)?.to_vec()).ok()?);
    }
    let mut columns = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        let raw = take(rows * 8)?;
        columns.push(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        );
    }
    if take(1).is_some() {
        return None;
    }
    Some(FeatureMatrix { names, columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FeatureMatrix {
        FeatureMatrix {
            names: vec!["a".into(), "bb".into()],
            columns: vec![vec![1.0, f64::NAN, 3.5], vec![-0.0, 2.0, 1e300]],
        }
    }

    #[test]
    fn round_trips_bit_for_bit_and_rejects_damage() {
        let m = sample();
        let bytes = encode(&m);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.names, m.names);
        for (a, b) in back.columns.iter().zip(&m.columns) {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
        assert!(decode(&bytes[..bytes.len() - 3]).is_none());
        assert!(decode(b"garbage").is_none());
    }

    #[test]
    fn damaged_entry_is_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path());
        let (_, hit) = cache.get_or_compute("k", sample).unwrap();
        assert!(!hit);
        assert!(cache.get_or_compute("k", sample).unwrap().1);
        std::fs::write(dir.path().join("k.features"), b"TLFEAT01trunc").unwrap();
        let (m, hit) = cache.get_or_compute("k", sample).unwrap();
        assert!(!hit);
        assert_eq!(m.names, sample().names);
    }

    #[test]
    fn key_changes_with_input_and_settings() {
        let s = FeatureSettings::default();
        let mut s2 = s.clone();
        s2.rsi_period = 7;
        assert_ne!(feature_key(b"abc", "", &s), feature_key(b"abd", "", &s));
        assert_ne!(feature_key(b"abc", "", &s), feature_key(b"abc", "", &s2));
        assert_ne!(feature_key(b"abc", "drop", &s), feature_key(b"abc", "repair", &s));
        assert_eq!(feature_key(b"abc", "", &s), feature_key(b"abc", "", &s));
    }
}
