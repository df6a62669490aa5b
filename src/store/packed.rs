//! A series' label set as the store keeps it: one allocation of
//! length-prefixed names and values instead of a `Vec` of `String` pairs.
//!
//! A [`Labels`] costs a vector plus two heap strings per pair (~600 bytes
//! for five labels once allocator rounding is counted); packed, the same
//! set is one boxed slice of ~70 bytes. The store holds one per series for
//! as long as the series lives, so this is most of its per-series memory
//! after the samples themselves. Queries get a [`Labels`] back on demand.

use std::hash::{BuildHasher, Hasher};

use crate::labels::Labels;

/// Name/value pairs in `Labels` order, each string as a LEB128 length
/// then its UTF-8 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLabels(Box<[u8]>);

fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

impl PackedLabels {
    pub fn new(labels: &Labels) -> Self {
        let mut buf = Vec::with_capacity(labels.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (n, v) in labels.iter() {
            for s in [n, v] {
                put_len(&mut buf, s.len());
                buf.extend_from_slice(s.as_bytes());
            }
        }
        PackedLabels(buf.into_boxed_slice())
    }

    /// The pairs in order, as the bytes `new` wrote (UTF-8 by
    /// construction; not checked here, so probes that only compare or hash
    /// skip the validation). The length checks keep this free of panics.
    pub fn raw_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut rest: &[u8] = &self.0;
        let mut next = move || -> Option<&[u8]> {
            let (mut n, mut shift, mut i) = (0usize, 0u32, 0usize);
            loop {
                let b = *rest.get(i)?;
                n |= ((b & 0x7f) as usize) << shift;
                i += 1;
                if b < 0x80 {
                    break;
                }
                shift += 7;
            }
            let s = rest.get(i..i + n)?;
            rest = rest.get(i + n..)?;
            Some(s)
        };
        std::iter::from_fn(move || Some((next()?, next()?)))
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.raw_pairs().map_while(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
    }

    /// The bytes of `name`'s value, unvalidated (see [`Self::raw_pairs`]).
    pub fn value_bytes(&self, name: &str) -> Option<&[u8]> {
        self.raw_pairs().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The value of `name`, or "" when absent (as [`Labels::value`]).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.iter())
    }

    pub fn same_as(&self, labels: &Labels) -> bool {
        self.raw_pairs().eq(labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// Equal to [`Labels::fingerprint`] of the same set.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for (n, v) in self.raw_pairs() {
            for &b in n.iter().chain(&[0xff]).chain(v).chain(&[0xfe]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        }
        h
    }
}

/// Hashes label sets for the store's own tables (shard choice, the
/// label-set table). [`Labels::fingerprint`] is the set's public identity
/// (alert fingerprints, cluster shares) and stays as it is, but it hashes a
/// byte at a time: a fifth of a series' creation went to it. This one
/// hashes words, and its per-process random seed keeps a target from
/// choosing label sets that collide. Nothing keeps its values beyond the
/// process.
#[derive(Clone, Default)]
pub(crate) struct SetHasher(foldhash::fast::RandomState);

impl SetHasher {
    pub fn labels(&self, labels: &Labels) -> u64 {
        let mut h = self.0.build_hasher();
        // 0xff and 0xfe never occur in UTF-8: the separators are unambiguous.
        for (n, v) in labels.iter() {
            h.write(n.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xfe);
        }
        h.finish()
    }

    /// One label value's hash, as the shards' value tables key them.
    pub fn value(&self, v: &[u8]) -> u64 {
        let mut h = self.0.build_hasher();
        h.write(v);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_the_same_set() {
        let long = "x".repeat(300);
        let l = Labels::from_pairs([
            ("__name__", "up"),
            ("job", "node"),
            ("a", "ünïcödé"),
            ("z", long.as_str()),
            ("nul", "a\0b"),
        ]);
        let p = PackedLabels::new(&l);
        assert_eq!(p.to_labels(), l);
        assert!(p.same_as(&l));
        assert!(!p.same_as(&Labels::from_pairs([("__name__", "up")])));
        assert_eq!(p.fingerprint(), l.fingerprint());
        let h = SetHasher::default();
        assert_eq!(h.labels(&p.to_labels()), h.labels(&l));
        assert_ne!(h.labels(&Labels::from_pairs([("ab", "c")])), h.labels(&Labels::from_pairs([("a", "bc")])));
        assert_eq!((p.value_bytes("a"), p.value_bytes("missing")), (Some("ünïcödé".as_bytes()), None));
        assert_eq!((p.get("job"), p.value("missing"), p.get("z").map(str::len)), (Some("node"), "", Some(300)));
        assert!(p.0.len() < 360);
        let empty = PackedLabels::new(&Labels::new());
        assert_eq!((empty.iter().count(), empty.fingerprint()), (0, Labels::new().fingerprint()));
    }
}
