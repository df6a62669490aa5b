//! One of the store's shards: its series slots, the table that finds a
//! series by label set, and the inverted index (label name -> value ->
//! slots) that finds series by matcher.
//!
//! Both tables hold slot numbers only; the strings they are keyed by are
//! read from the series' own [`PackedLabels`] when a probe needs them. A
//! label such as `id` or `pod` has a value per series, so a table that kept
//! its own copy of each value (a heap string plus its slot) cost ~100 bytes
//! per series, a third of what the store's own series entries cost; kept
//! this way an index entry is 16 bytes. The price is a short label decode
//! when a probe lands on a candidate, which only series creation and
//! queries pay: the scrape hot path finds its series through the scrape
//! cache, not here.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::memory::Entry;
use super::packed::PackedLabels;
use crate::labels::{Labels, MatchOp, Matcher};

/// Slot of a series within its shard.
pub(crate) type SlotId = u32;

/// The series a label value selects in a shard, sorted. Most values of
/// labels like `id` or `instance` name one series: those keep the slot
/// inline, the rest a boxed list (so an entry stays 16 bytes).
#[derive(Clone, Debug)]
enum Postings {
    One(SlotId),
    // Boxed on purpose: a bare `Vec` would make every entry 32 bytes.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<SlotId>>),
}

impl Postings {
    fn as_slice(&self) -> &[SlotId] {
        match self {
            Postings::One(x) => std::slice::from_ref(x),
            Postings::Many(v) => v,
        }
    }

    /// The series the value is read from (a list is never left empty: an
    /// empty one leaves the table).
    fn first(&self) -> SlotId {
        self.as_slice().first().copied().unwrap_or(SlotId::MAX)
    }

    fn insert(&mut self, id: SlotId) {
        match self {
            Postings::One(x) => *self = Postings::Many(Box::new(if *x < id { vec![*x, id] } else { vec![id, *x] })),
            Postings::Many(v) => {
                let pos = v.partition_point(|&x| x < id);
                v.insert(pos, id);
            }
        }
    }

    /// Removes `id`; true when the list is left empty.
    fn remove(&mut self, id: SlotId) -> bool {
        match self {
            Postings::One(x) => *x == id,
            Postings::Many(v) => {
                v.retain(|&x| x != id);
                if let [only] = v.as_slice() {
                    *self = Postings::One(*only);
                    return false;
                }
                v.is_empty()
            }
        }
    }
}

/// A label's values in one shard. An entry's value is read from the
/// labels of its first series.
#[derive(Default)]
struct Values(HashTable<Postings>);

type Slots = [Option<Arc<Entry>>];

/// The value of `name` in the series at `id` (live by the shard's rules:
/// every slot in a table is a live series).
fn value_at<'a>(series: &'a Slots, id: SlotId, name: &str) -> &'a str {
    series.get(id as usize).and_then(Option::as_ref).map_or("", |e| e.labels.value(name))
}

fn labels_at(series: &Slots, id: SlotId) -> Option<&PackedLabels> {
    series.get(id as usize).and_then(Option::as_ref).map(|e| &e.labels)
}

/// Mixes a label set's fingerprint for the table: the shard was chosen by
/// its low bits, so within a shard those are all alike.
fn mix(fp: u64) -> u64 {
    let x = fp.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

#[derive(Default)]
pub(crate) struct Shard {
    /// `None` once a series is dropped by retention (the slot is reused).
    pub series: Vec<Option<Arc<Entry>>>,
    /// The slots by (mixed) label fingerprint; series with the same
    /// fingerprint simply sit side by side, told apart by their labels.
    by_labels: HashTable<SlotId>,
    /// Label name -> its values here.
    postings: HashMap<Box<str>, Values>,
    /// Hashes label values for `postings`.
    hasher: std::hash::RandomState,
    free: Vec<SlotId>,
}

impl Shard {
    pub fn find(&self, fp: u64, labels: &Labels) -> Option<&Arc<Entry>> {
        let id = self.by_labels.find(mix(fp), |&id| labels_at(&self.series, id).is_some_and(|l| l.same_as(labels)))?;
        self.series[*id as usize].as_ref()
    }

    pub fn insert(&mut self, fp: u64, entry: Arc<Entry>) {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.series.push(None);
                (self.series.len() - 1) as SlotId
            }
        };
        // In its slot first: the tables read their keys from the series.
        self.series[id as usize] = Some(entry.clone());
        let series = &self.series;
        self.by_labels.insert_unique(mix(fp), id, |&id| labels_at(series, id).map_or(0, |l| mix(l.fingerprint())));
        for (n, v) in entry.labels.iter() {
            let values = match self.postings.get_mut(n) {
                Some(values) => values,
                None => self.postings.entry(n.into()).or_default(),
            };
            let hasher = &self.hasher;
            let entry = values.0.entry(
                hasher.hash_one(v),
                |p| value_at(series, p.first(), n) == v,
                |p| hasher.hash_one(value_at(series, p.first(), n)),
            );
            match entry {
                hashbrown::hash_table::Entry::Occupied(mut o) => o.get_mut().insert(id),
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(Postings::One(id));
                }
            }
        }
    }

    pub fn remove(&mut self, id: SlotId) {
        let Some(e) = self.series.get(id as usize).and_then(Option::clone) else { return };
        // Out of the tables while the slot still holds the series: the
        // probes below read keys from it.
        let series = &self.series;
        if let Ok(found) = self.by_labels.find_entry(mix(e.labels.fingerprint()), |&x| x == id) {
            found.remove();
        }
        for (n, v) in e.labels.iter() {
            let Some(values) = self.postings.get_mut(n) else { continue };
            let probe = values.0.find_entry(self.hasher.hash_one(v), |p| value_at(series, p.first(), n) == v);
            if let Ok(mut found) = probe {
                if found.get_mut().remove(id) {
                    found.remove();
                }
            }
            if values.0.is_empty() {
                self.postings.remove(n);
            }
        }
        self.series[id as usize] = None;
        self.free.push(id);
    }

    /// The label names of this shard's series.
    pub fn label_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.postings.keys().map(|k| &**k)
    }

    /// The values `name` takes in this shard.
    pub fn label_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let values = self.postings.get(name).into_iter().flat_map(|v| v.0.iter());
        values.map(move |p| value_at(&self.series, p.first(), name))
    }

    /// Entries matching every matcher, using postings where they help.
    pub fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<Entry>> {
        let mut candidates: Option<Vec<SlotId>> = None;
        for m in matchers {
            // Matchers that match "" also select series without the label:
            // the index cannot enumerate those, so they only filter.
            if m.matches_empty() {
                continue;
            }
            let name = m.name.as_str();
            let Some(values) = self.postings.get(name) else { return Vec::new() };
            let mut ids: Vec<SlotId> = match &m.op {
                MatchOp::Equal(v) => values
                    .0
                    .find(self.hasher.hash_one(v.as_str()), |p| value_at(&self.series, p.first(), name) == v)
                    .map(|p| p.as_slice().to_vec())
                    .unwrap_or_default(),
                _ => {
                    let mut all: Vec<SlotId> = values
                        .0
                        .iter()
                        .filter(|p| m.matches_value(value_at(&self.series, p.first(), name)))
                        .flat_map(|p| p.as_slice().iter().copied())
                        .collect();
                    all.sort_unstable();
                    all
                }
            };
            if let Some(c) = candidates {
                ids = intersect(&c, &ids);
            }
            candidates = Some(ids);
        }
        let ids = candidates.unwrap_or_else(|| (0..self.series.len() as SlotId).collect());
        ids.into_iter()
            .filter_map(|id| self.series[id as usize].as_ref())
            .filter(|e| matchers.iter().all(|m| m.matches_value(e.labels.value(&m.name))))
            .cloned()
            .collect()
    }
}

/// The slots in both sorted lists.
fn intersect(a: &[SlotId], b: &[SlotId]) -> Vec<SlotId> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn posting_lists_stay_sorted_from_one_to_many_and_back() {
        let mut p = Postings::One(5);
        for id in [9, 1, 7] {
            p.insert(id);
        }
        assert_eq!(p.as_slice(), &[1, 5, 7, 9]);
        assert!(!p.remove(5) && !p.remove(9) && !p.remove(1) && !p.remove(42));
        assert!(matches!(p, Postings::One(7)));
        assert!(!p.remove(3) && p.remove(7));
    }

    fn entry(pairs: &[(&str, &str)], r: u64) -> (u64, Arc<Entry>) {
        let labels = Labels::from_pairs(pairs.iter().copied());
        let e = Entry { labels: PackedLabels::new(&labels), r, name_bit: 0, data: Mutex::default() };
        (labels.fingerprint(), Arc::new(e))
    }

    fn refs(v: Vec<Arc<Entry>>) -> Vec<u64> {
        let mut r: Vec<u64> = v.iter().map(|e| e.r).collect();
        r.sort_unstable();
        r
    }

    /// The keys live in the series, so removing the series a value's list
    /// reads its key from, and reusing its slot, must leave every lookup
    /// right.
    #[test]
    fn lookups_hold_as_series_come_and_go() {
        let mut s = Shard::default();
        for i in 0..200u64 {
            let (fp, e) = entry(&[("__name__", "m"), ("id", &i.to_string()), ("k", &(i % 3).to_string())], i);
            s.insert(fp, e);
        }
        let eq = |n: &str, v: &str| Matcher::equal(n, v);
        assert_eq!(refs(s.matching(&[eq("k", "0")])).len(), 67);
        // Drop every series with k="0" and id < 100: the first of each list goes.
        for i in (0..100).step_by(3) {
            s.remove(i as SlotId);
        }
        assert_eq!(refs(s.matching(&[eq("k", "0")])).len(), 67 - 34);
        assert!(s.matching(&[eq("id", "0")]).is_empty());
        assert_eq!(refs(s.matching(&[eq("id", "99")])), Vec::<u64>::new());
        assert_eq!(refs(s.matching(&[eq("id", "102")])), vec![102]);
        let series0 = Labels::from_pairs([("__name__", "m"), ("id", "0"), ("k", "0")]);
        assert!(s.find(series0.fingerprint(), &series0).is_none());
        let series1 = Labels::from_pairs([("__name__", "m"), ("id", "1"), ("k", "1")]);
        assert_eq!(s.find(series1.fingerprint(), &series1).map(|e| e.r), Some(1));
        // Reused slots index their new labels.
        let (fp, e) = entry(&[("__name__", "m"), ("id", "new"), ("k", "0")], 2000);
        s.insert(fp, e);
        assert_eq!(refs(s.matching(&[eq("id", "new")])), vec![2000]);
        assert_eq!(refs(s.matching(&[eq("k", "0")])).len(), 67 - 34 + 1);
        let re = Matcher::regex("id", "1[0-9]", false).unwrap();
        assert_eq!(refs(s.matching(&[re])), (10..20).filter(|i| i % 3 != 0).collect::<Vec<u64>>());
        let mut values: Vec<&str> = s.label_values("k").collect();
        values.sort_unstable();
        assert_eq!(values, ["0", "1", "2"]);
        assert!(s.label_values("absent").next().is_none());
        // Removing everything empties the index.
        for id in 0..s.series.len() as SlotId {
            s.remove(id);
        }
        assert_eq!((s.postings.len(), s.by_labels.len()), (0, 0));
    }
}
