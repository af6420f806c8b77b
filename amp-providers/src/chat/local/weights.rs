//! Loading the model's GGUF file, with its Q4_1 tensors re-quantized to Q8_0.
//!
//! candle has SIMD kernels for Q8_0 and none for Q4_1: on our 2-core machines generation
//! runs at ~2.5 tokens/s from Q4_1 and 56–80 from Q8_0, with unchanged answers. The
//! re-quantization takes about a second, so its result is cached as a GGUF file beside the
//! original (`X.Q4_1.gguf` → `X.Q8_0.gguf`). The cache records the size and modification
//! time of the file it came from; a cache that is stale, truncated or unreadable is rebuilt.
//! It is written to a temporary name and renamed, so concurrent loads and crashes never
//! leave a half-written cache under the real name.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use amp_core::{Error, Result};
use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};

use super::tokenizer::LocalTokenizer;

/// Bumped when the cache's layout or contents change, so old caches are rebuilt.
const CACHE_VERSION: u32 = 1;
const KEY_VERSION: &str = "amp.requantized.version";
const KEY_SOURCE_LEN: &str = "amp.requantized.source_len";
const KEY_SOURCE_MTIME: &str = "amp.requantized.source_mtime_ns";
/// candle's GGUF writer aligns tensor data to 32 bytes.
const WRITER_ALIGNMENT: u64 = 32;
/// `general.file_type` of a GGUF whose weights are mostly Q8_0 (llama.cpp's `MOSTLY_Q8_0`).
const FILE_TYPE_MOSTLY_Q8_0: u32 = 7;

/// Where the weights a [`LocalChatModel`](super::LocalChatModel) runs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsOrigin {
    /// The Q8_0 cache beside the original file was valid and used as is.
    Cache,
    /// Re-quantized at this load, because the cache was missing, stale or corrupt.
    /// `cached` says whether the new cache could be written (the directory may be read-only).
    Requantized {
        /// Whether the re-quantized weights were saved for the next load.
        cached: bool,
    },
    /// The original file has no Q4_1 tensors and is used as is.
    Original,
}

/// A model ready to run: weights, tokenizer and the longest sequence it can attend to.
pub(crate) struct LoadedModel {
    pub(crate) weights: ModelWeights,
    pub(crate) tokenizer: LocalTokenizer,
    pub(crate) context_window: usize,
    pub(crate) origin: WeightsOrigin,
}

/// The cache file for `source`: `.Q4_1` in its name becomes `.Q8_0`.
pub(crate) fn cache_path(source: &Path) -> PathBuf {
    let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let base = stem.strip_suffix(".Q4_1").unwrap_or(&stem);
    source.with_file_name(format!("{base}.Q8_0.gguf"))
}

/// Opens a GGUF file and reads its header (metadata and tensor table), saying how to fetch
/// the model when the file is missing.
pub(crate) fn read_gguf_header(path: &Path) -> Result<(Content, BufReader<File>)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing_model(path),
        _ => Error::internal(format!("cannot open the local chat model {}", path.display()), e),
    })?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader)
        .map_err(|e| Error::invalid_input(format!("{} is not a readable GGUF file: {e}", path.display())))?;
    Ok((content, reader))
}

fn missing_model(path: &Path) -> Error {
    Error::not_found(format!(
        "local chat model file {} (run scripts/fetch-models.sh to fetch it into the model directory, \
         $AMP_MODEL_DIR or .amp-cache/models)",
        path.display()
    ))
}

/// Loads `source`, from its Q8_0 cache when that is valid, re-quantizing otherwise.
pub(crate) fn load(source: &Path) -> Result<LoadedModel> {
    let stamp = SourceStamp::of(source)?;
    let cache = cache_path(source);
    // A model that is already Q8_0 may be named like its own cache.
    let cache_state = if cache == source { Ok(None) } else { open_cache(&cache, stamp) };
    match cache_state {
        Ok(Some((content, mut reader))) => match assemble(content, &mut reader, WeightsOrigin::Cache) {
            Ok(model) => return Ok(model),
            Err(e) => tracing::warn!(cache = %cache.display(), error = %e, "rebuilding an unreadable cache"),
        },
        Ok(None) => {}
        Err(reason) => tracing::warn!(cache = %cache.display(), %reason, "rebuilding the cache"),
    }

    let (content, mut reader) = read_gguf_header(source)?;
    if !content.tensor_infos.values().any(|t| t.ggml_dtype == GgmlDType::Q4_1) {
        return assemble(content, &mut reader, WeightsOrigin::Original);
    }
    let started = std::time::Instant::now();
    let bytes = requantize(&content, &mut reader, stamp)
        .map_err(|e| Error::internal(format!("re-quantizing {} to Q8_0 failed", source.display()), e))?;
    let cached = match write_atomically(&cache, &bytes) {
        Ok(()) => true,
        Err(e) => {
            let cache = cache.display();
            tracing::warn!(%cache, error = %e, "cannot save re-quantized weights; each load re-quantizes");
            false
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(source = %source.display(), ms, cached, "re-quantized Q4_1 tensors to Q8_0");
    let mut reader = Cursor::new(bytes);
    let content = Content::read(&mut reader)
        .map_err(|e| Error::internal("re-reading re-quantized weights failed", e))?;
    assemble(content, &mut reader, WeightsOrigin::Requantized { cached })
}

/// Builds tokenizer and weights from a GGUF header and the reader positioned anywhere in it.
fn assemble<R: Read + Seek>(content: Content, reader: &mut R, origin: WeightsOrigin) -> Result<LoadedModel> {
    let tokenizer = LocalTokenizer::from_gguf(&content)?;
    let trained =
        content.metadata.get("llama.context_length").and_then(|v| v.to_u32().ok()).map(|n| n as usize);
    // candle precomputes rotary embeddings for MAX_SEQ_LEN positions only, so positions past
    // it fail even when the model was trained for more.
    let context_window = trained.unwrap_or(MAX_SEQ_LEN).min(MAX_SEQ_LEN);
    let weights = ModelWeights::from_gguf(content, reader, &Device::Cpu)
        .map_err(|e| Error::internal("loading the local model's weights failed", e))?;
    Ok(LoadedModel { weights, tokenizer, context_window, origin })
}

/// Identifies the original file's version, so a replaced model invalidates its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceStamp {
    len: u64,
    mtime_ns: u64,
}

impl SourceStamp {
    fn of(source: &Path) -> Result<Self> {
        let meta = std::fs::metadata(source).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => missing_model(source),
            _ => Error::internal(format!("cannot read {}", source.display()), e),
        })?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Ok(SourceStamp { len: meta.len(), mtime_ns })
    }
}

/// The cache's header and reader if it is complete and made from `stamp`'s file; `Ok(None)`
/// when there is no cache, `Err(reason)` when it must be rebuilt.
fn open_cache(path: &Path, stamp: SourceStamp) -> Result<Option<(Content, BufReader<File>)>, String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader).map_err(|e| format!("unreadable header: {e}"))?;
    let number = |key: &str| content.metadata.get(key).and_then(|v| v.to_u64().ok());
    let version = content.metadata.get(KEY_VERSION).and_then(|v| v.to_u32().ok());
    if version != Some(CACHE_VERSION) {
        return Err(format!("cache version {version:?}, expected {CACHE_VERSION}"));
    }
    if number(KEY_SOURCE_LEN) != Some(stamp.len) || number(KEY_SOURCE_MTIME) != Some(stamp.mtime_ns) {
        return Err("made from another version of the model file".to_owned());
    }
    let expected = expected_file_len(&content).ok_or("its tensor table is inconsistent")?;
    if file_len != expected {
        return Err(format!(
            "{file_len} bytes where its tensor table needs {expected} (truncated or padded)"
        ));
    }
    Ok(Some((content, reader)))
}

/// The exact length of a file written by candle's GGUF writer with this header: every
/// tensor's data is padded to the writer's alignment, the last one included.
fn expected_file_len(content: &Content) -> Option<u64> {
    let mut end = 0u64;
    for info in content.tensor_infos.values() {
        let elems = info.shape.elem_count();
        let block = info.ggml_dtype.block_size();
        if elems % block != 0 {
            return None;
        }
        let size = u64::try_from(elems / block * info.ggml_dtype.type_size()).ok()?;
        end = end.max(info.offset.checked_add(size.next_multiple_of(WRITER_ALIGNMENT))?);
    }
    content.tensor_data_offset.checked_add(end)
}

/// A GGUF file, in memory, with every Q4_1 tensor of `content` turned into Q8_0 and the
/// metadata kept, plus the cache keys.
fn requantize<R: Read + Seek>(
    content: &Content,
    reader: &mut R,
    stamp: SourceStamp,
) -> candle_core::Result<Vec<u8>> {
    let device = Device::Cpu;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(reader, name, &device)?;
        let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
            QTensor::quantize(&tensor.dequantize(&device)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }

    let mut metadata: Vec<(&str, Value)> = content
        .metadata
        .iter()
        // The writer uses its own alignment; a copied `general.alignment` could contradict it.
        .filter(|(key, _)| !matches!(key.as_str(), "general.alignment" | "general.file_type"))
        .map(|(key, value)| (key.as_str(), value.clone()))
        .collect();
    metadata.push(("general.file_type", Value::U32(FILE_TYPE_MOSTLY_Q8_0)));
    metadata.push((KEY_VERSION, Value::U32(CACHE_VERSION)));
    metadata.push((KEY_SOURCE_LEN, Value::U64(stamp.len)));
    metadata.push((KEY_SOURCE_MTIME, Value::U64(stamp.mtime_ns)));
    metadata.sort_by_key(|(key, _)| *key);

    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (*k, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensors)?;
    Ok(out.into_inner())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so readers see either the old file or the complete new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Unique per process and per call: loads in other processes or threads may race.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let nonce = NEXT.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{name}.{}-{nonce}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_sits_beside_the_original_with_its_quantization_in_the_name() {
        assert_eq!(
            cache_path(Path::new("/m/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")),
            Path::new("/m/smollm2/SmolLM2-135M-Instruct.Q8_0.gguf")
        );
        assert_eq!(cache_path(Path::new("/m/model.gguf")), Path::new("/m/model.Q8_0.gguf"));
    }
}
