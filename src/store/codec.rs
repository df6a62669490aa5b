//! The chunk codec: a series' samples as a bit stream, ~120 samples per
//! chunk, in the spirit of Gorilla but tuned for what scrapers produce.
//!
//! Timestamps: scrapes are scheduled on a grid (a fixed interval) and
//! arrive a few milliseconds late by varying amounts. Plain
//! delta-of-delta turns that jitter into a nonzero value on almost every
//! sample; here each timestamp is coded as its lateness against the grid
//! (`0` on time, 4 bits for 1–4 ms late), and the grid follows the series
//! when it drifts or skips (a larger residual moves it). The chunk's first
//! timestamp is not in the stream: [`Chunk::min_t`] holds it.
//!
//! Values: `0` when the bits repeat. When a value and its predecessor are
//! both integers or decimals with up to 3 places (counters, byte gauges,
//! ratios and latencies as exporters print them), the step between the
//! scaled integers is written in a window (scale, trailing zero bits,
//! width) that is reused until a step does not fit, so a busy counter or a
//! gauge moving in pages costs its step's entropy plus two bits. Other
//! values take Gorilla's XOR. Values are compared as raw bits, so NaN
//! payloads (the staleness marker), -0.0 and ±Inf round-trip bit-exactly.
//! Timestamps stay exact to the millisecond: the grid only predicts.
//! Decoding data read from disk never panics: a stream that ends early or
//! contradicts itself is a [`CodecError`].

use super::Sample;

/// Samples per sealed chunk: enough to amortise the chunk's first sample
/// and window headers, few enough that a select decodes little it does not
/// need.
pub const CHUNK_SAMPLES: u16 = 120;
const _: () = assert!(CHUNK_SAMPLES <= u8::MAX as u16, "a head counts its samples in a u8");

/// A chunk that cannot be decoded (only possible for data read from disk).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk bit stream ends or is inconsistent after {decoded} of {count} samples")]
pub struct CodecError {
    pub decoded: u16,
    pub count: u16,
}

/// Reads bits written by [`HeadChunk`]; `None` past the end. Reads load
/// one big-endian word per call instead of looping over bytes: decoding
/// is what a select spends its time on.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    /// The next bits, first one at the top; zeros past the end. Valid for
    /// 57 bits whatever the alignment.
    #[inline]
    fn peek(&self) -> u64 {
        let byte = self.pos / 8;
        let word = match self.data.get(byte..byte + 8) {
            Some(b) => b.try_into().map_or(0, u64::from_be_bytes),
            None => {
                let rest = self.data.get(byte..).unwrap_or_default();
                let mut w = [0u8; 8];
                w[..rest.len()].copy_from_slice(rest);
                u64::from_be_bytes(w)
            }
        };
        word << (self.pos % 8)
    }

    #[inline]
    fn advance(&mut self, n: usize) -> Option<()> {
        (self.pos + n <= self.data.len() * 8).then(|| self.pos += n)
    }

    #[inline]
    fn read_bits(&mut self, n: u8) -> Option<u64> {
        if n > 56 {
            let hi = self.read_bits(n - 32)?;
            return Some((hi << 32) | self.read_bits(32)?);
        }
        if n == 0 {
            return Some(0);
        }
        let v = self.peek() >> (64 - n as u32);
        self.advance(n as usize)?;
        Some(v)
    }

    #[inline]
    fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    /// Counts leading one bits, at most `max`, and the `0` that ends them
    /// when fewer (a prefix code's class).
    #[inline]
    fn read_ones(&mut self, max: u8) -> Option<u8> {
        let ones = (self.peek().leading_ones() as u8).min(max);
        self.advance(ones as usize + (ones < max) as usize)?;
        Some(ones)
    }
}

/// Lateness classes after the `0` (on time) code: the prefix is `1` times
/// the class number then `0` (the last class has no `0`); payload bits.
/// Class 1 is 1..=4 ms late, unsigned; the others are signed.
const LATE_BITS: [u8; 5] = [2, 4, 14, 24, 64];
/// A residual in `0..=GRID_SLACK` keeps the grid; any other moves the grid
/// to the sample, so drift, early samples and missed scrapes re-anchor it.
const GRID_SLACK: i64 = 4;

fn fits(v: i64, bits: u8) -> bool {
    bits >= 64 || {
        let half = 1i64 << (bits - 1);
        (-half..half).contains(&v)
    }
}

fn sign_extend(v: u64, bits: u8) -> i64 {
    let shift = 64 - bits as u32;
    ((v << shift) as i64) >> shift
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// Bits needed for `z` (at least 1).
fn width_of(z: u64) -> u8 {
    (64 - z.leading_zeros() as u8).max(1)
}

/// The scrape interval the grid assumes, from a chunk's first delta: the
/// delta rounded to whole seconds, tenths or hundredths when it is within
/// a tenth of that unit (15,003 ms -> 15 s), else the delta itself. Only a
/// prediction: residuals keep every timestamp exact.
fn nominal_interval(d: i64) -> i64 {
    for g in [1000, 100, 10] {
        let r = d.saturating_add(g / 2).div_euclid(g) * g;
        if r > 0 && (d - r).abs() <= g / 10 {
            return r;
        }
    }
    d
}

/// Decimal scales tried for the integer path: 3 becomes 3, 0.125 becomes 125/1000.
const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// `v * 10^e` as an integer, if dividing it back gives `v` exactly.
fn scaled(v: f64, e: usize) -> Option<i64> {
    let x = (v * SCALES[e]).round();
    (x.is_finite() && x.abs() < 9_007_199_254_740_992.0 && (x / SCALES[e]).to_bits() == v.to_bits()).then_some(x as i64)
}

/// The integer step from `prev` to `v` at decimal scale `e`, when replaying
/// it gives `v`'s exact bits (so -0.0 and non-decimal floats have none).
fn step_at(prev: u64, v: f64, e: usize) -> Option<i64> {
    let (p, c) = (scaled(f64::from_bits(prev), e)?, scaled(v, e)?);
    ((c as f64 / SCALES[e]).to_bits() == v.to_bits()).then_some(c - p)
}

/// The window integer steps are written in: `zigzag(step >> shift)` in
/// `width` bits at decimal scale `scale`. `width == 0`: none yet.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Window {
    scale: u8,
    shift: u8,
    width: u8,
}

impl Window {
    fn holds(&self, d: i64) -> bool {
        self.width > 0
            && d.trailing_zeros() >= self.shift as u32
            && (self.width >= 64 || zigzag(d >> self.shift) >> self.width == 0)
    }

    /// The narrowest window at `scale` that holds `d` and, at the same
    /// scale, everything `self` held (so windows do not flip back and forth
    /// between steps of different shapes).
    fn widen(&self, scale: u8, d: i64) -> Window {
        let mut shift = if d == 0 { 0 } else { d.trailing_zeros().min(63) as u8 };
        let mut width = width_of(zigzag(d >> shift));
        if self.width > 0 && self.scale == scale {
            shift = shift.min(self.shift);
            width = width_of(zigzag(d >> shift)).max(self.width + (self.shift - shift)).min(64);
        }
        Window { scale, shift, width }
    }
}

/// The open chunk of a series, appended to in place.
#[derive(Clone, Debug)]
pub struct HeadChunk {
    /// The bit stream, most significant bit first.
    buf: Vec<u8>,
    /// Bits used in the last byte; 0 means it is full (or there is none).
    /// Kept here with the other small fields rather than in a writer
    /// struct of its own, whose padding made every series 8 bytes larger.
    used: u8,
    /// At most [`CHUNK_SAMPLES`].
    count: u8,
    min_t: i64,
    max_t: i64,
    /// The grid: the nominal interval and the last grid point.
    interval: i64,
    anchor: i64,
    v_bits: u64,
    window: Window,
    /// The last value was a step too wide for the window, sent by XOR.
    outlier: bool,
    /// Leading/trailing zeros of the last XOR window; 0xff before the first.
    leading: u8,
    trailing: u8,
}

/// How many bits wider than the window a step must be to count as an outlier.
const OUTLIER_BITS: u8 = 8;

impl Default for HeadChunk {
    fn default() -> Self {
        HeadChunk {
            buf: Vec::new(),
            used: 0,
            count: 0,
            min_t: 0,
            max_t: 0,
            interval: 0,
            anchor: 0,
            v_bits: 0,
            window: Window::default(),
            outlier: false,
            leading: 0xff,
            trailing: 0,
        }
    }
}

/// Where the grid goes after a sample with residual `r` at grid point `e`.
fn next_anchor(e: i64, t: i64, r: i64) -> i64 {
    if (0..=GRID_SLACK).contains(&r) {
        e
    } else {
        t
    }
}

impl HeadChunk {
    /// An empty head whose buffer starts at `bytes` (the size of the chunk
    /// before it is a good guess), so it neither reallocates as it grows
    /// nor holds twice what it needs.
    pub fn with_capacity(bytes: usize) -> Self {
        HeadChunk { buf: Vec::with_capacity(bytes), ..Default::default() }
    }

    pub fn count(&self) -> u16 {
        u16::from(self.count)
    }

    /// The address of the buffer's last byte, where the next sample's bits
    /// start (an address for a prefetch hint, never dereferenced).
    pub fn tail_addr(&self) -> usize {
        self.buf.as_ptr() as usize + self.buf.len().saturating_sub(1)
    }

    pub fn min_t(&self) -> i64 {
        self.min_t
    }

    pub fn max_t(&self) -> i64 {
        self.max_t
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Appends a sample; the caller guarantees `t` is newer than `max_t`.
    pub fn push(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        match self.count {
            0 => {
                self.min_t = t;
                self.write_first_value(bits);
            }
            1 => {
                // The first delta, in 16 bits for intervals up to a minute.
                let d = t.wrapping_sub(self.min_t);
                if (0..1 << 16).contains(&d) {
                    self.write_bit(false);
                    self.write_bits(d as u64, 16);
                } else {
                    self.write_bit(true);
                    self.write_bits(d as u64, 64);
                }
                self.interval = nominal_interval(d);
                let e = self.min_t.wrapping_add(self.interval);
                self.anchor = next_anchor(e, t, t.wrapping_sub(e));
                self.write_value(bits);
            }
            _ => {
                let e = self.anchor.wrapping_add(self.interval);
                let r = t.wrapping_sub(e);
                self.write_residual(r);
                self.anchor = next_anchor(e, t, r);
                self.write_value(bits);
            }
        }
        self.max_t = t;
        self.v_bits = bits;
        self.count += 1;
    }

    fn write_bit(&mut self, bit: bool) {
        self.write_bits(bit as u64, 1);
    }

    /// Writes the low `n` bits of `v` (0 <= n <= 64): the bits are
    /// top-aligned in a word, the first ones OR-ed into the partial last
    /// byte and the rest appended as whole big-endian bytes in one copy. (A
    /// loop over bits, then over bytes, was a sixth of a scrape's CPU.)
    #[inline]
    fn write_bits(&mut self, v: u64, n: u8) {
        if n == 0 {
            return;
        }
        let (n, used) = (u32::from(n.min(64)), u32::from(self.used));
        let top = if n == 64 { v } else { v << (64 - n) };
        let rest = if used == 0 {
            Some((top, n))
        } else {
            let free = 8 - used;
            if let Some(last) = self.buf.last_mut() {
                *last |= (top >> (56 + used)) as u8;
            }
            (n > free).then(|| (top << free, n - free))
        };
        if let Some((word, bits)) = rest {
            self.buf.extend_from_slice(&word.to_be_bytes()[..bits.div_ceil(8) as usize]);
        }
        self.used = ((used + n) % 8) as u8;
    }

    fn write_residual(&mut self, r: i64) {
        if r == 0 {
            self.write_bit(false);
            return;
        }
        if (1..=GRID_SLACK).contains(&r) {
            self.write_bits(0b10, 2);
            self.write_bits((r - 1) as u64, LATE_BITS[0]);
            return;
        }
        for (class, &bits) in LATE_BITS.iter().enumerate().skip(1) {
            if fits(r, bits) {
                let ones = class as u8 + 1;
                // `1` x ones, then `0` unless this is the last class.
                if class + 1 < LATE_BITS.len() {
                    self.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
                } else {
                    self.write_bits((1u64 << ones) - 1, ones);
                }
                self.write_bits(r as u64, bits);
                return;
            }
        }
    }

    /// `1` + width + zigzag integer for small integers, `0` + raw bits else.
    fn write_first_value(&mut self, bits: u64) {
        let v = f64::from_bits(bits);
        match scaled(v, 0).filter(|&i| (i as f64).to_bits() == bits) {
            Some(i) => {
                let z = zigzag(i);
                let n = width_of(z);
                self.write_bit(true);
                self.write_bits(n as u64 & 63, 6);
                self.write_bits(z, n);
            }
            None => {
                self.write_bit(false);
                self.write_bits(bits, 64);
            }
        }
    }

    /// `0`: same bits; `10`: integer step in the current window; `110`:
    /// new window (scale, shift, width) then the step; `111`: Gorilla XOR.
    fn write_value(&mut self, bits: u64) {
        if bits == self.v_bits {
            self.write_bit(false);
            return;
        }
        let v = f64::from_bits(bits);
        let cur = self.window;
        if cur.width > 0 {
            if let Some(d) = step_at(self.v_bits, v, cur.scale as usize) {
                if cur.holds(d) {
                    self.write_bits(0b10, 2);
                    self.write_bits(zigzag(d >> cur.shift), cur.width);
                    return;
                }
            }
        }
        let step = (0..SCALES.len()).find_map(|e| step_at(self.v_bits, v, e).map(|d| (e as u8, d)));
        let was_outlier = std::mem::replace(&mut self.outlier, false);
        if let Some((scale, d)) = step {
            let w = cur.widen(scale, d);
            // A lone step far wider than the window (a counter reset, a
            // spike) goes by XOR, so it does not widen the window for the
            // rest of the chunk; a second one in a row means the series
            // changed pace, and the window follows.
            if cur.width > 0 && w.width > cur.width + OUTLIER_BITS && !was_outlier {
                self.outlier = true;
                self.write_xor(bits);
                return;
            }
            self.write_bits(0b110, 3);
            self.write_bits(w.scale as u64, 2);
            self.write_bits(w.shift as u64, 6);
            self.write_bits(w.width as u64 & 63, 6); // 64 is written as 0
            self.write_bits(zigzag(d >> w.shift), w.width);
            self.window = w;
            return;
        }
        self.write_xor(bits);
    }

    fn write_xor(&mut self, bits: u64) {
        let x = bits ^ self.v_bits;
        self.write_bits(0b111, 3);
        let lead = (x.leading_zeros() as u8).min(31);
        let trail = x.trailing_zeros() as u8;
        if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
            // Fits the previous window: skip the window header.
            self.write_bit(false);
            self.write_bits(x >> self.trailing, 64 - self.leading - self.trailing);
        } else {
            let sig = 64 - lead - trail;
            self.write_bit(true);
            self.write_bits(lead as u64, 5);
            self.write_bits(sig as u64 & 63, 6); // 64 is written as 0
            self.write_bits(x >> trail, sig);
            self.leading = lead;
            self.trailing = trail;
        }
    }

    /// Freezes the stream into an immutable, exactly sized chunk.
    pub fn seal(self) -> Chunk {
        Chunk { min_t: self.min_t, max_t: self.max_t, count: self.count.into(), data: self.buf.into_boxed_slice() }
    }
}

/// A sealed chunk: immutable bytes plus the bounds `select` checks before
/// deciding to decode it (and the first timestamp the stream leaves out).
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub min_t: i64,
    pub max_t: i64,
    pub count: u16,
    pub data: Box<[u8]>,
}

/// Decodes the samples of a stream of `count` samples starting at `min_t`
/// that fall in `[start, end]` into `out`, stopping after `end`.
pub fn decode_range(
    data: &[u8],
    count: u16,
    min_t: i64,
    start: i64,
    end: i64,
    out: &mut Vec<Sample>,
) -> Result<(), CodecError> {
    let mut r = BitReader { data, pos: 0 };
    let mut dec = Decoder { t: min_t, ..Default::default() };
    for i in 0..count {
        dec.next(&mut r, i).ok_or(CodecError { decoded: i, count })?;
        if dec.t > end {
            break;
        }
        if dec.t >= start {
            out.push(Sample { t: dec.t, v: f64::from_bits(dec.v_bits) });
        }
    }
    Ok(())
}

/// The decoder's mirror of [`HeadChunk`]'s state.
#[derive(Default)]
struct Decoder {
    t: i64,
    interval: i64,
    anchor: i64,
    v_bits: u64,
    window: Window,
    leading: u8,
    trailing: u8,
}

impl Decoder {
    /// Reads sample `i` (`None`: the stream is short or inconsistent).
    #[inline]
    fn next(&mut self, r: &mut BitReader<'_>, i: u16) -> Option<()> {
        match i {
            0 => {
                self.v_bits = if r.read_bit()? {
                    let n = match r.read_bits(6)? as u8 {
                        0 => 64,
                        n => n,
                    };
                    (unzigzag(r.read_bits(n)?) as f64).to_bits()
                } else {
                    r.read_bits(64)?
                };
                return Some(());
            }
            1 => {
                let d = if r.read_bit()? { r.read_bits(64)? as i64 } else { r.read_bits(16)? as i64 };
                let min_t = self.t;
                self.t = min_t.wrapping_add(d);
                self.interval = nominal_interval(d);
                let e = min_t.wrapping_add(self.interval);
                self.anchor = next_anchor(e, self.t, self.t.wrapping_sub(e));
            }
            _ => {
                let e = self.anchor.wrapping_add(self.interval);
                let res = match r.read_ones(LATE_BITS.len() as u8)? {
                    0 => 0,
                    1 => r.read_bits(LATE_BITS[0])? as i64 + 1,
                    c => {
                        let bits = LATE_BITS[c as usize - 1];
                        sign_extend(r.read_bits(bits)?, bits)
                    }
                };
                self.t = e.wrapping_add(res);
                self.anchor = next_anchor(e, self.t, res);
            }
        }
        self.read_value(r)
    }

    #[inline]
    fn read_value(&mut self, r: &mut BitReader<'_>) -> Option<()> {
        match r.read_ones(3)? {
            0 => {}
            1 => self.apply_step(r)?,
            2 => {
                let scale = r.read_bits(2)? as u8;
                let shift = r.read_bits(6)? as u8;
                let width = match r.read_bits(6)? as u8 {
                    0 => 64,
                    w => w,
                };
                self.window = Window { scale, shift, width };
                self.apply_step(r)?;
            }
            _ => {
                if r.read_bit()? {
                    self.leading = r.read_bits(5)? as u8;
                    let sig = match r.read_bits(6)? as u8 {
                        0 => 64,
                        s => s,
                    };
                    // A corrupt header could claim more than 64 bits.
                    self.trailing = 64u8.checked_sub(self.leading + sig)?;
                }
                let sig = 64 - self.leading - self.trailing;
                self.v_bits ^= r.read_bits(sig)?.checked_shl(self.trailing as u32).unwrap_or(0);
            }
        }
        Some(())
    }

    fn apply_step(&mut self, r: &mut BitReader<'_>) -> Option<()> {
        let w = self.window;
        if w.width == 0 {
            return None;
        }
        let d = unzigzag(r.read_bits(w.width)?).wrapping_shl(w.shift as u32);
        let e = w.scale as usize;
        let prev = scaled(f64::from_bits(self.v_bits), e)?;
        self.v_bits = (prev.wrapping_add(d) as f64 / SCALES[e]).to_bits();
        Some(())
    }
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
        decode_range(h.bytes(), h.count(), h.min_t(), i64::MIN, i64::MAX, &mut out).unwrap();
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
        decode_range(h.bytes(), h.count(), h.min_t(), 30_000, 60_000, &mut out).unwrap();
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
        let e =
            decode_range(&h.bytes()[..h.bytes().len() / 2], h.count(), 0, i64::MIN, i64::MAX, &mut out).unwrap_err();
        assert_eq!(e.count, 50);
        assert!(e.decoded > 0 && e.decoded < 50, "{e}");
        // Garbage never panics either.
        for seed in 0..200u64 {
            let junk: Vec<u8> = (0..40).map(|i| (seed.wrapping_mul(31).wrapping_add(i * 17) % 251) as u8).collect();
            let _ = decode_range(&junk, 120, 0, i64::MIN, i64::MAX, &mut Vec::new());
        }
    }

    fn bytes_per_sample(samples: &[Sample]) -> f64 {
        let h = encode(samples);
        assert!(same_bits(samples, &all(&h)), "round trip");
        h.bytes().len() as f64 / samples.len() as f64
    }

    /// 120 samples 15 s apart on a grid at `phase`, each 0..5 ms late.
    fn jittered(seed: u64, mut values: impl FnMut(i64, &mut fastrand::Rng) -> f64) -> Vec<Sample> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..120).map(|i| Sample { t: 1_700_000_000_123 + i * 15_000 + rng.i64(0..5), v: values(i, &mut rng) }).collect()
    }

    #[test]
    fn scrape_jitter_costs_a_few_bits_not_a_byte() {
        let constant = jittered(1, |_, _| 1.0);
        let b = bytes_per_sample(&constant);
        // 1 bit of value, ~3.4 bits of lateness, the first sample's header.
        assert!(b < 0.65, "{b}");
        // Perfectly regular: one bit of time per sample.
        let regular: Vec<Sample> = (0..120).map(|i| Sample { t: 5_000 + i * 15_000, v: 1.0 }).collect();
        assert!(bytes_per_sample(&regular) < 0.3);
    }

    #[test]
    fn grid_follows_drift_gaps_and_early_samples() {
        // Drift of +7 ms per scrape, a 10-minute gap, a sample 3 s early,
        // a sample 40 ms late, then back on time; irregular 1 ms steps.
        let mut t = 0i64;
        let mut samples = Vec::new();
        for (i, d) in
            [1000, 1007, 1007, 1007, 600_000, 1000, 997, 1040, 960, 1000, 1, 1, 2, 1 << 40, 1000, 1000, 1000, 999]
                .iter()
                .enumerate()
        {
            t += d;
            samples.push(Sample { t, v: i as f64 });
        }
        assert!(same_bits(&samples, &all(&encode(&samples))));
        // Negative and huge first deltas are impossible (out of order), but a
        // first delta over 16 bits is not.
        let wide = [Sample { t: -5, v: 1.0 }, Sample { t: 100_000, v: 2.0 }, Sample { t: 200_003, v: 3.0 }];
        assert!(same_bits(&wide, &all(&encode(&wide))));
    }

    #[test]
    fn counters_and_decimal_gauges_use_integer_windows() {
        // A busy counter (steps of 0..1000), with a reset to 0 and a restart.
        let mut c = 1e6;
        let busy = jittered(2, |i, rng| {
            c = if i == 60 { 0.0 } else { c + rng.u32(0..1000) as f64 };
            c
        });
        let b = bytes_per_sample(&busy);
        assert!(b < 2.3, "busy counter {b}");
        // A gauge in 4 KiB pages: steps are multiples of 4096.
        let mut g = 1e9;
        let pages = jittered(3, |_, rng| {
            g += (rng.i64(-3..4) * 4096) as f64;
            g
        });
        let b = bytes_per_sample(&pages);
        assert!(b < 1.3, "page gauge {b}");
        // Three-decimal ratios, and decimals whose scale changes.
        let ratio = jittered(4, |_, rng| (rng.f64() * 500.0).round() / 1000.0);
        let b = bytes_per_sample(&ratio);
        assert!(b < 2.3, "ratio {b}");
        let mixed = jittered(5, |i, _| [0.5, 0.25, 0.125, 3.0, 0.1, 0.3, -2.75, 1e-9, 7.0][i as usize % 9]);
        bytes_per_sample(&mixed);
    }

    #[test]
    fn stale_markers_nan_and_huge_steps_between_integers() {
        let vals = [
            5.0,
            stale_nan(),
            6.0,
            6.0,
            f64::NAN,
            7.0,
            9e15,
            -9e15,
            0.0,
            -0.0,
            0.0,
            4.5e15,
            1.0,
            2.0,
            f64::INFINITY,
            3.0,
        ];
        let samples: Vec<Sample> = vals.iter().enumerate().map(|(i, &v)| Sample { t: i as i64 * 15_000, v }).collect();
        let got = all(&encode(&samples));
        assert!(same_bits(&samples, &got), "{got:?}");
        assert!(is_stale(got[1].v) && !is_stale(got[4].v));
        // First values that are not small integers keep their raw bits.
        for first in [-0.0, 0.5, f64::NAN, stale_nan(), -7.0, 9_007_199_254_740_993.0, f64::NEG_INFINITY] {
            let s = [Sample { t: 1, v: first }, Sample { t: 2, v: first }];
            assert!(same_bits(&s, &all(&encode(&s))), "{first}");
        }
    }
}
