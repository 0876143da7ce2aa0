//! Checkpoint files: a deterministic safetensors writer, a checked reader,
//! and directories replaced atomically.
//!
//! A checkpoint is a directory:
//!
//! ```text
//! model.safetensors      the weights (what Python's `safetensors` opens)
//! optimizer.safetensors  Adam's moments, for resuming
//! metadata.json          what the model is, its checksums, settings, data hashes, metrics
//! ```
//!
//! The directory is staged beside its final place and renamed into it, so a
//! killed process leaves the previous checkpoint or the new one, never a mix.
//! Tensors are written in name order with a fixed header, so the same weights
//! always give the same bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use crate::settings::WeightsDtype;

use crate::error::AgentError;

/// The weights' file name in a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The optimiser state's file name (Adam's moments) in a checkpoint directory.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The metadata's file name in a checkpoint directory.
pub const METADATA_FILE: &str = "metadata.json";

/// SHA-256 of `bytes` as 64 lowercase hex digits: the checksum form
/// metadata.json records.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serialises f32 tensors in the safetensors format: an 8-byte
/// little-endian header length, a JSON header (names in sorted order, padded
/// with spaces to 8 bytes), then the raw little-endian data.
pub fn safetensors_bytes(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<u8>, AgentError> {
    safetensors_bytes_as(tensors, WeightsDtype::F32)
}

/// f32 to bfloat16 bits, rounding to nearest even (NaN stays NaN).
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// [`safetensors_bytes`] with the values stored as `dtype`.
pub fn safetensors_bytes_as(tensors: &BTreeMap<String, Tensor>, dtype: WeightsDtype) -> Result<Vec<u8>, AgentError> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let start = data.len();
        let tag = match dtype {
            WeightsDtype::F32 => {
                for v in values {
                    data.extend_from_slice(&v.to_le_bytes());
                }
                "F32"
            }
            WeightsDtype::Bf16 => {
                for v in values {
                    data.extend_from_slice(&bf16_bits(v).to_le_bytes());
                }
                "BF16"
            }
        };
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": tag, "shape": t.dims(), "data_offsets": [start, data.len()]}),
        );
    }
    let mut head = serde_json::to_string(&header).expect("a JSON map always serialises");
    while !head.len().is_multiple_of(8) {
        head.push(' ');
    }
    let mut out = Vec::with_capacity(8 + head.len() + data.len());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// Parses safetensors bytes (any file Python's `safetensors` writes with
/// float tensors), refusing malformed or truncated content.
pub fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, AgentError> {
    let bad = |problem: String| {
        AgentError::checkpoint(path, format!("{problem}; the file is corrupt or not a safetensors file, so write it again (train or export once more)"))
    };
    let map = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
    Ok(map.into_iter().collect())
}

/// Reads a file of the checkpoint, naming it when it is missing.
pub fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>, AgentError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AgentError::checkpoint(
                &path,
                format!(
                    "missing; {} is not a complete checkpoint directory (it needs {WEIGHTS_FILE}, {OPTIMIZER_FILE} and {METADATA_FILE}){}",
                    dir.display(),
                    interrupted_hint(dir)
                ),
            )
        } else {
            AgentError::io(&path, e)
        }
    })
}

/// Writes the files into `dir`, replacing what is there only once all of
/// them are on disk.
pub fn write_dir_atomic(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), AgentError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| AgentError::io(&parent, e))?;
    let name = dir
        .file_name()
        .ok_or_else(|| AgentError::Invalid(format!("{} is not a usable checkpoint path", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let pid = std::process::id();
    remove_stale_staging(&parent, dir.exists());
    let staging = parent.join(format!(".{name}.partial-{pid}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|e| AgentError::io(&staging, e))?;
    for (file, bytes) in files {
        let path = staging.join(file);
        let mut f = std::fs::File::create(&path).map_err(|e| AgentError::io(&path, e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| AgentError::io(&path, e))?;
    }
    let old = parent.join(format!(".{name}.old-{pid}"));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| AgentError::io(dir, e))?;
    }
    std::fs::rename(&staging, dir).map_err(|e| AgentError::io(dir, e))?;
    // The renames are durable only once the folder holding them is synced.
    sync_dir(&parent).map_err(|e| AgentError::io(&parent, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Flushes a folder's entries (renames, creations) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether the process `pid` is gone (so what it staged is abandoned).
/// Where that cannot be told, it counts as alive: nothing is removed.
fn process_gone(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
    } else {
        false
    }
}

/// Issue 19 finding 18: a process killed mid-save left its staging folder
/// (`.NAME.partial-PID`) for ever. Removes those of processes that are
/// gone, and their `.NAME.old-PID` folders too once `target_exists` (the
/// checkpoint they would restore is in place).
fn remove_stale_staging(parent: &Path, target_exists: bool) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if !name.starts_with('.') {
            continue;
        }
        let stale = [".partial-", ".old-"].iter().any(|marker| {
            name.rsplit_once(marker).is_some_and(|(_, pid)| {
                pid.parse::<u32>().is_ok_and(process_gone) && (*marker == ".partial-" || target_exists)
            })
        });
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where a checkpoint replaced by a killed process left its predecessor.
fn interrupted_hint(dir: &Path) -> String {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return String::new();
    };
    let prefix = format!(".{}.old-", name.to_string_lossy());
    std::fs::read_dir(parent)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        })
        .map(|e| {
            format!(
                "; a save was interrupted and the previous checkpoint is intact at {}",
                e.path().display()
            )
        })
        .unwrap_or_default()
}

/// Checks a file's bytes against the checksum metadata.json recorded.
pub fn verify_checksum(path: &Path, bytes: &[u8], expected: &str) -> Result<(), AgentError> {
    let found = sha256_hex(bytes);
    if found != expected {
        return Err(AgentError::checkpoint(
            path,
            format!("sha256 is {found} but metadata.json records {expected}: the file was changed or damaged after it was saved; restore it or train again"),
        ));
    }
    Ok(())
}

/// The verified contents of a checkpoint directory: its metadata (parsed
/// as `M`), weights and optimiser state, each checked against the
/// checksums metadata.json records.
pub struct Verified<M> {
    /// The parsed metadata.json.
    pub meta: M,
    /// The weights by tensor name, on the CPU.
    pub weights: BTreeMap<String, Tensor>,
    /// The optimiser state by name (`adam.m.<param>`, `adam.v.<param>`), on
    /// the CPU.
    pub optimizer: BTreeMap<String, Tensor>,
}

/// Training progress needed to resume.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingState {
    /// Updates done so far, across resumes; the learning-rate schedule
    /// resumes from it.
    pub updates: usize,
    /// Environment steps taken so far, across resumes.
    pub env_steps: usize,
    /// Adam's step count, for its bias corrections.
    pub adam_step: usize,
    /// The reward scaler's running statistics and per-environment returns.
    pub reward_scaler: crate::reward_scale::RewardScaler,
}

/// Everything in a checkpoint's metadata.json; `C` is the agent type's
/// configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMetadata<C> {
    /// The checkpoint layout's version; loading refuses any but
    /// [`FORMAT_VERSION`](crate::metadata::FORMAT_VERSION).
    pub format_version: u32,
    /// The agent type (`ppo-lstm`, `hrm`, ...): loading refuses another.
    pub model: String,
    /// The model's own version; every agent writes 1 and loading does not
    /// read it.
    pub version: u32,
    /// What wrote the checkpoint, e.g. `candle 0.11 (tradelab-agents 0.1.0)`.
    pub framework: String,
    /// SHA-256 of `model.safetensors`, as lowercase hex.
    pub weights_sha256: String,
    /// SHA-256 of `optimizer.safetensors`, as lowercase hex.
    pub optimizer_sha256: String,
    /// When the checkpoint was written, RFC 3339 UTC (`SOURCE_DATE_EPOCH`
    /// when set).
    pub trained_at: String,
    /// Number of trainable scalars in the model.
    pub parameters: usize,
    /// The configuration that rebuilds the network before the weights are
    /// assigned.
    pub config: C,
    /// Counters and state that resume training where it stopped.
    pub training: TrainingState,
    /// Vocabulary, features, settings, data hashes and metrics, written at
    /// the top level of the JSON rather than nested.
    #[serde(flatten)]
    pub provenance: crate::metadata::Provenance,
}

impl<C: serde::de::DeserializeOwned> CheckpointMeta for CheckpointMetadata<C> {
    fn format_version(&self) -> u32 {
        self.format_version
    }
    fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }
    fn optimizer_sha256(&self) -> &str {
        &self.optimizer_sha256
    }
}

/// What [`read_verified`] needs to know of an agent's metadata.
pub trait CheckpointMeta: serde::de::DeserializeOwned {
    /// The layout version the metadata records.
    fn format_version(&self) -> u32;
    /// The recorded SHA-256 of `model.safetensors`, lowercase hex.
    fn weights_sha256(&self) -> &str;
    /// The recorded SHA-256 of `optimizer.safetensors`, lowercase hex.
    fn optimizer_sha256(&self) -> &str;
}

/// The largest sizes a checkpoint's metadata may describe: far beyond any
/// model tradelab trains, far below what would exhaust memory.
pub const MAX_FEATURES: usize = 65_536;
/// See [`MAX_FEATURES`].
pub const MAX_WINDOW: usize = 65_536;
/// See [`MAX_FEATURES`].
pub const MAX_INSTRUMENTS: usize = 1_000_000;
/// See [`MAX_FEATURES`].
pub const MAX_TIMEFRAMES: usize = 1_024;

/// Issue 19 finding 7: a metadata.json declaring absurd sizes (hidden =
/// 2^40) made the server abort allocating the model. Before building
/// anything: every size in `dims` within its bound, the settings `check`
/// validates, and the network at least `min_parameters` (None: the
/// arithmetic overflowed) not larger than the weights file actually holds.
pub fn check_described_model(
    dir: &Path,
    dims: &[(&str, usize, usize)],
    check: impl FnOnce(&mut tradelab_core::settings::Validator),
    min_parameters: Option<usize>,
    weights: &BTreeMap<String, Tensor>,
) -> Result<(), AgentError> {
    let meta_path = dir.join(METADATA_FILE);
    for (name, value, max) in dims {
        if *value > *max {
            return Err(AgentError::checkpoint(
                &meta_path,
                format!("describes {value} {name}, beyond the {max} a model may have; the file is damaged or not tradelab's"),
            ));
        }
    }
    if let Some(e) = tradelab_core::settings::first_error(check) {
        return Err(AgentError::checkpoint(
            &meta_path,
            format!("holds settings out of range: {e}"),
        ));
    }
    let held: usize = weights.values().map(|t| t.elem_count()).sum();
    match min_parameters {
        Some(n) if n <= held => Ok(()),
        Some(n) => Err(AgentError::checkpoint(
            &meta_path,
            format!("describes a network of at least {n} parameters, but {WEIGHTS_FILE} holds {held}; the metadata is damaged or belongs to other weights"),
        )),
        None => Err(AgentError::checkpoint(
            &meta_path,
            "describes a network too large to count; the file is damaged or not tradelab's",
        )),
    }
}

/// Reads a checkpoint of an agent type whose metadata layout is `M`,
/// refusing another format version or damaged files. `layout` names the
/// agent type in the error when the JSON does not match.
pub fn read_verified<M: CheckpointMeta>(dir: &Path, layout: &str) -> Result<Verified<M>, AgentError> {
    let meta_path = dir.join(METADATA_FILE);
    let bytes = read_file(dir, METADATA_FILE)?;
    let meta: M = serde_json::from_slice(&bytes).map_err(|e| {
        AgentError::checkpoint(
            &meta_path,
            format!("does not match the {layout} checkpoint layout ({e})"),
        )
    })?;
    if meta.format_version() != crate::metadata::FORMAT_VERSION {
        return Err(AgentError::checkpoint(
            &meta_path,
            format!(
                "is checkpoint format {} but this build reads format {}; use the tradelab version that wrote it",
                meta.format_version(),
                crate::metadata::FORMAT_VERSION
            ),
        ));
    }
    let weights_path = dir.join(WEIGHTS_FILE);
    let weights = read_file(dir, WEIGHTS_FILE)?;
    verify_checksum(&weights_path, &weights, meta.weights_sha256())?;
    let optimizer_path = dir.join(OPTIMIZER_FILE);
    let optimizer = read_file(dir, OPTIMIZER_FILE)?;
    verify_checksum(&optimizer_path, &optimizer, meta.optimizer_sha256())?;
    Ok(Verified {
        weights: read_safetensors(&weights_path, &weights)?,
        optimizer: read_safetensors(&optimizer_path, &optimizer)?,
        meta,
    })
}

/// Writes weights, optimiser state and the metadata `make_meta` builds from
/// their checksums, atomically.
pub fn write_checkpoint<M: serde::Serialize>(
    dir: &Path,
    (weights, weights_dtype): (&BTreeMap<String, Tensor>, WeightsDtype),
    optimizer: &BTreeMap<String, Tensor>,
    make_meta: impl FnOnce(String, String) -> M,
) -> Result<(), AgentError> {
    let weights = safetensors_bytes_as(weights, weights_dtype)?;
    let optimizer = safetensors_bytes(optimizer)?;
    let meta = make_meta(sha256_hex(&weights), sha256_hex(&optimizer));
    let json = serde_json::to_string_pretty(&meta)
        .map_err(|e| AgentError::Invalid(format!("metadata does not serialise: {e}")))?
        + "\n";
    write_dir_atomic(
        dir,
        &[
            (WEIGHTS_FILE, &weights),
            (OPTIMIZER_FILE, &optimizer),
            (METADATA_FILE, json.as_bytes()),
        ],
    )
}

/// Writes a fitted model (a supervised baseline): f32 vectors by name, no
/// optimiser state, no reinforcement-learning counters.
pub fn write_fitted<C: serde::Serialize + Clone>(
    dir: &Path,
    kind: &str,
    framework: &str,
    vectors: &[(&str, Vec<f32>)],
    config: &C,
    provenance: &crate::metadata::Provenance,
) -> Result<(), AgentError> {
    let mut weights = BTreeMap::new();
    let mut parameters = 0;
    for (name, values) in vectors {
        parameters += values.len();
        weights.insert(
            name.to_string(),
            Tensor::from_slice(values, values.len(), &Device::Cpu)?,
        );
    }
    write_checkpoint(
        dir,
        (&weights, WeightsDtype::F32),
        &BTreeMap::new(),
        |weights_sha256, optimizer_sha256| CheckpointMetadata {
            format_version: crate::metadata::FORMAT_VERSION,
            model: kind.to_string(),
            version: 1,
            framework: format!("tradelab-agents {} ({framework})", env!("CARGO_PKG_VERSION")),
            weights_sha256,
            optimizer_sha256,
            trained_at: crate::metadata::timestamp_now(),
            parameters,
            config: config.clone(),
            training: TrainingState {
                updates: 0,
                env_steps: 0,
                adam_step: 0,
                reward_scaler: crate::reward_scale::RewardScaler::new(1, 0.99, 0.0),
            },
            provenance: provenance.clone(),
        },
    )
}

/// Reads a model [`write_fitted`] wrote, refusing another kind or damaged
/// files: its metadata and each of `names` as an f32 vector.
pub fn read_fitted<C: serde::de::DeserializeOwned>(
    dir: &Path,
    kind: &str,
    layout: &str,
    names: &[&str],
) -> Result<(CheckpointMetadata<C>, Vec<Vec<f32>>), AgentError> {
    let found = read_model_kind(dir)?;
    if found != kind {
        return Err(AgentError::Mismatch(format!(
            "{} holds a `{found}` model, not a `{kind}` one",
            dir.display()
        )));
    }
    let v = read_verified::<CheckpointMetadata<C>>(dir, layout)?;
    let path = dir.join(WEIGHTS_FILE);
    let vectors = names
        .iter()
        .map(|name| {
            v.weights
                .get(*name)
                .ok_or_else(|| AgentError::checkpoint(&path, format!("lacks `{name}`")))?
                .flatten_all()?
                .to_vec1::<f32>()
                .map_err(AgentError::from)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((v.meta, vectors))
}

/// Reads only metadata.json, to tell which agent a checkpoint holds.
pub fn read_model_kind(dir: &Path) -> Result<String, AgentError> {
    let path = dir.join(METADATA_FILE);
    let bytes = read_file(dir, METADATA_FILE)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| AgentError::checkpoint(&path, format!("is not valid JSON ({e}); the checkpoint is damaged")))?;
    v.get("model")
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .ok_or_else(|| AgentError::checkpoint(&path, "has no `model` field; it is not a tradelab checkpoint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_is_byte_stable_and_corruption_is_refused() {
        let mut m = BTreeMap::new();
        m.insert(
            "b.weight".to_string(),
            Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap(),
        );
        m.insert("a.bias".to_string(), Tensor::new(&[0.5f32], &Device::Cpu).unwrap());
        let bytes = safetensors_bytes(&m).unwrap();
        assert_eq!(bytes, safetensors_bytes(&m).unwrap());
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let back = read_safetensors(Path::new("x"), &bytes).unwrap();
        // bf16: half the bytes, values within bf16's precision, read back as bf16.
        let half = safetensors_bytes_as(&m, WeightsDtype::Bf16).unwrap();
        assert!(half.len() < bytes.len());
        let b = read_safetensors(Path::new("x"), &half).unwrap();
        let w = b["b.weight"].to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(
            w,
            vec![vec![1.0, 2.0], vec![3.0, 4.0]],
            "small integers are exact in bf16"
        );
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), bf16_bits(1.0), "ties round to even");
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), bf16_bits(1.0 + 2.0 / 128.0));
        assert_eq!(
            back["b.weight"].to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        assert_eq!(back["a.bias"].to_vec1::<f32>().unwrap(), vec![0.5]);
        let err = read_safetensors(Path::new("x"), &bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(verify_checksum(Path::new("x"), &bytes, &sha256_hex(b"other")).is_err());
    }

    #[test]
    fn directories_are_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ckpt");
        write_dir_atomic(&dir, &[("a", b"1"), ("b", b"2")]).unwrap();
        write_dir_atomic(&dir, &[("a", b"3")]).unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"3");
        assert!(!dir.join("b").exists(), "the old directory is gone, not merged");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging or old directories remain");
        let err = read_file(&tmp.path().join("none"), WEIGHTS_FILE).unwrap_err();
        assert!(err.to_string().contains("not a complete checkpoint"), "{err}");
    }

    /// Issue 19 finding 18: what processes killed mid-save left behind is
    /// cleared by the next save; a live process's staging is left alone.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_killed_saves_leftovers_are_removed_and_a_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that has exited: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        let dir = tmp.path().join("ckpt");
        write_dir_atomic(&dir, &[("a", b"1")]).unwrap();
        for leftover in [
            format!(".ckpt.partial-{dead}"),
            format!(".other.partial-{dead}"),
            format!(".ckpt.old-{dead}"),
            format!(".elsewhere.partial-{live}"),
        ] {
            std::fs::create_dir(tmp.path().join(&leftover)).unwrap();
            std::fs::write(tmp.path().join(&leftover).join("a"), b"x").unwrap();
        }
        write_dir_atomic(&dir, &[("a", b"2")]).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [format!(".elsewhere.partial-{live}"), "ckpt".to_string()]);
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"2");
    }
}
