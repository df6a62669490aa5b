//! One series' samples: sealed chunks, the open head chunk, and the newest
//! sample kept uncompressed.
//!
//! The newest sample stays out of the bit stream because Prometheus
//! semantics let a sample at the same timestamp replace it, which a
//! compressed stream cannot do in place; it is encoded once a newer sample
//! arrives. Older samples are rejected (out of order), so chunks are sorted
//! and disjoint and `read` can skip every chunk outside the range unread.

use super::codec::{decode_range, Chunk, HeadChunk, CHUNK_SAMPLES};
use super::downsample::Downsample;
use super::Sample;

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Appended,
    Replaced,
    OutOfOrder,
}

/// The newest sample, or none: an `Option<Sample>` without the tag, which
/// took 8 bytes of every series (a timestamp of `i64::MIN` means none).
#[derive(Clone, Copy, Debug)]
pub struct Newest(Sample);

impl Newest {
    pub const NONE: Newest = Newest(Sample { t: i64::MIN, v: 0.0 });

    pub fn get(self) -> Option<Sample> {
        (self.0.t != i64::MIN).then_some(self.0)
    }

    /// Holds `s` (none if `s.t` is `i64::MIN`).
    pub fn set(&mut self, s: Sample) {
        self.0 = s;
    }
}

impl Default for Newest {
    fn default() -> Self {
        Newest::NONE
    }
}

#[derive(Debug, Default)]
pub struct SeriesData {
    pub chunks: Vec<Chunk>,
    pub head: HeadChunk,
    pub pending: Newest,
    /// Samples before this are past retention (their chunk is still shared
    /// with newer samples); reads start here.
    pub floor: i64,
    /// Set when the store keeps downsampled aggregates.
    pub down: Option<Box<Downsample>>,
}

impl SeriesData {
    pub fn new(downsample: bool) -> Self {
        SeriesData { floor: i64::MIN, down: downsample.then(Box::default), ..Default::default() }
    }

    /// Whether the series ended (its newest sample is a staleness marker)
    /// before `cutoff`.
    pub fn ended_before(&self, cutoff: i64) -> bool {
        self.pending.get().is_some_and(|p| super::is_stale(p.v) && p.t < cutoff)
    }

    pub fn last_t(&self) -> Option<i64> {
        match (self.pending.get(), self.head.count(), self.chunks.last()) {
            (Some(p), _, _) => Some(p.t),
            (None, n, _) if n > 0 => Some(self.head.max_t()),
            (None, _, Some(c)) => Some(c.max_t),
            _ => None,
        }
    }

    pub fn push(&mut self, t: i64, v: f64) -> Pushed {
        let newest = self.pending.get();
        if newest.is_some_and(|p| p.t == t) {
            self.pending.set(Sample { t, v });
            return Pushed::Replaced;
        }
        // (`i64::MIN` is no time a sample can have: it marks "none".)
        if t == i64::MIN || self.last_t().is_some_and(|last| t <= last) {
            return Pushed::OutOfOrder;
        }
        self.pending.set(Sample { t, v });
        if let Some(p) = newest {
            self.commit(p);
        }
        Pushed::Appended
    }

    /// Encodes a sample into the head, sealing it when full.
    pub fn commit(&mut self, s: Sample) {
        if let Some(d) = &mut self.down {
            d.add(s);
        }
        self.head.push(s.t, s.v);
        if self.head.count() >= CHUNK_SAMPLES {
            let sealed = std::mem::take(&mut self.head).seal();
            // The next chunk will likely be about this size (plus a little).
            self.head = HeadChunk::with_capacity(sealed.data.len() + sealed.data.len() / 8);
            self.chunks.push(sealed);
        }
    }

    /// Whether the series may hold a sample in `[start, end]`, judged from
    /// chunk bounds alone (nothing decoded): what listing series by time
    /// needs, as Prometheus answers `/api/v1/series` from block bounds.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let first = self
            .chunks
            .first()
            .map(|c| c.min_t)
            .or((self.head.count() > 0).then(|| self.head.min_t()))
            .or(self.pending.get().map(|p| p.t));
        match (first, self.last_t()) {
            (Some(first), Some(last)) => first.max(self.floor) <= end && last >= start,
            _ => false,
        }
    }

    pub fn samples(&self) -> usize {
        self.chunks.iter().map(|c| c.count as usize).sum::<usize>()
            + self.head.count() as usize
            + self.pending.get().is_some() as usize
    }

    /// Appends samples in `[start, end]` to `out`, decoding only the chunks
    /// that overlap. A chunk that fails to decode (corrupt on disk) yields
    /// what could be decoded and a warning.
    pub fn read(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        let start = start.max(self.floor);
        if start > end {
            return;
        }
        let first = self.chunks.partition_point(|c| c.max_t < start);
        // Room for about the samples in range (samples are spread evenly in
        // time, near enough), so `out` grows once and a short window over a
        // long chunk does not reserve the whole chunk: a query holds this
        // for each series it selects.
        let h = &self.head;
        let estimate: usize = self.chunks[first..]
            .iter()
            .take_while(|c| c.min_t <= end)
            .map(|c| share(c.count, c.min_t, c.max_t, start, end))
            .sum::<usize>()
            + if h.count() > 0 { share(h.count(), h.min_t(), h.max_t(), start, end) } else { 0 };
        out.reserve(estimate + 1);
        for c in &self.chunks[first..] {
            if c.min_t > end {
                return;
            }
            if let Err(e) = decode_range(&c.data, c.count, c.min_t, start, end, out) {
                metrics::counter!("forewarn_store_decode_errors_total").increment(1);
                tracing::warn!(error = %e, min_t = c.min_t, "store: corrupt chunk skipped");
            }
        }
        if h.count() > 0 && h.max_t() >= start && h.min_t() <= end {
            if let Err(e) = decode_range(h.bytes(), h.count(), h.min_t(), start, end, out) {
                tracing::warn!(error = %e, "store: corrupt head chunk");
            }
        }
        if let Some(p) = self.pending.get().filter(|p| p.t >= start && p.t <= end) {
            out.push(p);
        }
    }

    /// The newest sample in `[start, end]`. The newest sample of all is
    /// kept uncompressed, so when `end` is now (an instant query, a rule)
    /// nothing is decoded.
    pub fn newest_in(&self, start: i64, end: i64) -> Option<Sample> {
        match self.pending.get() {
            Some(p) if p.t <= end => (p.t >= start.max(self.floor)).then_some(p),
            _ => {
                let mut out = Vec::new();
                self.read(start, end, &mut out);
                out.pop()
            }
        }
    }

    /// Drops whole chunks older than `cutoff` and hides the rest of the old
    /// samples behind `floor`; downsampled buckets older than `down_cutoff`
    /// go too. Returns whether nothing is left.
    pub fn compact(&mut self, cutoff: i64, down_cutoff: i64) -> bool {
        self.floor = self.floor.max(cutoff);
        let old = self.chunks.partition_point(|c| c.max_t < cutoff);
        if old > 0 {
            self.chunks.drain(..old);
            self.chunks.shrink_to_fit();
        }
        if self.last_t().is_some_and(|t| t < cutoff) {
            self.chunks = Vec::new();
            self.head = HeadChunk::default();
            self.pending = Newest::NONE;
        }
        let down_empty = match &mut self.down {
            Some(d) => {
                d.compact(down_cutoff);
                d.buckets.is_empty()
            }
            None => true,
        };
        self.last_t().is_none() && down_empty
    }
}

/// About how many of `count` samples spread over `[min_t, max_t]` fall in
/// `[start, end]` (one more, for rounding).
fn share(count: u16, min_t: i64, max_t: i64, start: i64, end: i64) -> usize {
    let (lo, hi) = (start.max(min_t), end.min(max_t));
    if hi < lo {
        return 0;
    }
    let span = i128::from(max_t) - i128::from(min_t) + 1;
    let part = i128::from(hi) - i128::from(lo) + 1;
    (i128::from(count) * part / span) as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(s: &SeriesData, start: i64, end: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        s.read(start, end, &mut out);
        out
    }

    #[test]
    fn newest_in_a_window_reads_the_newest_sample_or_decodes_only_for_the_past() {
        let mut s = SeriesData::new(false);
        assert_eq!(s.newest_in(i64::MIN + 1, i64::MAX), None);
        for i in 0..500i64 {
            s.push(i * 10, i as f64);
        }
        let at = |t: i64| Some(Sample { t, v: (t / 10) as f64 });
        assert_eq!(s.newest_in(4_000, 4_990), at(4_990)); // the uncompressed newest
        assert_eq!(s.newest_in(4_995, 9_000), None);
        assert_eq!(s.newest_in(1_000, 1_234), at(1_230)); // in a sealed chunk
        assert_eq!(s.newest_in(4_801, 4_985), at(4_980)); // in the head
        assert_eq!(s.newest_in(1_231, 1_239), None);
        s.compact(2_000, 0);
        assert_eq!(s.newest_in(0, 1_999), None); // behind the retention floor
    }

    #[test]
    fn a_short_window_reserves_about_its_own_samples() {
        let mut s = SeriesData::new(false);
        for i in 0..1000i64 {
            s.push(i * 10, i as f64);
        }
        let mut out = Vec::new();
        s.read(5_000, 5_099, &mut out); // 10 samples inside one 120-sample chunk
        assert_eq!(out.len(), 10);
        assert!(out.capacity() < 20, "reserved {}", out.capacity());
        let all = read_all(&s, 0, i64::MAX);
        assert_eq!(all.len(), 1000);
    }

    #[test]
    fn select_across_chunk_boundaries() {
        let mut s = SeriesData::new(false);
        for i in 0..1000i64 {
            assert_eq!(s.push(i * 10, i as f64), Pushed::Appended);
        }
        assert_eq!(s.chunks.len(), 999 / CHUNK_SAMPLES as usize);
        assert_eq!(s.samples(), 1000);
        // Ranges that start and end inside, at and across chunk edges.
        let edge = s.chunks[1].max_t;
        for (a, b) in [(0, 9990), (edge - 30, edge + 30), (edge, edge), (edge + 10, edge + 10), (9985, 20_000), (5, 5)]
        {
            let want: Vec<Sample> = (0..1000i64)
                .filter(|i| i * 10 >= a && i * 10 <= b)
                .map(|i| Sample { t: i * 10, v: i as f64 })
                .collect();
            assert_eq!(read_all(&s, a, b), want, "range {a}..={b}");
        }
    }

    #[test]
    fn out_of_order_is_rejected_and_same_timestamp_replaces() {
        let mut s = SeriesData::new(false);
        assert_eq!(s.push(1000, 1.0), Pushed::Appended);
        assert_eq!(s.push(2000, 2.0), Pushed::Appended);
        assert_eq!(s.push(1500, 9.0), Pushed::OutOfOrder);
        assert_eq!(s.push(1000, 9.0), Pushed::OutOfOrder);
        assert_eq!(s.push(2000, 3.0), Pushed::Replaced);
        assert_eq!(s.push(3000, 4.0), Pushed::Appended);
        assert_eq!(s.push(2000, 5.0), Pushed::OutOfOrder);
        let got: Vec<(i64, f64)> = read_all(&s, 0, 9999).iter().map(|x| (x.t, x.v)).collect();
        assert_eq!(got, vec![(1000, 1.0), (2000, 3.0), (3000, 4.0)]);
    }

    #[test]
    fn compact_drops_old_chunks_and_hides_old_samples() {
        let mut s = SeriesData::new(true);
        for i in 0..500i64 {
            s.push(i * 1000, 1.0);
        }
        assert!(!s.compact(250_500, 0));
        assert_eq!(read_all(&s, 0, i64::MAX).first().map(|x| x.t), Some(251_000));
        assert!(s.chunks.first().is_some_and(|c| c.max_t >= 250_500));
        assert!(s.samples() < 500 - 120);
        // Raw samples all gone, aggregates remain until their own cutoff.
        assert!(!s.compact(1_000_000, 0));
        assert_eq!(s.samples(), 0);
        assert!(s.compact(1_000_000, 1_000_000));
    }
}
