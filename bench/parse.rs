//! Parser throughput against a baseline: `cargo bench --bench parse` runs
//! criterion over forewarn's parser and `prometheus_parse::Scrape::parse` on
//! the same bodies in the same run — a synthetic 10,000-series body shaped
//! like node_exporter output (HELP/TYPE lines, counters, gauges, histograms,
//! summaries, node_exporter's label sets) and the real node_exporter and
//! Prometheus bodies under `../shared/testdata/exposition`. Criterion reports
//! series/s (`Throughput::Elements`); the closing summary adds MB/s and the
//! forewarn/prometheus-parse ratio, computed from the very samples criterion
//! timed (recorded through `iter_custom`). A measurement, not a test: nothing
//! asserts on time. Figures go into bench/README.md.
//!
//! Time is this thread's CPU time (from `/proc/thread-self/schedstat`), not
//! wall time, when the kernel provides it: the build machine is shared, and
//! the goal is throughput on one core, which wall time on a loaded machine
//! understates by whatever share of the core other processes took. Both
//! parsers are timed with the same clock; the summary says which one
//! (`PARSE_BENCH_CLOCK=wall` forces wall time).
//!
//! Both sides do the work a scraper needs: forewarn's callback receives every
//! sample with its name, unescaped labels, value and timestamp and the
//! closure here touches all of them; prometheus-parse builds its owned
//! samples. Its API wants owned lines, so those are prepared outside the
//! timed region — the baseline is not charged for splitting the body.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use forewarn::scrape::parse::{parse, Format};

/// Writes a node_exporter-shaped body with exactly `series` series.
fn synth_body(series: usize) -> String {
    use std::fmt::Write;
    let mut b = String::with_capacity(series * 90);
    let mut n = 0usize;
    let mut fam = 0usize;
    // Values in the shapes Go's %g produces for node_exporter: small
    // integers, exponent form, plain decimals.
    let value = |n: usize| -> String {
        match n % 4 {
            0 => format!("{}", n % 1000),
            1 => format!("{}.{:06}e+{:02}", n % 9 + 1, (n * 7919) % 1_000_000, n % 12),
            2 => format!("0.{:06}", (n * 104_729) % 1_000_000),
            _ => format!("{}", n * 4096),
        }
    };
    let modes = ["guest", "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
    let devices = ["nvme0n1", "sda", "sdb", "dm-0", "eth0", "lo", "wlan0", "docker0"];
    let mounts = [("/dev/nvme0n1p2", "ext4", "/"), ("/dev/nvme0n1p1", "vfat", "/boot/efi"), ("tmpfs", "tmpfs", "/run")];
    while n < series {
        fam += 1;
        let left = series - n;
        match fam % 6 {
            // A summary, like go_gc_duration_seconds.
            0 if left >= 7 => {
                let name = format!("go_gc_duration_seconds_{fam}");
                let _ = writeln!(b, "# HELP {name} A summary of the pause duration of garbage collection cycles.");
                let _ = writeln!(b, "# TYPE {name} summary");
                for q in ["0", "0.25", "0.5", "0.75", "1"] {
                    let _ = writeln!(b, "{name}{{quantile=\"{q}\"}} {}", value(n));
                    n += 1;
                }
                let _ = writeln!(b, "{name}_sum {}\n{name}_count {}", value(n), n * 3);
                n += 2;
            }
            // A histogram with a handler label, as promhttp exposes.
            1 if left >= 24 => {
                let name = format!("node_scrape_collector_duration_seconds_{fam}");
                let _ = writeln!(b, "# HELP {name} node_exporter: Duration of a collector scrape.");
                let _ = writeln!(b, "# TYPE {name} histogram");
                for collector in ["cpu", "diskstats"] {
                    for (i, le) in
                        ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"].iter().enumerate()
                    {
                        let _ =
                            writeln!(b, "{name}_bucket{{collector=\"{collector}\",le=\"{le}\"}} {}", 10 * i + n % 7);
                    }
                    let _ = writeln!(b, "{name}_sum{{collector=\"{collector}\"}} {}", value(n));
                    let _ = writeln!(b, "{name}_count{{collector=\"{collector}\"}} {}", 90 + n % 7);
                    n += 12;
                }
            }
            // Per-CPU counters: node_cpu_seconds_total.
            2 | 3 => {
                let name = format!("node_cpu_seconds_{fam}_total");
                let _ = writeln!(b, "# HELP {name} Seconds the CPUs spent in each mode.");
                let _ = writeln!(b, "# TYPE {name} counter");
                'cpu: for cpu in 0..8 {
                    for mode in modes {
                        if n == series {
                            break 'cpu;
                        }
                        let _ = writeln!(b, "{name}{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}", value(n));
                        n += 1;
                    }
                }
            }
            // Filesystem gauges with three labels.
            4 => {
                let name = format!("node_filesystem_avail_bytes_{fam}");
                let _ = writeln!(b, "# HELP {name} Filesystem space available to non-root users in bytes.");
                let _ = writeln!(b, "# TYPE {name} gauge");
                for (device, fstype, mountpoint) in mounts.iter().take(left) {
                    let _ = writeln!(
                        b,
                        "{name}{{device=\"{device}\",fstype=\"{fstype}\",mountpoint=\"{mountpoint}\"}} {}",
                        value(n)
                    );
                    n += 1;
                }
            }
            // Per-device network/disk counters.
            _ => {
                let name = format!("node_network_receive_bytes_{fam}_total");
                let _ = writeln!(b, "# HELP {name} Network device statistic receive_bytes.");
                let _ = writeln!(b, "# TYPE {name} counter");
                for device in devices.iter().take(left) {
                    let _ = writeln!(b, "{name}{{device=\"{device}\"}} {}", value(n));
                    n += 1;
                }
            }
        }
    }
    b
}

/// One body to measure.
struct Case {
    name: String,
    body: Vec<u8>,
    series: usize,
}

/// Every (iterations, elapsed) criterion timed, per benchmark id, so the
/// summary reports criterion's own measurements.
type Timings = RefCell<Vec<(String, u64, Duration)>>;

/// This thread's time on a CPU so far, if the kernel reports it.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    // "0 0 0" means schedstats are off; fall back to wall time then.
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// The clock both parsers are timed with.
#[derive(Clone, Copy)]
enum Clock {
    ThreadCpu,
    Wall(Instant),
}

impl Clock {
    /// Thread CPU time unless `PARSE_BENCH_CLOCK=wall` asks for wall time.
    fn pick() -> Clock {
        if std::env::var("PARSE_BENCH_CLOCK").is_ok_and(|v| v == "wall") {
            return Clock::Wall(Instant::now());
        }
        match thread_cpu_time() {
            Some(_) => Clock::ThreadCpu,
            None => Clock::Wall(Instant::now()),
        }
    }

    fn now(self) -> Duration {
        match self {
            Clock::ThreadCpu => thread_cpu_time().unwrap_or_default(),
            Clock::Wall(base) => base.elapsed(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Clock::ThreadCpu => "thread CPU time, one core",
            Clock::Wall(_) => "wall time",
        }
    }
}

fn forewarn_parse(body: &[u8]) -> usize {
    let mut acc = 0usize;
    let sum = parse(body, Format::Prometheus, |s| {
        // Touch what a store would copy out: name, every label, value, ts.
        acc += s.name.len() + s.labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        acc += s.value.to_bits() as usize & 1;
        acc += s.timestamp_ms.unwrap_or(0) as usize & 1;
    })
    .expect("bench body parses");
    acc + sum.series
}

fn lines_of(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body).lines().map(str::to_owned).collect()
}

fn baseline_parse(lines: Vec<String>) -> usize {
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).expect("baseline parses");
    scrape.samples.len()
}

fn bench(c: &mut Criterion, cases: &[Case], timings: &Timings, clock: Clock) {
    for case in cases {
        let mut g = c.benchmark_group(format!("parse/{}", case.name));
        g.throughput(Throughput::Elements(case.series as u64));
        let id = format!("{}/forewarn", case.name);
        g.bench_function(BenchmarkId::from_parameter("forewarn"), |b| {
            b.iter_custom(|iters| {
                let start = clock.now();
                for _ in 0..iters {
                    black_box(forewarn_parse(black_box(&case.body)));
                }
                let t = clock.now().saturating_sub(start);
                timings.borrow_mut().push((id.clone(), iters, t));
                t
            })
        });
        let id = format!("{}/prometheus-parse", case.name);
        g.bench_function(BenchmarkId::from_parameter("prometheus-parse"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let lines = lines_of(&case.body);
                    let start = clock.now();
                    black_box(baseline_parse(black_box(lines)));
                    total += clock.now().saturating_sub(start);
                }
                timings.borrow_mut().push((id.clone(), iters, total));
                total
            })
        });
        g.finish();
    }
}

/// Median seconds per iteration over the samples recorded for `id`.
fn median_secs(timings: &Timings, id: &str) -> Option<f64> {
    let mut per: Vec<f64> = timings
        .borrow()
        .iter()
        .filter(|(i, n, _)| i == id && *n > 0)
        .map(|(_, n, t)| t.as_secs_f64() / *n as f64)
        .collect();
    if per.is_empty() {
        return None;
    }
    per.sort_by(f64::total_cmp);
    Some(per[per.len() / 2])
}

fn summary(cases: &[Case], timings: &Timings, clock: Clock) {
    println!("\nsummary (median of criterion's samples, {}; MB = 10^6 bytes):", clock.name());
    for case in cases {
        let fw = median_secs(timings, &format!("{}/forewarn", case.name));
        let pp = median_secs(timings, &format!("{}/prometheus-parse", case.name));
        let (Some(fw), Some(pp)) = (fw, pp) else {
            continue;
        };
        let mbs = |s: f64| case.body.len() as f64 / s / 1e6;
        let sps = |s: f64| case.series as f64 / s / 1e6;
        println!(
            "  {:<28} {:>8} bytes {:>6} series | forewarn {:>7.1} MB/s {:>6.2} M series/s | \
             prometheus-parse {:>6.1} MB/s {:>6.2} M series/s | ratio {:.1}x",
            case.name,
            case.body.len(),
            case.series,
            mbs(fw),
            sps(fw),
            mbs(pp),
            sps(pp),
            pp / fw
        );
    }
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/exposition/");
    let mut bodies = vec![("node_exporter_shaped_10k".to_owned(), synth_body(10_000).into_bytes())];
    for (name, file) in [
        ("node_exporter_e2e", "node_exporter/e2e-output.txt"),
        ("prometheus_alltypes_237mfs", "prometheus_textparse/alltypes.237mfs.prom.txt"),
    ] {
        match std::fs::read(format!("{dir}{file}")) {
            Ok(b) => bodies.push((name.to_owned(), b)),
            Err(e) => eprintln!("skipping {file}: {e}"),
        }
    }
    let cases: Vec<Case> = bodies
        .into_iter()
        .map(|(name, body)| {
            let sum = parse(&body, Format::Prometheus, |_| {}).expect("bench body parses");
            // Same input must be acceptable to the baseline too.
            baseline_parse(lines_of(&body));
            Case { name, series: sum.series, body }
        })
        .collect();
    // `PARSE_PROFILE=N` parses the 10k body N times and exits, without
    // criterion or the baseline: a fixed workload for
    // `valgrind --tool=callgrind`, whose instruction counts stay comparable
    // across runs on a busy machine where times do not.
    if let Some(n) = std::env::var("PARSE_PROFILE").ok().and_then(|v| v.parse::<usize>().ok()) {
        let body = &cases[0].body;
        let acc: usize = (0..n).map(|_| forewarn_parse(black_box(body))).sum();
        println!("profiled {n} parses of {} ({} bytes): {acc}", cases[0].name, body.len());
        return;
    }
    let timings = Timings::default();
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let clock = Clock::pick();
    bench(&mut c, &cases, &timings, clock);
    c.final_summary();
    summary(&cases, &timings, clock);
}
