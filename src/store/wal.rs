//! The write-ahead log: every append, so that a crash loses at most the
//! last flush interval of samples.
//!
//! Records go to an in-memory buffer (one short lock per scrape batch, no
//! syscall on the append path) and a background task writes the buffer as
//! one CRC-checked frame and fdatasyncs it every `storage.wal_fsync_interval`
//! (1s). A series is logged once, when created, as (ref, labels); samples
//! are then (ref, t, v) with t relative to the batch's first timestamp, so a
//! sample costs ~11 bytes. The log is split in numbered segments
//! (`wal-00000001`, ...); a snapshot covers every segment up to its number,
//! which can then be deleted.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::frame::{put_f64, put_frame, put_labels, put_uvarint, put_varint, Frames, Reader};
use super::StoreError;
use crate::labels::Labels;

pub const WAL_MAGIC: &[u8; 8] = b"FWWAL\x01\0\0";
const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;

pub fn segment_name(n: u64) -> String {
    format!("wal-{n:08}")
}

struct Segment {
    n: u64,
    path: PathBuf,
    file: File,
    /// Bytes of whole frames written (where a failed write is cut back to).
    len: u64,
}

/// WAL records kept for a retry while writes fail; beyond this they are
/// dropped (counted in `forewarn_store_wal_bytes_dropped_total`).
const MAX_RETAINED: usize = 64 << 20;

/// The WAL writer.
pub struct Wal {
    dir: PathBuf,
    /// Records not yet written to the segment.
    buf: Mutex<Vec<u8>>,
    /// Taken before `buf` by whoever writes the file.
    segment: Mutex<Segment>,
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { path: path.display().to_string(), what, source }
}

fn open_segment(dir: &Path, n: u64) -> Result<Segment, StoreError> {
    let path = dir.join(segment_name(n));
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path, "cannot create WAL segment"))?;
    file.write_all(WAL_MAGIC).map_err(io_err(&path, "cannot write WAL segment"))?;
    Ok(Segment { n, path, file, len: WAL_MAGIC.len() as u64 })
}

impl Wal {
    /// Starts a new segment `n` in `dir` (never appends to an old one, whose
    /// tail may be torn).
    pub fn create(dir: &Path, n: u64) -> Result<Wal, StoreError> {
        let segment = open_segment(dir, n)?;
        Ok(Wal { dir: dir.to_path_buf(), buf: Mutex::new(Vec::new()), segment: Mutex::new(segment) })
    }

    pub fn log_series(&self, r: u64, labels: &Labels) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.push(REC_SERIES);
        put_uvarint(&mut buf, r);
        put_labels(&mut buf, labels);
    }

    /// Adds a batch built by [`SampleBatch`].
    pub fn log_samples(&self, batch: &mut SampleBatch) {
        if batch.count == 0 {
            return;
        }
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.push(REC_SAMPLES);
        put_uvarint(&mut buf, batch.count);
        put_varint(&mut buf, batch.base_t);
        buf.extend_from_slice(&batch.body);
        drop(buf);
        batch.clear();
    }

    /// Record bytes written to the current segment (its header not
    /// counted): the WAL a restart would replay on top of the last
    /// snapshot (segments are only cut by checkpoints).
    pub fn segment_bytes(&self) -> u64 {
        self.segment.lock().unwrap_or_else(|e| e.into_inner()).len.saturating_sub(WAL_MAGIC.len() as u64)
    }

    /// Whether records wait in the buffer for the next [`Wal::flush`].
    pub fn has_pending(&self) -> bool {
        !self.buf.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Writes buffered records as one frame and syncs them to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut seg = self.segment.lock().unwrap_or_else(|e| e.into_inner());
        self.flush_locked(&mut seg)
    }

    /// On a failed write (a full disk) the segment is cut back to its last
    /// whole frame, so no torn frame hides the frames after it, and the
    /// records stay buffered for the next flush (up to [`MAX_RETAINED`];
    /// the samples are in memory either way, and the next snapshot covers them).
    fn flush_locked(&self, seg: &mut Segment) -> Result<(), StoreError> {
        let records = std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()));
        if records.is_empty() {
            return Ok(());
        }
        let mut frame = Vec::with_capacity(records.len() + 8);
        put_frame(&mut frame, &records);
        let written = seg.file.write_all(&frame).map_err(io_err(&seg.path, "cannot write WAL (disk full?)"));
        let synced = written.and_then(|()| seg.file.sync_data().map_err(io_err(&seg.path, "cannot sync WAL")));
        if let Err(e) = synced {
            let _ = seg.file.set_len(seg.len);
            let _ = std::io::Seek::seek(&mut seg.file, std::io::SeekFrom::Start(seg.len));
            let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            if records.len() + buf.len() <= MAX_RETAINED {
                let newer = std::mem::replace(&mut *buf, records);
                buf.extend_from_slice(&newer);
            } else {
                metrics::counter!("forewarn_store_wal_bytes_dropped_total").increment(records.len() as u64);
            }
            return Err(e);
        }
        seg.len += frame.len() as u64;
        metrics::counter!("forewarn_store_wal_bytes_total").increment(frame.len() as u64);
        Ok(())
    }

    /// Flushes the current segment and starts the next; returns the number
    /// of the segment just closed, which holds every record logged so far.
    pub fn rotate(&self) -> Result<u64, StoreError> {
        let mut seg = self.segment.lock().unwrap_or_else(|e| e.into_inner());
        self.flush_locked(&mut seg)?;
        let next = open_segment(&self.dir, seg.n + 1)?;
        let closed = seg.n;
        *seg = next;
        Ok(closed)
    }
}

/// The samples of one append batch, encoded outside any lock.
#[derive(Default)]
pub struct SampleBatch {
    body: Vec<u8>,
    count: u64,
    base_t: i64,
}

impl SampleBatch {
    pub fn add(&mut self, r: u64, t: i64, v: f64) {
        if self.count == 0 {
            self.base_t = t;
        }
        self.count += 1;
        put_uvarint(&mut self.body, r);
        put_varint(&mut self.body, t.wrapping_sub(self.base_t));
        put_f64(&mut self.body, v);
    }

    fn clear(&mut self) {
        self.body.clear();
        self.count = 0;
    }
}

/// One replayed record.
#[derive(Debug, PartialEq)]
pub enum Record {
    Series { r: u64, labels: Labels },
    Sample { r: u64, t: i64, v: f64 },
}

/// Reads the whole frames of a segment's bytes `data` (which start at file
/// offset `base`) for a reader that follows the log while it is written
/// (remote write): returns the offset after the last intact frame read and,
/// if reading stopped at a bad or incomplete frame, why. A frame cut short
/// at the end of the newest segment is still being written; anywhere else
/// it is damage, and the caller moves on.
/// Stops after the frame that brings the samples read to `limit`.
pub fn read_frames(data: &[u8], base: u64, limit: usize, apply: &mut impl FnMut(Record)) -> (u64, Option<String>) {
    let mut end = base;
    let mut samples = 0usize;
    for frame in (Frames { data, offset: 0 }) {
        match frame {
            Ok((offset, payload)) => {
                let mut counting = |rec: Record| {
                    samples += matches!(rec, Record::Sample { .. }) as usize;
                    apply(rec)
                };
                if replay_frame(payload, &mut counting).is_none() {
                    return (end, Some(format!("malformed record in frame at offset {}", base + offset as u64)));
                }
                end = base + (offset + 8 + payload.len()) as u64;
                if samples >= limit {
                    break;
                }
            }
            Err((offset, e)) => return (end, Some(format!("offset {}: {e}", base + offset as u64))),
        }
    }
    (end, None)
}

/// Replays one segment's bytes; returns problems found (the rest of a
/// segment after a bad frame is skipped).
pub fn replay(name: &str, data: &[u8], apply: &mut impl FnMut(Record)) -> Vec<String> {
    if data.len() < WAL_MAGIC.len() || &data[..WAL_MAGIC.len()] != WAL_MAGIC {
        return vec![format!("{name}: not a forewarn WAL segment (bad header); skipped")];
    }
    let mut problems = Vec::new();
    for frame in (Frames { data, offset: WAL_MAGIC.len() }) {
        match frame {
            Ok((offset, payload)) => {
                if replay_frame(payload, apply).is_none() {
                    problems
                        .push(format!("{name}: malformed record in frame at offset {offset}; rest of frame skipped"));
                }
            }
            Err((offset, e)) => {
                problems.push(format!("{name}: offset {offset}: {e}; skipped up to the next intact frame"));
            }
        }
    }
    problems
}

fn replay_frame(payload: &[u8], apply: &mut impl FnMut(Record)) -> Option<()> {
    let mut r = Reader::new(payload);
    while !r.is_empty() {
        match r.u8()? {
            REC_SERIES => {
                let id = r.uvarint()?;
                apply(Record::Series { r: id, labels: r.labels()? });
            }
            REC_SAMPLES => {
                let n = r.uvarint()?;
                let base = r.varint()?;
                for _ in 0..n {
                    let id = r.uvarint()?;
                    let t = base.wrapping_add(r.varint()?);
                    apply(Record::Sample { r: id, t, v: r.f64()? });
                }
            }
            _ => return None,
        }
    }
    Some(())
}
