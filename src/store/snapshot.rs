//! Snapshots: every series with its chunks as they are in memory, written
//! every few minutes and at shutdown so that a restart reads compressed
//! chunks instead of replaying hours of WAL.
//!
//! `snapshot-N` holds the state after every record of WAL segments `<= N`
//! (and perhaps some later ones: replaying those again is harmless, because
//! a sample at a known timestamp replaces itself and older ones are
//! dropped). It is written as `snapshot-N.tmp`, synced, then renamed, so a
//! crash mid-write leaves the previous snapshot in place.

use std::io::Write;
use std::path::Path;

use super::codec::{decode_range, Chunk, HeadChunk};
use super::downsample::{Aggregate, Downsample};
use super::frame::{put_bytes, put_f64, put_frame_header, put_labels, put_uvarint, put_varint, Frames, Reader};
use super::memory::Entry;
use super::series::SeriesData;
use super::{Sample, StoreError};
use crate::labels::Labels;

/// The header names the format version (the last two bytes): version 2
/// has the grid/window chunk codec and the head's first timestamp. A
/// snapshot of another version is reported and skipped, never misread.
pub const SNAP_MAGIC: &[u8; 8] = b"FWSNAP\x02\0";
const SNAP_PREFIX: &[u8; 6] = b"FWSNAP";
/// Series are grouped into frames of about this size (a damaged frame
/// loses the series in it; the payload buffer is this big while writing).
const FRAME_TARGET: usize = 1 << 18;

pub fn snapshot_name(n: u64) -> String {
    format!("snapshot-{n:08}")
}

/// Writes the given series to `dir/snapshot-N`; returns its size in bytes.
pub fn write(dir: &Path, n: u64, entries: &[std::sync::Arc<Entry>]) -> Result<u64, StoreError> {
    let tmp = dir.join(format!("{}.tmp", snapshot_name(n)));
    let result = write_to(dir, &tmp, n, entries);
    if result.is_err() {
        // A half-written snapshot must not keep a full disk full.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_to(dir: &Path, tmp: &Path, n: u64, entries: &[std::sync::Arc<Entry>]) -> Result<u64, StoreError> {
    let path = dir.join(snapshot_name(n));
    let shown = tmp.display().to_string();
    let err = |what: &'static str| {
        let path = shown.clone();
        move |source| StoreError::Io { path, what, source }
    };
    let file = std::fs::File::create(tmp).map_err(err("cannot create snapshot"))?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(SNAP_MAGIC).map_err(err("cannot write snapshot (disk full?)"))?;
    let (mut payload, mut frame, mut size) = (Vec::new(), Vec::new(), SNAP_MAGIC.len() as u64);
    for (i, e) in entries.iter().enumerate() {
        put_series(&mut payload, &e.labels.to_labels(), e.r, &e.lock());
        if payload.len() >= FRAME_TARGET || i + 1 == entries.len() {
            // The frame's header, then the payload as it is: no copy of a
            // frame-sized buffer (transient memory a snapshot would add to
            // the daemon's peak).
            frame.clear();
            put_frame_header(&mut frame, &payload);
            out.write_all(&frame).map_err(err("cannot write snapshot (disk full?)"))?;
            out.write_all(&payload).map_err(err("cannot write snapshot (disk full?)"))?;
            size += (frame.len() + payload.len()) as u64;
            payload.clear();
        }
    }
    let file = out.into_inner().map_err(|e| err("cannot write snapshot (disk full?)")(e.into_error()))?;
    file.sync_all().map_err(err("cannot sync snapshot"))?;
    drop(file);
    std::fs::rename(tmp, &path).map_err(err("cannot rename snapshot into place"))?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(size)
}

fn put_series(buf: &mut Vec<u8>, labels: &Labels, r: u64, d: &SeriesData) {
    put_uvarint(buf, r);
    put_labels(buf, labels);
    put_varint(buf, d.floor);
    put_uvarint(buf, d.chunks.len() as u64);
    for c in &d.chunks {
        put_varint(buf, c.min_t);
        put_varint(buf, c.max_t);
        put_uvarint(buf, c.count as u64);
        put_bytes(buf, &c.data);
    }
    put_uvarint(buf, d.head.count() as u64);
    put_varint(buf, d.head.min_t());
    put_bytes(buf, d.head.bytes());
    match d.pending.get() {
        Some(p) => {
            buf.push(1);
            put_varint(buf, p.t);
            put_f64(buf, p.v);
        }
        None => buf.push(0),
    }
    match &d.down {
        Some(down) => {
            buf.push(1);
            put_uvarint(buf, down.buckets.len() as u64);
            for b in &down.buckets {
                put_varint(buf, b.t);
                put_f64(buf, b.min);
                put_f64(buf, b.max);
                put_f64(buf, b.sum);
                put_uvarint(buf, b.count as u64);
            }
        }
        None => buf.push(0),
    }
}

/// A series read back from a snapshot.
pub struct Loaded {
    pub r: u64,
    pub labels: Labels,
    pub data: SeriesData,
}

/// Reads a snapshot's bytes, calling `f` per series; returns problems (a
/// damaged frame loses the series in it, the others still load).
pub fn read(name: &str, data: &[u8], downsample: bool, f: &mut impl FnMut(Loaded)) -> Vec<String> {
    if data.len() < SNAP_MAGIC.len() || &data[..SNAP_MAGIC.len()] != SNAP_MAGIC {
        if data.len() >= SNAP_MAGIC.len() && data.starts_with(SNAP_PREFIX) {
            return vec![format!(
                "{name}: snapshot format version {} is not the version {} this build reads (written by another forewarn); skipped",
                data[6], SNAP_MAGIC[6]
            )];
        }
        return vec![format!("{name}: not a forewarn snapshot (bad header); skipped")];
    }
    let mut problems = Vec::new();
    for frame in (Frames { data, offset: SNAP_MAGIC.len() }) {
        match frame {
            Ok((offset, payload)) => {
                let mut r = Reader::new(payload);
                while !r.is_empty() {
                    match get_series(&mut r, downsample) {
                        Some(l) => f(l),
                        None => {
                            problems.push(format!(
                                "{name}: malformed series in frame at offset {offset}; rest of frame skipped"
                            ));
                            break;
                        }
                    }
                }
            }
            Err((offset, e)) => {
                problems.push(format!("{name}: offset {offset}: {e}; {} bytes skipped", data.len() - offset));
            }
        }
    }
    problems
}

fn get_series(rd: &mut Reader<'_>, downsample: bool) -> Option<Loaded> {
    let r = rd.uvarint()?;
    let labels = rd.labels()?;
    let mut data = SeriesData::new(downsample);
    data.floor = rd.varint()?;
    let n = rd.uvarint()?;
    for _ in 0..n {
        let (min_t, max_t) = (rd.varint()?, rd.varint()?);
        let count = u16::try_from(rd.uvarint()?).ok()?;
        let bytes = rd.bytes()?;
        if count == 0 || min_t > max_t || data.chunks.last().is_some_and(|c| c.max_t >= min_t) {
            return None;
        }
        data.chunks.push(Chunk { min_t, max_t, count, data: bytes.into() });
    }
    // The head is re-encoded sample by sample, which rebuilds the encoder
    // state and checks the bytes at once.
    let head_count = u16::try_from(rd.uvarint()?).ok()?;
    let head_min_t = rd.varint()?;
    let mut samples: Vec<Sample> = Vec::with_capacity(head_count as usize);
    decode_range(rd.bytes()?, head_count, head_min_t, i64::MIN, i64::MAX, &mut samples).ok()?;
    let mut head = HeadChunk::default();
    for s in samples {
        if data.chunks.last().is_some_and(|c| c.max_t >= s.t) || (head.count() > 0 && head.max_t() >= s.t) {
            return None;
        }
        head.push(s.t, s.v);
    }
    data.head = head;
    if rd.u8()? == 1 {
        data.pending.set(Sample { t: rd.varint()?, v: rd.f64()? });
    }
    if rd.u8()? == 1 {
        let n = rd.uvarint()?;
        let mut d = Downsample::default();
        for _ in 0..n {
            let t = rd.varint()?;
            let (min, max, sum) = (rd.f64()?, rd.f64()?, rd.f64()?);
            let count = u32::try_from(rd.uvarint()?).ok()?;
            d.buckets.push(Aggregate { t, min, max, sum, count });
        }
        if downsample {
            data.down = Some(Box::new(d));
        }
    }
    Some(Loaded { r, labels, data })
}
