//! Conformance of `forewarn::scrape::parse` against third-party test data in
//! ../shared/testdata (see SOURCES.md there): the OpenMetrics parser test
//! suite, Prometheus' and prometheus/common's parser test inputs, and real
//! exporter bodies (node_exporter fixtures, promtool).

use std::path::{Path, PathBuf};

use forewarn::scrape::parse::{
    check, metadata, parse, parse_with, Format, MetricType, ParseError, ParseOptions, ParseSummary,
};
use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata")).join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let p = data(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[derive(Debug, Clone, PartialEq)]
struct Owned {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
}

fn collect(body: &[u8], fmt: Format) -> Result<(Vec<Owned>, ParseSummary), ParseError> {
    let mut out = Vec::new();
    let sum = parse(body, fmt, |s| {
        out.push(Owned {
            name: s.name.to_owned(),
            labels: s.labels.iter().map(|(k, v)| ((*k).to_owned(), v.to_string())).collect(),
            value: s.value,
            ts: s.timestamp_ms,
        })
    })?;
    Ok((out, sum))
}

/// (name, [(label, value)], value, timestamp_ms)
type Exp<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, Option<i64>);

fn assert_samples(case: &str, got: &[Owned], want: &[Exp<'_>]) {
    assert_eq!(got.len(), want.len(), "{case}: sample count; got {got:#?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (name, labels, value, ts) = *w;
        assert_eq!(g.name, name, "{case}: sample {i} name");
        let wl: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(g.labels, wl, "{case}: sample {i} labels");
        let same = (g.value.is_nan() && value.is_nan()) || g.value == value;
        assert!(same, "{case}: sample {i} value {} != {value}", g.value);
        assert_eq!(g.ts, ts, "{case}: sample {i} timestamp");
    }
}

// ---------------------------------------------------------------------------
// OpenMetrics parser test suite (tests/testdata/parsers/*)
// ---------------------------------------------------------------------------

const OM_SUITE: &str = "openmetrics/tests/testdata/parsers";

/// Cases whose verdict we knowingly differ from. Empty: all pass.
const OM_EXCEPTIONS: &[&str] = &[];

#[test]
fn openmetrics_suite_verdicts() {
    let dir = data(OM_SUITE);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("openmetrics test dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("test.json").exists())
        .collect();
    cases.sort();
    let (mut good, mut bad, mut failures) = (0, 0, Vec::new());
    for case in &cases {
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let meta: Value = serde_json::from_slice(&std::fs::read(case.join("test.json")).expect("test.json"))
            .expect("test.json is JSON");
        assert_eq!(meta["type"], "text", "{name}");
        let file = meta["file"].as_str().unwrap_or("metrics");
        let body = std::fs::read(case.join(file)).expect("metrics file");
        let should = meta["shouldParse"].as_bool().expect("shouldParse");
        let res = parse(&body, Format::OpenMetrics, |_| {});
        if should {
            good += 1;
        } else {
            bad += 1;
        }
        if res.is_ok() != should && !OM_EXCEPTIONS.contains(&name.as_str()) {
            failures.push(format!("{name}: shouldParse={should}, got {res:?}"));
        }
        // `check` must agree with `parse` on the verdict.
        let (_, errs) = check(&body, Format::OpenMetrics);
        assert_eq!(errs.is_empty(), res.is_ok(), "{name}: check vs parse");
    }
    eprintln!("openmetrics suite: {} cases ({good} good, {bad} bad), {} failing", cases.len(), failures.len());
    assert_eq!(cases.len(), 211, "suite size changed");
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}

fn om_case(name: &str) -> Vec<Owned> {
    let body = read(&format!("{OM_SUITE}/{name}/metrics"));
    match collect(&body, Format::OpenMetrics) {
        Ok((s, _)) => s,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Expected values below were derived by reading each case's body.
#[test]
fn openmetrics_good_cases_sample_by_sample() {
    assert_samples("simple_counter", &om_case("simple_counter"), &[("a_total", &[], 1.0, None)]);
    assert_samples("counter_exemplars", &om_case("counter_exemplars"), &[("a_total", &[], 0.0, Some(123_000))]);
    assert_samples(
        "escaping",
        &om_case("escaping"),
        &[
            ("a_total", &[("foo", "b\"a\nr")], 1.0, None),
            ("a_total", &[("foo", "b\\a\\z")], 2.0, None),
            ("a_total", &[("foo", "b\"a\nr # ")], 3.0, None),
            ("a_total", &[("foo", "b\\a\\z # ")], 4.0, None),
        ],
    );
    assert_samples(
        "timestamps",
        &om_case("timestamps"),
        &[
            ("a_total", &[("foo", "1")], 1.0, Some(0)),
            ("a_total", &[("foo", "2")], 1.0, Some(0)),
            ("a_total", &[("foo", "3")], 1.0, Some(1100)),
            // 1.2e19 s is beyond i64 milliseconds: saturates.
            ("a_total", &[("foo", "4")], 1.0, Some(i64::MAX)),
            ("a_total", &[("foo", "5")], 1.0, Some(1_500_000)),
            ("b_total", &[], 2.0, Some(1_234_567_890_000)),
        ],
    );
    assert_samples(
        "labels_and_infinite",
        &om_case("labels_and_infinite"),
        &[("a", &[("foo", "bar")], f64::INFINITY, None), ("a", &[("foo", "baz")], f64::NEG_INFINITY, None)],
    );
    assert_samples("nan", &om_case("nan"), &[("a", &[], f64::NAN, None)]);
    assert_samples("leading_zeros_float_gauge", &om_case("leading_zeros_float_gauge"), &[("a", &[], 0.12, None)]);
    assert_samples(
        "uint64_counter",
        &om_case("uint64_counter"),
        &[("a_total", &[], 9_223_372_036_854_775_808.0, None)],
    );
    assert_samples(
        "hash_in_label_value",
        &om_case("hash_in_label_value"),
        &[("a_total", &[("foo", "foo # bar")], 1.0, None), ("a_total", &[("foo", "} foo # bar # ")], 1.0, None)],
    );
    assert_samples(
        "exemplars_with_hash_in_label_values",
        &om_case("exemplars_with_hash_in_label_values"),
        &[
            ("a_bucket", &[("le", "1.0"), ("foo", "bar # ")], 0.0, None),
            ("a_bucket", &[("le", "2.0"), ("foo", "bar # ")], 2.0, None),
            ("a_bucket", &[("le", "+Inf"), ("foo", "bar # ")], 3.0, None),
        ],
    );
    assert_samples(
        "summary_quantiles",
        &om_case("summary_quantiles"),
        &[
            ("a_count", &[], 1.0, None),
            ("a_sum", &[], 2.0, None),
            ("a", &[("quantile", "0.5")], 0.7, None),
            ("a", &[("quantile", "1")], 0.8, None),
        ],
    );
    assert_samples(
        "simple_stateset",
        &om_case("simple_stateset"),
        &[("a", &[("a", "bar")], 0.0, None), ("a", &[("a", "foo")], 1.0, None)],
    );
    assert_samples(
        "info_timestamps",
        &om_case("info_timestamps"),
        &[
            ("a_info", &[("a", "1"), ("foo", "bar")], 1.0, Some(1000)),
            ("a_info", &[("a", "2"), ("foo", "bar")], 1.0, Some(0)),
        ],
    );
    assert_samples(
        "duplicate_timestamps_0",
        &om_case("duplicate_timestamps_0"),
        &[
            ("a", &[("a", "1"), ("foo", "bar")], 1.0, Some(0)),
            ("a", &[("a", "1"), ("foo", "bar")], 2.0, Some(0)),
            ("a", &[("a", "1"), ("foo", "bar")], 3.0, Some(0)),
            ("a", &[("a", "2"), ("foo", "bar")], 4.0, Some(0)),
            ("a", &[("a", "2"), ("foo", "bar")], 5.0, Some(0)),
        ],
    );
    assert_samples(
        "negative_bucket_gaugehistogram",
        &om_case("negative_bucket_gaugehistogram"),
        &[
            ("a_bucket", &[("le", "-1.0")], 1.0, None),
            ("a_bucket", &[("le", "1.0")], 2.0, None),
            ("a_bucket", &[("le", "+Inf")], 3.0, None),
            ("a_gcount", &[], 3.0, None),
            ("a_gsum", &[], -5.0, None),
        ],
    );
    assert_samples("no_newline_after_eof", &om_case("no_newline_after_eof"), &[("a", &[], 1.0, None)]);
    // label_escaping: a0..a9, one sample each; check the values.
    let got = om_case("label_escaping");
    let foo: Vec<&str> = got.iter().map(|s| s.labels[0].1.as_str()).collect();
    assert_eq!(foo, ["foo", "\\foo", "\\foo", "foo\\", "\\", "\n", "\\n", "\\\n", "\"", "\\\""]);
    assert!(got.iter().all(|s| s.labels[1] == ("bar".into(), "baz".into())));
}

#[test]
fn openmetrics_roundtrip_case_counts() {
    let body = read(&format!("{OM_SUITE}/roundtrip/metrics"));
    let (samples, sum) = collect(&body, Format::OpenMetrics).expect("roundtrip parses");
    // By hand: 7 + 1 + 5 + 1 + 1 + 1 + 8 + 14 + 2 sample lines; all distinct.
    assert_eq!(sum.samples, 40);
    assert_eq!(sum.series, 40);
    // go_gc_duration_seconds, go_goroutines, ..._indexing_batch_duration_milliseconds,
    // process_cpu_seconds, process_virtual_memory_bytes, prometheus_build_info,
    // prometheus_local_storage_chunk_ops, foo, bar.
    assert_eq!(sum.metric_families, 9);
    let created = samples.iter().find(|s| s.name == "foo_created").expect("foo_created");
    assert_eq!(created.value, 1.520430000123e9);
}

#[test]
fn openmetrics_help_metadata() {
    let body = read(&format!("{OM_SUITE}/help_escaping/metrics"));
    let md = metadata(&body, Format::OpenMetrics).expect("parses");
    let helps: Vec<&str> = md.iter().filter_map(|m| m.help.as_deref()).collect();
    assert_eq!(helps, ["foo", "\\foo", "\\foo", "foo\\", "\\", "\n", "\\n", "\\\n", "\"", "\\\""]);
    assert!(md.iter().all(|m| m.metric_type == Some(MetricType::Counter)));
    let body = read(&format!("{OM_SUITE}/null_byte/metrics"));
    let md = metadata(&body, Format::OpenMetrics).expect("parses");
    assert_eq!(md[0].help.as_deref(), Some("he\0lp"));
    let body = read(&format!("{OM_SUITE}/counter_unit/metrics"));
    let md = metadata(&body, Format::OpenMetrics).expect("parses");
    assert_eq!(md[0].unit.as_deref(), Some("seconds"));
}

// ---------------------------------------------------------------------------
// Prometheus' parser test inputs (model/textparse)
// ---------------------------------------------------------------------------

/// Input of an extracted case: "input", or raw bytes in "input_hex".
fn case_input(c: &Value) -> Vec<u8> {
    if let Some(h) = c["input_hex"].as_str() {
        (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect()
    } else {
        c["input"].as_str().expect("input").as_bytes().to_vec()
    }
}

fn json_cases(rel: &str) -> Vec<Value> {
    match serde_json::from_slice(&read(rel)).expect("json") {
        Value::Array(a) => a,
        _ => panic!("{rel}: not an array"),
    }
}

#[test]
fn prometheus_textparse_error_cases() {
    let mut n = 0;
    for (rel, fmt) in [
        ("exposition/prometheus_textparse/extracted/prom_parse_errors.json", Format::Prometheus),
        ("exposition/prometheus_textparse/extracted/prom_null_byte_cases.json", Format::Prometheus),
        ("exposition/prometheus_textparse/extracted/openmetrics_parse_errors.json", Format::OpenMetrics),
        ("exposition/prometheus_textparse/extracted/openmetrics_null_byte_cases.json", Format::OpenMetrics),
    ] {
        for c in json_cases(rel) {
            let input = case_input(&c);
            let expected = c["expected_error"].as_str().expect("expected_error");
            // Prometheus' tests use "EOF" (io.EOF) to mean "parsed to the end".
            let should_parse = expected.is_empty() || expected == "EOF";
            for strict in [true, false] {
                let res =
                    parse_with(&input, fmt, ParseOptions { strict_openmetrics: strict, ..Default::default() }, |_| {});
                assert_eq!(
                    res.is_ok(),
                    should_parse,
                    "{rel} (strict={strict}): input {:?} expected {expected:?}, got {res:?}",
                    String::from_utf8_lossy(&input)
                );
            }
            n += 1;
        }
    }
    eprintln!("prometheus textparse error/null-byte cases: {n} passed");
    assert_eq!(n, 18 + 9 + 70 + 12);
}

#[test]
fn prometheus_textparse_good_inputs() {
    let base = "exposition/prometheus_textparse/extracted";
    // Prometheus format: parses; 27 sample lines (grep), of which
    // `go_gc_duration_seconds{quantile="1.0",a="b"}` appears 4 times with
    // varying blanks, so 24 series.
    let (s, sum) =
        collect(&read(&format!("{base}/prom_parse_good_input.txt")), Format::Prometheus).expect("prom good input");
    assert_eq!(sum.samples, 27);
    assert_eq!(sum.series, 24);
    let nul = s.iter().find(|x| x.name == "null_byte_metric").expect("null byte metric");
    assert_eq!(nul.labels[0].1, "abc\0");
    let w = s.iter().find(|x| x.name == "go_goroutines").expect("go_goroutines");
    assert_eq!((w.value, w.ts), (33.0, Some(123_123)));

    let (s, sum) = collect(&read(&format!("{base}/prom_parse_utf8_good_input.txt")), Format::Prometheus)
        .expect("prom utf8 good input");
    assert_eq!(sum.samples, 11);
    assert_eq!(s[0].name, "go.gc_duration_seconds");
    let last = s.last().expect("samples");
    assert_eq!(last.name, "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}");
    assert_eq!(last.labels, [("strange©™\n'quoted' \"name\"".into(), "6".into())]);

    // OpenMetrics: these inputs are Prometheus' *lenient* OpenMetrics parser's
    // happy path; they break OpenMetrics' validity rules on purpose (exemplars
    // on _count, an interleaved family, info without _info, a stateset sample
    // without its state label, repeated series), so they parse only with
    // `strict_openmetrics: false` and must be rejected in strict mode.
    let lenient = ParseOptions { strict_openmetrics: false, ..Default::default() };
    for (file, samples) in [("openmetrics_parse_good_input.txt", 61), ("openmetrics_parse_utf8_good_input.txt", 11)] {
        let body = read(&format!("{base}/{file}"));
        let sum =
            parse_with(&body, Format::OpenMetrics, lenient, |_| {}).unwrap_or_else(|e| panic!("{file} (lenient): {e}"));
        assert_eq!(sum.samples, samples, "{file}");
        assert!(parse(&body, Format::OpenMetrics, |_| {}).is_err(), "{file} strict");
    }
}

// ---------------------------------------------------------------------------
// prometheus/common expfmt: text_parse_errors.json and the fuzz corpus
// ---------------------------------------------------------------------------

#[test]
fn prometheus_common_error_cases() {
    let cases = json_cases("exposition/prometheus_common/text_parse_errors.json");
    let mut n = 0;
    for c in &cases {
        let input = case_input(c);
        let num = c["n"].as_u64().expect("n");
        let expected = c["expected_error_utf8"].as_str().expect("expected_error_utf8");
        // Case 0 is "no newline at the end of the input": prometheus/common
        // rejects it, but Prometheus itself (model/textparse, see
        // prom_null_byte_cases.json's first case) accepts it, and forewarn
        // follows the server. Its body is otherwise valid.
        let should_parse = expected.is_empty() || num == 0;
        let res = parse(&input, Format::Prometheus, |_| {});
        assert_eq!(
            res.is_ok(),
            should_parse,
            "case {num}: {:?}: expected {expected:?}, got {res:?}",
            String::from_utf8_lossy(&input)
        );
        if let Err(e) = &res {
            // Errors name the same line prometheus/common does.
            let want_line: usize = expected
                .strip_prefix("text format parsing error in line ")
                .and_then(|r| r.split(':').next())
                .and_then(|l| l.parse().ok())
                .expect("line in expected error");
            assert_eq!(e.line, want_line, "case {num}: {e}");
        }
        n += 1;
    }
    eprintln!("prometheus/common text_parse_errors: {n} cases passed (1 documented divergence)");
    assert_eq!(n, 48);
}

#[test]
fn prometheus_common_fuzz_corpus() {
    let dir = data("exposition/prometheus_common/fuzz_corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let body = std::fs::read(dir.join(name)).expect("read");
        let res = parse(&body, Format::Prometheus, |_| {});
        // from_test_parse_error_0 is "bla 3.14" without a final newline: the
        // same documented divergence as case 0 above.
        let bad = name.starts_with("from_test_parse_error_") && name != "from_test_parse_error_0";
        assert_eq!(res.is_err(), bad, "{name}: {res:?}");
    }
    assert_eq!(names.len(), 26);
    // from_test_parse_3 by hand: 12 sample lines, all distinct series;
    // families: my_summary, decoy, fake_sum, another_summary.
    let body = read("exposition/prometheus_common/fuzz_corpus/from_test_parse_3");
    let (s, sum) = collect(&body, Format::Prometheus).expect("parses");
    assert_eq!((sum.samples, sum.series, sum.metric_families), (12, 12, 4));
    assert_eq!(s[1].ts, Some(-2));
    assert_eq!((s[11].name.as_str(), s[11].value.is_nan()), ("my_summary", true));
    // from_test_parse_2: blanks everywhere, `}` directly followed by the value.
    let body = read("exposition/prometheus_common/fuzz_corpus/from_test_parse_2");
    let (s, _) = collect(&body, Format::Prometheus).expect("parses");
    assert_eq!(s.len(), 4);
    assert_eq!(s[1].labels[1].1, "base\"v\\al\nue");
    assert_eq!(s[1].ts, Some(1_234_567_890));
    assert_eq!(s[3].value, f64::NEG_INFINITY);
    assert_eq!(s[3].labels, [("labelname".into(), "val1".into())]);
}

// ---------------------------------------------------------------------------
// Real bodies
// ---------------------------------------------------------------------------

/// Reference counts computed independently of this parser:
/// samples = non-blank lines not starting with `#`
///   (`grep -v '^[[:space:]]*#' F | grep -c '[^[:space:]]'`);
/// series = distinct `name{labels}` prefixes of those lines
///   (`sed -E 's/^([^{ ]*(\{[^}]*\})?).*/\1/' | sort -u | wc -l`);
/// families = distinct names in HELP/TYPE lines plus sample names not
///   derivable from a typed family by its suffixes (a 30-line Python script).
const BODIES: &[(&str, Format, usize, usize, usize)] = &[
    ("exposition/node_exporter/e2e-output.txt", Format::Prometheus, 3027, 3027, 1228),
    ("exposition/node_exporter/e2e-output-darwin.txt", Format::Prometheus, 103, 103, 96),
    ("exposition/node_exporter/e2e-output-dragonfly.txt", Format::Prometheus, 89, 89, 81),
    ("exposition/node_exporter/e2e-output-freebsd.txt", Format::Prometheus, 106, 106, 95),
    ("exposition/node_exporter/e2e-output-netbsd.txt", Format::Prometheus, 52, 52, 77),
    ("exposition/node_exporter/e2e-output-openbsd.txt", Format::Prometheus, 101, 101, 86),
    ("exposition/node_exporter/e2e-output-solaris.txt", Format::Prometheus, 84, 84, 75),
    ("exposition/prometheus_textparse/alltypes.237mfs.prom.txt", Format::Prometheus, 1857, 1857, 237),
    ("exposition/prometheus_textparse/alltypes.237mfs.nometa.prom.txt", Format::Prometheus, 1857, 1857, 291),
    ("exposition/prometheus_textparse/v2.53.0/promtestdata.txt", Format::Prometheus, 410, 410, 59),
    ("exposition/prometheus_textparse/v2.53.0/promtestdata.nometa.txt", Format::Prometheus, 410, 410, 85),
    ("exposition/prometheus_common/text", Format::Prometheus, 248, 248, 37),
    ("exposition/promtool/metrics-test.prom", Format::Prometheus, 27, 27, 4),
    ("exposition/prometheus_textparse/1histogram.om.txt", Format::OpenMetrics, 42, 42, 1),
];

#[test]
fn real_bodies_parse_with_expected_counts() {
    for &(rel, fmt, samples, series, families) in BODIES {
        let body = read(rel);
        let sum = parse(&body, fmt, |_| {}).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            (sum.samples, sum.series, sum.metric_families),
            (samples, series, families),
            "{rel}: (samples, series, families)"
        );
        let (csum, errs) = check(&body, fmt);
        assert!(errs.is_empty(), "{rel}: {errs:?}");
        assert_eq!(csum, sum, "{rel}: check summary");
    }
    eprintln!("real bodies: {} parsed with expected counts", BODIES.len());
}

/// client_golang's example app (Prometheus' alltypes.5mfs.om.txt) observes
/// negative durations: its histogram has negative buckets *and* a `_sum`, and
/// its summary has negative quantile values. OpenMetrics forbids both (the
/// suite's bad_counter_values_9 and _19 are exactly these), so strict parsing
/// rejects the body; the lenient mode, which is what Prometheus applies when
/// scraping, accepts it with the grep-derived counts (53 samples, 53 series,
/// 5 families).
#[test]
fn client_golang_openmetrics_body_strict_vs_lenient() {
    let body = read("exposition/prometheus_textparse/alltypes.5mfs.om.txt");
    let e = parse(&body, Format::OpenMetrics, |_| {}).expect_err("strict rejects");
    assert_eq!(e.line, 33, "{e}");
    assert!(e.message.contains("_sum"), "{e}");
    let (_, errs) = check(&body, Format::OpenMetrics);
    assert!(errs.iter().any(|e| e.message.contains("quantile value")), "{errs:?}");
    let sum = parse_with(
        &body,
        Format::OpenMetrics,
        ParseOptions { strict_openmetrics: false, ..Default::default() },
        |_| {},
    )
    .expect("lenient parses");
    assert_eq!((sum.samples, sum.series, sum.metric_families), (53, 53, 5));
}

#[test]
fn real_bodies_survive_crlf() {
    // The same node_exporter body with CRLF line endings (Prometheus format).
    let body = read("exposition/node_exporter/e2e-output.txt");
    let mut crlf = Vec::with_capacity(body.len() + 6000);
    for &b in &body {
        if b == b'\n' {
            crlf.push(b'\r');
        }
        crlf.push(b);
    }
    let sum = parse(&crlf, Format::Prometheus, |_| {}).expect("crlf parses");
    assert_eq!((sum.samples, sum.series), (3027, 3027));
}

/// Every node_exporter textfile-collector fixture (inputs and expected
/// outputs) parses; sample counts equal the number of non-blank,
/// non-comment lines, counted here by plain line inspection.
#[test]
fn node_exporter_textfile_fixtures() {
    let root = data("exposition/node_exporter/textfile_fixtures");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).expect("fixtures") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p).expect("dir") {
                files.push(f.expect("entry").path());
            }
        } else {
            files.push(p);
        }
    }
    files.sort();
    // `*.txt` files there are deliberately not metrics ("This file should be
    // ignored.") and must be rejected.
    let (junk, files): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| p.extension().is_some_and(|e| e == "txt"));
    for f in &junk {
        let body = std::fs::read(f).expect("read");
        assert!(parse(&body, Format::Prometheus, |_| {}).is_err(), "{}", f.display());
    }
    assert_eq!(junk.len(), 2);
    for f in &files {
        let body = std::fs::read(f).expect("read");
        let lines = body
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).trim().to_owned())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        let sum = parse(&body, Format::Prometheus, |_| {}).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(sum.samples, lines, "{}", f.display());
    }
    eprintln!("node_exporter textfile fixtures: {} files parsed", files.len());
    assert_eq!(files.len(), 32);
}
