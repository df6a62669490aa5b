//! A series' label set as the store keeps it: one allocation of
//! length-prefixed names and values instead of a `Vec` of `String` pairs.
//!
//! A [`Labels`] costs a vector plus two heap strings per pair (~600 bytes
//! for five labels once allocator rounding is counted); packed, the same
//! set is one boxed slice of ~70 bytes. The store holds one per series for
//! as long as the series lives, so this is most of its per-series memory
//! after the samples themselves. Queries get a [`Labels`] back on demand.

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

    /// The pairs in order. Only `new` writes the bytes, so they always
    /// parse; the checks below just keep this free of panics.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut rest: &[u8] = &self.0;
        let mut next = move || -> Option<&str> {
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
            let s = std::str::from_utf8(rest.get(i..i + n)?).ok()?;
            rest = rest.get(i + n..)?;
            Some(s)
        };
        std::iter::from_fn(move || Some((next()?, next()?)))
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
        self.iter().eq(labels.iter())
    }

    /// Equal to [`Labels::fingerprint`] of the same set.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for (n, v) in self.iter() {
            for b in n.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
        }
        h
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
        assert_eq!((p.get("job"), p.value("missing"), p.get("z").map(str::len)), (Some("node"), "", Some(300)));
        assert!(p.0.len() < 360);
        let empty = PackedLabels::new(&Labels::new());
        assert_eq!((empty.iter().count(), empty.fingerprint()), (0, Labels::new().fingerprint()));
    }
}
