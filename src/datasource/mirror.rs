//! What the rules read from the datasource, kept between evaluations so
//! each evaluation asks only for what is new.
//!
//! One [`Mirror`] per selector holds the raw samples of its series over the
//! longest window any rule read it with (a threshold's 5-minute lookback
//! and an anomaly's 7-day baseline on the same series share one). The
//! first read fetches the window; later reads fetch from a little before
//! the newest sample held ([`REFETCH_MS`]) to the evaluation time and
//! replace that tail, so samples that reached the store late (remote write
//! batches, VictoriaMetrics' 30 s latency offset) are picked up at the next
//! evaluation rather than missed for good.

use std::collections::BTreeMap;

use crate::labels::Labels;
use crate::store::{Sample, Series};

/// How far before the newest time already fetched a later fetch starts.
pub const REFETCH_MS: i64 = 60_000;

/// Longest span asked for in one request: a 7-day baseline is fetched in
/// pieces, each well under the servers' per-query sample limits.
pub const MAX_SPAN_MS: i64 = 6 * 3_600_000;

/// The samples of one selector over `[from, until]`.
#[derive(Debug, Default)]
pub struct Mirror {
    series: BTreeMap<Labels, Vec<Sample>>,
    /// The covered span; `None` before the first fetch.
    span: Option<(i64, i64)>,
    /// The longest window read through this mirror: older samples go.
    window: i64,
}

/// What to fetch to answer a read of `[start, end]`.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Everything is here.
    Cached,
    /// Fetch `[from, end]` and replace everything from `from` on.
    Fetch { from: i64, end: i64 },
}

impl Mirror {
    /// What a read of `[start, end]` needs fetched first.
    pub fn plan(&mut self, start: i64, end: i64) -> Plan {
        self.window = self.window.max(end - start);
        match self.span {
            Some((from, until)) if start >= from && end <= until => Plan::Cached,
            Some((from, until)) if start >= from && end > until => {
                Plan::Fetch { from: (until - REFETCH_MS).max(from), end }
            }
            _ => Plan::Fetch { from: start.min(end - self.window), end },
        }
    }

    /// Puts in what a [`Plan::Fetch`] brought: samples at or after `from`
    /// are replaced, older ones kept when the new span joins the old one.
    pub fn merge(&mut self, from: i64, end: i64, fetched: Vec<Series>) {
        let joins = matches!(self.span, Some((f, u)) if from >= f && from <= u && end >= u);
        if joins {
            for samples in self.series.values_mut() {
                samples.retain(|x| x.t < from);
            }
        } else {
            self.series.clear();
        }
        for s in fetched {
            let held = self.series.entry(s.labels).or_default();
            held.extend(s.samples.into_iter().filter(|x| x.t >= from && x.t <= end));
        }
        self.span = Some(match (joins, self.span) {
            (true, Some((f, _))) => (f, end),
            _ => (from, end),
        });
        self.trim(end);
    }

    /// Drops samples older than the longest window before `end`.
    fn trim(&mut self, end: i64) {
        let keep_from = end.saturating_sub(self.window);
        if let Some((f, u)) = self.span {
            if f < keep_from {
                self.span = Some((keep_from, u));
                for samples in self.series.values_mut() {
                    let cut = samples.partition_point(|x| x.t < keep_from);
                    samples.drain(..cut);
                }
            }
        }
        self.series.retain(|_, s| !s.is_empty());
    }

    /// The held series with samples in `[start, end]`.
    pub fn read(&self, start: i64, end: i64) -> Vec<Series> {
        self.series
            .iter()
            .filter_map(|(labels, samples)| {
                let lo = samples.partition_point(|x| x.t < start);
                let hi = samples.partition_point(|x| x.t <= end);
                (lo < hi).then(|| Series { labels: labels.clone(), samples: samples[lo..hi].to_vec() })
            })
            .collect()
    }

    /// Samples held (for the memory gauge).
    pub fn samples(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }
}

/// `[from, end]` as requests of at most [`MAX_SPAN_MS`], oldest first.
pub fn pieces(from: i64, end: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut lo = from;
    while end - lo > MAX_SPAN_MS {
        out.push((lo, lo + MAX_SPAN_MS - 1));
        lo += MAX_SPAN_MS;
    }
    out.push((lo, end));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, ts: &[i64]) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            samples: ts.iter().map(|&t| Sample { t, v: t as f64 }).collect(),
        }
    }

    #[test]
    fn a_later_read_fetches_only_the_tail_and_picks_up_late_samples() {
        let mut m = Mirror::default();
        let min = 60_000;
        assert_eq!(m.plan(0, 10 * min), Plan::Fetch { from: 0, end: 10 * min });
        // The store had samples up to 9 min; one at 9.5 min arrives late.
        m.merge(0, 10 * min, vec![series("x", &(0..=9).map(|i| i * min).collect::<Vec<_>>())]);
        assert_eq!(m.plan(5 * min, 10 * min), Plan::Cached);
        assert_eq!(m.plan(min, 11 * min), Plan::Fetch { from: 9 * min, end: 11 * min });
        m.merge(9 * min, 11 * min, vec![series("x", &[9 * min, 9 * min + 30_000, 10 * min, 11 * min])]);
        let got: Vec<i64> = m.read(0, 11 * min)[0].samples.iter().map(|x| x.t).collect();
        assert_eq!(got.len(), 12, "nothing doubled, the late sample kept: {got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert!(got.contains(&(9 * min + 30_000)));
        // The window is 10 min: the oldest minute is gone.
        assert_eq!(got[0], min);
    }

    #[test]
    fn a_longer_window_refetches_and_series_that_ended_age_out() {
        let mut m = Mirror::default();
        m.plan(50, 100);
        m.merge(50, 100, vec![series("x", &[60, 90]), series("gone", &[55])]);
        assert_eq!(m.plan(0, 100), Plan::Fetch { from: 0, end: 100 });
        m.merge(0, 100, vec![series("x", &[10, 60, 90])]);
        assert_eq!(m.read(0, 100).len(), 1);
        assert_eq!(m.read(0, 100)[0].samples.len(), 3);
        // An older read than what is held refetches rather than answering wrong.
        let Plan::Fetch { from, end } = m.plan(200, 300) else { panic!("must fetch") };
        m.merge(from, end, vec![series("x", &[250])]);
        assert!(m.read(0, 150).is_empty());
        assert_eq!(m.read(0, 300)[0].samples.len(), 1);
    }

    #[test]
    fn long_spans_are_cut_into_pieces() {
        let p = pieces(0, 2 * MAX_SPAN_MS + 5);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (0, MAX_SPAN_MS - 1));
        assert_eq!(p[2], (2 * MAX_SPAN_MS, 2 * MAX_SPAN_MS + 5));
        assert_eq!(pieces(5, 10), vec![(5, 10)]);
    }
}
