//! The local implementation of [`Queryable`]: series in memory, indexed by label.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};

use super::{Queryable, Sample, Series};
use crate::labels::{Labels, MatchOp, Matcher};

type SeriesId = u32;

struct Entry {
    labels: Labels,
    samples: Mutex<VecDeque<Sample>>,
}

#[derive(Default)]
struct Index {
    /// Slot per series id; `None` once a series is dropped by retention.
    series: Vec<Option<std::sync::Arc<Entry>>>,
    by_fingerprint: HashMap<u64, Vec<SeriesId>>,
    /// name -> value -> ids (sorted, since ids only grow).
    postings: HashMap<String, HashMap<String, Vec<SeriesId>>>,
    free: Vec<SeriesId>,
}

/// Counts for `/metrics` and `/api/v1/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub series: usize,
    pub samples: usize,
}

/// The in-memory series store.
pub struct Store {
    index: RwLock<Index>,
    retention_ms: i64,
}

impl Store {
    pub fn new(retention_ms: i64) -> Self {
        Store { index: RwLock::new(Index::default()), retention_ms }
    }

    pub fn retention_ms(&self) -> i64 {
        self.retention_ms
    }

    /// Appends one sample. Samples older than the series' newest one are
    /// dropped (out-of-order), a sample at the same timestamp replaces it.
    pub fn append(&self, labels: &Labels, t: i64, v: f64) {
        let fp = labels.fingerprint();
        if let Some(entry) = self.lookup(fp, labels) {
            push(&entry, t, v);
            return;
        }
        let entry = self.create(fp, labels);
        push(&entry, t, v);
    }

    fn lookup(&self, fp: u64, labels: &Labels) -> Option<std::sync::Arc<Entry>> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        idx.by_fingerprint.get(&fp)?.iter().find_map(|&id| {
            let e = idx.series[id as usize].as_ref()?;
            (e.labels == *labels).then(|| e.clone())
        })
    }

    fn create(&self, fp: u64, labels: &Labels) -> std::sync::Arc<Entry> {
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        // Another task may have created it between our read and write lock.
        if let Some(ids) = idx.by_fingerprint.get(&fp) {
            for &id in ids {
                if let Some(e) = &idx.series[id as usize] {
                    if e.labels == *labels {
                        return e.clone();
                    }
                }
            }
        }
        let entry = std::sync::Arc::new(Entry { labels: labels.clone(), samples: Mutex::new(VecDeque::new()) });
        let id = match idx.free.pop() {
            Some(id) => {
                idx.series[id as usize] = Some(entry.clone());
                id
            }
            None => {
                idx.series.push(Some(entry.clone()));
                (idx.series.len() - 1) as SeriesId
            }
        };
        idx.by_fingerprint.entry(fp).or_default().push(id);
        for (n, v) in labels.iter() {
            let list = idx.postings.entry(n.to_string()).or_default().entry(v.to_string()).or_default();
            let pos = list.partition_point(|&x| x < id);
            list.insert(pos, id);
        }
        entry
    }

    /// Drops samples older than the retention window relative to `now`, and
    /// series left with no samples.
    pub fn compact(&self, now: i64) {
        let cutoff = now - self.retention_ms;
        let mut empty = Vec::new();
        {
            let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
            for (id, e) in idx.series.iter().enumerate() {
                let Some(e) = e else { continue };
                let mut s = e.samples.lock().unwrap_or_else(|e| e.into_inner());
                while s.front().is_some_and(|x| x.t < cutoff) {
                    s.pop_front();
                }
                if s.is_empty() {
                    empty.push(id as SeriesId);
                }
                s.shrink_to_fit();
            }
        }
        if empty.is_empty() {
            return;
        }
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        for id in empty {
            let Some(e) = idx.series[id as usize].clone() else { continue };
            // It may have received a sample since we looked.
            if !e.samples.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                continue;
            }
            idx.series[id as usize] = None;
            let fp = e.labels.fingerprint();
            if let Some(ids) = idx.by_fingerprint.get_mut(&fp) {
                ids.retain(|&x| x != id);
                if ids.is_empty() {
                    idx.by_fingerprint.remove(&fp);
                }
            }
            for (n, v) in e.labels.iter() {
                if let Some(values) = idx.postings.get_mut(n) {
                    if let Some(list) = values.get_mut(v) {
                        list.retain(|&x| x != id);
                        if list.is_empty() {
                            values.remove(v);
                        }
                    }
                    if values.is_empty() {
                        idx.postings.remove(n);
                    }
                }
            }
            idx.free.push(id);
        }
    }

    pub fn stats(&self) -> StoreStats {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut st = StoreStats::default();
        for e in idx.series.iter().flatten() {
            st.series += 1;
            st.samples += e.samples.lock().unwrap_or_else(|e| e.into_inner()).len();
        }
        st
    }

    /// Ids of series matching every matcher, using postings where they help.
    fn matching(&self, idx: &Index, matchers: &[Matcher]) -> Vec<SeriesId> {
        let mut candidates: Option<Vec<SeriesId>> = None;
        for m in matchers {
            // Matchers that match "" also select series without the label:
            // the index cannot enumerate those, so they only filter.
            if m.matches_empty() {
                continue;
            }
            let Some(values) = idx.postings.get(&m.name) else { return Vec::new() };
            let mut ids: Vec<SeriesId> = match &m.op {
                MatchOp::Equal(v) => values.get(v).cloned().unwrap_or_default(),
                _ => {
                    let mut all: Vec<SeriesId> =
                        values.iter().filter(|(v, _)| m.matches_value(v)).flat_map(|(_, l)| l.iter().copied()).collect();
                    all.sort_unstable();
                    all
                }
            };
            if let Some(c) = candidates {
                ids = intersect(&c, &ids);
            }
            candidates = Some(ids);
        }
        let ids = candidates.unwrap_or_else(|| (0..idx.series.len() as SeriesId).collect());
        ids.into_iter()
            .filter(|&id| idx.series[id as usize].as_ref().is_some_and(|e| matchers.iter().all(|m| m.matches(&e.labels))))
            .collect()
    }
}

fn push(entry: &Entry, t: i64, v: f64) {
    let mut s = entry.samples.lock().unwrap_or_else(|e| e.into_inner());
    match s.back_mut() {
        Some(last) if last.t == t => last.v = v,
        Some(last) if last.t > t => {}
        _ => s.push_back(Sample { t, v }),
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

impl Queryable for Store {
    fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for id in self.matching(&idx, matchers) {
            let Some(e) = &idx.series[id as usize] else { continue };
            let s = e.samples.lock().unwrap_or_else(|e| e.into_inner());
            let from = s.partition_point(|x| x.t < start);
            let to = s.partition_point(|x| x.t <= end);
            if from < to {
                out.push(Series { labels: e.labels.clone(), samples: s.range(from..to).copied().collect() });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = if matchers.is_empty() {
            idx.postings.keys().cloned().collect()
        } else {
            let mut set = std::collections::BTreeSet::new();
            for id in self.matching(&idx, matchers) {
                if let Some(e) = &idx.series[id as usize] {
                    set.extend(e.labels.iter().map(|(n, _)| n.to_string()));
                }
            }
            set.into_iter().collect()
        };
        names.sort();
        names
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let idx = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut values: Vec<String> = if matchers.is_empty() {
            idx.postings.get(name).map(|v| v.keys().cloned().collect()).unwrap_or_default()
        } else {
            let mut set = std::collections::BTreeSet::new();
            for id in self.matching(&idx, matchers) {
                if let Some(v) = idx.series[id as usize].as_ref().and_then(|e| e.labels.get(name)) {
                    set.insert(v.to_string());
                }
            }
            set.into_iter().collect()
        };
        values.sort();
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn select_by_all_matcher_kinds() {
        let s = Store::new(3_600_000);
        s.append(&l(&[("__name__", "up"), ("job", "a")]), 1000, 1.0);
        s.append(&l(&[("__name__", "up"), ("job", "b")]), 1000, 0.0);
        s.append(&l(&[("__name__", "up")]), 1000, 5.0);
        let sel = |ms: Vec<Matcher>| s.select(&ms, 0, 2000).len();
        assert_eq!(sel(vec![Matcher::equal("__name__", "up")]), 3);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::equal("job", "a")]), 1);
        assert_eq!(
            sel(vec![Matcher::equal("__name__", "up"), Matcher { name: "job".into(), op: MatchOp::NotEqual("a".into()) }]),
            2
        );
        assert_eq!(sel(vec![Matcher::regex("job", "a|b", false).unwrap()]), 2);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::regex("job", "a", true).unwrap()]), 2);
        assert_eq!(sel(vec![Matcher::equal("__name__", "up"), Matcher::equal("job", "")]), 1);
    }

    #[test]
    fn time_range_out_of_order_and_retention() {
        let s = Store::new(10_000);
        let a = l(&[("__name__", "x")]);
        for t in [1000, 2000, 1500, 2000, 3000] {
            s.append(&a, t, t as f64);
        }
        let got = s.select(&[Matcher::equal("__name__", "x")], 1500, 2500);
        assert_eq!(got[0].samples, vec![Sample { t: 2000, v: 2000.0 }]);
        s.compact(12_500);
        assert_eq!(s.stats().samples, 1);
        s.compact(20_000);
        assert_eq!(s.stats().series, 0);
        assert!(s.select(&[Matcher::equal("__name__", "x")], 0, 99_999).is_empty());
    }
}
