//! Following the WAL for one remote: where it has read up to (segment and
//! byte offset, saved in `storage.path/remote_write/<name>.pos` after each
//! acknowledged send), which series the references name, and reading the
//! next whole frames as they are flushed.
//!
//! The saved position is what makes a receiver outage or a `kill -9` lose
//! nothing: on restart the queue resumes at the first frame not yet
//! acknowledged, and the store keeps every segment from there on past its
//! checkpoints ([`Store::hold_wal`]). A series whose record lives in a
//! segment already deleted is resolved from the store, where references
//! survive restarts.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::labels::Labels;
use crate::store::wal::{self, Record, WAL_MAGIC};
use crate::store::Store;

/// Bytes read from a segment at a time.
const READ_BLOCK: u64 = 32 << 20;

/// A read position in the WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// One sample read from the WAL, by series reference.
#[derive(Clone, Copy, Debug)]
pub struct RefSample {
    pub r: u64,
    pub t: i64,
    pub v: f64,
}

pub struct Tail {
    dir: PathBuf,
    pub pos: Position,
    /// Series records seen while reading.
    series: HashMap<u64, Labels>,
}

fn segments(dir: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(dir)
        .map(|items| {
            items.flatten().filter_map(|i| i.file_name().to_str()?.strip_prefix("wal-")?.parse().ok()).collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// The saved position in `file`, if one is there and readable.
pub fn load_position(file: &Path) -> Option<Position> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut it = text.split_whitespace();
    let segment = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    Some(Position { segment, offset })
}

/// Saves `pos` atomically (a crash leaves the old or the new one).
pub fn save_position(file: &Path, pos: Position) -> std::io::Result<()> {
    let tmp = file.with_extension("pos.tmp");
    std::fs::write(&tmp, format!("{} {}\n", pos.segment, pos.offset))?;
    std::fs::rename(&tmp, file)
}

impl Tail {
    /// Starts at `saved`, or at the start of the newest segment (what the
    /// store logs from now on) for a remote never sent to.
    pub fn new(dir: &Path, saved: Option<Position>) -> Tail {
        let start = saved.unwrap_or_else(|| Position {
            segment: segments(dir).last().copied().unwrap_or(1),
            offset: WAL_MAGIC.len() as u64,
        });
        Tail { dir: dir.to_path_buf(), pos: start, series: HashMap::new() }
    }

    /// Appends up to about `limit` samples (whole frames) to `out`, moving
    /// the position past them. Returns how many samples were read.
    pub fn read(&mut self, limit: usize, out: &mut Vec<RefSample>) -> usize {
        let before = out.len();
        while out.len() - before < limit {
            // Listed before reading: a newer segment means this one is complete.
            let all = segments(&self.dir);
            let newer = all.iter().copied().find(|&n| n > self.pos.segment);
            if !all.contains(&self.pos.segment) {
                match newer {
                    Some(n) => {
                        if self.pos.segment < n.saturating_sub(1) || self.pos.offset > WAL_MAGIC.len() as u64 {
                            tracing::warn!(from = self.pos.segment, to = n, "remote write: WAL segments deleted before they were sent (storage.remote_write_wal_limit); their samples are lost to the remote");
                            metrics::counter!("forewarn_remote_storage_wal_segments_lost_total").increment(1);
                        }
                        self.pos = Position { segment: n, offset: WAL_MAGIC.len() as u64 };
                        continue;
                    }
                    None => break,
                }
            }
            let (bytes, file_len) = match self.read_block(self.pos) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(segment = self.pos.segment, error = %e, "remote write: cannot read WAL segment");
                    break;
                }
            };
            let want = limit - (out.len() - before);
            let series = &mut self.series;
            let (end, problem) = wal::read_frames(&bytes, self.pos.offset, want, &mut |rec| match rec {
                Record::Series { r, labels } => {
                    series.insert(r, labels);
                }
                Record::Sample { r, t, v } => out.push(RefSample { r, t, v }),
            });
            let progressed = end > self.pos.offset;
            self.pos.offset = end;
            match newer {
                // The newest segment: a cut-short frame is still being written.
                None if !progressed => break,
                None => {}
                Some(n) if end >= file_len || !progressed => {
                    if end < file_len {
                        let problem = problem.unwrap_or_default();
                        tracing::warn!(segment = self.pos.segment, %problem, "remote write: damaged WAL frame; rest of the segment skipped");
                    }
                    self.pos = Position { segment: n, offset: WAL_MAGIC.len() as u64 };
                }
                Some(_) => {}
            }
        }
        out.len() - before
    }

    /// Bytes of segment `pos.segment` from `pos.offset` (a block, or the
    /// whole rest when one frame is larger than a block), and the file size.
    fn read_block(&self, pos: Position) -> std::io::Result<(Vec<u8>, u64)> {
        let path = self.dir.join(wal::segment_name(pos.segment));
        let mut f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(pos.offset))?;
        let mut buf = Vec::new();
        f.by_ref().take(READ_BLOCK).read_to_end(&mut buf)?;
        // A frame longer than the block: read it whole.
        if buf.len() >= 8 {
            let frame_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as u64 + 8;
            if frame_len > buf.len() as u64 && frame_len <= len - pos.offset {
                f.take(frame_len - buf.len() as u64).read_to_end(&mut buf)?;
            }
        }
        Ok((buf, len))
    }

    /// The labels of series `r`, from the WAL or else the store.
    pub fn labels(&mut self, r: u64, store: &Store, refreshed: &mut bool) -> Option<&Labels> {
        if !self.series.contains_key(&r) && !*refreshed {
            *refreshed = true;
            for (k, v) in store.labels_by_ref() {
                self.series.entry(k).or_insert(v);
            }
        }
        self.series.get(&r)
    }

    /// Forgets series records once they far outnumber the store's series
    /// (label churn); they are looked up in the store again when needed.
    pub fn trim(&mut self, store_series: usize) {
        if self.series.len() > 2 * store_series + 10_000 {
            self.series.clear();
        }
    }
}
