//! Parser throughput: `cargo bench --bench parse` prints MB/s and ns/sample
//! on a synthetic 10k-series body (Prometheus text and strict OpenMetrics)
//! and on node_exporter's real output, beside a calibration pass over the
//! same bytes (UTF-8 validation) measured in the same run. A measurement,
//! not a test: timings never assert.

use forewarn::scrape::parse::{parse, Format};

const P: Format = Format::Prometheus;
const OM: Format = Format::OpenMetrics;

/// Synthesizes a node_exporter-like body of `series` series: counters and
/// gauges with 1-3 labels, plus histograms.
fn synth_body(series: usize, om: bool) -> String {
    let mut b = String::new();
    let mut n = 0;
    let mut fam = 0;
    while n < series {
        fam += 1;
        if fam % 10 == 0 {
            let name = format!("node_request_duration_seconds_{fam}");
            b.push_str(&format!("# HELP {name} Request latency.\n# TYPE {name} histogram\n"));
            for handler in ["/", "/metrics", "/api/v1/query"] {
                for (i, le) in
                    ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"].iter().enumerate()
                {
                    b.push_str(&format!("{name}_bucket{{handler=\"{handler}\",le=\"{le}\"}} {}\n", 100 * (i + 1)));
                }
                b.push_str(&format!(
                    "{name}_sum{{handler=\"{handler}\"}} 12.5\n{name}_count{{handler=\"{handler}\"}} 900\n"
                ));
                n += 11;
            }
            continue;
        }
        let counter = fam % 2 == 0;
        let name = format!("node_cpu_seconds_{fam}");
        let typ = if counter { "counter" } else { "gauge" };
        b.push_str(&format!("# HELP {name} Seconds the CPUs spent in each mode.\n# TYPE {name} {typ}\n"));
        let sample = if counter && om { format!("{name}_total") } else { name.clone() };
        for cpu in 0..8 {
            for mode in ["idle", "iowait", "system", "user"] {
                b.push_str(&format!(
                    "{sample}{{cpu=\"{cpu}\",mode=\"{mode}\",instance=\"host-{fam}.example.com:9100\"}} {}.{}e+0{}\n",
                    n % 97 + 1,
                    n % 1000,
                    n % 7
                ));
                n += 1;
            }
        }
    }
    if om {
        b.push_str("# EOF\n");
    }
    b
}

fn main() {
    let real = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/testdata/exposition/node_exporter/e2e-output.txt"
    ))
    .ok();
    let mut cases: Vec<(String, Vec<u8>, Format)> = vec![
        ("synthetic 10k series, Prometheus".into(), synth_body(10_000, false).into_bytes(), P),
        ("synthetic 10k series, OpenMetrics strict".into(), synth_body(10_000, true).into_bytes(), OM),
    ];
    if let Some(r) = real {
        cases.push(("node_exporter e2e-output.txt".into(), r, P));
    }
    // Calibration: how fast this machine does a trivial pass (full UTF-8
    // validation of the body), to read the numbers below against.
    let body = &cases[0].1;
    let start = std::time::Instant::now();
    let mut ok = 0;
    for _ in 0..200 {
        ok += usize::from(std::str::from_utf8(std::hint::black_box(body)).is_ok());
    }
    let secs = start.elapsed().as_secs_f64();
    println!("calibration: str::from_utf8 over the body: {:.0} MB/s ({ok})", (body.len() * 200) as f64 / secs / 1e6);
    for (what, body, fmt) in &cases {
        let sum = parse(body, *fmt, |_| {}).expect("bench body parses");
        let iters = (200_000_000 / body.len()).max(5);
        let start = std::time::Instant::now();
        let mut acc = 0.0;
        for _ in 0..iters {
            parse(body, *fmt, |s| acc += s.value).expect("parses");
        }
        let secs = start.elapsed().as_secs_f64();
        let mbs = (body.len() * iters) as f64 / secs / 1e6;
        let per = secs / (iters * sum.samples) as f64 * 1e9;
        println!(
            "{what}: {} bytes, {} samples, {} series: {mbs:.0} MB/s, {per:.0} ns/sample ({acc:e})",
            body.len(),
            sum.samples,
            sum.series
        );
    }
}
