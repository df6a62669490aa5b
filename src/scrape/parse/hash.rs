//! Small, fast, non-cryptographic hashing for series identity.
//!
//! Counting distinct series and spotting interleaved metrics needs one hash
//! per sample; SipHash over owned strings would cost an allocation and far
//! more time than the rest of the parse. A collision only miscounts
//! `ParseSummary::series` (or, with odds around 2^-64 per pair, flags a false
//! interleaving in strict OpenMetrics), which is acceptable for these uses.
//! A scraper's cache key ([`super::SeriesKey`]) takes two such hashes of a
//! line's series text, so a collision there is ~2^-128 per pair.

use std::borrow::Cow;
use std::hash::{BuildHasherDefault, Hasher};

// Multipliers of the folded-multiply scheme (odd, bit-dense constants).
const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// Folded 64x64->128 multiply: one instruction pair that mixes every input
/// bit into the result, so no separate finalizer is needed.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn r8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn r4(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Hash of `b` under `seed`. Label names and values are mostly under 16
/// bytes: those are read as (possibly overlapping) fixed-size words, with no
/// byte loop and no variable-length copy, and cost two multiplies.
#[inline]
pub(super) fn hash_bytes(seed: u64, b: &[u8]) -> u64 {
    let len = b.len();
    let mut seed = seed ^ P0;
    let (x, y) = if len <= 16 {
        if len >= 4 {
            // Two overlapping 4-byte reads from each end cover 4..=16 bytes.
            let q = (len >> 3) << 2;
            ((r4(b, 0) << 32) | r4(b, q), (r4(b, len - 4) << 32) | r4(b, len - 4 - q))
        } else if len > 0 {
            ((u64::from(b[0]) << 16) | (u64::from(b[len >> 1]) << 8) | u64::from(b[len - 1]), 0)
        } else {
            (0, 0)
        }
    } else {
        let mut i = 0;
        while len - i > 16 {
            seed = mum(r8(b, i) ^ P1, r8(b, i + 8) ^ seed);
            i += 16;
        }
        (r8(b, len - 16), r8(b, len - 8))
    };
    // The length separates inputs whose overlapping reads coincide.
    mum(P1 ^ len as u64, mum(x ^ P1, y ^ seed))
}

#[inline]
pub(super) fn hash_str(s: &str) -> u64 {
    hash_bytes(0x5EED, s.as_bytes())
}

/// Hash of one label (name and value).
#[inline]
pub(super) fn pair_hash(k: &str, v: &str) -> u64 {
    hash_bytes(hash_bytes(1, k.as_bytes()) ^ P2, v.as_bytes())
}

/// Order-independent hash of a label set (label order on the wire is not
/// significant): the wrapping sum of the pairs' hashes, so a label's share
/// can also be subtracted again (see `without`).
#[inline]
pub(super) fn label_set_hash(labels: &[(&str, Cow<'_, str>)]) -> u64 {
    labels.iter().fold(0u64, |acc, (k, v)| acc.wrapping_add(pair_hash(k, v)))
}

/// `label_set_hash` of `labels` minus the label named `skip`.
pub(super) fn without(set_hash: u64, labels: &[(&str, Cow<'_, str>)], skip: &str) -> u64 {
    labels.iter().filter(|(k, _)| *k == skip).fold(set_hash, |acc, (k, v)| acc.wrapping_sub(pair_hash(k, v)))
}

/// Identity of a series: metric name plus the label set's hash.
pub(super) fn series_hash(name: &str, set_hash: u64) -> u64 {
    mum(hash_str(name) ^ P2, set_hash ^ P0)
}

/// Hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
pub struct IdHasher(u64);

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

pub type IdBuild = BuildHasherDefault<IdHasher>;
