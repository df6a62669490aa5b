//! Durability tests: WAL replay, snapshots, and damaged files on disk.

use std::path::{Path, PathBuf};

use super::*;
use crate::labels::Labels;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forewarn-store-{tag}-{}-{:x}", std::process::id(), fastrand::u64(..)));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn l(name: &str, i: usize) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())])
}

/// Timestamps near now, so the retention compaction on open keeps them.
fn base() -> i64 {
    chrono::Utc::now().timestamp_millis() - 3_600_000
}

const DAY: i64 = 86_400_000;

fn all(s: &Store, name: &str) -> Vec<Series> {
    s.select(&[Matcher::equal("__name__", name)], i64::MIN, i64::MAX)
}

fn bits(series: &[Series]) -> Vec<(String, Vec<(i64, u64)>)> {
    series.iter().map(|s| (s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect())).collect()
}

fn files(d: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// 20 series x 300 samples with stale markers and infinities mixed in.
fn fill(s: &Store, t0: i64) {
    for k in 0..300i64 {
        let batch: Vec<(Labels, i64, f64)> = (0..20)
            .map(|i| {
                let v = match (k + i as i64) % 50 {
                    0 => stale_nan(),
                    7 => f64::INFINITY,
                    9 => f64::NEG_INFINITY,
                    _ => (k * i as i64) as f64 / 7.0,
                };
                (l("m", i), t0 + k * 1000, v)
            })
            .collect();
        s.append_batch(&batch);
    }
}

#[test]
fn wal_replay_restores_everything_bit_exactly() {
    let d = dir("wal");
    let t0 = base();
    let want = {
        let (s, r) = Store::open(&d, DAY).unwrap();
        assert!(r.problems.is_empty() && r.series == 0);
        fill(&s, t0);
        s.append(&l("m", 3), t0 + 299_000, 42.0); // same timestamp: replaces
        s.flush_wal().unwrap();
        bits(&all(&s, "m"))
        // dropped without a snapshot: like kill -9 after a flush
    };
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!((r.series, r.samples, r.snapshot.is_none()), (20, 6000, true));
    assert_eq!(bits(&all(&s, "m")), want);
    let m3 = s.select(&[Matcher::equal("i", "3")], i64::MIN, i64::MAX);
    assert_eq!(m3[0].samples.last().map(|x| x.v), Some(42.0));
    // New series after a restart get fresh refs: a second restart still
    // tells them apart from the recovered ones.
    s.append(&l("n", 0), t0 + 400_000, 1.0);
    s.append(&l("m", 0), t0 + 400_000, 2.0);
    s.flush_wal().unwrap();
    drop(s);
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(all(&s, "n")[0].samples, vec![Sample { t: t0 + 400_000, v: 1.0 }]);
    assert_eq!(s.select(&[Matcher::equal("i", "0")], i64::MIN, i64::MAX)[0].samples.len(), 301);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn snapshot_then_wal_and_old_segments_are_deleted() {
    let d = dir("snap");
    let t0 = base();
    let (s, _) = Store::open(&d, DAY).unwrap();
    fill(&s, t0);
    s.flush_wal().unwrap();
    assert!(s.wal_bytes_since_checkpoint() > 0);
    s.checkpoint().unwrap();
    assert_eq!(files(&d, "snapshot").len(), 1);
    assert_eq!(files(&d, "wal").len(), 1, "covered segments deleted");
    // A fresh segment holds no records: an idle store is never due a snapshot.
    assert_eq!(s.wal_bytes_since_checkpoint(), 0);
    assert!(!s.wal_pending());
    s.append(&l("m", 0), t0 + 500_000, 5.0);
    s.append(&l("late", 0), t0 + 500_000, 6.0);
    assert!(s.wal_pending());
    s.flush_wal().unwrap();
    assert!(!s.wal_pending());
    let want = bits(&all(&s, "m"));
    drop(s);
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.snapshot.is_some());
    assert_eq!(r.wal_samples_replayed, 2);
    assert_eq!(bits(&all(&s, "m")), want);
    assert_eq!(all(&s, "late").len(), 1);
    // A clean shutdown leaves a snapshot that needs no replay.
    s.shutdown();
    drop(s);
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert_eq!((r.wal_samples_replayed, r.series), (0, 21));
    assert_eq!(bits(&all(&s, "m")), want);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn truncated_wal_tail_is_reported_and_earlier_frames_kept() {
    let d = dir("trunc");
    let t0 = base();
    {
        let (s, _) = Store::open(&d, DAY).unwrap();
        for k in 0..3 {
            s.append(&l("m", 0), t0 + k * 1000, k as f64);
            s.flush_wal().unwrap(); // one frame per flush
        }
    }
    let seg = files(&d, "wal").pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap(); // a torn last write
    drop(f);
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("wal-00000001") && r.problems[0].contains("truncated"), "{}", r.problems[0]);
    let got: Vec<f64> = all(&s, "m")[0].samples.iter().map(|x| x.v).collect();
    assert_eq!(got, vec![0.0, 1.0]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn corrupt_snapshot_and_junk_files_do_not_stop_the_open() {
    let d = dir("corrupt");
    let t0 = base();
    {
        let (s, _) = Store::open(&d, DAY).unwrap();
        fill(&s, t0);
        s.checkpoint().unwrap();
        s.append(&l("after", 0), t0 + 900_000, 1.0);
        s.flush_wal().unwrap();
    }
    let snap = files(&d, "snapshot").pop().unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&snap, bytes).unwrap();
    std::fs::write(d.join("wal-99999999"), b"not a wal").unwrap();
    std::fs::write(d.join("snapshot-00000000.tmp"), b"half written").unwrap();
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    assert!(r.problems.iter().any(|p| p.contains("snapshot-") && p.contains("checksum")), "{:?}", r.problems);
    assert!(r.problems.iter().any(|p| p.contains("wal-99999999") && p.contains("bad header")), "{:?}", r.problems);
    // The damaged frame's series are lost; the WAL after it still replays.
    assert_eq!(all(&s, "after").len(), 1);
    assert!(files(&d, "snapshot-00000000.tmp").is_empty());
    // New segments are numbered past the junk one, never appended to it.
    s.append(&l("after", 0), t0 + 901_000, 2.0);
    s.flush_wal().unwrap();
    assert!(d.join("wal-100000000").exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn retention_applies_on_open_and_downsampling_survives_restart() {
    let d = dir("down");
    let now = chrono::Utc::now().timestamp_millis();
    let opts = StoreOptions {
        retention_ms: 3_600_000,
        downsample_retention_ms: Some(30 * DAY),
        stale_series_retention_ms: None,
    };
    {
        let (s, _) = Store::open_with(&d, opts).unwrap();
        for k in 0..(6 * 60) {
            // six hours, one sample a minute, ending now
            s.append(&l("g", 0), now - 6 * 3_600_000 + k * 60_000, k as f64);
        }
        s.shutdown();
    }
    let (s, _) = Store::open_with(&d, opts).unwrap();
    let raw = all(&s, "g");
    assert!(raw[0].samples.iter().all(|x| x.t >= now - 3_600_000 - 60_000), "raw samples past retention came back");
    let down = s.select_downsampled(&[Matcher::equal("__name__", "g")], i64::MIN, i64::MAX);
    assert!(down[0].buckets.len() >= 70, "{} buckets", down[0].buckets.len());
    assert!(down[0].buckets[0].t < now - 5 * 3_600_000);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn snapshot_of_an_older_format_is_reported_and_the_wal_after_it_still_replays() {
    let d = dir("oldsnap");
    let t0 = base();
    {
        let (s, _) = Store::open(&d, DAY).unwrap();
        s.append(&l("kept", 0), t0, 1.0);
        s.checkpoint().unwrap();
        s.append(&l("later", 0), t0 + 1000, 2.0);
        s.flush_wal().unwrap();
    }
    // Make the snapshot look like one written by the version-1 codec.
    let snap = files(&d, "snapshot").pop().unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[6] = 1;
    std::fs::write(&snap, bytes).unwrap();
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("format version 1"), "{:?}", r.problems);
    // What the skipped snapshot held is gone; the WAL after it is not.
    assert!(all(&s, "kept").is_empty());
    let got = bits(&all(&s, "later"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(t0 + 1000, 2.0f64.to_bits())]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn ended_series_leave_memory_after_the_stale_series_retention() {
    let t0 = base();
    let opts =
        StoreOptions { retention_ms: DAY, downsample_retention_ms: None, stale_series_retention_ms: Some(60_000) };
    let s = Store::with_options(opts);
    s.append(&l("gone", 0), t0, 1.0);
    s.append(&l("gone", 0), t0 + 1000, crate::store::stale_nan());
    s.append(&l("live", 0), t0, 1.0);
    s.append(&l("live", 0), t0 + 1000, 2.0);
    // Within the window the ended series is still there (and queryable).
    let left = s.compact(t0 + 30_000);
    assert_eq!((left.series, left.samples), (2, 4), "what the pass counts is what is left");
    assert_eq!(s.stats().series, 2);
    // Past it, only the live one is left, however old its last sample.
    let left = s.compact(t0 + 120_000);
    assert_eq!((left.series, left.samples), (1, 2));
    assert_eq!(s.stats().series, 1);
    assert!(all(&s, "gone").is_empty());
    assert_eq!(all(&s, "live").len(), 1);
    // A series that comes back after removal starts afresh.
    s.append(&l("gone", 0), t0 + 130_000, 3.0);
    assert_eq!(bits(&all(&s, "gone")).len(), 1);
}

#[test]
fn a_corrupt_wal_frame_in_the_middle_loses_only_itself() {
    let d = dir("midframe");
    let t0 = base();
    {
        let (s, _) = Store::open(&d, DAY).unwrap();
        for k in 0..3 {
            s.append(&l("m", 0), t0 + k * 1000, k as f64);
            s.flush_wal().unwrap(); // one frame per flush
        }
    }
    let seg = files(&d, "wal").pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let first_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let second = 8 + 8 + first_len;
    bytes[second + 9] ^= 0x55; // a flipped bit in the second frame's payload
    std::fs::write(&seg, bytes).unwrap();
    let (s, r) = Store::open(&d, DAY).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let got: Vec<f64> = all(&s, "m")[0].samples.iter().map(|x| x.v).collect();
    assert_eq!(got, vec![0.0, 2.0], "the frames after the bad one are read");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn series_labels_lists_series_by_time_without_reading_samples() {
    let s = Store::new(i64::MAX / 4);
    let a = Labels::from_pairs([("__name__", "m"), ("i", "a")]);
    let b = Labels::from_pairs([("__name__", "m"), ("i", "b")]);
    // a: 0..=1000 s (sealed chunks, head and pending), b: 2000..=2010 s.
    for t in 0..=1000 {
        s.append(&a, t * 1000, t as f64);
    }
    for t in 2000..=2010 {
        s.append(&b, t * 1000, 1.0);
    }
    let m = [crate::labels::Matcher::equal("__name__", "m")];
    assert_eq!(s.series_labels(&m, i64::MIN / 4, i64::MAX / 4), vec![a.clone(), b.clone()]);
    assert_eq!(s.series_labels(&m, 500_000, 600_000), vec![a.clone()]);
    assert_eq!(s.series_labels(&m, 1_000_000, 2_000_000), vec![a, b.clone()]);
    assert_eq!(s.series_labels(&m, 1_500_000, 1_999_999), Vec::<Labels>::new());
    assert_eq!(s.series_labels(&m, 2_010_000, 3_000_000), vec![b]);
}
