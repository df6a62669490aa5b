//! The benchmark's data set: 1,000 instances in 10 jobs, 100 series each
//! (request counters by method and code, a latency histogram per method,
//! CPU counters, process and node gauges), one sample every 15 s, written as
//! OpenMetrics text with timestamps.
//!
//! Both engines read this one file: Prometheus through
//! `promtool tsdb create-blocks-from openmetrics`, forewarn through
//! `forewarn::replay::load_openmetrics`. Values come from a hash of (series,
//! step), so a counter's buckets stay consistent however the file is ordered.

use std::io::Write;

pub const JOBS: usize = 10;
pub const STEP_MS: i64 = 15_000;
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 6] = ["200", "201", "400", "404", "500", "503"];
const LE: [&str; 11] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
/// Share of requests at or below each bucket bound (the last is +Inf).
const LE_SHARE: [f64; 11] = [0.02, 0.08, 0.25, 0.45, 0.65, 0.82, 0.92, 0.97, 0.99, 0.997, 1.0];
const MODES: [&str; 3] = ["user", "system", "idle"];

/// splitmix64: a deterministic value in [0, 1) for any key.
fn unit(key: u64) -> f64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn key(a: u64, b: u64, c: u64) -> u64 {
    a.wrapping_mul(0x1000_0000_01b3) ^ b.wrapping_mul(0x9e37_79b9) ^ c.wrapping_mul(0x85eb_ca6b)
}

pub fn job(i: usize) -> String {
    format!("job-{}", i % JOBS)
}

fn instance(i: usize) -> String {
    format!("host-{i:04}:9100")
}

/// The window of samples: `steps` samples ending at `end_ms`.
pub struct Span {
    pub end_ms: i64,
    pub steps: usize,
}

impl Span {
    /// Step k of an instance's scrapes. Each instance has its own phase
    /// (as scrapes spread over the interval do), never a multiple of the
    /// query step: Prometheus 2 counts a sample exactly at a window's start
    /// and Prometheus 3 (and forewarn) do not, so aligned data would compare
    /// the versions rather than the engines.
    fn t(&self, instance: usize, k: usize) -> i64 {
        let phase = 500 + (instance as i64 * 7_919) % 14_000;
        self.end_ms - (self.steps - 1 - k) as i64 * STEP_MS - phase
    }
}

struct Out<'a, W: Write> {
    w: &'a mut W,
    span: &'a Span,
    samples: u64,
}

impl<W: Write> Out<'_, W> {
    /// One series: `value(k)` at each step.
    fn series(&mut self, i: usize, name: &str, labels: &str, value: impl Fn(usize) -> f64) -> std::io::Result<()> {
        for k in 0..self.span.steps {
            let t = self.span.t(i, k);
            writeln!(self.w, "{name}{{{labels}}} {} {}.{:03}", value(k), t / 1000, t % 1000)?;
        }
        self.samples += self.span.steps as u64;
        Ok(())
    }
}

/// Requests of (instance, method) in step k (the histogram's increment).
fn requests(i: usize, m: usize, k: usize) -> f64 {
    (unit(key(i as u64, m as u64 + 100, k as u64)) * 40.0).floor() + 1.0
}

/// A running sum of `inc(0..=k)`.
fn counter(k: usize, inc: impl Fn(usize) -> f64) -> f64 {
    (0..=k).map(inc).sum()
}

/// Writes the whole data set; returns (series, samples).
pub fn write<W: Write>(w: &mut W, instances: usize, span: &Span) -> std::io::Result<(usize, u64)> {
    let mut o = Out { w, span, samples: 0 };
    let mut series = 0;
    let base = |i: usize| format!("instance=\"{}\",job=\"{}\"", instance(i), job(i));
    // Counters are written as cumulative sums computed incrementally.
    let cum = |inc: &dyn Fn(usize) -> f64| {
        let mut acc = Vec::with_capacity(span.steps);
        let mut s = 0.0;
        for k in 0..span.steps {
            s += inc(k);
            acc.push(s);
        }
        acc
    };
    for i in 0..instances {
        for (m, method) in METHODS.iter().enumerate() {
            for (c, code) in CODES.iter().enumerate() {
                let weight = if c < 2 { 0.45 } else { 0.025 };
                let v = cum(&|k| (requests(i, m, k) * weight * unit(key(i as u64, c as u64, k as u64)) * 2.0).round());
                o.series(i, "http_requests_total", &format!("code=\"{code}\",{},method=\"{method}\"", base(i)), |k| {
                    v[k]
                })?;
                series += 1;
            }
        }
    }
    for (b, le) in LE.iter().enumerate() {
        for i in 0..instances {
            for (m, method) in METHODS.iter().enumerate() {
                let v = cum(&|k| (requests(i, m, k) * LE_SHARE[b]).floor());
                let labels = format!("{},le=\"{le}\",method=\"{method}\"", base(i));
                o.series(i, "http_request_duration_seconds_bucket", &labels, |k| v[k])?;
                series += 1;
            }
        }
    }
    for i in 0..instances {
        for (m, method) in METHODS.iter().enumerate() {
            let labels = format!("{},method=\"{method}\"", base(i));
            let count = cum(&|k| requests(i, m, k));
            o.series(i, "http_request_duration_seconds_count", &labels, |k| count[k])?;
            let sum = cum(&|k| requests(i, m, k) * (0.05 + 0.1 * unit(key(i as u64, m as u64, 7))));
            o.series(i, "http_request_duration_seconds_sum", &labels, |k| (sum[k] * 1000.0).round() / 1000.0)?;
            series += 2;
        }
    }
    for i in 0..instances {
        for cpu in 0..4 {
            for (d, mode) in MODES.iter().enumerate() {
                let share = [0.3, 0.1, 0.6][d] * (0.5 + unit(key(i as u64, cpu, 3)));
                let v = cum(&|k| {
                    (15.0 * share * (0.8 + 0.4 * unit(key(i as u64, cpu * 3 + d as u64, k as u64))) * 100.0).round()
                        / 100.0
                });
                o.series(i, "node_cpu_seconds_total", &format!("cpu=\"{cpu}\",{},mode=\"{mode}\"", base(i)), |k| v[k])?;
                series += 1;
            }
        }
    }
    type Gauge = fn(usize, usize) -> f64;
    let gauges: [(&str, Gauge); 12] = [
        ("up", |i, k| if (i + k) % 997 == 0 { 0.0 } else { 1.0 }),
        ("process_resident_memory_bytes", |i, k| (2e8 + 1e8 * unit(key(i as u64, 1, 0)) + 1e5 * k as f64).round()),
        ("process_cpu_seconds_total", |i, k| {
            counter(k, |j| (unit(key(i as u64, 2, j as u64)) * 1500.0).round() / 100.0)
        }),
        ("process_open_fds", |i, k| (50.0 + 900.0 * unit(key(i as u64, 3, k as u64 / 20))).round()),
        ("process_max_fds", |_, _| 1024.0),
        ("go_goroutines", |i, k| (100.0 + 1200.0 * unit(key(i as u64, 4, k as u64 / 8))).round()),
        ("node_filesystem_avail_bytes", |i, k| (5e10 * unit(key(i as u64, 5, 0)) - 1e6 * k as f64).round()),
        ("node_filesystem_size_bytes", |_, _| 1e11),
        ("node_load1", |i, k| (unit(key(i as u64, 6, k as u64)) * 800.0).round() / 100.0),
        ("node_memory_MemAvailable_bytes", |i, k| (8e9 * unit(key(i as u64, 7, k as u64 / 4))).round()),
        ("node_memory_MemTotal_bytes", |_, _| 16e9),
        ("go_gc_duration_seconds_count", |i, k| (k * (1 + i % 3)) as f64),
    ];
    for (name, f) in gauges {
        for i in 0..instances {
            o.series(i, name, &base(i), |k| f(i, k))?;
            series += 1;
        }
    }
    writeln!(o.w, "# EOF")?;
    Ok((series, o.samples))
}
