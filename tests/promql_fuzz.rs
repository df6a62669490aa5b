//! A bounded, deterministic fuzz loop over the PromQL parser and evaluator
//! (the stable-toolchain counterpart of tests/scrape_fuzz.rs): the queries
//! of the shared testdata (PromLabs' compliance set and Prometheus's
//! promqltest scripts), then seeded random mutations of them — deep
//! nesting, huge ranges and offsets, tiny subquery steps, spliced and
//! truncated text — are parsed and, when they parse, evaluated as instant
//! and range queries against a small store under short query limits.
//!
//! Nothing may panic or overflow the stack, and each case must end within
//! a few seconds (the limits stop runaway evaluation at 0.25 s). Cases run on
//! a thread with the daemon's 16 MiB stack, one `catch_unwind` per case so
//! the failing query is printed. The seed is printed; rerun one with
//! FOREWARN_FUZZ_SEED=<n>.

use std::time::{Duration, Instant};

use forewarn::labels::Labels;
use forewarn::promql::{self, limits::QueryLimits, EvalOptions};
use forewarn::store::Store;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata");
/// Mutated cases: at most this many, and no longer than `BUDGET`.
const CASES: usize = 4_000;
const BUDGET: Duration = Duration::from_secs(30);
/// One case (parse plus two evaluations) must end well within this.
const PER_CASE: Duration = Duration::from_secs(5);

/// Fragments that steer mutations to the corners: nesting, extremes,
/// operators, modifiers.
const DICT: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "-",
    "+",
    "*",
    "/",
    "%",
    "^",
    " or ",
    " and ",
    " unless ",
    " atan2 ",
    "==",
    "!=",
    ">=",
    " bool ",
    "[1y:1ms]",
    "[100y]",
    "[5m:]",
    "[1ms]",
    " offset 1000y",
    " offset -1d",
    " @ 1e15",
    " @ -1e15",
    " @ start()",
    "1e308",
    "-1e308",
    "NaN",
    "Inf",
    "0x7fffffffffffffff",
    "/0",
    "sum(",
    "rate(",
    "count_over_time(",
    "quantile_over_time(0.5,",
    "histogram_quantile(0.9,",
    "label_replace(",
    "topk(1e300,",
    "by (job)",
    " on(instance) group_left ",
    "{__name__=~\".+\"}",
    "\"",
    "'",
    "`",
    "#",
    "\n",
    ",",
    ":",
    "@",
    "9223372036854775807",
];

/// The testdata's queries: PromLabs' compliance queries (template variables
/// filled in) and every `eval` expression of the promqltest scripts.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    let yml = std::fs::read_to_string(format!("{TESTDATA}/compliance/promql/promql-test-queries.yml"))
        .expect("read shared/testdata/compliance/promql/promql-test-queries.yml");
    let fill = regex::Regex::new(r"\{\{\s*\.(\w+)\s*\}\}").unwrap();
    for line in yml.lines() {
        let Some(q) = line.trim().strip_prefix("- query: '").and_then(|q| q.strip_suffix('\'')) else { continue };
        let q = q.replace("''", "'");
        let q = fill.replace_all(&q, |c: &regex::Captures| {
            match &c[1] {
                "offset" | "range" => "5m",
                "simpleAggrOp" => "sum",
                "topBottomOp" => "topk",
                "quantile" => "0.9",
                "binOp" => "+",
                "compBinOp" => ">",
                _ => "1",
            }
            .to_string()
        });
        out.push(q.into_owned());
    }
    let dir = format!("{TESTDATA}/promqltest");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("read shared/testdata/promqltest").flatten().collect();
    files.sort_by_key(|e| e.path());
    for e in files.iter().filter(|e| e.path().extension().is_some_and(|x| x == "test")) {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("eval ") else { continue };
            // `eval [instant|range] ... at <time> <expr>` / `from .. to .. step .. <expr>`.
            let words: Vec<&str> = rest.split_whitespace().collect();
            let skip = words
                .iter()
                .position(|w| *w == "at")
                .map(|i| i + 2)
                .or_else(|| words.iter().position(|w| *w == "step").map(|i| i + 2));
            if let Some(skip) = skip.filter(|&s| s < words.len()) {
                out.push(words[skip..].join(" "));
            }
        }
    }
    out
}

/// One random mutation of `q` (a seed, possibly already mutated).
fn mutate(rng: &mut fastrand::Rng, q: &str, seeds: &[String]) -> String {
    let mut s = q.to_string();
    let at = |rng: &mut fastrand::Rng, s: &str| {
        let mut i = rng.usize(..=s.len());
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    match rng.u8(..8) {
        0 | 1 => {
            let i = at(rng, &s);
            s.insert_str(i, DICT[rng.usize(..DICT.len())]);
        }
        2 => {
            let (a, b) = (at(rng, &s), at(rng, &s));
            s.replace_range(a.min(b)..a.max(b), "");
        }
        3 => {
            // Splice with another seed.
            let other = &seeds[rng.usize(..seeds.len())];
            let (i, j) = (at(rng, &s), at(rng, other));
            s = format!("{}{}", &s[..i], &other[j..]);
        }
        4 => {
            // Nest: around the limit, or far past it.
            let n = if rng.bool() { rng.usize(990..1010) } else { rng.usize(1..50_000) };
            let (open, close) = match rng.u8(..4) {
                0 => ("-".repeat(n), String::new()),
                1 => ("(".repeat(n), ")".repeat(n)),
                2 => ("sum(".repeat(n.min(3000)), ")".repeat(n.min(3000))),
                _ => (format!("{s} + ").repeat(n.min(2000)), String::new()),
            };
            s = format!("{open}{s}{close}");
        }
        5 => {
            s = format!(
                "max_over_time(({s})[{}:{}])",
                ["1y", "30d", "1h"][rng.usize(..3)],
                ["1ms", "1s", "1m"][rng.usize(..3)]
            )
        }
        6 => s = format!("{s} offset {}y", rng.u64(..u64::MAX / 2)),
        _ => {
            let (a, b) = (at(rng, &s), at(rng, &s));
            let slice = s[a.min(b)..a.max(b)].to_string();
            let i = at(rng, &s);
            s.insert_str(i, &slice);
        }
    }
    s
}

/// A small store: a few series over the last hour, 15 s apart.
fn store(now: i64) -> Store {
    let st = Store::new(i64::MAX / 4);
    for job in ["api", "db"] {
        for inst in ["a:1", "b:2"] {
            for name in ["up", "demo_memory_usage_bytes", "http_requests", "x_total"] {
                let l = Labels::from_pairs([("__name__", name), ("job", job), ("instance", inst)]);
                for i in 0..240 {
                    st.append(&l, now - 3_600_000 + i * 15_000, (i % 17) as f64);
                }
            }
        }
    }
    st
}

/// Parses and evaluates one query; panics propagate to the caller.
fn run_case(st: &Store, q: &str, now: i64, opts: &EvalOptions) {
    let Ok(expr) = promql::parse(q) else { return };
    let _ = promql::eval_instant(st, &expr, now, opts);
    let _ = promql::eval_range(st, &expr, now - 600_000, now, 15_000, opts);
}

#[test]
fn promql_parser_and_evaluator_survive_mutated_queries() {
    let seed: u64 = std::env::var("FOREWARN_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(17);
    eprintln!("promql fuzz seed {seed} (FOREWARN_FUZZ_SEED={seed} reruns it)");
    let worker = std::thread::Builder::new().stack_size(16 * 1024 * 1024).spawn(move || {
        let seeds = seeds();
        assert!(seeds.len() > 500, "only {} seed queries found in {TESTDATA}", seeds.len());
        let now = 1_700_000_000_000;
        let st = store(now);
        let opts = EvalOptions {
            limits: QueryLimits { timeout: Duration::from_millis(250), max_samples: 200_000, ..Default::default() },
            ..Default::default()
        };
        let mut rng = fastrand::Rng::with_seed(seed);
        let started = Instant::now();
        let mut cases: Vec<String> = seeds.clone();
        for _ in 0..CASES {
            let base = seeds[rng.usize(..seeds.len())].clone();
            let mut q = mutate(&mut rng, &base, &seeds);
            if rng.bool() {
                q = mutate(&mut rng, &q, &seeds);
            }
            cases.push(q);
        }
        let mut ran = 0;
        for q in &cases {
            if ran >= seeds.len() && started.elapsed() > BUDGET {
                break;
            }
            let t = Instant::now();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&st, q, now, &opts)));
            let took = t.elapsed();
            let shown: String = q.chars().take(300).collect();
            assert!(outcome.is_ok(), "panicked on query ({} bytes): {shown:?}", q.len());
            assert!(took < PER_CASE, "{took:?} on query ({} bytes): {shown:?}", q.len());
            ran += 1;
        }
        eprintln!("{ran} PromQL cases ({} seeds) in {:?}", seeds.len(), started.elapsed());
        ran
    });
    let ran = worker.expect("spawn the fuzz thread").join().expect("the fuzz loop failed (see above)");
    assert!(ran > 1000, "only {ran} cases ran");
}
