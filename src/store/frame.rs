//! The on-disk framing shared by the WAL and snapshots: a file is an 8-byte
//! magic followed by frames `[len u32 LE][crc32 u32 LE][payload]`, and
//! payloads are built from varints, zigzag varints, raw f64 bits and
//! length-prefixed strings.
//!
//! The CRC is what turns a torn write (kill -9 mid-`write`) or a flipped bit
//! into a reported, skipped frame instead of garbage samples; readers check
//! every length against what is left, so nothing read from disk can panic.

use crate::labels::Labels;

/// Larger frames are taken for corrupt lengths.
pub const MAX_FRAME: usize = 1 << 30;

/// CRC-32 (IEEE), as the frames on disk have always used; `crc32fast`
/// computes it with the CPU's carry-less multiply (a table lookup per byte
/// was 4 % of a scrape's CPU, every sample passing through the WAL).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_bits().to_le_bytes());
}

pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

pub fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for (n, v) in labels.iter() {
        put_bytes(buf, n.as_bytes());
        put_bytes(buf, v.as_bytes());
    }
}

/// Wraps `payload` as one frame.
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    put_frame_header(out, payload);
    out.extend_from_slice(payload);
}

/// The 8 bytes [`put_frame`] writes before `payload`, for a writer that
/// writes the payload itself.
pub fn put_frame_header(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame header cut short ({0} bytes left): the file was truncated, e.g. by a crash during a write")]
    ShortHeader(usize),
    #[error("frame claims {claimed} bytes but {left} are left: the file was truncated")]
    ShortPayload { claimed: usize, left: usize },
    #[error("checksum mismatch: the frame is corrupt")]
    Checksum,
}

/// Iterates over the frames of `data` (after the magic), yielding each
/// payload with its offset. A bad frame is reported once and skipped: the
/// iteration goes on at the next intact frame (right after the bad one
/// when its length is plausible, else found by scanning for a header
/// whose checksum matches), so one torn or flipped frame loses only itself.
pub struct Frames<'a> {
    pub data: &'a [u8],
    pub offset: usize,
}

/// The frame at `at`, if one is intact there: (payload, its end).
fn frame_at(data: &[u8], at: usize) -> Result<(&[u8], usize), FrameError> {
    let rest = &data[at.min(data.len())..];
    let (Some(len), Some(crc)) = (rest.get(0..4), rest.get(4..8)) else {
        return Err(FrameError::ShortHeader(rest.len()));
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let Some(payload) = rest.get(8..8 + len).filter(|_| len <= MAX_FRAME) else {
        return Err(FrameError::ShortPayload { claimed: len, left: rest.len() - 8 });
    };
    if crc32(payload) != crc {
        return Err(FrameError::Checksum);
    }
    Ok((payload, at + 8 + len))
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(usize, &'a [u8]), (usize, FrameError)>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.offset;
        if at >= self.data.len() {
            return None;
        }
        match frame_at(self.data, at) {
            Ok((payload, end)) => {
                self.offset = end;
                Some(Ok((at, payload)))
            }
            Err(e) => {
                // Resynchronise: a checksum failure with a length that fits
                // most likely is one torn frame, followed by intact ones.
                let len = self.data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                let after = len.map(|l| at + 8 + l).filter(|&end| end < self.data.len());
                self.offset = match after.filter(|&end| frame_at(self.data, end).is_ok()) {
                    Some(end) => end,
                    None => (at + 1..self.data.len())
                        .find(|&p| frame_at(self.data, p).is_ok_and(|(pl, _)| !pl.is_empty()))
                        .unwrap_or(self.data.len()),
                };
                Some(Err((at, e)))
            }
        }
    }
}

/// A payload read cursor; every getter is `None` past the end.
pub struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    pub fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    pub fn f64(&mut self) -> Option<f64> {
        let b = self.bytes_n(8)?;
        Some(f64::from_bits(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])))
    }

    pub fn bytes_n(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        self.bytes_n(n)
    }

    pub fn labels(&mut self) -> Option<Labels> {
        let n = self.uvarint()?;
        let mut pairs = Vec::new();
        for _ in 0..n {
            let name = std::str::from_utf8(self.bytes()?).ok()?;
            let value = std::str::from_utf8(self.bytes()?).ok()?;
            pairs.push((name, value));
        }
        Some(Labels::from_pairs(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_ieee_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn varints_and_frames_round_trip_and_detect_damage() {
        let mut p = Vec::new();
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000] {
            put_varint(&mut p, v);
        }
        put_f64(&mut p, f64::NEG_INFINITY);
        let mut file = Vec::new();
        put_frame(&mut file, &p);
        put_frame(&mut file, b"second");
        let frames: Vec<_> = Frames { data: &file, offset: 0 }.collect();
        assert_eq!(frames.len(), 2);
        let mut r = Reader::new(frames[0].as_ref().unwrap().1);
        let got: Vec<i64> = (0..6).map(|_| r.varint().unwrap()).collect();
        assert_eq!(got, vec![0, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000]);
        assert_eq!(r.f64(), Some(f64::NEG_INFINITY));
        assert!(r.is_empty() && r.u8().is_none());

        let cut = &file[..file.len() - 3];
        let last = Frames { data: cut, offset: 0 }.last().unwrap();
        assert!(matches!(last, Err((_, FrameError::ShortPayload { .. }))), "{last:?}");
        let mut flipped = file.clone();
        flipped[10] ^= 1;
        assert_eq!(Frames { data: &flipped, offset: 0 }.next(), Some(Err((0, FrameError::Checksum))));
        // Only the damaged frame is lost: the next one is still read.
        let after: Vec<_> = Frames { data: &flipped, offset: 0 }.collect();
        assert_eq!(after.len(), 2, "{after:?}");
        assert_eq!(after[1].as_ref().map(|(_, p)| *p), Ok(&b"second"[..]));
        // A torn frame in the middle (its tail missing) loses only itself too.
        let mut torn = Vec::new();
        put_frame(&mut torn, b"first");
        let mut half = Vec::new();
        put_frame(&mut half, &[7u8; 40]);
        torn.extend_from_slice(&half[..20]);
        put_frame(&mut torn, b"third");
        let got: Vec<_> = Frames { data: &torn, offset: 0 }.filter_map(Result::ok).map(|(_, p)| p).collect();
        assert_eq!(got, vec![&b"first"[..], &b"third"[..]]);
    }
}
