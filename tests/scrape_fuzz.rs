//! A bounded, stable-toolchain stand-in for `fuzz/` (cargo-fuzz needs
//! nightly; see fuzz/Cargo.toml for the command). Every file of the shared
//! fuzz corpus, then random mutations of them for a bounded time (3 s),
//! go through the parser in both formats. It must not panic, must not be
//! slow on any input, and `parse` and `check` must agree: `parse` succeeds
//! exactly when `check` finds no error, with the same sample count.
//!
//! The seed is printed; rerun one with FOREWARN_FUZZ_SEED=<n>.

use std::path::Path;
use std::time::{Duration, Instant};

use forewarn::scrape::parse::{check_with, parse_with, Format, ParseOptions};

const CORPUS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/exposition/prometheus_common/fuzz_corpus");
/// Mutation rounds: at most this many, and no longer than `BUDGET`.
const ROUNDS: usize = 2_000_000;
const BUDGET: Duration = Duration::from_secs(3);

/// Tokens that steer mutations toward the grammar's corners.
const DICT: &[&[u8]] = &[
    b"# HELP ",
    b"# TYPE ",
    b"# UNIT ",
    b"# EOF\n",
    b"counter",
    b"gauge",
    b"histogram",
    b"summary",
    b"info",
    b"stateset",
    b"unknown",
    b"_total",
    b"_bucket",
    b"le=\"+Inf\"",
    b"quantile=\"0.5\"",
    b"{",
    b"}",
    b"=\"",
    b"\",",
    b"\\\"",
    b"\\n",
    b"\\\\",
    b" # {a=\"b\"} 1 1",
    b" NaN",
    b" +Inf",
    b" -Inf",
    b" 1e308",
    b" -0",
    b" 0x1p3",
    b"\n",
    b"\r\n",
    b"\t",
    b" ",
    b"\xff\xfe",
    b"\0",
];

fn check_one(input: &[u8]) {
    for (format, strict) in [(Format::Prometheus, true), (Format::OpenMetrics, true), (Format::OpenMetrics, false)] {
        let opts = ParseOptions { strict_openmetrics: strict, ..Default::default() };
        let started = Instant::now();
        let mut seen = 0usize;
        let parsed = parse_with(input, format, opts, |_| seen += 1);
        let (summary, errors) = check_with(input, format, opts);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{format:?} strict={strict}: {took:?} on {} bytes: {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        );
        match parsed {
            Ok(s) => {
                assert!(
                    errors.is_empty(),
                    "parse ok but check errs {errors:?} on {:?}",
                    String::from_utf8_lossy(input)
                );
                assert_eq!(s.samples, summary.samples);
                assert_eq!(s.samples, seen, "callback count vs summary");
            }
            Err(e) => assert!(!errors.is_empty(), "parse fails ({e}) but check finds nothing"),
        }
    }
}

fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.usize(..seeds.len())].clone();
    for _ in 0..rng.usize(1..8) {
        let at = rng.usize(..=b.len());
        match rng.u8(..6) {
            0 if !b.is_empty() => {
                let i = rng.usize(..b.len());
                b[i] = rng.u8(..);
            }
            1 if !b.is_empty() => {
                let end = (at + rng.usize(1..16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            2 => {
                let tok = DICT[rng.usize(..DICT.len())];
                b.splice(at..at, tok.iter().copied());
            }
            3 => {
                // Splice in a slice of another seed.
                let other = &seeds[rng.usize(..seeds.len())];
                if !other.is_empty() {
                    let s = rng.usize(..other.len());
                    let e = (s + rng.usize(1..64)).min(other.len());
                    b.splice(at..at, other[s..e].iter().copied());
                }
            }
            4 if !b.is_empty() => {
                // Duplicate a chunk (repeated lines, families split apart).
                let s = rng.usize(..b.len());
                let e = (s + rng.usize(1..128)).min(b.len());
                let chunk = b[s..e].to_vec();
                b.splice(at..at, chunk);
            }
            _ => b.truncate(at),
        }
    }
    b
}

#[test]
fn parser_survives_corpus_and_mutations() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let dir = Path::new(CORPUS);
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("fuzz corpus {CORPUS}: {e}")) {
        let path = entry.expect("corpus entry").path();
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_one(&body);
        seeds.push(body);
    }
    assert!(seeds.len() >= 10, "corpus too small: {} files in {CORPUS}", seeds.len());
    seeds.push(
        b"# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 2\na_count 2\na_sum 3\n# EOF\n".to_vec(),
    );

    let seed =
        std::env::var("FOREWARN_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("FOREWARN_FUZZ_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < ROUNDS && started.elapsed() < BUDGET {
        check_one(&mutate(&mut rng, &seeds));
        rounds += 1;
    }
    println!("{rounds} mutated inputs in {:.2}s", started.elapsed().as_secs_f64());
    assert!(rounds >= 10_000, "only {rounds} rounds in {BUDGET:?}: the parser is too slow");
}
