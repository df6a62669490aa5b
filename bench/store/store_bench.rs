//! Store benchmark: bytes per sample, RSS per series, append and select
//! throughput, and restart recovery time, each against a baseline measured
//! in the same run (a plain `Mutex<HashMap<Labels, Vec<Sample>>>` store, 16
//! bytes per sample, the design this store replaced).
//!
//! `cargo run --release --example store_bench [-- SERIES HOURS]`
//! (default 100000 series x 2 hours of 15 s samples). RSS is measured in a
//! child process per store so that one store's freed memory does not hide
//! in the other's figure.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use forewarn::store::{Store, StoreOptions};
use forewarn::{Labels, Matcher, Queryable, Sample};

const STEP_MS: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

/// The comparison point: one lock, one Vec of 16-byte samples per series.
#[derive(Default)]
struct Baseline {
    series: Mutex<HashMap<Labels, Vec<Sample>>>,
}

impl Baseline {
    fn append_batch(&self, batch: &[(Labels, i64, f64)]) {
        let mut m = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (l, t, v) in batch {
            match m.get_mut(l) {
                Some(s) => s.push(Sample { t: *t, v: *v }),
                None => {
                    m.insert(l.clone(), vec![Sample { t: *t, v: *v }]);
                }
            }
        }
    }

    fn select(&self, ms: &[Matcher], start: i64, end: i64) -> usize {
        let m = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (l, s) in m.iter().filter(|(l, _)| ms.iter().all(|x| x.matches(l))) {
            let a = s.partition_point(|x| x.t < start);
            let b = s.partition_point(|x| x.t <= end);
            let copy: Vec<Sample> = s[a..b].to_vec();
            n += copy.len();
            std::hint::black_box(l);
        }
        n
    }
}

fn labels(n: usize) -> Vec<Labels> {
    let names = ["http_requests_total", "process_resident_memory_bytes", "up", "request_duration_seconds"];
    (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", names[i % 4].to_string()),
                ("job", "bench".to_string()),
                ("instance", format!("host-{}:9100", i / 100)),
                ("shard", (i % 10).to_string()),
                ("id", (i % 100).to_string()),
            ])
        })
        .collect()
}

/// Kinds of series, in the proportions of a typical exporter: histogram
/// buckets and error counters that mostly do not move, busy counters,
/// constant gauges (`up`, `*_info`, limits), integer gauges (bytes, queue
/// lengths) and float gauges with random decimals (quantiles, ratios).
const KINDS: [(&str, usize); 5] =
    [("sparse counter", 40), ("busy counter", 20), ("constant gauge", 20), ("integer gauge", 10), ("float gauge", 10)];

fn kind(i: usize) -> usize {
    let mut p = i % 100;
    for (k, (_, share)) in KINDS.iter().enumerate() {
        if p < *share {
            return k;
        }
        p -= share;
    }
    0
}

fn value(i: usize, rng: &mut fastrand::Rng, prev: f64) -> f64 {
    match kind(i) {
        0 => prev + if rng.u32(0..10) < 3 { rng.u32(1..5) as f64 } else { 0.0 },
        1 => prev + rng.u32(0..1000) as f64,
        2 => 1.0,
        3 => (prev + (rng.i64(-3..4) * 4096) as f64).max(0.0),
        _ => (rng.f64() * 500.0).round() / 1000.0,
    }
}

/// Timestamps: each series scraped at its own phase, with up to `jitter`
/// ms of lateness (0 = perfectly regular, as Prometheus's own scheduler
/// nearly is).
fn gen_step(all: &[Labels], k: i64, jitter: u32, rng: &mut fastrand::Rng, prev: &mut [f64]) -> Vec<(Labels, i64, f64)> {
    all.iter()
        .enumerate()
        .map(|(i, l)| {
            let t = T0 + k * STEP_MS + (i as i64 % 1000) + if jitter > 0 { rng.u32(0..jitter) as i64 } else { 0 };
            prev[i] = value(i, rng, prev[i]);
            (l.clone(), t, prev[i])
        })
        .collect()
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Child mode: ingest into one kind of store, print "rss_delta samples chunk_bytes".
fn child(kind: &str, series: usize, steps: i64, jitter: u32) {
    let all = labels(series);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut prev = vec![1e6; series];
    let before = rss_bytes();
    let store = Store::new(i64::MAX / 4);
    let base = Baseline::default();
    for k in 0..steps {
        for chunk in gen_step(&all, k, jitter, &mut rng, &mut prev).chunks(1000) {
            if kind == "forewarn" {
                store.append_batch(chunk);
            } else {
                base.append_batch(chunk);
            }
        }
    }
    let after = rss_bytes();
    let st = store.stats();
    println!("{} {} {}", after.saturating_sub(before), st.samples, store.chunk_bytes());
}

fn run_child(kind: &str, series: usize, steps: i64, jitter: u32) -> (f64, usize, usize) {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .args(["--child", kind, &series.to_string(), &steps.to_string(), &jitter.to_string()])
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (
        f.first().copied().unwrap_or(0.0),
        f.get(1).copied().unwrap_or(0.0) as usize,
        f.get(2).copied().unwrap_or(0.0) as usize,
    )
}

fn appends(series: usize, steps: i64, threads: usize) -> (f64, f64) {
    let all = labels(series);
    let mut rng = fastrand::Rng::with_seed(1);
    let mut prev = vec![1e6; series];
    let batches: Vec<Vec<(Labels, i64, f64)>> = (0..steps).map(|k| gen_step(&all, k, 0, &mut rng, &mut prev)).collect();
    let n = (series as i64 * steps) as f64;
    let store = Store::new(i64::MAX / 4);
    let base = Baseline::default();
    type AppendFn<'a> = dyn Fn(&[(Labels, i64, f64)]) + Sync + 'a;
    let time = |f: &AppendFn| {
        let started = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let batches = &batches;
                s.spawn(move || {
                    for b in batches {
                        // Each thread owns a slice of the series, like one scrape task per target.
                        let per = b.len() / threads;
                        for c in b[th * per..(th + 1) * per].chunks(1000) {
                            f(c);
                        }
                    }
                });
            }
        });
        n / started.elapsed().as_secs_f64()
    };
    (time(&|c| store.append_batch(c)), time(&|c| base.append_batch(c)))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let p = |i: usize| args.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        child(&args[2], p(3) as usize, p(4), p(5) as u32);
        return;
    }
    let series: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let hours: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let steps = hours * 3_600_000 / STEP_MS;
    println!("store_bench: {series} series x {hours} h of 15 s samples ({} samples)\n", series as i64 * steps);

    println!("## memory (each store in its own process)");
    for jitter in [0u32, 5] {
        let (f_rss, samples, chunk) = run_child("forewarn", series, steps, jitter);
        let (b_rss, _, _) = run_child("baseline", series, steps, jitter);
        println!(
            "timestamps jitter 0..{jitter} ms: chunk bytes/sample {:.2} | RSS/series forewarn {:.0} B, baseline {:.0} B (ratio {:.2}) | RSS/sample forewarn {:.2} B, baseline {:.2} B",
            chunk as f64 / samples as f64,
            f_rss / series as f64,
            b_rss / series as f64,
            f_rss / b_rss,
            f_rss / samples as f64,
            b_rss / samples as f64,
        );
    }

    println!("\nby kind (1,000 series each): chunk bytes/sample, regular timestamps | 0..5 ms jitter");
    let all = labels(100_000);
    for (k, (name, _)) in KINDS.iter().enumerate() {
        let ids: Vec<usize> = (0..100_000).filter(|&i| kind(i) == k).take(1000).collect();
        let per_sample = |jitter: i64| {
            let store = Store::new(i64::MAX / 4);
            let mut rng = fastrand::Rng::with_seed(11);
            let mut prev = vec![1e6; 100_000];
            for s in 0..steps {
                for &i in &ids {
                    prev[i] = value(i, &mut rng, prev[i]);
                    let late = if jitter > 0 { rng.i64(0..jitter) } else { 0 };
                    store.append(&all[i], T0 + s * STEP_MS + late, prev[i]);
                }
            }
            store.chunk_bytes() as f64 / store.stats().samples as f64
        };
        println!("  {name}: {:.2} | {:.2}", per_sample(0), per_sample(5));
    }

    println!("\n## appends (10,000 series x 100 scrapes, batches of 1,000)");
    for threads in [1, 2, 4] {
        let (f, b) = appends(10_000, 100, threads);
        println!("{threads} thread(s): forewarn {:.2} M/s, baseline {:.2} M/s (ratio {:.2})", f / 1e6, b / 1e6, f / b);
    }

    println!("\n## select 1 hour of 10,000 series (of {series})");
    let all = labels(series);
    let store = Store::new(i64::MAX / 4);
    let base = Baseline::default();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut prev = vec![1e6; series];
    for k in 0..steps {
        let b = gen_step(&all, k, 0, &mut rng, &mut prev);
        for c in b.chunks(1000) {
            store.append_batch(c);
            base.append_batch(c);
        }
    }
    let ms = [Matcher::equal("shard", "3")];
    let (start, end) = (T0 + (steps - 240) * STEP_MS, T0 + steps * STEP_MS);
    let timed = |f: &dyn Fn() -> usize| {
        let started = Instant::now();
        let mut n = 0;
        for _ in 0..5 {
            n = f();
        }
        (started.elapsed().as_secs_f64() / 5.0, n)
    };
    let (fs, fnum) = timed(&|| store.select(&ms, start, end).iter().map(|s| s.samples.len()).sum());
    let (bs, bnum) = timed(&|| base.select(&ms, start, end));
    assert_eq!(fnum, bnum, "both stores return the same samples");
    println!("{fnum} samples: forewarn {:.1} ms, baseline {:.1} ms (ratio {:.2})", fs * 1e3, bs * 1e3, fs / bs);
    drop(base);

    println!("\n## restart recovery ({series} series x {hours} h)");
    let dir = std::env::temp_dir().join(format!("forewarn-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let opts = StoreOptions::new(i64::MAX / 4);
    {
        let (durable, _) = Store::open_with(&dir, opts).expect("open bench dir");
        for k in 0..steps {
            for c in gen_step(&all, k, 0, &mut rng, &mut prev).chunks(1000) {
                durable.append_batch(c);
            }
            if k % 20 == 0 {
                durable.flush_wal().expect("flush");
            }
        }
        durable.flush_wal().expect("flush");
        let wal_bytes = dir_bytes(&dir);
        let started = Instant::now();
        drop(durable);
        let (_, r) = Store::open_with(&dir, opts).expect("reopen");
        let wal_only = started.elapsed().as_secs_f64();
        println!(
            "WAL only ({:.0} MB, {} samples replayed): {:.2} s",
            wal_bytes as f64 / 1e6,
            r.wal_samples_replayed,
            wal_only
        );
        let (durable, _) = Store::open_with(&dir, opts).expect("reopen");
        let started = Instant::now();
        let snap = durable.checkpoint().expect("checkpoint");
        println!("snapshot write: {:.2} s, {:.0} MB", started.elapsed().as_secs_f64(), snap as f64 / 1e6);
        drop(durable);
        let started = Instant::now();
        let (_, r) = Store::open_with(&dir, opts).expect("reopen");
        let snap_open = started.elapsed().as_secs_f64();
        println!(
            "snapshot ({} series, {} samples): {:.2} s (ratio to WAL-only replay {:.2})",
            r.series,
            r.samples,
            snap_open,
            snap_open / wal_only
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn dir_bytes(d: &std::path::Path) -> u64 {
    std::fs::read_dir(d).map(|it| it.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}
