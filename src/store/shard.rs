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
use std::sync::Arc;

use hashbrown::HashTable;

use super::memory::Entry;
use super::packed::{PackedLabels, SetHasher};
use crate::labels::{Labels, MatchOp, Matcher};

/// Slot of a series within its shard.
pub(crate) type SlotId = u32;

/// The series a label value selects in a shard, sorted, with the value's
/// hash (so the table grows without reading every value back from its
/// series). Most values of labels like `id` or `instance` name one series:
/// those keep the slot inline, the rest a boxed list (so an entry stays 16
/// bytes).
#[derive(Clone, Debug)]
enum Postings {
    One {
        id: SlotId,
        hash: u32,
    },
    // Boxed on purpose: a bare `Vec` would make every entry 32 bytes.
    #[allow(clippy::box_collection)]
    Many {
        hash: u32,
        ids: Box<Vec<SlotId>>,
    },
}

const _: () = assert!(std::mem::size_of::<Postings>() == 16);

/// The table hash of a 32-bit hash kept beside what it keys (a value's in
/// [`Postings`], a label set's in [`Entry::hash`]): the low bits pick the
/// bucket and the top seven are the tag. `h` itself fills only the low 32
/// bits; the multiply spreads all of it into the tag bits (the bucket bits
/// stay the low bits of `h`, which is random enough).
fn table_hash(h: u32) -> u64 {
    (h as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Postings {
    fn as_slice(&self) -> &[SlotId] {
        match self {
            Postings::One { id, .. } => std::slice::from_ref(id),
            Postings::Many { ids, .. } => ids,
        }
    }

    fn hash(&self) -> u32 {
        match self {
            Postings::One { hash, .. } | Postings::Many { hash, .. } => *hash,
        }
    }

    /// The series the value is read from (a list is never left empty: an
    /// empty one leaves the table).
    fn first(&self) -> SlotId {
        self.as_slice().first().copied().unwrap_or(SlotId::MAX)
    }

    fn insert(&mut self, new: SlotId) {
        match self {
            Postings::One { id, hash } => {
                let ids = if *id < new { vec![*id, new] } else { vec![new, *id] };
                *self = Postings::Many { hash: *hash, ids: Box::new(ids) }
            }
            Postings::Many { ids, .. } => {
                let pos = ids.partition_point(|&x| x < new);
                ids.insert(pos, new);
            }
        }
    }

    /// Removes `gone`; true when the list is left empty.
    fn remove(&mut self, gone: SlotId) -> bool {
        match self {
            Postings::One { id, .. } => *id == gone,
            Postings::Many { hash, ids } => {
                ids.retain(|&x| x != gone);
                if let [only] = ids.as_slice() {
                    *self = Postings::One { id: *only, hash: *hash };
                    return false;
                }
                ids.is_empty()
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

/// [`value_at`] as bytes, without UTF-8 validation: what probes compare.
fn value_bytes_at<'a>(series: &'a Slots, id: SlotId, name: &str) -> &'a [u8] {
    series.get(id as usize).and_then(Option::as_ref).and_then(|e| e.labels.value_bytes(name)).unwrap_or_default()
}

fn labels_at(series: &Slots, id: SlotId) -> Option<&PackedLabels> {
    series.get(id as usize).and_then(Option::as_ref).map(|e| &e.labels)
}

#[derive(Default)]
pub(crate) struct Shard {
    /// `None` once a series is dropped by retention (the slot is reused).
    pub series: Vec<Option<Arc<Entry>>>,
    /// The slots by label-set hash ([`Entry::hash`]); series with the same
    /// hash simply sit side by side, told apart by their labels.
    by_labels: HashTable<SlotId>,
    /// Label name -> its values here.
    postings: HashMap<Box<str>, Values>,
    /// Hashes label values for `postings`.
    hasher: SetHasher,
    free: Vec<SlotId>,
}

impl Shard {
    /// The series with `labels`, the low half of whose [`SetHasher::labels`]
    /// is `hash`.
    pub fn find(&self, hash: u32, labels: &Labels) -> Option<&Arc<Entry>> {
        let same = |&id: &SlotId| labels_at(&self.series, id).is_some_and(|l| l.same_as(labels));
        let id = self.by_labels.find(table_hash(hash), same)?;
        self.series[*id as usize].as_ref()
    }

    fn value_hash(&self, v: &[u8]) -> u32 {
        self.hasher.value(v) as u32
    }

    pub fn insert(&mut self, entry: Arc<Entry>) {
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
        let hash_at = |&id: &SlotId| series.get(id as usize).and_then(Option::as_ref).map_or(0, |e| table_hash(e.hash));
        self.by_labels.insert_unique(table_hash(entry.hash), id, hash_at);
        for (n, v) in entry.labels.iter() {
            let hash = self.value_hash(v.as_bytes());
            let values = match self.postings.get_mut(n) {
                Some(values) => values,
                None => self.postings.entry(n.into()).or_default(),
            };
            let entry = values.0.entry(
                table_hash(hash),
                |p| p.hash() == hash && value_bytes_at(series, p.first(), n) == v.as_bytes(),
                |p| table_hash(p.hash()),
            );
            match entry {
                hashbrown::hash_table::Entry::Occupied(mut o) => o.get_mut().insert(id),
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(Postings::One { id, hash });
                }
            }
        }
    }

    pub fn remove(&mut self, id: SlotId) {
        let Some(e) = self.series.get(id as usize).and_then(Option::clone) else { return };
        // Out of the tables while the slot still holds the series: the
        // probes below read keys from it.
        let series = &self.series;
        if let Ok(found) = self.by_labels.find_entry(table_hash(e.hash), |&x| x == id) {
            found.remove();
        }
        for (n, v) in e.labels.iter() {
            let hash = self.value_hash(v.as_bytes());
            let Some(values) = self.postings.get_mut(n) else { continue };
            let probe = values.0.find_entry(table_hash(hash), |p| {
                p.hash() == hash && value_bytes_at(series, p.first(), n) == v.as_bytes()
            });
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
                MatchOp::Equal(v) => {
                    let hash = self.value_hash(v.as_bytes());
                    values
                        .0
                        .find(table_hash(hash), |p| {
                            p.hash() == hash && value_bytes_at(&self.series, p.first(), name) == v.as_bytes()
                        })
                        .map(|p| p.as_slice().to_vec())
                        .unwrap_or_default()
                }
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
        let mut p = Postings::One { id: 5, hash: 77 };
        for id in [9, 1, 7] {
            p.insert(id);
        }
        assert_eq!((p.as_slice(), p.hash()), (&[1, 5, 7, 9][..], 77));
        assert!(!p.remove(5) && !p.remove(9) && !p.remove(1) && !p.remove(42));
        assert!(matches!(p, Postings::One { id: 7, hash: 77 }));
        assert!(!p.remove(3) && p.remove(7));
    }

    fn entry(pairs: &[(&str, &str)], r: u64) -> Arc<Entry> {
        let labels = Labels::from_pairs(pairs.iter().copied());
        Arc::new(Entry::new(&labels, HASHER.labels(&labels) as u32, r, 0, Mutex::default()))
    }

    static HASHER: std::sync::LazyLock<SetHasher> = std::sync::LazyLock::new(SetHasher::default);

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
            s.insert(entry(&[("__name__", "m"), ("id", &i.to_string()), ("k", &(i % 3).to_string())], i));
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
        assert!(s.find(HASHER.labels(&series0) as u32, &series0).is_none());
        let series1 = Labels::from_pairs([("__name__", "m"), ("id", "1"), ("k", "1")]);
        assert_eq!(s.find(HASHER.labels(&series1) as u32, &series1).map(|e| e.r), Some(1));
        // Reused slots index their new labels.
        s.insert(entry(&[("__name__", "m"), ("id", "new"), ("k", "0")], 2000));
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
