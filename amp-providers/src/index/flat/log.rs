//! The on-disk form of a persisted [`super::FlatVectorIndex`]: one append-only log,
//! replayed at open, repaired after a torn write, compacted as dead records pile up, and
//! locked to one index at a time. Little-endian, ids as their 16 UUID bytes, vectors
//! stored already normalized:
//!
//! ```text
//! header       "AMPFLATV" | version u32 | dimension u32
//! upsert       1u8 | chunk | file | owner | has_workspace u8 | workspace (zeros if none) | dimension × f32
//! delete-file  2u8 | file
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use amp_core::{ChunkId, Error, FileId, Result, UserId, Visibility, WorkspaceId};
use uuid::Uuid;

use super::{Entries, Row, read};

pub(super) const MAGIC: [u8; 8] = *b"AMPFLATV";
pub(super) const VERSION: u32 = 1;
pub(super) const HEADER_LEN: usize = 16;
pub(super) const TAG_UPSERT: u8 = 1;
pub(super) const TAG_DELETE_FILE: u8 = 2;
pub(super) const DELETE_RECORD_LEN: usize = 1 + 16;

/// Below this many records the log is never compacted: rewriting costs more than the
/// dead records do.
pub(super) const COMPACT_MIN_RECORDS: u64 = 1_000;

pub(super) fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn upsert_record_len(dimension: usize) -> usize {
    1 + 16 * 3 + 1 + 16 + 4 * dimension
}

fn header(dimension: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header[12..].copy_from_slice(&dimension.to_le_bytes());
    header
}

/// The upsert records of a prepared batch, ready to append.
pub(super) fn encode_upserts(batch: &[(Row, Vec<f32>)], dimension: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(batch.len() * upsert_record_len(dimension));
    for (row, vector) in batch {
        encode_upsert(&mut buf, row, vector);
    }
    buf
}

/// The record that deletes every entry of `file`.
pub(super) fn encode_delete_file(file: FileId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(DELETE_RECORD_LEN);
    buf.push(TAG_DELETE_FILE);
    buf.extend_from_slice(file.as_uuid().as_bytes());
    buf
}

fn encode_upsert(buf: &mut Vec<u8>, row: &Row, vector: &[f32]) {
    buf.push(TAG_UPSERT);
    buf.extend_from_slice(row.chunk.as_uuid().as_bytes());
    buf.extend_from_slice(row.file.as_uuid().as_bytes());
    buf.extend_from_slice(row.visibility.owner.as_uuid().as_bytes());
    match row.visibility.workspace {
        Some(workspace) => {
            buf.push(1);
            buf.extend_from_slice(workspace.as_uuid().as_bytes());
        }
        None => {
            buf.push(0);
            buf.extend_from_slice(&[0; 16]);
        }
    }
    for x in vector {
        buf.extend_from_slice(&x.to_le_bytes());
    }
}

fn uuid_at(bytes: &[u8], at: usize) -> Uuid {
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[at..at + 16]);
    Uuid::from_bytes(id)
}

/// Decodes an upsert record's body (everything after its tag); `None` if it is corrupt.
fn decode_upsert(body: &[u8], dimension: usize) -> Option<(Row, Vec<f32>)> {
    let workspace = match body[48] {
        0 => None,
        1 => Some(WorkspaceId::from_uuid(uuid_at(body, 49))),
        _ => return None,
    };
    let row = Row {
        chunk: ChunkId::from_uuid(uuid_at(body, 0)),
        file: FileId::from_uuid(uuid_at(body, 16)),
        visibility: Visibility { owner: UserId::from_uuid(uuid_at(body, 32)), workspace },
    };
    let vector: Vec<f32> = body[65..65 + 4 * dimension]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    vector.iter().all(|x| x.is_finite()).then_some((row, vector))
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Takes the file's exclusive advisory lock, so two indexes never append to one file.
fn lock_file(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::unavailable(format!(
            "the vector index {} is already open in another index or process",
            path.display()
        ))),
        // Some file systems have no locks; the index still works, unguarded.
        Err(TryLockError::Error(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot lock the vector index file");
            Ok(())
        }
    }
}

/// The append-only file behind a persisted index.
pub(super) struct Log {
    pub(super) path: PathBuf,
    file: File,
    dimension: usize,
    /// Bytes of the header and whole records: where the next record goes.
    len: u64,
    /// Records in the file, live or dead.
    records: u64,
}

impl Log {
    pub(super) fn open(path: &Path, dimension: usize) -> Result<(Log, Entries)> {
        let dimension32 = u32::try_from(dimension).map_err(|_| {
            Error::invalid_input(format!("a vector index dimension of {dimension} is too large"))
        })?;
        let cannot = |e: io::Error| {
            Error::unavailable(format!("cannot open the vector index {}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(cannot)?;
        lock_file(&file, path)?;
        let size = file.metadata().map_err(cannot)?.len();
        let expected = header(dimension32);

        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut found = [0u8; HEADER_LEN];
        let read = read_up_to(&mut reader, &mut found).map_err(cannot)?;
        let not_an_index =
            || Error::invalid_input(format!("{} is not a flat vector index file", path.display()));
        if read < HEADER_LEN {
            // Empty, or a header cut short while the file was being created.
            if found[..read] != expected[..read] {
                return Err(not_an_index());
            }
            drop(reader);
            let mut log = Log { path: path.to_owned(), file, dimension, len: 0, records: 0 };
            log.file.set_len(0).and_then(|()| log.file.seek(SeekFrom::Start(0))).map_err(cannot)?;
            log.append(&expected, 0)?;
            log.file.sync_all().map_err(cannot)?;
            return Ok((log, Entries::new(dimension)));
        }
        if found[..8] != MAGIC {
            return Err(not_an_index());
        }
        let version = u32::from_le_bytes([found[8], found[9], found[10], found[11]]);
        if version != VERSION {
            return Err(Error::invalid_input(format!(
                "the vector index {} has format version {version}; this build reads version {VERSION}",
                path.display()
            )));
        }
        let stored = u32::from_le_bytes([found[12], found[13], found[14], found[15]]);
        if stored != dimension32 {
            return Err(Error::invalid_input(format!(
                "the vector index {} holds vectors of {stored} dimensions, but {dimension} were asked for; \
                 use the embedder it was built with, or a new index file",
                path.display()
            )));
        }

        let mut entries = Entries::new(dimension);
        let (mut offset, mut records) = (HEADER_LEN as u64, 0u64);
        let mut body = vec![0u8; upsert_record_len(dimension) - 1];
        loop {
            let mut tag = [0u8; 1];
            if read_up_to(&mut reader, &mut tag).map_err(cannot)? == 0 {
                break;
            }
            let body_len = match tag[0] {
                TAG_UPSERT => upsert_record_len(dimension) - 1,
                TAG_DELETE_FILE => DELETE_RECORD_LEN - 1,
                other => return Err(corrupt(path, offset, &format!("unknown record type {other}"))),
            };
            if read_up_to(&mut reader, &mut body[..body_len]).map_err(cannot)? < body_len {
                break;
            }
            if tag[0] == TAG_UPSERT {
                let (row, vector) = decode_upsert(&body[..body_len], dimension)
                    .ok_or_else(|| corrupt(path, offset, "bad upsert"))?;
                entries.put(row, &vector);
            } else {
                entries.remove_file(FileId::from_uuid(uuid_at(&body, 0)));
            }
            offset += 1 + body_len as u64;
            records += 1;
        }
        drop(reader);

        let mut file = file;
        if offset < size {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = size - offset,
                "the vector index ends in a record cut short (a crash mid-write); dropping it"
            );
            file.set_len(offset).map_err(cannot)?;
            file.sync_all().map_err(cannot)?;
        }
        file.seek(SeekFrom::Start(offset)).map_err(cannot)?;
        tracing::debug!(path = %path.display(), records, live = entries.rows.len(), "vector index replayed");
        Ok((Log { path: path.to_owned(), file, dimension, len: offset, records }, entries))
    }

    /// Appends whole records and flushes them; on failure, cuts the file back so no
    /// partial record is left for the next append to follow.
    pub(super) fn append(&mut self, bytes: &[u8], records: u64) -> Result<()> {
        match self.file.write_all(bytes).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.records += records;
                Ok(())
            }
            Err(e) => {
                let undo =
                    self.file.set_len(self.len).and_then(|()| self.file.seek(SeekFrom::Start(self.len)));
                if let Err(undo) = undo {
                    tracing::error!(path = %self.path.display(), error = %undo, "cannot cut back a failed vector index write");
                }
                tracing::error!(path = %self.path.display(), error = %e, "writing the vector index failed");
                Err(Error::internal("writing the vector index failed", e))
            }
        }
    }

    /// Rewrites the file when dead records outnumber live ones. A failure leaves the old
    /// file in place and is only logged: the change that triggered it is already stored.
    pub(super) fn compact_if_due(&mut self, entries: &RwLock<Entries>) {
        let live = read(entries);
        let count = live.rows.len() as u64;
        if self.records <= COMPACT_MIN_RECORDS || self.records - count <= count {
            return;
        }
        let before = self.len;
        match self.compact(&live) {
            Ok(()) => tracing::debug!(
                path = %self.path.display(),
                before_bytes = before,
                after_bytes = self.len,
                live = count,
                "vector index compacted"
            ),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "compacting the vector index failed")
            }
        }
    }

    /// Writes the live entries to a temporary file beside the log, syncs it, and renames it
    /// over the log, so a crash at any point leaves one complete file.
    fn compact(&mut self, entries: &Entries) -> io::Result<()> {
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".compacting");
        let temporary = PathBuf::from(temporary);
        let written = (|| {
            let file =
                OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&temporary)?;
            let dimension = u32::try_from(self.dimension).map_err(io::Error::other)?;
            let mut out = BufWriter::with_capacity(1 << 20, &file);
            out.write_all(&header(dimension))?;
            let mut record = Vec::with_capacity(upsert_record_len(self.dimension));
            for (slot, row) in entries.rows.iter().enumerate() {
                record.clear();
                encode_upsert(&mut record, row, entries.vector(slot));
                out.write_all(&record)?;
            }
            out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            // Nobody else can have the new file yet; locked before it takes the log's place.
            if let Err(TryLockError::WouldBlock) = file.try_lock() {
                return Err(io::Error::other("the compacted file is locked"));
            }
            std::fs::rename(&temporary, &self.path)?;
            Ok(file)
        })();
        let mut file = match written {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(e);
            }
        };
        // The rename is durable once the directory is synced; some platforms cannot open a
        // directory, and the data itself is already synced, so failure here is not fatal.
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        self.len = file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.records = entries.rows.len() as u64;
        Ok(())
    }
}

fn corrupt(path: &Path, offset: u64, what: &str) -> Error {
    Error::unavailable(format!("the vector index {} is corrupt at byte {offset}: {what}", path.display()))
}
