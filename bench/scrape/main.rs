//! What one scrape costs per sample once the target's series are known:
//! `cargo bench --bench scrape` feeds the same 10,000-series body (shaped
//! like node_exporter's: counters, gauges, histograms, 3-6 labels) to the
//! scraper's ingest step (parse, label handling, store append into an
//! in-memory store, staleness; the WAL is in the side-by-side run) again
//! and again at advancing timestamps, and reports, for the steady state
//! after two warm-up scrapes:
//! - allocations per scraped sample, counted by a global allocator wrapper
//!   (the design's goal: none; what is left is per scrape, not per sample);
//! - CPU time per sample (this thread's CPU clock);
//! - the same for a target with `metric_relabel_configs` and one whose
//!   values change every scrape (as real counters do);
//! - the same with the caches evicted before each scrape (a 512 MiB sweep,
//!   not timed): what a scrape costs when its series' memory has gone cold
//!   in the 15 s since the last one, as in the side-by-side run at 15 s;
//! - a first scrape into an empty store, per new series (creation cost).
//!
//! The network fetch is not in it (its body buffer is one allocation per
//! scrape); `bench/store/prometheus_side_by_side.sh` measures the whole
//! daemon beside Prometheus and VictoriaMetrics.
//!
//! A measurement, not a test: nothing asserts on time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use forewarn::scrape::parse::Format;
use forewarn::scrape::target::{ingest, ScrapeState, Target};
use forewarn::Store;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// This thread's CPU time in ns, from the thread's CPU clock: exact at any
/// moment (`/proc/thread-self/schedstat` moves only at scheduler ticks, as
/// coarse as one scrape) and without an allocation to count.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A node_exporter-like body of about `n` series; `round` changes values.
fn body(n: usize, round: u64) -> Vec<u8> {
    let mut out = String::new();
    let mut i = 0;
    let mut metric = 0;
    while i < n {
        let name = format!("node_metric_{metric}_total");
        out.push_str(&format!("# HELP {name} A counter.\n# TYPE {name} counter\n"));
        for cpu in 0..16 {
            for mode in ["user", "system", "idle", "iowait", "irq"] {
                if i >= n {
                    break;
                }
                out.push_str(&format!(
                    "{name}{{cpu=\"{cpu}\",mode=\"{mode}\",device=\"sd{}\"}} {}\n",
                    (b'a' + (i % 8) as u8) as char,
                    (i as u64 * 17 + round * 3) as f64 * 0.5
                ));
                i += 1;
            }
        }
        metric += 1;
    }
    out.into_bytes()
}

fn target(relabel: bool) -> Target {
    let relabel_cfg = if relabel {
        "    metric_relabel_configs:\n      - { source_labels: [mode], regex: irq, action: drop }\n      - { source_labels: [device], target_label: disk }\n"
    } else {
        ""
    };
    let yaml = format!(
        "scrape_configs:\n  - job_name: node\n    static_configs: [ {{ targets: ['10.0.0.1:9100'], labels: {{ env: prod }} }} ]\n{relabel_cfg}"
    );
    let cfg = forewarn::config::Config::parse("bench.yml", &yaml, None).expect("bench config");
    Target::from_config(&cfg.scrape_configs[0], &cfg.global.scrape_defaults()).remove(0)
}

struct Run {
    allocs_per_sample: f64,
    ns_per_sample: f64,
}

/// Evicts the CPU caches as the time between two scrapes 15 s apart does
/// on a busy host: touches every cache line of a buffer larger than the L3.
fn evict(buf: &[u64]) -> u64 {
    // Reads only: dirty lines would make the scrape pay for their write-back.
    let mut sum = 0u64;
    for x in buf.iter().step_by(8) {
        sum = sum.wrapping_add(*x);
    }
    std::hint::black_box(sum)
}

fn run(relabel: bool, changing: bool, cold: bool, n: usize, scrapes: u64) -> Run {
    let store = Store::new(3_600_000);
    let t = target(relabel);
    let mut state = ScrapeState::default();
    let bodies: Vec<Vec<u8>> = (0..if changing { 4 } else { 1 }).map(|r| body(n, r)).collect();
    let mut now = 1_700_000_000_000i64;
    let scrape = |k: u64, now: i64, state: &mut ScrapeState| {
        let b = &bodies[(k as usize) % bodies.len()];
        ingest(&t, Ok((b.as_slice(), Format::Prometheus)), &store, state, now, 0.01)
    };
    for k in 0..2 {
        scrape(k, now, &mut state);
        now += 15_000;
    }
    // 512 MiB (the L3 this VM reports is 480 MiB), allocated before counting starts.
    // Filled with ones so every page is really backed, not the shared zero page.
    let sweep = if cold { vec![1u64; 64 << 20] } else { Vec::new() };
    let (mut allocs, mut cpu, mut samples) = (0, 0, 0);
    for k in 2..2 + scrapes {
        if cold {
            evict(&sweep);
        }
        let (a0, c0) = (ALLOCS.load(Ordering::Relaxed), cpu_ns());
        samples += scrape(k, now, &mut state).samples;
        let (a1, c1) = (ALLOCS.load(Ordering::Relaxed), cpu_ns());
        allocs += a1 - a0;
        cpu += c1 - c0;
        now += 15_000;
    }
    Run { allocs_per_sample: allocs as f64 / samples as f64, ns_per_sample: cpu as f64 / samples as f64 }
}

/// A target's first scrape into an empty store: every series is new (label
/// set built, relabeled, indexed, packed). Short runs at 15 s count some of
/// these, so their cost shows in the side-by-side figures. Returns
/// allocations and CPU ns per new series, over `rounds` fresh stores.
fn first_scrape(n: usize, rounds: u64) -> Run {
    let t = target(false);
    let b = body(n, 0);
    let (mut allocs, mut cpu, mut samples) = (0, 0, 0);
    for _ in 0..rounds {
        let store = Store::new(3_600_000);
        let mut state = ScrapeState::default();
        let (a0, c0) = (ALLOCS.load(Ordering::Relaxed), cpu_ns());
        samples +=
            ingest(&t, Ok((b.as_slice(), Format::Prometheus)), &store, &mut state, 1_700_000_000_000, 0.01).samples;
        let (a1, c1) = (ALLOCS.load(Ordering::Relaxed), cpu_ns());
        allocs += a1 - a0;
        cpu += c1 - c0;
    }
    Run { allocs_per_sample: allocs as f64 / samples as f64, ns_per_sample: cpu as f64 / samples as f64 }
}

fn main() {
    let n = 10_000;
    let scrapes = 60;
    // `cargo bench --bench scrape -- first` runs only the cases whose name
    // holds "first" (for a profile of one case).
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    println!("ingest of a {n}-series body, {scrapes} scrapes after 2 warm-up scrapes:");
    println!("{:<44} {:>18} {:>16}", "case", "allocs / sample", "CPU ns / sample");
    for (name, relabel, changing, cold) in [
        ("same values every scrape", false, false, false),
        ("values change every scrape", false, true, false),
        ("values change, metric_relabel_configs", true, true, false),
        ("values change, caches cold (as at 15 s)", false, true, true),
    ] {
        if !name.contains(only.as_str()) {
            continue;
        }
        let r = run(relabel, changing, cold, n, scrapes);
        println!("{name:<44} {:>18.4} {:>16.0}", r.allocs_per_sample, r.ns_per_sample);
    }
    let name = "first scrape, every series new (20 stores)";
    if !name.contains(only.as_str()) {
        return;
    }
    let r = first_scrape(n, 20);
    println!(
        "{:<44} {:>18.4} {:>16.0}",
        "first scrape, every series new (20 stores)", r.allocs_per_sample, r.ns_per_sample
    );
}
