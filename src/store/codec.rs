//! The chunk codec: a series' samples as a Gorilla-style bit stream
//! (delta-of-delta timestamps, XOR-compressed float bits), ~120 samples per
//! chunk.
//!
//! Scrapes arrive at a near-constant interval and most values repeat or
//! change in few bits, so a regular 15 s gauge costs ~1–2 bits of time and a
//! handful of bits of value per sample instead of 16 bytes. One departure
//! from Gorilla: when a value and its predecessor are both integers, or
//! decimals with up to 3 places (most counters, byte gauges, ratios and
//! latencies as exporters print them), the difference of the scaled
//! integers is written in 9 to 38 bits instead of the XOR, whose
//! significant bits for a busy counter near 1e6 or a value like 0.137 run
//! to 20–60. Values are compared as raw bits, so NaN payloads
//! (the staleness marker), -0.0 and ±Inf round-trip bit-exactly. Decoding data read from disk never panics: a
//! stream that ends early is a [`CodecError`].

use super::Sample;

/// Samples per sealed chunk: enough to amortise the 16-byte header, few
/// enough that a select decodes little it does not need.
pub const CHUNK_SAMPLES: u16 = 120;

/// A chunk that cannot be decoded (only possible for data read from disk).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk bit stream ends after {decoded} of {count} samples")]
pub struct CodecError {
    pub decoded: u16,
    pub count: u16,
}

/// Appends bits, most significant first.
#[derive(Clone, Debug, Default)]
struct BitWriter {
    buf: Vec<u8>,
    /// Bits used in the last byte; 0 means it is full (or there is none).
    used: u8,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        self.write_bits(bit as u64, 1);
    }

    /// Writes the low `n` bits of `v` (1 <= n <= 64).
    fn write_bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.used == 0 {
                self.buf.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(n);
            let bits = (v >> (n - take)) & ((1u64 << take) - 1);
            if let Some(last) = self.buf.last_mut() {
                *last |= (bits << (free - take)) as u8;
            }
            self.used = (self.used + take) % 8;
            n -= take;
        }
    }
}

/// Reads bits written by [`BitWriter`]; `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read_bits(&mut self, mut n: u8) -> Option<u64> {
        let mut out = 0u64;
        while n > 0 {
            let byte = *self.data.get(self.pos / 8)?;
            let off = (self.pos % 8) as u8;
            let avail = 8 - off;
            let take = avail.min(n);
            let bits = (byte >> (avail - take)) as u64 & ((1u64 << take) - 1);
            out = (out << take) | bits;
            self.pos += take as usize;
            n -= take;
        }
        Some(out)
    }

    fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }
}

/// Delta-of-delta buckets: (prefix, prefix length, payload bits).
/// The 7-bit bucket holds scrape jitter (±64 ms); 24 bits hold ±2.3 h.
const DOD_BUCKETS: [(u64, u8, u8); 3] = [(0b10, 2, 7), (0b110, 3, 14), (0b1110, 4, 24)];

/// Integer value-delta buckets, after the `10` value prefix.
const INT_BUCKETS: [(u64, u8, u8); 4] = [(0b0, 1, 6), (0b10, 2, 13), (0b110, 3, 20), (0b111, 3, 32)];

fn fits(v: i64, bits: u8) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&v)
}

fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - bits as u32;
    ((v << shift) as i64) >> shift
}

/// Decimal scales tried for the integer path: 3 becomes 3, 0.125 becomes 125/1000.
const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// `v * 10^e` as an integer, if dividing it back gives `v` exactly.
fn scaled(v: f64, e: usize) -> Option<i64> {
    let x = (v * SCALES[e]).round();
    (x.is_finite() && x.abs() < 9_007_199_254_740_992.0 && (x / SCALES[e]).to_bits() == v.to_bits()).then_some(x as i64)
}

/// The smallest decimal scale `e` and integer step from `prev` to `v` at
/// that scale, when replaying it gives `v`'s exact bits (so -0.0 and
/// non-decimal floats take the XOR path).
fn int_delta(prev: u64, v: f64) -> Option<(usize, i64)> {
    (0..SCALES.len()).find_map(|e| {
        let (p, c) = (scaled(f64::from_bits(prev), e)?, scaled(v, e)?);
        let d = c.checked_sub(p)?;
        (fits(d, 32) && ((p + d) as f64 / SCALES[e]).to_bits() == v.to_bits()).then_some((e, d))
    })
}

/// The open chunk of a series, appended to in place.
#[derive(Clone, Debug)]
pub struct HeadChunk {
    w: BitWriter,
    count: u16,
    min_t: i64,
    max_t: i64,
    delta: i64,
    v_bits: u64,
    /// Leading/trailing zeros of the last XOR window; 0xff before the first.
    leading: u8,
    trailing: u8,
}

impl Default for HeadChunk {
    fn default() -> Self {
        HeadChunk {
            w: BitWriter::default(),
            count: 0,
            min_t: 0,
            max_t: 0,
            delta: 0,
            v_bits: 0,
            leading: 0xff,
            trailing: 0,
        }
    }
}

impl HeadChunk {
    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    pub fn bytes(&self) -> &[u8] {
        &self.w.buf
    }

    /// Appends a sample; the caller guarantees `t` is newer than `max_t`.
    pub fn push(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        if self.count == 0 {
            self.w.write_bits(t as u64, 64);
            self.w.write_bits(bits, 64);
            self.min_t = t;
        } else {
            let delta = t.wrapping_sub(self.max_t);
            self.write_dod(delta.wrapping_sub(self.delta));
            self.delta = delta;
            self.write_value(bits);
        }
        self.max_t = t;
        self.v_bits = bits;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.write_bit(false);
            return;
        }
        for (prefix, plen, bits) in DOD_BUCKETS {
            if fits(dod, bits) {
                self.w.write_bits(prefix, plen);
                self.w.write_bits(dod as u64, bits);
                return;
            }
        }
        self.w.write_bits(0b1111, 4);
        self.w.write_bits(dod as u64, 64);
    }

    /// `0`: same bits; `10`: integer delta; `11`: Gorilla XOR.
    fn write_value(&mut self, bits: u64) {
        let x = bits ^ self.v_bits;
        if x == 0 {
            self.w.write_bit(false);
            return;
        }
        let int = int_delta(self.v_bits, f64::from_bits(bits))
            .and_then(|(e, d)| INT_BUCKETS.into_iter().find(|b| fits(d, b.2)).map(|b| (e, d, b)));
        if let Some((e, d, (prefix, plen, n))) = int {
            self.w.write_bits(0b10, 2);
            // Scale: `0` for integers, `1` + 2 bits for 10^1..10^3.
            match e {
                0 => self.w.write_bit(false),
                e => self.w.write_bits(0b100 | (e as u64 - 1), 3),
            }
            self.w.write_bits(prefix, plen);
            self.w.write_bits(d as u64, n);
            return;
        }
        self.w.write_bits(0b11, 2);
        let lead = (x.leading_zeros() as u8).min(31);
        let trail = x.trailing_zeros() as u8;
        if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
            // Fits the previous window: skip the window header.
            self.w.write_bit(false);
            self.w.write_bits(x >> self.trailing, 64 - self.leading - self.trailing);
        } else {
            let sig = 64 - lead - trail;
            self.w.write_bit(true);
            self.w.write_bits(lead as u64, 5);
            self.w.write_bits(sig as u64 & 63, 6); // 64 is written as 0
            self.w.write_bits(x >> trail, sig);
            self.leading = lead;
            self.trailing = trail;
        }
    }

    /// Freezes the stream into an immutable, exactly sized chunk.
    pub fn seal(self) -> Chunk {
        Chunk { min_t: self.min_t, max_t: self.max_t, count: self.count, data: self.w.buf.into_boxed_slice() }
    }
}

/// A sealed chunk: immutable bytes plus the bounds `select` checks before
/// deciding to decode it.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub min_t: i64,
    pub max_t: i64,
    pub count: u16,
    pub data: Box<[u8]>,
}

/// Decodes the samples of a stream of `count` samples that fall in
/// `[start, end]` into `out`, stopping after `end`.
pub fn decode_range(data: &[u8], count: u16, start: i64, end: i64, out: &mut Vec<Sample>) -> Result<(), CodecError> {
    let mut r = BitReader { data, pos: 0 };
    let err = |decoded| CodecError { decoded, count };
    let (mut t, mut delta, mut v_bits) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0u8, 0u8);
    for i in 0..count {
        if i == 0 {
            t = r.read_bits(64).ok_or(err(i))? as i64;
            v_bits = r.read_bits(64).ok_or(err(i))?;
        } else {
            let dod = read_dod(&mut r).ok_or(err(i))?;
            delta = delta.wrapping_add(dod);
            t = t.wrapping_add(delta);
            let changed = r.read_bit().ok_or(err(i))?;
            if changed && !r.read_bit().ok_or(err(i))? {
                let e = match r.read_bit().ok_or(err(i))? {
                    false => 0,
                    true => (r.read_bits(2).ok_or(err(i))? as usize + 1).min(SCALES.len() - 1),
                };
                let d = read_int(&mut r).ok_or(err(i))?;
                let prev = scaled(f64::from_bits(v_bits), e).ok_or(err(i))?;
                v_bits = (prev.wrapping_add(d) as f64 / SCALES[e]).to_bits();
            } else if changed {
                if r.read_bit().ok_or(err(i))? {
                    leading = r.read_bits(5).ok_or(err(i))? as u8;
                    let sig = match r.read_bits(6).ok_or(err(i))? as u8 {
                        0 => 64,
                        s => s,
                    };
                    // A corrupt header could claim more than 64 bits.
                    trailing = 64u8.checked_sub(leading + sig).ok_or(err(i))?;
                }
                let sig = 64 - leading - trailing;
                v_bits ^= r.read_bits(sig).ok_or(err(i))? << trailing;
            }
        }
        if t > end {
            break;
        }
        if t >= start {
            out.push(Sample { t, v: f64::from_bits(v_bits) });
        }
    }
    Ok(())
}

fn read_int(r: &mut BitReader<'_>) -> Option<i64> {
    let bits = if !r.read_bit()? {
        INT_BUCKETS[0].2
    } else if !r.read_bit()? {
        INT_BUCKETS[1].2
    } else if !r.read_bit()? {
        INT_BUCKETS[2].2
    } else {
        INT_BUCKETS[3].2
    };
    Some(sign_extend(r.read_bits(bits)?, bits))
}

fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    let mut prefix_len = 0u8;
    while prefix_len < 4 && r.read_bit()? {
        prefix_len += 1;
    }
    Some(match prefix_len {
        0 => 0,
        4 => r.read_bits(64)? as i64,
        n => {
            let bits = DOD_BUCKETS[n as usize - 1].2;
            sign_extend(r.read_bits(bits)?, bits)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{is_stale, stale_nan};

    fn encode(samples: &[Sample]) -> HeadChunk {
        let mut h = HeadChunk::default();
        for s in samples {
            h.push(s.t, s.v);
        }
        h
    }

    fn all(h: &HeadChunk) -> Vec<Sample> {
        let mut out = Vec::new();
        decode_range(h.bytes(), h.count(), i64::MIN, i64::MAX, &mut out).unwrap();
        out
    }

    fn same_bits(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.t == y.t && x.v.to_bits() == y.v.to_bits())
    }

    #[test]
    fn round_trips_special_values_bit_exactly() {
        let vals = [
            1.0,
            stale_nan(),
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::from_bits(1),
            stale_nan(),
            42.5,
        ];
        let samples: Vec<Sample> = vals
            .iter()
            .chain(&[
                3.0,
                -0.0,
                5.0,
                45.0,
                -4e9,
                4e9,
                9e15,
                9e15 + 2.0,
                1e300,
                7.0,
                7.5,
                8.0,
                0.137,
                0.1,
                0.3,
                2.001,
                -0.0,
                0.0,
            ])
            .enumerate()
            .map(|(i, &v)| Sample { t: 1000 * i as i64, v })
            .collect();
        let got = all(&encode(&samples));
        assert!(same_bits(&samples, &got), "{got:?}");
        assert!(is_stale(got[1].v) && !is_stale(got[2].v));
    }

    #[test]
    fn round_trips_irregular_timestamps_in_every_bucket() {
        // Deltas that exercise dod = 0, 14, 17, 20 and 64-bit buckets, and
        // negative delta-of-deltas.
        let mut t = -5_000i64;
        let mut samples = Vec::new();
        for (i, d) in
            [15_000, 15_000, 15_001, 16_000, 14_990, 1, 70_000, 1, 600_000, 1, 1 << 40, 3, 15_000].iter().enumerate()
        {
            t += d;
            samples.push(Sample { t, v: (i as f64).sqrt() * 1e6 });
        }
        let got = all(&encode(&samples));
        assert!(same_bits(&samples, &got), "{got:?}");
    }

    #[test]
    fn range_decoding_stops_and_filters() {
        let samples: Vec<Sample> = (0..120).map(|i| Sample { t: i * 15_000, v: i as f64 }).collect();
        let h = encode(&samples);
        let mut out = Vec::new();
        decode_range(h.bytes(), h.count(), 30_000, 60_000, &mut out).unwrap();
        assert_eq!(out, samples[2..=4].to_vec());
    }

    #[test]
    fn jittered_counter_compresses_below_two_and_a_half_bytes_per_sample() {
        // A counter that grows by small integers, scraped every 15 s with jitter.
        let mut v = 1e6;
        let samples: Vec<Sample> = (0..120)
            .map(|i| {
                v += (i % 7) as f64;
                Sample { t: 1_700_000_000_000 + i * 15_000 + (i % 3), v }
            })
            .collect();
        let h = encode(&samples);
        eprintln!("counter: {} bytes for 120 samples", h.bytes().len());
        assert!(h.bytes().len() < 300, "{} bytes", h.bytes().len());
        assert!(same_bits(&samples, &all(&h)));
    }

    #[test]
    fn truncated_stream_is_an_error_not_a_panic() {
        let samples: Vec<Sample> = (0..50).map(|i| Sample { t: i * 1000, v: (i * i) as f64 }).collect();
        let h = encode(&samples);
        let mut out = Vec::new();
        let e = decode_range(&h.bytes()[..h.bytes().len() / 2], h.count(), i64::MIN, i64::MAX, &mut out).unwrap_err();
        assert_eq!(e.count, 50);
        assert!(e.decoded > 0 && e.decoded < 50, "{e}");
        // Garbage never panics either.
        for seed in 0..200u64 {
            let junk: Vec<u8> = (0..40).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 17) % 251) as u8).collect();
            let _ = decode_range(&junk, 120, i64::MIN, i64::MAX, &mut Vec::new());
        }
    }
}
