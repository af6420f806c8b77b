//! An approximate vector index: an HNSW graph (usearch) over the entries of a
//! [`FlatVectorIndex`], which stays the source of truth (its log is what survives a crash).
//!
//! A search is planned by how many entries its filter can match:
//! - exactly, reading only the entries of its files or of its owners and workspaces as the
//!   flat index does, when the filter can
//!   match fewer than [`EXACT_BELOW`] entries or the index holds fewer, and also while it
//!   can match fewer than √([`EXACT_SCALE`] × entries): an exact search costs in proportion
//!   to what the filter matches, a filtered graph search about in proportion to how much of
//!   the graph it walks past (entries ÷ matches), and the two meet near that size (about
//!   155,000 of a million entries; `benches/RESULTS.md` has the measurements);
//! - otherwise through the graph, with the access filter checked on each node the search visits (so
//!   results are only readable entries, never fewer because of over-fetching), the best
//!   candidates re-scored with the exact vectors. A filtered graph search that still comes
//!   back short of `limit` is finished exactly.
//!
//! The graph keeps its vectors as 16-bit floats (half the flat index's memory). It is
//! saved to `<path>.hnsw` (with its keys in `<path>.hnsw.keys`) once enough has changed and
//! when the index is dropped, and loaded at open; whatever the flat log holds that the saved
//! graph does not (changes after the last save, or a graph never saved) is added then, and
//! whatever it holds that the log does not is removed.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use amp_core::{ChunkId, Error, FileId, Result, SearchFilter, SearchHit, VectorEntry, VectorIndex};
use async_trait::async_trait;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::{Allowed, FlatVectorIndex, Row, dot, prepare, read};
use crate::index::normalized;

/// Filters that can match fewer entries than this are searched exactly, as is every
/// search of an index holding fewer.
pub const EXACT_BELOW: usize = 20_000;
/// Beyond [`EXACT_BELOW`], filters that can match fewer than √(`EXACT_SCALE` × entries)
/// are searched exactly too: on 2 cores an exact search costs ~80 ns an entry matched, a
/// filtered graph search ~2 ms ÷ the share of entries matched (see the module docs).
pub const EXACT_SCALE: usize = 24_000;
/// Edges per node (HNSW's `M`).
const CONNECTIVITY: usize = 16;
/// Candidates kept while inserting (`efConstruction`).
const EXPANSION_ADD: usize = 128;
/// Candidates kept while searching (`ef`), at least.
const EXPANSION_SEARCH: usize = 160;
/// Searches of the graph at once; usearch needs a context per concurrent caller.
const GRAPH_THREADS: usize = 64;
/// Changes after which the graph is saved again (or a tenth of its size, if larger).
const SAVE_EVERY: usize = 50_000;

/// [`VectorIndex`] by HNSW over a [`FlatVectorIndex`] (see the module docs): sub-linear
/// searches at a million passages, exact ones under restrictive filters.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use amp_core::{ChunkId, FileId, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility};
/// use amp_providers::HnswVectorIndex;
///
/// let index = HnswVectorIndex::in_memory(3)?;
/// let (owner, chunk, file) = (UserId::new(), ChunkId::new(), FileId::new());
/// let visibility = Visibility { owner, workspace: None };
/// index.upsert(vec![VectorEntry { chunk, file, visibility, vector: vec![3.0, 4.0, 0.0] }]).await?;
/// let hits = index.search(&[0.6, 0.8, 0.0], &SearchFilter::owner(owner), 5).await?;
/// assert_eq!(hits[0].chunk, chunk);
/// # Ok::<(), amp_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct HnswVectorIndex {
    flat: FlatVectorIndex,
    graph: Arc<Graph>,
    /// A fixed exact threshold instead of the planned one (see `exact_below`).
    exact_below: Option<usize>,
    /// Searches at once, below the graph's thread contexts (writers need theirs too).
    searching: Arc<tokio::sync::Semaphore>,
}

/// The graph, the chunk each of its keys stands for, and where it is saved.
struct Graph {
    index: RwLock<Index>,
    keys: RwLock<HashMap<u64, ChunkId>>,
    /// Entries whose key another chunk already holds (a 64-bit collision): searched
    /// exactly beside the graph.
    loose: RwLock<HashSet<ChunkId>>,
    /// Serializes writers, so the flat index and the graph change in the same order.
    writing: Mutex<()>,
    path: Option<PathBuf>,
    changed: AtomicUsize,
}

/// A chunk's key in the graph: its id's two halves folded (ids are random, so are keys).
fn key_of(chunk: ChunkId) -> u64 {
    let id = chunk.as_uuid().as_u128();
    let key = (id as u64) ^ ((id >> 64) as u64);
    // usearch reserves the largest key.
    key.min(u64::MAX - 1)
}

fn graph_error<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::internal(format!("vector graph: {what}"), e.to_string())
}

fn new_graph(dimension: usize) -> Result<Index> {
    let options = IndexOptions {
        dimensions: dimension,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F16,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    };
    let index = Index::new(&options).map_err(graph_error("create"))?;
    index.reserve_capacity_and_threads(1_024, GRAPH_THREADS).map_err(graph_error("reserve"))?;
    Ok(index)
}

impl HnswVectorIndex {
    /// An empty index kept in memory only.
    pub fn in_memory(dimension: usize) -> Result<Self> {
        Self::over(FlatVectorIndex::in_memory(dimension), None)
    }

    /// Opens (or creates) the index persisted at `path` (the flat log) and `path.hnsw`
    /// (the graph), bringing the graph up to date with the log. Blocking: call it at
    /// start-up or from `spawn_blocking`. Errors as [`FlatVectorIndex::open`].
    pub fn open(path: impl AsRef<Path>, dimension: usize) -> Result<Self> {
        let path = path.as_ref();
        let flat = FlatVectorIndex::open(path, dimension)?;
        let mut snapshot = path.as_os_str().to_owned();
        snapshot.push(".hnsw");
        Self::over(flat, Some(PathBuf::from(snapshot)))
    }

    /// Searches whose filter can match fewer than `entries` entries go exact, and all
    /// others through the graph, instead of the plan of the module docs; 0 sends every
    /// search to the graph (for measuring it).
    pub fn exact_below(mut self, entries: usize) -> Self {
        self.exact_below = Some(entries);
        self
    }

    /// Whether a search whose filter can match `candidates` of `total` entries goes exact.
    fn exact(&self, candidates: usize, total: usize) -> bool {
        match self.exact_below {
            Some(fixed) => candidates < fixed,
            None => {
                let crossover = ((EXACT_SCALE as f64) * total as f64).sqrt() as usize;
                total < EXACT_BELOW || candidates < EXACT_BELOW.max(crossover)
            }
        }
    }

    fn over(flat: FlatVectorIndex, path: Option<PathBuf>) -> Result<Self> {
        let dimension = flat.dimension;
        let mut index = new_graph(dimension)?;
        let mut saved_keys = Vec::new();
        if let Some(path) = &path
            && path.exists()
        {
            match load(&index, path, dimension) {
                Ok(keys) => saved_keys = keys,
                Err(err) => {
                    // The log is the truth: a graph that cannot be read is rebuilt from it.
                    tracing::warn!(path = %path.display(), error = %err, "the saved vector graph is unreadable; rebuilding it");
                    index = new_graph(dimension)?;
                }
            }
        }
        let graph = Graph {
            index: RwLock::new(index),
            keys: RwLock::new(HashMap::new()),
            loose: RwLock::new(HashSet::new()),
            writing: Mutex::new(()),
            path,
            changed: AtomicUsize::new(0),
        };
        let this = HnswVectorIndex {
            flat,
            graph: Arc::new(graph),
            exact_below: None,
            searching: Arc::new(tokio::sync::Semaphore::new(GRAPH_THREADS / 2)),
        };
        this.reconcile(saved_keys)?;
        Ok(this)
    }

    /// Makes the graph hold exactly the flat index's entries: `saved` are the keys the
    /// loaded graph holds.
    fn reconcile(&self, saved: Vec<u64>) -> Result<()> {
        let _writing = lock(&self.graph.writing);
        let entries = read(&self.flat.entries);
        let index = self.graph.index.write().unwrap_or_else(PoisonError::into_inner);
        let mut keys = self.graph.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut live: HashSet<u64> = HashSet::with_capacity(entries.rows.len());
        let mut stale = Vec::new();
        let mut missing = Vec::new();
        let mut buffer = vec![0f32; entries.dimension];
        for (slot, row) in entries.rows.iter().enumerate() {
            let key = key_of(row.chunk);
            if !live.insert(key) {
                self.graph.loose.write().unwrap_or_else(PoisonError::into_inner).insert(row.chunk);
                continue;
            }
            keys.insert(key, row.chunk);
            if index.contains(key) {
                // The same chunk, upserted again after the save with another vector?
                let found = index.get(key, &mut buffer).map_err(graph_error("read"))?;
                if found == 1 && dot(&buffer, entries.vector(slot)) > 0.999 {
                    continue;
                }
                stale.push(key);
            }
            missing.push(slot);
        }
        for key in saved.into_iter().filter(|k| !live.contains(k)).chain(stale) {
            index.remove(key).map_err(graph_error("remove"))?;
        }
        reserve(&index, missing.len())?;
        let vectors: Vec<(u64, &[f32])> =
            missing.iter().map(|&slot| (key_of(entries.rows[slot].chunk), entries.vector(slot))).collect();
        add_all(&index, &vectors)?;
        if !missing.is_empty() {
            tracing::info!(
                added = missing.len(),
                total = entries.rows.len(),
                "vector graph brought up to date"
            );
        }
        self.graph.changed.store(missing.len(), Ordering::Relaxed);
        drop((keys, index, entries));
        self.save_if_due()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.flat.len()
    }

    /// Whether it holds no entries.
    pub fn is_empty(&self) -> bool {
        self.flat.is_empty()
    }

    /// Bytes the graph holds (its links and 16-bit vectors), besides the flat entries.
    pub fn graph_bytes(&self) -> usize {
        self.graph.index.read().unwrap_or_else(PoisonError::into_inner).memory_usage()
    }

    /// Saves the graph now (it is also saved as it changes, and when dropped).
    pub fn save(&self) -> Result<()> {
        let _writing = lock(&self.graph.writing);
        self.save_locked()
    }

    fn save_if_due(&self) -> Result<()> {
        let size = self.flat.len();
        if self.graph.changed.load(Ordering::Relaxed) >= SAVE_EVERY.max(size / 10) {
            return self.save_locked();
        }
        Ok(())
    }

    /// Writes the graph and its keys beside the log (to temporary names, then renamed).
    fn save_locked(&self) -> Result<()> {
        let Some(path) = &self.graph.path else { return Ok(()) };
        let index = self.graph.index.read().unwrap_or_else(PoisonError::into_inner);
        let keys = self.graph.keys.read().unwrap_or_else(PoisonError::into_inner);
        let tmp = path.with_extension("hnsw.tmp");
        let keys_path = keys_path(path);
        let keys_tmp = keys_path.with_extension("keys.tmp");
        let cannot = |e: std::io::Error| Error::unavailable(format!("cannot save the vector graph: {e}"));
        let bytes: Vec<u8> = keys.keys().flat_map(|k| k.to_le_bytes()).collect();
        std::fs::write(&keys_tmp, bytes).map_err(cannot)?;
        index.save(&tmp.to_string_lossy()).map_err(graph_error("save"))?;
        std::fs::rename(&keys_tmp, &keys_path).map_err(cannot)?;
        std::fs::rename(&tmp, path).map_err(cannot)?;
        self.graph.changed.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Applies a batch to the log and memory, then to the graph. Blocking.
    fn upsert_blocking(&self, prepared: Vec<(Row, Vec<f32>)>) -> Result<()> {
        let _writing = lock(&self.graph.writing);
        let added: Vec<(ChunkId, Vec<f32>)> =
            prepared.iter().map(|(row, v)| (row.chunk, v.clone())).collect();
        self.flat.upsert_blocking(prepared)?;
        let index = self.graph.index.write().unwrap_or_else(PoisonError::into_inner);
        let mut keys = self.graph.keys.write().unwrap_or_else(PoisonError::into_inner);
        reserve(&index, added.len())?;
        // The last of a chunk listed twice in one batch wins, as in the flat index.
        let mut last: HashMap<u64, usize> = HashMap::with_capacity(added.len());
        for (i, (chunk, _)) in added.iter().enumerate() {
            let key = key_of(*chunk);
            match keys.get(&key) {
                Some(holder) if holder != chunk => {
                    self.graph.loose.write().unwrap_or_else(PoisonError::into_inner).insert(*chunk);
                }
                _ => {
                    last.insert(key, i);
                }
            }
        }
        let mut vectors: Vec<(u64, &[f32])> = Vec::with_capacity(last.len());
        for (&key, &i) in &last {
            if index.contains(key) {
                // Upserted again: the new vector replaces the old.
                index.remove(key).map_err(graph_error("remove"))?;
            }
            keys.insert(key, added[i].0);
            vectors.push((key, added[i].1.as_slice()));
        }
        add_all(&index, &vectors)?;
        self.graph.changed.fetch_add(added.len(), Ordering::Relaxed);
        drop((keys, index));
        self.save_if_due()
    }

    /// Removes a file's entries from the log and memory, then from the graph. Blocking.
    fn delete_file_blocking(&self, file: FileId) -> Result<u64> {
        let _writing = lock(&self.graph.writing);
        let chunks = read(&self.flat.entries).chunks_of(file);
        let removed = self.flat.delete_file_blocking(file)?;
        let index = self.graph.index.write().unwrap_or_else(PoisonError::into_inner);
        let mut keys = self.graph.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut loose = self.graph.loose.write().unwrap_or_else(PoisonError::into_inner);
        for chunk in chunks {
            if loose.remove(&chunk) {
                continue;
            }
            let key = key_of(chunk);
            if keys.get(&key) == Some(&chunk) {
                keys.remove(&key);
                index.remove(key).map_err(graph_error("remove"))?;
            }
        }
        self.graph.changed.fetch_add(removed as usize, Ordering::Relaxed);
        drop((loose, keys, index));
        self.save_if_due()?;
        Ok(removed)
    }

    /// A search, planned as the module docs say. Blocking.
    fn search_blocking(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let entries = read(&self.flat.entries);
        if self.exact(entries.candidates(filter), entries.rows.len()) {
            return Ok(entries.search(query, filter, limit));
        }
        let allowed = Allowed::from(filter);
        // Locks in one order everywhere: entries, graph, keys, loose.
        let index = self.graph.index.read().unwrap_or_else(PoisonError::into_inner);
        let keys = self.graph.keys.read().unwrap_or_else(PoisonError::into_inner);
        let slot_of = |key: u64| keys.get(&key).and_then(|c| entries.slots.get(c)).copied();
        // Twice the results asked for, re-scored exactly below (the graph's vectors are 16-bit).
        let want = limit.saturating_mul(2).max(20);
        let matches = index
            .filtered_search(query, want, |key| {
                slot_of(key).is_some_and(|slot| allowed.matches(&entries.rows[slot]))
            })
            .map_err(graph_error("search"))?;
        let mut slots: Vec<usize> = matches.keys.iter().filter_map(|&k| slot_of(k)).collect();
        let loose = self.graph.loose.read().unwrap_or_else(PoisonError::into_inner);
        slots.extend(loose.iter().filter_map(|c| entries.slots.get(c).copied()));
        slots.sort_unstable();
        slots.dedup();
        let hits = entries.best_of(query, &allowed, slots.into_iter(), limit);
        if hits.len() < limit && matches.keys.len() < want {
            // The graph ran out of readable neighbours: whatever else may match is found exactly.
            return Ok(entries.search(query, filter, limit));
        }
        Ok(hits)
    }
}

/// Adds `vectors` to the graph, on every core for a large batch (usearch's additions are
/// safe to run concurrently).
fn add_all(index: &Index, vectors: &[(u64, &[f32])]) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(GRAPH_THREADS / 2);
    if vectors.len() < 256 || threads < 2 {
        for (key, vector) in vectors {
            index.add(*key, vector).map_err(graph_error("add"))?;
        }
        return Ok(());
    }
    let part = vectors.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = vectors
            .chunks(part)
            .map(|chunk| {
                scope.spawn(move || -> Result<()> {
                    for (key, vector) in chunk {
                        index.add(*key, vector).map_err(graph_error("add"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err(Error::bug("a graph insert panicked"))))
    })
}

/// Grows the graph's capacity ahead of `more` additions (doubling, so growth is amortized).
fn reserve(index: &Index, more: usize) -> Result<()> {
    let need = index.size() + more;
    if need > index.capacity() {
        let capacity = need.max(index.capacity().saturating_mul(2)).max(1_024);
        index.reserve_capacity_and_threads(capacity, GRAPH_THREADS).map_err(graph_error("reserve"))?;
    }
    Ok(())
}

fn keys_path(graph: &Path) -> PathBuf {
    let mut path = graph.as_os_str().to_owned();
    path.push(".keys");
    PathBuf::from(path)
}

/// Loads a saved graph of `dimension`-sized vectors into `index`, returning the keys it holds.
fn load(index: &Index, path: &Path, dimension: usize) -> Result<Vec<u64>> {
    let bytes = std::fs::read(keys_path(path))
        .map_err(|e| Error::unavailable(format!("cannot read the vector graph's keys: {e}")))?;
    if bytes.len() % 8 != 0 {
        return Err(Error::invalid_input("the vector graph's key file is cut short"));
    }
    index.load(&path.to_string_lossy()).map_err(graph_error("load"))?;
    if index.dimensions() != dimension {
        // Left from another embedder: the log (checked at open) is of this dimension.
        return Err(Error::invalid_input("the saved vector graph holds vectors of another dimension"));
    }
    let keys: Vec<u64> =
        bytes.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())).collect();
    if keys.len() != index.size() {
        return Err(Error::invalid_input("the vector graph and its key file disagree"));
    }
    Ok(keys)
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Graph {
    fn drop(&mut self) {
        let (Some(path), changed) = (&self.path, self.changed.load(Ordering::Relaxed)) else { return };
        if changed == 0 {
            return;
        }
        // The last handle is gone: keep what changed since the last save, so the next open
        // need not add it again. A failure only costs that work at the next open.
        let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let bytes: Vec<u8> = keys.keys().flat_map(|k| k.to_le_bytes()).collect();
        let tmp = path.with_extension("hnsw.tmp");
        let keys_tmp = keys_path(path).with_extension("keys.tmp");
        let saved = std::fs::write(&keys_tmp, bytes).is_ok()
            && index.save(&tmp.to_string_lossy()).is_ok()
            && std::fs::rename(&keys_tmp, keys_path(path)).is_ok()
            && std::fs::rename(&tmp, path).is_ok();
        if !saved {
            tracing::warn!(path = %path.display(), "could not save the vector graph; it is rebuilt at the next open");
        }
    }
}

impl fmt::Debug for HnswVectorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HnswVectorIndex")
            .field("flat", &self.flat)
            .field("graph", &self.graph.path)
            .field("exact_below", &self.exact_below)
            .finish()
    }
}

#[async_trait]
impl VectorIndex for HnswVectorIndex {
    fn dimension(&self) -> usize {
        self.flat.dimension
    }

    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.upsert_blocking(prepare(entries, this.flat.dimension)?))
            .await
            .map_err(|e| Error::internal("the vector index write task failed", e))?
    }

    async fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let query = normalized(query, self.flat.dimension, "the query")?;
        if limit == 0 || (filter.owners.is_empty() && filter.workspaces.is_empty()) {
            return Ok(Vec::new());
        }
        let permit = self
            .searching
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal("search limiter closed", e))?;
        let (this, filter) = (self.clone(), filter.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            this.search_blocking(&query, &filter, limit)
        })
        .await
        .map_err(|e| Error::internal("the vector search task failed", e))?
    }

    async fn delete_file(&self, file: FileId) -> Result<u64> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.delete_file_blocking(file))
            .await
            .map_err(|e| Error::internal("the vector index write task failed", e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amp_core::testkit::{self, Open};
    use amp_core::{UserId, Visibility};
    use futures::FutureExt;

    #[tokio::test]
    async fn graph_index_keeps_every_vector_index_promise_in_memory_and_persisted() {
        // Every search through the graph, however small, so the kit checks the graph path.
        testkit::vector_index::run(Arc::new(HnswVectorIndex::in_memory(8).unwrap().exact_below(0))).await;
        let dir = tempfile::tempdir().unwrap();
        let index = HnswVectorIndex::open(dir.path().join("v"), 8).unwrap().exact_below(0);
        testkit::vector_index::run(Arc::new(index)).await;
        let path = dir.path().join("reopened");
        let open: Open<dyn VectorIndex> = Box::new(move || {
            let path = path.clone();
            async move {
                Arc::new(HnswVectorIndex::open(&path, 8).unwrap().exact_below(0)) as Arc<dyn VectorIndex>
            }
            .boxed()
        });
        testkit::vector_index::persists(open).await;
    }

    fn spread(i: u64, dim: usize) -> Vec<f32> {
        (0..dim as u64)
            .map(|d| {
                let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(d.wrapping_mul(0xBF58_476D));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) % 2_001) as f32 - 1_000.0
            })
            .collect()
    }

    #[tokio::test]
    async fn a_reopened_graph_answers_as_before_and_takes_in_what_changed_after_its_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.flat");
        let owner = UserId::new();
        let visibility = Visibility { owner, workspace: None };
        let file = FileId::new();
        let entries: Vec<VectorEntry> = (0..3_000)
            .map(|i| VectorEntry { chunk: ChunkId::new(), file, visibility, vector: spread(i, 16) })
            .collect();
        let query = spread(999_999, 16);
        let before = {
            let index = HnswVectorIndex::open(&path, 16).unwrap().exact_below(0);
            index.upsert(entries.clone()).await.unwrap();
            index.save().unwrap();
            // After the save: one more entry, and one replaced by the query itself.
            let mut moved = entries[100].clone();
            moved.vector = query.clone();
            index.upsert(vec![moved]).await.unwrap();
            index.search(&query, &SearchFilter::owner(owner), 10).await.unwrap()
        };
        assert_eq!(before[0].chunk, entries[100].chunk);
        assert!(dir.path().join("vectors.flat.hnsw").exists(), "the graph is saved beside the log");
        let index = HnswVectorIndex::open(&path, 16).unwrap().exact_below(0);
        let after = index.search(&query, &SearchFilter::owner(owner), 10).await.unwrap();
        assert_eq!(
            after.iter().map(|h| h.chunk).collect::<Vec<_>>(),
            before.iter().map(|h| h.chunk).collect::<Vec<_>>(),
            "the replaced vector is the one the reopened graph holds"
        );
        assert_eq!(index.delete_file(file).await.unwrap(), 3_000);
        assert!(index.search(&query, &SearchFilter::owner(owner), 10).await.unwrap().is_empty());
    }

    #[test]
    fn a_search_goes_exact_below_the_crossover_with_the_graph() {
        let index = HnswVectorIndex::in_memory(4).unwrap();
        // A small index: every search exact.
        assert!(index.exact(9_000, 9_000));
        // 100,000 entries: the crossover is √(24,000 × 100,000) ≈ 49,000.
        assert!(index.exact(19_999, 100_000) && index.exact(48_000, 100_000));
        assert!(!index.exact(50_000, 100_000) && !index.exact(100_000, 100_000));
        // A million: a 1,000-file scope (20,000) and 150,000 exact, 160,000 and all not.
        assert!(index.exact(20_000, 1_000_000) && index.exact(150_000, 1_000_000));
        assert!(!index.exact(160_000, 1_000_000) && !index.exact(1_000_000, 1_000_000));
        // A fixed threshold replaces the plan; 0 sends everything to the graph.
        let graph = index.clone().exact_below(0);
        assert!(!graph.exact(1, 10));
        assert!(index.exact_below(100).exact(99, 1_000_000));
    }

    #[tokio::test]
    async fn a_search_scoped_to_a_few_files_among_many_finds_their_true_nearest() {
        let index = HnswVectorIndex::in_memory(16).unwrap().exact_below(100);
        let owner = UserId::new();
        let visibility = Visibility { owner, workspace: None };
        let files: Vec<FileId> = (0..200).map(|_| FileId::new()).collect();
        let entries: Vec<VectorEntry> = (0..4_000u64)
            .map(|i| VectorEntry {
                chunk: ChunkId::new(),
                file: files[(i % 200) as usize],
                visibility,
                vector: spread(i, 16),
            })
            .collect();
        // In batches too small for parallel inserts, so the graph (and the recall measured
        // on it) is the same on every run.
        for batch in entries.chunks(200) {
            index.upsert(batch.to_vec()).await.unwrap();
        }
        let exact = FlatVectorIndex::in_memory(16);
        exact.upsert(entries).await.unwrap();
        for scope in [&files[..2], &files[..20], &files[..]] {
            let filter = SearchFilter::owner(owner).with_files(scope.to_vec());
            for q in 0..20 {
                let query = spread(10_000 + q, 16);
                let truth: HashSet<ChunkId> =
                    exact.search(&query, &filter, 10).await.unwrap().iter().map(|h| h.chunk).collect();
                let found = index.search(&query, &filter, 10).await.unwrap();
                assert_eq!(found.len(), 10, "{} files", scope.len());
                assert!(found.iter().all(|h| scope.contains(&h.file)), "only the scope's files");
                let recalled = found.iter().filter(|h| truth.contains(&h.chunk)).count();
                assert!(recalled >= 9, "recall {recalled}/10 with {} files", scope.len());
            }
        }
    }
}
