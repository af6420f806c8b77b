//! An exact vector index in process: every query is compared with every entry.
//!
//! Optionally persisted to one append-only log (its format is in `flat/log.rs`), replayed
//! at open.

#[cfg(feature = "hnsw")]
pub mod hnsw;
mod log;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use amp_core::{
    ChunkId, Error, FileId, Result, SearchFilter, SearchHit, UserId, VectorEntry, VectorIndex, Visibility,
    WorkspaceId,
};
use async_trait::async_trait;

use self::log::{Log, lock};
use super::{Ordered, normalized};

/// A [`SearchFilter`] as sorted lists, checked once per entry by binary search: a chat
/// turn's filter can list thousands of files, and a linear lookup per entry would cost
/// more than the dot product (hashing costs more than a few comparisons of 16 bytes).
struct Allowed {
    owners: Vec<UserId>,
    workspaces: Vec<WorkspaceId>,
    files: Option<Vec<FileId>>,
}

fn sorted<T: Ord + Copy>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort_unstable();
    items.dedup();
    items
}

impl From<&SearchFilter> for Allowed {
    fn from(filter: &SearchFilter) -> Self {
        Allowed {
            owners: sorted(&filter.owners),
            workspaces: sorted(&filter.workspaces),
            files: filter.files.as_deref().map(sorted),
        }
    }
}

impl Allowed {
    /// The same owners and workspaces, any file.
    fn readable_only(&self) -> Allowed {
        Allowed { owners: self.owners.clone(), workspaces: self.workspaces.clone(), files: None }
    }

    /// [`SearchFilter::matches`], by binary search.
    fn matches(&self, row: &Row) -> bool {
        let readable = self.owners.binary_search(&row.visibility.owner).is_ok()
            || row.visibility.workspace.is_some_and(|w| self.workspaces.binary_search(&w).is_ok());
        readable && self.files.as_ref().is_none_or(|files| files.binary_search(&row.file).is_ok())
    }
}

/// Entries listed for a search are read from their lists while they are at most this share
/// (1 / n) of the index, beyond it every entry is scanned: sorting the list costs about
/// what skipping the rest saves. Half keeps the HNSW plan's exact searches (under
/// √(24,000 × entries), half of 100,000 entries) on their lists.
const LISTED_SHARE: usize = 2;

/// Searches scanning more floats than this leave the async runtime for the blocking pool
/// (a quarter million floats take ~0.1 ms; a few hundred thousand passages take tens).
const INLINE_SEARCH_FLOATS: usize = 1 << 18;

/// [`VectorIndex`] by exact search: cosine similarity of the query with every entry, so
/// results are the true nearest neighbours, never an approximation.
///
/// Vectors are normalized when upserted and kept beside an 8-bit copy, so a search is one
/// integer dot product per entry over a contiguous array, then the few entries that could
/// still rank in the top `limit` scored again at full precision (results are those of a
/// full-precision scan). A search that can match few entries (a few files, a person's own
/// files in a shared index) reads only theirs. That is fast enough for a few hundred
/// thousand passages in one search (it runs on tokio's blocking pool); `HnswVectorIndex`
/// (feature `hnsw`) and pgvector are the scale-out.
///
/// [`in_memory`](Self::in_memory) keeps entries for the life of the process;
/// [`open`](Self::open) also appends every change to a file and replays it at start.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use amp_core::{ChunkId, FileId, SearchFilter, UserId, VectorEntry, VectorIndex, Visibility};
/// use amp_providers::FlatVectorIndex;
///
/// let index = FlatVectorIndex::in_memory(3);
/// let (owner, chunk, file) = (UserId::new(), ChunkId::new(), FileId::new());
/// let visibility = Visibility { owner, workspace: None };
/// index.upsert(vec![VectorEntry { chunk, file, visibility, vector: vec![3.0, 4.0, 0.0] }]).await?;
/// let hits = index.search(&[0.6, 0.8, 0.0], &SearchFilter::owner(owner), 5).await?;
/// assert_eq!(hits[0].chunk, chunk);
/// assert!((hits[0].score - 1.0).abs() < 1e-6);
/// # Ok::<(), amp_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct FlatVectorIndex {
    dimension: usize,
    entries: Arc<RwLock<Entries>>,
    log: Option<Arc<Mutex<Log>>>,
}

impl FlatVectorIndex {
    /// An empty index of vectors with `dimension` components, kept in memory only.
    pub fn in_memory(dimension: usize) -> Self {
        FlatVectorIndex { dimension, entries: Arc::new(RwLock::new(Entries::new(dimension))), log: None }
    }

    /// Opens (or creates) the index persisted at `path`, replaying its log. Blocking: call
    /// it at start-up or from `spawn_blocking`.
    ///
    /// Every `upsert` and `delete_file` is appended to the file and flushed to the
    /// operating system before it returns, so a crash of the process loses nothing that
    /// was acknowledged. A record cut short by a crash mid-write is dropped (with a
    /// warning) and the file truncated to the last whole record. When dead records (replaced
    /// or deleted entries) outnumber live ones and there are more than 1,000, the file is
    /// rewritten with the live entries only.
    ///
    /// A file written with another dimension, or that is not an index file, is
    /// [`Error::InvalidInput`]; a file another index holds open, or that cannot be read, is
    /// [`Error::Unavailable`].
    pub fn open(path: impl AsRef<Path>, dimension: usize) -> Result<Self> {
        let (log, entries) = Log::open(path.as_ref(), dimension)?;
        let entries = Arc::new(RwLock::new(entries));
        let mut log = log;
        log.compact_if_due(&entries);
        Ok(FlatVectorIndex { dimension, entries, log: Some(Arc::new(Mutex::new(log))) })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        read(&self.entries).rows.len()
    }

    /// Whether it holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for FlatVectorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.log.as_ref().map(|log| lock(log).path.clone());
        f.debug_struct("FlatVectorIndex")
            .field("dimension", &self.dimension)
            .field("entries", &self.len())
            .field("path", &path)
            .finish()
    }
}

#[async_trait]
impl VectorIndex for FlatVectorIndex {
    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn upsert(&self, entries: Vec<VectorEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.log.is_none() {
            return self.upsert_blocking(prepare(entries, self.dimension)?);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.upsert_blocking(prepare(entries, this.dimension)?))
            .await
            .map_err(|e| Error::internal("the vector index write task failed", e))?
    }

    async fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Result<Vec<SearchHit>> {
        let query = normalized(query, self.dimension, "the query")?;
        if limit == 0 || (filter.owners.is_empty() && filter.workspaces.is_empty()) {
            return Ok(Vec::new());
        }
        {
            let slots = read(&self.entries);
            if slots.vectors.len() <= INLINE_SEARCH_FLOATS {
                return Ok(slots.search(&query, filter, limit));
            }
        }
        let (slots, filter) = (Arc::clone(&self.entries), filter.clone());
        tokio::task::spawn_blocking(move || read(&slots).search(&query, &filter, limit))
            .await
            .map_err(|e| Error::internal("the vector search task failed", e))
    }

    async fn delete_file(&self, file: FileId) -> Result<u64> {
        if self.log.is_none() {
            return self.delete_file_blocking(file);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.delete_file_blocking(file))
            .await
            .map_err(|e| Error::internal("the vector index write task failed", e))?
    }
}

impl FlatVectorIndex {
    /// Applies a prepared batch: appended to the log (if any), then to memory. Blocking.
    fn upsert_blocking(&self, prepared: Vec<(Row, Vec<f32>)>) -> Result<()> {
        let Some(log) = &self.log else {
            let mut slots = write(&self.entries);
            for (row, vector) in &prepared {
                slots.put(*row, vector);
            }
            return Ok(());
        };
        let buf = log::encode_upserts(&prepared, self.dimension);
        // The log lock is held until memory matches the file, so the order of changes in
        // the file is the order they were applied in.
        let mut log = lock(log);
        log.append(&buf, prepared.len() as u64)?;
        let mut live = write(&self.entries);
        for (row, vector) in &prepared {
            live.put(*row, vector);
        }
        drop(live);
        log.compact_if_due(&self.entries);
        Ok(())
    }

    /// Removes a file's entries: the delete appended to the log (if any), then applied to
    /// memory. Blocking.
    fn delete_file_blocking(&self, file: FileId) -> Result<u64> {
        let Some(log) = &self.log else {
            return Ok(write(&self.entries).remove_file(file));
        };
        let mut log = lock(log);
        // Deleting nothing writes nothing, so repeated deletes do not grow the file.
        if !read(&self.entries).by_file.contains_key(&file) {
            return Ok(0);
        }
        log.append(&log::encode_delete_file(file), 1)?;
        let removed = write(&self.entries).remove_file(file);
        log.compact_if_due(&self.entries);
        Ok(removed)
    }
}

/// What a search needs to know of an entry besides its vector.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    chunk: ChunkId,
    file: FileId,
    visibility: Visibility,
}

/// The live entries: vectors back to back in one array, their rows in a parallel one, and
/// the slots of each file, owner and workspace (a search that can match few entries reads
/// only theirs).
///
/// Beside each vector, an 8-bit copy (`codes`, a step per vector) that a search scans
/// first: a quarter of the bytes, which is what a scan over more entries than fit in the
/// caches waits on. Each approximate score comes with a bound on its error, so only the
/// entries that could still be among the best are scored again from the full vectors, and
/// the results are exactly those of a full-precision scan.
struct Entries {
    dimension: usize,
    vectors: Vec<f32>,
    codes: Vec<i8>,
    /// Per slot: the code step (the largest component / 127) and the L1 norm of the decoded
    /// codes.
    steps: Vec<(f32, f32)>,
    rows: Vec<Row>,
    slots: HashMap<ChunkId, usize>,
    by_file: HashMap<FileId, Vec<usize>>,
    /// Each owner's and workspace's slots, so a search by someone who may read few entries
    /// (a person's own files in a shared index) reads only those, files named or not.
    by_owner: HashMap<UserId, HashSet<usize>>,
    by_workspace: HashMap<WorkspaceId, HashSet<usize>>,
}

impl Entries {
    fn new(dimension: usize) -> Self {
        Entries {
            dimension,
            vectors: Vec::new(),
            codes: Vec::new(),
            steps: Vec::new(),
            rows: Vec::new(),
            slots: HashMap::new(),
            by_file: HashMap::new(),
            by_owner: HashMap::new(),
            by_workspace: HashMap::new(),
        }
    }

    /// Lists `slot` under its readers: its owner and its workspace.
    fn list_readers(&mut self, visibility: Visibility, slot: usize) {
        self.by_owner.entry(visibility.owner).or_default().insert(slot);
        if let Some(ws) = visibility.workspace {
            self.by_workspace.entry(ws).or_default().insert(slot);
        }
    }

    /// Takes `slot` off its readers' lists.
    fn unlist_readers(&mut self, visibility: Visibility, slot: usize) {
        fn take<K: std::hash::Hash + Eq>(lists: &mut HashMap<K, HashSet<usize>>, key: K, slot: usize) {
            if let Some(slots) = lists.get_mut(&key) {
                slots.remove(&slot);
                if slots.is_empty() {
                    lists.remove(&key);
                } else if slots.len() < slots.capacity() / 4 {
                    // A set that held far more is walked whole by every search that reads it.
                    slots.shrink_to(slots.len() * 2);
                }
            }
        }
        take(&mut self.by_owner, visibility.owner, slot);
        if let Some(ws) = visibility.workspace {
            take(&mut self.by_workspace, ws, slot);
        }
    }

    /// Entries the filter's owners and workspaces may read (each named once; an entry both
    /// owned and shared counts twice).
    fn readable_count(&self, allowed: &Allowed) -> usize {
        let owners = allowed.owners.iter().filter_map(|o| self.by_owner.get(o)).map(HashSet::len);
        let shared = allowed.workspaces.iter().filter_map(|w| self.by_workspace.get(w)).map(HashSet::len);
        owners.chain(shared).sum()
    }

    /// At most how many entries the filter can match.
    fn candidates(&self, filter: &SearchFilter) -> usize {
        let readable = self.readable_count(&Allowed::from(filter));
        filter.files.as_ref().map_or(readable, |files| self.count_of(files).min(readable))
    }

    fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dimension..(slot + 1) * self.dimension]
    }

    #[inline(always)]
    fn code(&self, slot: usize) -> &[i8] {
        &self.codes[slot * self.dimension..(slot + 1) * self.dimension]
    }

    /// Inserts or replaces; `vector` is normalized and of the index's dimension.
    fn put(&mut self, row: Row, vector: &[f32]) {
        let d = self.dimension;
        let (code, step) = encode(vector);
        match self.slots.get(&row.chunk) {
            Some(&slot) => {
                let was = self.rows[slot];
                if was.file != row.file {
                    self.unlist(was.file, slot);
                    self.by_file.entry(row.file).or_default().push(slot);
                }
                if was.visibility != row.visibility {
                    self.unlist_readers(was.visibility, slot);
                    self.list_readers(row.visibility, slot);
                }
                self.rows[slot] = row;
                self.vectors[slot * d..(slot + 1) * d].copy_from_slice(vector);
                self.codes[slot * d..(slot + 1) * d].copy_from_slice(&code);
                self.steps[slot] = step;
            }
            None => {
                let slot = self.rows.len();
                self.slots.insert(row.chunk, slot);
                self.by_file.entry(row.file).or_default().push(slot);
                self.list_readers(row.visibility, slot);
                self.rows.push(row);
                self.vectors.extend_from_slice(vector);
                self.codes.extend_from_slice(&code);
                self.steps.push(step);
            }
        }
    }

    /// Takes `slot` off `file`'s list.
    fn unlist(&mut self, file: FileId, slot: usize) {
        if let Some(slots) = self.by_file.get_mut(&file) {
            slots.retain(|s| *s != slot);
            if slots.is_empty() {
                self.by_file.remove(&file);
            }
        }
    }

    /// The chunks of `file`.
    fn chunks_of(&self, file: FileId) -> Vec<ChunkId> {
        let slots = self.by_file.get(&file).map(Vec::as_slice).unwrap_or_default();
        slots.iter().map(|&slot| self.rows[slot].chunk).collect()
    }

    /// Entries of these files (a file named twice counts twice).
    fn count_of(&self, files: &[FileId]) -> usize {
        files.iter().filter_map(|f| self.by_file.get(f)).map(Vec::len).sum()
    }

    fn remove_file(&mut self, file: FileId) -> u64 {
        let Some(mut doomed) = self.by_file.remove(&file) else { return 0 };
        doomed.sort_unstable();
        // From the back, so the last entry moved into a freed slot is never one still to go.
        for &slot in doomed.iter().rev() {
            self.swap_remove(slot);
        }
        doomed.len() as u64
    }

    /// The slots of `files`, when reading them is cheaper than reading every entry (`count`
    /// of them, at most half of all); `None` otherwise.
    fn file_slots(&self, files: &[FileId], count: usize) -> Option<Vec<usize>> {
        if count > self.rows.len() / LISTED_SHARE {
            return None;
        }
        let mut slots: Vec<usize> =
            files.iter().filter_map(|f| self.by_file.get(f)).flatten().copied().collect();
        // A file named twice is read once; slot order keeps ties as a full scan breaks them.
        slots.sort_unstable();
        slots.dedup();
        Some(slots)
    }

    fn swap_remove(&mut self, slot: usize) {
        let (d, last) = (self.dimension, self.rows.len() - 1);
        let removed = self.rows.swap_remove(slot);
        self.slots.remove(&removed.chunk);
        self.unlist_readers(removed.visibility, slot);
        self.steps.swap_remove(slot);
        if slot != last {
            let moved = self.rows[slot];
            self.slots.insert(moved.chunk, slot);
            self.unlist_readers(moved.visibility, last);
            self.list_readers(moved.visibility, slot);
            // From the back: the last slot is usually near the end of its file's list.
            if let Some(listed) =
                self.by_file.get_mut(&moved.file).and_then(|s| s.iter_mut().rev().find(|s| **s == last))
            {
                *listed = slot;
            }
            self.vectors.copy_within(last * d..(last + 1) * d, slot * d);
            self.codes.copy_within(last * d..(last + 1) * d, slot * d);
        }
        self.vectors.truncate(last * d);
        self.codes.truncate(last * d);
    }

    /// The `limit` best entries the filter allows; `query` is normalized.
    fn search(&self, query: &[f32], filter: &SearchFilter, limit: usize) -> Vec<SearchHit> {
        let allowed = Allowed::from(filter);
        let readable = self.readable_count(&allowed);
        if let Some(files) = &filter.files
            && let count = self.count_of(files)
            && count <= readable
            && let Some(slots) = self.file_slots(files, count)
        {
            // Every listed slot is of a named file: only readability is left to check.
            return self.best_of(query, &allowed.readable_only(), slots.into_iter(), limit);
        }
        match self.readable_slots(&allowed, readable) {
            Some(slots) => self.best_of(query, &allowed, slots.into_iter(), limit),
            None => self.best_of(query, &allowed, 0..self.rows.len(), limit),
        }
    }

    /// The slots the filter's owners and workspaces may read, when reading them is cheaper
    /// than reading every entry (`count` of them, at most half of all); `None` otherwise.
    fn readable_slots(&self, allowed: &Allowed, count: usize) -> Option<Vec<usize>> {
        if count > self.rows.len() / LISTED_SHARE {
            return None;
        }
        let owners = allowed.owners.iter().filter_map(|o| self.by_owner.get(o));
        let shared = allowed.workspaces.iter().filter_map(|w| self.by_workspace.get(w));
        let mut slots: Vec<usize> = owners.chain(shared).flatten().copied().collect();
        slots.sort_unstable();
        slots.dedup();
        Some(slots)
    }

    /// The `limit` best of `slots` (ascending) that `allowed` matches: the codes scanned
    /// for each entry's score within a bound, then the entries whose bound reaches the
    /// `limit`-th best lower bound scored exactly.
    fn best_of(
        &self,
        query: &[f32],
        allowed: &Allowed,
        slots: impl Iterator<Item = usize>,
        limit: usize,
    ) -> Vec<SearchHit> {
        let probe = Probe::new(query);
        let contenders =
            pulp::Arch::new().dispatch(Shortlist { entries: self, probe: &probe, allowed, slots, limit });
        self.exact_best(query, contenders.into_iter(), limit)
    }

    /// The `limit` best of `slots` (ascending) by their full vectors.
    fn exact_best(&self, query: &[f32], slots: impl Iterator<Item = usize>, limit: usize) -> Vec<SearchHit> {
        let mut best: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(limit.min(self.rows.len()) + 1);
        for slot in slots {
            let scored = Scored { score: dot(query, self.vector(slot)), slot };
            if best.len() < limit {
                best.push(Reverse(scored));
            } else if best.peek().is_some_and(|Reverse(worst)| scored > *worst) {
                best.pop();
                best.push(Reverse(scored));
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|Reverse(Scored { score, slot })| SearchHit {
                chunk: self.rows[slot].chunk,
                file: self.rows[slot].file,
                score,
            })
            .collect()
    }
}

/// The first pass of [`Entries::best_of`]: the slots whose code score's upper bound
/// reaches the `limit`-th best lower bound. Run through `pulp`, so it is compiled for the
/// widest instruction set the CPU has (AVX2 multiplies 16 code lanes at once; the baseline
/// x86-64 build only 8 and gains nothing over full-precision floats).
struct Shortlist<'a, I> {
    entries: &'a Entries,
    probe: &'a Probe,
    allowed: &'a Allowed,
    slots: I,
    limit: usize,
}

impl<I: Iterator<Item = usize>> pulp::WithSimd for Shortlist<'_, I> {
    type Output = Vec<usize>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<usize> {
        let Shortlist { entries, probe, allowed, slots, limit } = self;
        // The limit best lower bounds so far; the lowest of them is the bar to reach.
        let mut floors: BinaryHeap<Reverse<Ordered>> =
            BinaryHeap::with_capacity(limit.min(entries.rows.len()) + 1);
        let bar = |floors: &BinaryHeap<Reverse<Ordered>>| match floors.peek() {
            Some(Reverse(Ordered(lowest))) if floors.len() >= limit => *lowest,
            _ => f32::NEG_INFINITY,
        };
        // Entries whose upper bound reached the bar when they were read (it only rises).
        let mut contenders: Vec<(usize, f32)> = Vec::new();
        for slot in slots {
            if !allowed.matches(&entries.rows[slot]) {
                continue;
            }
            let (score, error) = probe.score(entries.code(slot), entries.steps[slot]);
            let (floor, ceiling) = (Ordered(score - error), score + error);
            if ceiling < bar(&floors) {
                continue;
            }
            if floors.len() < limit {
                floors.push(Reverse(floor));
            } else if floors.peek().is_some_and(|Reverse(lowest)| floor > *lowest) {
                floors.pop();
                floors.push(Reverse(floor));
            }
            contenders.push((slot, ceiling));
        }
        let bar = bar(&floors);
        contenders.into_iter().filter(|&(_, ceiling)| ceiling >= bar).map(|(slot, _)| slot).collect()
    }
}

/// The largest magnitude of a component.
fn largest(vector: &[f32]) -> f32 {
    vector.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// A vector as 8-bit codes: each component divided by a step (its largest component over
/// 127) and rounded; with the step, the L1 norm of what the codes decode to.
fn encode(vector: &[f32]) -> (Vec<i8>, (f32, f32)) {
    let largest = largest(vector);
    if largest == 0.0 {
        return (vec![0; vector.len()], (0.0, 0.0));
    }
    let step = largest / 127.0;
    let code: Vec<i8> = vector.iter().map(|x| (x / step).round().clamp(-127.0, 127.0) as i8).collect();
    let l1 = code.iter().map(|&c| f32::from(c).abs()).sum::<f32>() * step;
    (code, (step, l1))
}

/// A query ready to score codes: as 16-bit integers (fine enough that rounding it adds
/// little to the error bound) and its L1 norm.
struct Probe {
    code: Vec<i16>,
    step: f32,
    l1: f32,
}

/// Rounding slack of the f32 arithmetic: around the integer dot product (whose sum is
/// exact), and in the full-precision [`dot`] the bound is measured against (under
/// `d / 8 + 3` roundings of at most 6e-8 each for unit vectors), per component.
const SLACK: f32 = 1e-4;
const SLACK_PER_COMPONENT: f32 = 1e-8;

impl Probe {
    fn new(query: &[f32]) -> Self {
        let largest = largest(query);
        let step = if largest == 0.0 { 1.0 } else { largest / 32_767.0 };
        let code = query.iter().map(|x| (x / step).round().clamp(-32_767.0, 32_767.0) as i16).collect();
        Probe { code, step, l1: query.iter().map(|x| x.abs()).sum() }
    }

    /// The score of an entry's codes and a bound on how far the exact score can be from it:
    /// with q = q̃ + e (|e| ≤ step_q / 2) and x = x̃ + f (|f| ≤ step_x / 2),
    /// q·x − q̃·x̃ = q·f + e·x̃, so |q·x − q̃·x̃| ≤ ‖q‖₁·step_x/2 + step_q/2·‖x̃‖₁.
    #[inline(always)]
    fn score(&self, code: &[i8], (step, l1): (f32, f32)) -> (f32, f32) {
        let sum = dot_codes(&self.code, code);
        let score = sum as f32 * self.step * step;
        let slack = SLACK + SLACK_PER_COMPONENT * code.len() as f32;
        let error = self.l1 * step * 0.5 + self.step * 0.5 * l1 + slack;
        (score, error)
    }
}

/// Sixteen independent integer sums (SIMD multiply-adds of 16-bit lanes), folded into an
/// i64 every 4,096 components so no lane overflows (each product is under 2^22).
#[inline(always)]
fn dot_codes(a: &[i16], b: &[i8]) -> i64 {
    let mut total = 0i64;
    for (a, b) in a.chunks(4_096).zip(b.chunks(4_096)) {
        let mut lanes = [0i32; 16];
        let (a16, b16) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail: i32 =
            a16.remainder().iter().zip(b16.remainder()).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
        for (x, y) in a16.zip(b16) {
            for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
                *lane += i32::from(x) * i32::from(y);
            }
        }
        total += lanes.iter().map(|&l| i64::from(l)).sum::<i64>() + i64::from(tail);
    }
    total
}

/// A candidate hit, ordered by score (ties: the earlier slot ranks higher).
#[derive(Debug, Clone, Copy)]
struct Scored {
    score: f32,
    slot: usize,
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.slot.cmp(&self.slot))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

/// Eight independent sums, which the compiler keeps in SIMD registers (one running sum
/// cannot be vectorized without reordering float additions).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Validates and normalizes a whole batch before any of it is applied.
fn prepare(entries: Vec<VectorEntry>, dimension: usize) -> Result<Vec<(Row, Vec<f32>)>> {
    entries
        .into_iter()
        .map(|e| {
            let vector = normalized(&e.vector, dimension, &format!("the vector of chunk {}", e.chunk))?;
            Ok((Row { chunk: e.chunk, file: e.file, visibility: e.visibility }, vector))
        })
        .collect()
}

// Nothing under these locks is left half-changed by a panic short of a bug in the slot
// arithmetic, so a poisoned lock is still used rather than failing every later call.
fn read(entries: &RwLock<Entries>) -> RwLockReadGuard<'_, Entries> {
    entries.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(entries: &RwLock<Entries>) -> RwLockWriteGuard<'_, Entries> {
    entries.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::log::{HEADER_LEN, upsert_record_len};
    use super::*;
    use amp_core::ErrorKind;
    use amp_core::testkit::{self, Open};
    use futures::FutureExt;

    const DIM: usize = 8;

    fn axis(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i % DIM] = 1.0;
        v
    }

    /// A deterministic pseudo-random vector per `i` (splitmix64), so no two point alike.
    fn spread(i: usize) -> Vec<f32> {
        (0..DIM as u64)
            .map(|d| {
                let mut z =
                    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(d.wrapping_mul(0xBF58_476D));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) % 2_001) as f32 - 1_000.0
            })
            .collect()
    }

    fn entry(file: FileId, owner: UserId, vector: Vec<f32>) -> VectorEntry {
        VectorEntry { chunk: ChunkId::new(), file, visibility: Visibility { owner, workspace: None }, vector }
    }

    async fn all_hits(index: &FlatVectorIndex, owner: UserId, query: &[f32]) -> Vec<SearchHit> {
        index.search(query, &SearchFilter::owner(owner), usize::MAX).await.unwrap()
    }

    #[tokio::test]
    async fn in_memory_index_keeps_every_vector_index_promise() {
        testkit::vector_index::run(Arc::new(FlatVectorIndex::in_memory(DIM))).await;
    }

    #[tokio::test]
    async fn persisted_index_keeps_every_vector_index_promise() {
        let dir = tempfile::tempdir().unwrap();
        let index = FlatVectorIndex::open(dir.path().join("vectors.idx"), DIM).unwrap();
        testkit::vector_index::run(Arc::new(index)).await;
    }

    #[tokio::test]
    async fn persisted_entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        let open: Open<dyn VectorIndex> = Box::new(move || {
            let path = path.clone();
            async move { Arc::new(FlatVectorIndex::open(&path, DIM).unwrap()) as Arc<dyn VectorIndex> }
                .boxed()
        });
        testkit::vector_index::persists(open).await;
    }

    #[tokio::test]
    async fn reopen_after_deletes_returns_exactly_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        let owner = UserId::new();
        let (kept, deleted) = (FileId::new(), FileId::new());
        let index = FlatVectorIndex::open(&path, DIM).unwrap();
        let batch: Vec<_> =
            (0..20).map(|i| entry(if i % 2 == 0 { kept } else { deleted }, owner, spread(i))).collect();
        index.upsert(batch.clone()).await.unwrap();
        // Replace one kept entry, so replay must apply upserts in order.
        let mut moved = batch[0].clone();
        moved.vector = axis(3);
        index.upsert(vec![moved.clone()]).await.unwrap();
        assert_eq!(index.delete_file(deleted).await.unwrap(), 10);
        let before = all_hits(&index, owner, &axis(3)).await;
        drop(index);

        let reopened = FlatVectorIndex::open(&path, DIM).unwrap();
        assert_eq!(reopened.len(), 10);
        let after = all_hits(&reopened, owner, &axis(3)).await;
        assert_eq!(after, before);
        assert!(after.iter().all(|hit| hit.file == kept));
        assert_eq!(after[0].chunk, moved.chunk);
        assert!((after[0].score - 1.0).abs() < 1e-6);
    }

    #[tokio::test]
    async fn a_torn_last_record_is_dropped_and_the_file_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        let owner = UserId::new();
        let file = FileId::new();
        let index = FlatVectorIndex::open(&path, DIM).unwrap();
        let entries: Vec<_> = (0..3).map(|i| entry(file, owner, spread(i))).collect();
        for e in &entries {
            index.upsert(vec![e.clone()]).await.unwrap();
        }
        drop(index);
        let whole = std::fs::metadata(&path).unwrap().len();
        let torn = whole - 10;
        OpenOptions::new().write(true).open(&path).unwrap().set_len(torn).unwrap();

        let reopened = FlatVectorIndex::open(&path, DIM).unwrap();
        let chunks: Vec<_> = all_hits(&reopened, owner, &spread(0)).await.iter().map(|h| h.chunk).collect();
        assert_eq!(chunks.len(), 2);
        assert!(!chunks.contains(&entries[2].chunk));
        let repaired = whole - upsert_record_len(DIM) as u64;
        assert_eq!(std::fs::metadata(&path).unwrap().len(), repaired);

        // Appends after the repair land on a record boundary and replay cleanly.
        reopened.upsert(vec![entries[2].clone()]).await.unwrap();
        drop(reopened);
        let again = FlatVectorIndex::open(&path, DIM).unwrap();
        assert_eq!(again.len(), 3);
    }

    #[tokio::test]
    async fn a_file_of_another_dimension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        drop(FlatVectorIndex::open(&path, DIM).unwrap());
        let err = FlatVectorIndex::open(&path, 384).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let message = err.to_string();
        assert!(message.contains("384") && message.contains(&DIM.to_string()), "{message}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_an_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "these are not vectors at all").unwrap();
        let err = FlatVectorIndex::open(&path, DIM).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not a flat vector index"), "{err}");
    }

    #[tokio::test]
    async fn a_file_open_in_another_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        let _first = FlatVectorIndex::open(&path, DIM).unwrap();
        let err = FlatVectorIndex::open(&path, DIM).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[tokio::test]
    async fn compaction_keeps_results_identical_and_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.idx");
        let owner = UserId::new();
        let (kept, dropped) = (FileId::new(), FileId::new());
        let index = FlatVectorIndex::open(&path, DIM).unwrap();
        index.upsert((0..300).map(|i| entry(kept, owner, spread(i))).collect()).await.unwrap();
        index.upsert((0..800).map(|i| entry(dropped, owner, spread(i))).collect()).await.unwrap();
        let only_kept = SearchFilter::owner(owner).with_files(vec![kept]);
        let query = spread(100_000);
        let before = index.search(&query, &only_kept, 50).await.unwrap();
        let full = std::fs::metadata(&path).unwrap().len();

        // 1,101 records, 300 live: due for compaction.
        assert_eq!(index.delete_file(dropped).await.unwrap(), 800);
        let compacted = std::fs::metadata(&path).unwrap().len();
        assert_eq!(compacted, (HEADER_LEN + 300 * upsert_record_len(DIM)) as u64);
        assert!(compacted < full / 3, "{compacted} bytes after compaction, {full} before");
        assert_eq!(index.search(&query, &only_kept, 50).await.unwrap(), before);
        assert!(!dir.path().join("vectors.idx.compacting").exists());

        // Appends after compaction go to the new file, and everything replays.
        let extra = entry(kept, owner, query.clone());
        index.upsert(vec![extra.clone()]).await.unwrap();
        drop(index);
        let reopened = FlatVectorIndex::open(&path, DIM).unwrap();
        assert_eq!(reopened.len(), 301);
        let hits = reopened.search(&query, &only_kept, 51).await.unwrap();
        assert_eq!(hits[0].chunk, extra.chunk);
        assert_eq!(&hits[1..], &before[..]);
    }

    #[tokio::test]
    async fn invalid_vectors_are_refused_and_nothing_of_the_batch_is_stored() {
        let index = FlatVectorIndex::in_memory(DIM);
        let (owner, file) = (UserId::new(), FileId::new());
        let mut nan = axis(0);
        nan[1] = f32::NAN;
        for bad in [vec![0.0; DIM], nan, vec![f32::INFINITY; DIM], vec![1.0; DIM - 1]] {
            let err =
                index.upsert(vec![entry(file, owner, axis(0)), entry(file, owner, bad)]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        assert!(index.is_empty());
        let err = index.search(&[0.0; DIM], &SearchFilter::owner(owner), 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn scores_are_cosine_whatever_the_vectors_lengths() {
        let index = FlatVectorIndex::in_memory(DIM);
        let (owner, file) = (UserId::new(), FileId::new());
        let long: Vec<f32> = axis(0).iter().zip(axis(1)).map(|(a, b)| 100.0 * (a + b)).collect();
        index.upsert(vec![entry(file, owner, long)]).await.unwrap();
        let query: Vec<f32> = axis(0).iter().map(|x| x * 0.001).collect();
        let hits = all_hits(&index, owner, &query).await;
        assert!((hits[0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{}", hits[0].score);
    }

    #[tokio::test]
    async fn a_large_search_matches_a_brute_force_ranking() {
        // Large enough to run on the blocking pool.
        let dim = 64;
        let index = FlatVectorIndex::in_memory(dim);
        let (owner, other, file) = (UserId::new(), UserId::new(), FileId::new());
        let vector = |i: usize| -> Vec<f32> {
            (0..dim).map(|d| (((i * 7919 + d * 104_729) % 1000) as f32) - 500.0).collect()
        };
        let entries: Vec<_> = (0..5_000)
            .map(|i| VectorEntry {
                chunk: ChunkId::new(),
                file,
                visibility: Visibility { owner: if i % 3 == 0 { other } else { owner }, workspace: None },
                vector: vector(i),
            })
            .collect();
        index.upsert(entries.clone()).await.unwrap();
        let query = vector(12_345);
        let hits = index.search(&query, &SearchFilter::owner(owner), 25).await.unwrap();

        let unit = normalized(&query, dim, "q").unwrap();
        let mut expected: Vec<(f32, ChunkId)> = entries
            .iter()
            .filter(|e| e.visibility.owner == owner)
            .map(|e| (dot(&unit, &normalized(&e.vector, dim, "v").unwrap()), e.chunk))
            .collect();
        expected.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(hits.len(), 25);
        for (hit, (score, _)) in hits.iter().zip(&expected) {
            assert!((hit.score - score).abs() < 1e-5);
        }
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    /// The 8-bit scan only shortlists: whatever the scope, after deletes moved entries
    /// around and a chunk moved to another file, the results are the brute-force ranking.
    #[tokio::test]
    async fn the_code_scan_gives_the_exact_ranking_in_every_scope() {
        let dim = 384;
        let index = FlatVectorIndex::in_memory(dim);
        let owner = UserId::new();
        let visibility = Visibility { owner, workspace: None };
        let files: Vec<FileId> = (0..60).map(|_| FileId::new()).collect();
        let mut seed = 99u64;
        let mut component = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        // Clustered: passages near a few centres, so many scores crowd near the top.
        let centres: Vec<Vec<f32>> = (0..4).map(|_| (0..dim).map(|_| component()).collect()).collect();
        let mut entries: Vec<VectorEntry> = (0..3_000)
            .map(|i| VectorEntry {
                chunk: ChunkId::new(),
                file: files[i % files.len()],
                visibility,
                vector: centres[i % 4].iter().map(|c| c + 0.05 * component()).collect(),
            })
            .collect();
        index.upsert(entries.clone()).await.unwrap();
        for gone in &files[..6] {
            index.delete_file(*gone).await.unwrap();
        }
        entries.retain(|e| !files[..6].contains(&e.file));
        let moved = entries.iter_mut().find(|e| e.file == files[10]).unwrap();
        moved.file = files[11];
        index.upsert(vec![moved.clone()]).await.unwrap();

        let scopes =
            [None, Some(vec![files[11]]), Some(files[6..40].to_vec()), Some(vec![files[0], files[7]])];
        for scope in scopes {
            let filter = match &scope {
                Some(files) => SearchFilter::owner(owner).with_files(files.clone()),
                None => SearchFilter::owner(owner),
            };
            let query: Vec<f32> = centres[1].iter().map(|c| c + 0.05 * component()).collect();
            let unit = normalized(&query, dim, "q").unwrap();
            let mut expected: Vec<(f32, ChunkId)> = entries
                .iter()
                .filter(|e| scope.as_ref().is_none_or(|files| files.contains(&e.file)))
                .map(|e| (dot(&unit, &normalized(&e.vector, dim, "v").unwrap()), e.chunk))
                .collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0));
            expected.truncate(20);
            let hits = index.search(&query, &filter, 20).await.unwrap();
            let found: Vec<ChunkId> = hits.iter().map(|h| h.chunk).collect();
            let truth: Vec<ChunkId> = expected.iter().map(|e| e.1).collect();
            assert_eq!(found, truth, "scope {scope:?}");
            for (hit, (score, _)) in hits.iter().zip(&expected) {
                assert!((hit.score - score).abs() < 1e-5);
            }
        }
    }

    /// The error bound of a code score holds for vectors of every shape: spread, spiky,
    /// and with a component of each sign at the extremes.
    #[test]
    fn a_code_score_is_within_its_bound_of_the_exact_score() {
        let mut seed = 5u64;
        let mut uniform = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for dim in [3, 17, 384, 1_536, 5_000] {
            for shape in 0..30 {
                let mut raw = |spike: bool| -> Vec<f32> {
                    let mut v: Vec<f32> = (0..dim).map(|_| uniform()).collect();
                    if spike {
                        v[dim / 2] = 40.0;
                        v[0] = -40.0;
                    }
                    normalized(&v, dim, "v").unwrap()
                };
                let (query, vector) = (raw(shape % 3 == 0), raw(shape % 5 == 0));
                let (code, step) = encode(&vector);
                let (score, error) = Probe::new(&query).score(&code, step);
                let exact = dot(&query, &vector);
                assert!((exact - score).abs() <= error, "dim {dim}: {exact} against {score} ± {error}");
                assert!(error < 0.2, "dim {dim}: a bound of {error} shortlists nothing");
            }
        }
    }

    /// A search without files by someone who may read few entries reads only theirs, and
    /// stays exact after deletes moved entries around and an entry changed owner.
    #[tokio::test]
    async fn a_search_by_a_reader_of_few_entries_is_exact_and_reads_only_theirs() {
        let dim = DIM;
        let index = FlatVectorIndex::in_memory(dim);
        let (big, small, member) = (UserId::new(), UserId::new(), UserId::new());
        let ws = WorkspaceId::new();
        let files: Vec<FileId> = (0..50).map(|_| FileId::new()).collect();
        let mut entries: Vec<VectorEntry> = (0..5_000)
            .map(|i| {
                let file = files[i % files.len()];
                let owner = if i % 50 == 7 { small } else { big };
                let workspace = (i % 40 == 3).then_some(ws);
                VectorEntry {
                    chunk: ChunkId::new(),
                    file,
                    visibility: Visibility { owner, workspace },
                    vector: spread(i),
                }
            })
            .collect();
        index.upsert(entries.clone()).await.unwrap();
        for gone in &files[..5] {
            index.delete_file(*gone).await.unwrap();
        }
        entries.retain(|e| !files[..5].contains(&e.file));
        // One of the big owner's entries is given to the small one.
        let given = entries.iter_mut().find(|e| e.visibility.owner == big).unwrap();
        given.visibility.owner = small;
        index.upsert(vec![given.clone()]).await.unwrap();

        let filters = [
            SearchFilter::owner(small),
            SearchFilter::owner(member).with_workspace(ws),
            SearchFilter::owner(small).with_workspace(ws),
            SearchFilter::owner(small).with_files(files[..20].to_vec()),
        ];
        let live = read(&index.entries);
        assert_eq!(live.rows.len(), entries.len());
        for filter in &filters {
            let matching: Vec<&VectorEntry> =
                entries.iter().filter(|e| filter.matches(&e.visibility, e.file)).collect();
            assert!(live.candidates(filter) >= matching.len(), "the plan never counts fewer than match");
            assert!(
                live.candidates(filter) < live.rows.len() / LISTED_SHARE,
                "{filter:?} is planned as a few"
            );
            let query = spread(4_321);
            let unit = normalized(&query, dim, "q").unwrap();
            let mut expected: Vec<(f32, ChunkId)> = matching
                .iter()
                .map(|e| (dot(&unit, &normalized(&e.vector, dim, "v").unwrap()), e.chunk))
                .collect();
            expected.sort_by(|a, b| b.0.total_cmp(&a.0));
            expected.truncate(15);
            let found: Vec<ChunkId> = live.search(&unit, filter, 15).iter().map(|h| h.chunk).collect();
            assert_eq!(found, expected.iter().map(|e| e.1).collect::<Vec<_>>(), "{filter:?}");
        }
    }

    /// The file, owner and workspace lists hold exactly the slots of their rows after any
    /// mix of inserts, replacements that change file, owner or workspace (to and from none),
    /// and file deletes (which move the last entries into freed slots).
    #[test]
    fn the_lists_follow_every_change_of_the_rows() {
        let mut entries = Entries::new(DIM);
        let (owners, workspaces, files): (Vec<UserId>, Vec<WorkspaceId>, Vec<FileId>) = (
            (0..3).map(|_| UserId::new()).collect(),
            (0..2).map(|_| WorkspaceId::new()).collect(),
            (0..12).map(|_| FileId::new()).collect(),
        );
        let chunks: Vec<ChunkId> = (0..300).map(|_| ChunkId::new()).collect();
        let mut seed = 11u64;
        let mut next = move |n: usize| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as usize) % n
        };
        for step in 0..3_000 {
            if step % 97 == 96 {
                entries.remove_file(files[next(files.len())]);
            } else {
                let workspace = match next(3) {
                    0 => None,
                    w => Some(workspaces[w - 1]),
                };
                let row = Row {
                    chunk: chunks[next(chunks.len())],
                    file: files[next(files.len())],
                    visibility: Visibility { owner: owners[next(owners.len())], workspace },
                };
                entries.put(row, &normalized(&spread(step), DIM, "v").unwrap());
            }
            let (mut by_file, mut by_owner, mut by_workspace) =
                (HashMap::new(), HashMap::new(), HashMap::new());
            for (slot, row) in entries.rows.iter().enumerate() {
                assert_eq!(entries.slots[&row.chunk], slot);
                by_file.entry(row.file).or_insert_with(Vec::new).push(slot);
                by_owner.entry(row.visibility.owner).or_insert_with(HashSet::new).insert(slot);
                if let Some(ws) = row.visibility.workspace {
                    by_workspace.entry(ws).or_insert_with(HashSet::new).insert(slot);
                }
            }
            let listed: HashMap<FileId, Vec<usize>> = entries
                .by_file
                .iter()
                .map(|(file, slots)| {
                    let mut slots = slots.clone();
                    slots.sort_unstable();
                    (*file, slots)
                })
                .collect();
            assert_eq!(entries.slots.len(), entries.rows.len(), "step {step}");
            assert_eq!(listed, by_file, "step {step}");
            assert_eq!(entries.by_owner, by_owner, "step {step}");
            assert_eq!(entries.by_workspace, by_workspace, "step {step}");
        }
    }
}
