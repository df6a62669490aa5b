//! Small, fast, non-cryptographic hashing for series identity.
//!
//! Counting distinct series and spotting interleaved metrics needs one hash
//! per sample; SipHash over owned strings would cost an allocation and far
//! more time than the rest of the parse. A collision only miscounts
//! `ParseSummary::series` (or, with odds around 2^-64 per pair, flags a false
//! interleaving in strict OpenMetrics), which is acceptable for these uses.

use std::borrow::Cow;
use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Mixes `b` into `h` without finalizing (callers finalize once).
#[inline]
fn absorb(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(31);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        w[..rem.len()].copy_from_slice(rem);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(31);
    }
    // The length separates "ab"+"c" from "a"+"bc".
    (h ^ b.len() as u64).wrapping_mul(K)
}

#[inline]
pub(super) fn hash_bytes(seed: u64, b: &[u8]) -> u64 {
    fmix(absorb(seed, b))
}

#[inline]
pub(super) fn hash_str(s: &str) -> u64 {
    hash_bytes(0x5EED, s.as_bytes())
}

/// Hash of one label (name and value).
#[inline]
pub(super) fn pair_hash(k: &str, v: &str) -> u64 {
    fmix(absorb(absorb(1, k.as_bytes()), v.as_bytes()))
}

/// Order-independent hash of a label set (label order on the wire is not
/// significant): the wrapping sum of the pairs' hashes, so a label's share
/// can also be subtracted again (see `without`).
pub(super) fn label_set_hash(labels: &[(&str, Cow<'_, str>)]) -> u64 {
    labels.iter().fold(0u64, |acc, (k, v)| acc.wrapping_add(pair_hash(k, v)))
}

/// `label_set_hash` of `labels` minus the label named `skip`.
pub(super) fn without(set_hash: u64, labels: &[(&str, Cow<'_, str>)], skip: &str) -> u64 {
    labels.iter().filter(|(k, _)| *k == skip).fold(set_hash, |acc, (k, v)| acc.wrapping_sub(pair_hash(k, v)))
}

/// Identity of a series: metric name plus the label set's hash.
pub(super) fn series_hash(name: &str, set_hash: u64) -> u64 {
    fmix(hash_str(name) ^ set_hash)
}

/// Hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are used; fold anything else in just in case.
        self.0 = hash_bytes(self.0, bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) type IdBuild = BuildHasherDefault<IdHasher>;
