//! Unit tests for the exposition parser, one feature at a time.

use std::borrow::Cow;

use super::*;

/// Parses and returns owned copies of the samples.
/// (name, labels, value, timestamp_ms), owned.
type Owned = (String, Vec<(String, String)>, f64, Option<i64>);

fn samples(body: &str, fmt: Format) -> Result<Vec<Owned>, ParseError> {
    let mut out = Vec::new();
    parse(body.as_bytes(), fmt, |s| {
        out.push((
            s.name.to_owned(),
            s.labels.iter().map(|(k, v)| ((*k).to_owned(), v.to_string())).collect(),
            s.value,
            s.timestamp_ms,
        ))
    })?;
    Ok(out)
}

fn one(body: &str, fmt: Format) -> Owned {
    let mut v = samples(body, fmt).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    assert_eq!(v.len(), 1, "{body:?}");
    v.remove(0)
}

fn err(body: &[u8], fmt: Format) -> ParseError {
    match parse(body, fmt, |_| {}) {
        Ok(s) => panic!("{:?} parsed: {s:?}", String::from_utf8_lossy(body)),
        Err(e) => e,
    }
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

const P: Format = Format::Prometheus;
const OM: Format = Format::OpenMetrics;

#[test]
fn content_type_and_accept() {
    assert_eq!(Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"), OM);
    assert_eq!(Format::from_content_type("Application/OpenMetrics-Text"), OM);
    assert_eq!(Format::from_content_type("text/plain; version=0.0.4"), P);
    assert_eq!(Format::from_content_type(""), P);
    assert_eq!(Format::from_content_type("application/json"), P);
    let om = ACCEPT_HEADER.find("application/openmetrics-text;version=1.0.0");
    let text = ACCEPT_HEADER.find("text/plain;version=0.0.4");
    assert!(om.is_some() && text.is_some() && om < text, "{ACCEPT_HEADER}");
    assert!(ACCEPT_HEADER.contains("q="));
}

#[test]
fn simple_samples_and_summary() {
    let body = "# HELP a The a.\n# TYPE a gauge\na 1\na{x=\"y\"} 2\nb 3\n";
    let sum = parse(body.as_bytes(), P, |_| {}).expect("parses");
    assert_eq!(sum, ParseSummary { samples: 3, series: 3, metric_families: 2 });
}

#[test]
fn label_values_borrow_unless_escaped() {
    let body = br#"m{plain="abc",esc="a\"b\\c\nd"} 1
"#;
    let mut seen = 0;
    parse(body, P, |s| {
        assert!(matches!(s.labels[0].1, Cow::Borrowed("abc")));
        assert!(matches!(&s.labels[1].1, Cow::Owned(v) if v == "a\"b\\c\nd"));
        assert_eq!(s.label("esc"), Some("a\"b\\c\nd"));
        seen += 1;
    })
    .expect("parses");
    assert_eq!(seen, 1);
}

#[test]
fn numbers() {
    for (text, want) in [
        ("1", 1.0),
        ("-1", -1.0),
        ("+3", 3.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1.5E-3", 0.0015),
        ("-2.5e+2", -250.0),
        ("007", 7.0),
        ("123456789012345678901234567890", 1.2345678901234568e29),
        ("+Inf", f64::INFINITY),
        ("Inf", f64::INFINITY),
        ("inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("+infinity", f64::INFINITY),
    ] {
        for fmt in [P, OM] {
            let body = format!("m {text}\n# EOF\n");
            let body = if fmt == P { body.replace("# EOF\n", "") } else { body };
            assert_eq!(one(&body, fmt).2, want, "{text} {fmt:?}");
        }
    }
    assert!(one("m NaN\n", P).2.is_nan());
    assert!(one("m nan\n", P).2.is_nan());
    for bad in ["0x1p-3", "1_2", "0b1", "0o1", "0X1", "1e", "e1", ".", "-", "1.2.3", "true", "1e999", "-NaN", "Infx"] {
        let e = err(format!("m {bad}\n").as_bytes(), P);
        assert_eq!((e.line, e.col), (1, 3), "{bad}: {e}");
    }
}

#[test]
fn timestamps() {
    assert_eq!(one("m 1 1700000000123\n", P).3, Some(1_700_000_000_123));
    assert_eq!(one("m 1 -5\n", P).3, Some(-5));
    // Prometheus format timestamps are integers.
    err(b"m 1 1.5\n", P);
    err(b"m 1 99999999999999999999\n", P);
    err(b"m 1 2 3\n", P);
    // OpenMetrics: float seconds -> milliseconds.
    assert_eq!(one("m 1 1520879607.789\n# EOF\n", OM).3, Some(1_520_879_607_789));
    assert_eq!(one("m 1 -1.5\n# EOF\n", OM).3, Some(-1500));
    assert_eq!(one("m 1 1.5e3\n# EOF\n", OM).3, Some(1_500_000));
    for bad in ["NaN", "Inf", "-Inf", "z", "1z", "0x1p-3"] {
        err(format!("m 1 {bad}\n# EOF\n").as_bytes(), OM);
    }
}

#[test]
fn help_type_comments_and_metadata() {
    let body = "# A comment\n#\n# HELP m Some \\\\ help\\n here \\\" x\n# TYPE m counter\nm 1\n# HELPER not metadata\n";
    let md = metadata(body.as_bytes(), P).expect("parses");
    assert_eq!(md.len(), 1);
    assert_eq!(md[0].name, "m");
    assert_eq!(md[0].metric_type, Some(MetricType::Counter));
    // 0.0.4 HELP escapes only backslash and newline.
    assert_eq!(md[0].help.as_deref(), Some("Some \\ help\n here \\\" x"));

    let body =
        "# TYPE m_seconds counter\n# UNIT m_seconds seconds\n# HELP m_seconds He\\\"lp\nm_seconds_total 1\n# EOF\n";
    let md = metadata(body.as_bytes(), OM).expect("parses");
    assert_eq!(md[0].unit.as_deref(), Some("seconds"));
    assert_eq!(md[0].help.as_deref(), Some("He\"lp"));

    // prometheus/common's rules on metadata.
    assert_eq!(err(b"# TYPE m counter\n# TYPE m gauge\n", P).line, 2);
    assert_eq!(err(b"# HELP m a\n# HELP m b\n", P).line, 2);
    assert_eq!(err(b"m 1\n# TYPE m counter\n", P).line, 2);
    assert_eq!(err(b"# TYPE m bla\n", P).col, 10);
    assert_eq!(err(b"# TYPE met-ric counter\n", P).col, 11);
    // A bare "# HELP name" is a comment.
    parse(b"# HELP m\n# HELP m x\nm 1\n", P, |_| {}).expect("parses");
}

#[test]
fn all_types_and_suffixes_become_samples() {
    let body = "\
# TYPE h histogram
h_bucket{le=\"1\"} 1
h_bucket{le=\"+Inf\"} 2
h_count 2
h_sum 3.5
h_created 1
# TYPE s summary
s{quantile=\"0.5\"} 1
s_count 2
s_sum 3
# TYPE g gaugehistogram
g_bucket{le=\"+Inf\"} 2
g_gcount 2
g_gsum 1
# TYPE i info
i_info{v=\"1\"} 1
# TYPE st stateset
st{st=\"a\"} 1
st{st=\"b\"} 0
# TYPE u unknown
u 1
# TYPE c counter
c_total 1
c_created 1
# EOF
";
    let names: Vec<String> = samples(body, OM).expect("parses").into_iter().map(|s| s.0).collect();
    assert_eq!(names.len(), 17);
    assert!(names.contains(&"h_created".to_owned()) && names.contains(&"g_gsum".to_owned()));
    let sum = parse(body.as_bytes(), OM, |_| {}).expect("parses");
    assert_eq!(sum.metric_families, 7);
    // The same in Prometheus format (no EOF needed, untyped allowed).
    let prom = body.replace("# EOF\n", "") + "# TYPE x untyped\nx 1\n";
    let sum = parse(prom.as_bytes(), P, |_| {}).expect("parses");
    assert_eq!((sum.samples, sum.metric_families), (18, 8));
    err(b"# TYPE x untyped\n# EOF\n", OM);
}

#[test]
fn crlf_only_in_prometheus_format() {
    let s = samples("# TYPE m gauge\r\nm{a=\"b\"} 1 5\r\n\r\nn 2\r\n", P).expect("parses");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].3, Some(5));
    assert_eq!(s[1].2, 2.0);
    err(b"m 1\r\n# EOF\r\n", OM);
}

#[test]
fn empty_braces_colons_whitespace() {
    assert_eq!(one("m{} 1\n", P).1, l(&[]));
    assert_eq!(one("m{} 1\n# EOF\n", OM).0, "m");
    assert_eq!(one("job:rate5m:sum{a=\"b\"} 1\n", P).0, "job:rate5m:sum");
    assert_eq!(one("job:rate5m:sum 1\n# EOF\n", OM).0, "job:rate5m:sum");
    // Prometheus format: blanks around tokens, trailing comma, no final newline.
    let s = one("  m { a = \"1\" ,\tb=\"2\", }\t 3 \t 4  ", P);
    assert_eq!((s.1, s.2, s.3), (l(&[("a", "1"), ("b", "2")]), 3.0, Some(4)));
    // OpenMetrics is exact about spaces.
    for bad in ["m  1\n", "m 1 \n", "m{a=\"1\",} 1\n", "m {a=\"1\"} 1\n", " m 1\n", "m\t1\n"] {
        err(format!("{bad}# EOF\n").as_bytes(), OM);
    }
}

#[test]
fn empty_lines() {
    assert_eq!(samples("\n\nm 1\n\n  \n", P).expect("parses").len(), 1);
    let e = err(b"m 1\n\n# EOF\n", OM);
    assert_eq!((e.line, e.col), (2, 1));
    let sum = parse(b"", P, |_| {}).expect("empty body");
    assert_eq!(sum, ParseSummary::default());
}

#[test]
fn quoted_utf8_names() {
    let s = one("{\"my.metric\", \"a.b\"=\"c\", d=\"e\"} 1\n", P);
    assert_eq!(s.0, "my.metric");
    assert_eq!(s.1, l(&[("a.b", "c"), ("d", "e")]));
    let s = one("{\"my.metric\",\"a.b\"=\"c\"} 1\n# EOF\n", OM);
    assert_eq!((s.0.as_str(), s.1), ("my.metric", l(&[("a.b", "c")])));
    // Name given last, escapes in names.
    let s = one("{a=\"1\",\"we\\\"ird\\nname\"} 1\n", P);
    assert_eq!(s.0, "we\"ird\nname");
    let s = one("m{\"la\\\\bel\"=\"v\"} 1\n", P);
    assert_eq!(s.1, l(&[("la\\bel", "v")]));
    // Metadata with quoted names.
    let md = metadata(b"# TYPE \"my.metric\" gauge\n{\"my.metric\"} 1\n", P).expect("parses");
    assert_eq!(md[0].name, "my.metric");
    // Errors: two names, no name, empty name.
    err(b"{\"a\",\"b\"} 1\n", P);
    err(b"m{\"b\"} 1\n", P);
    err(b"{a=\"b\"} 1\n", P);
    err(b"{} 1\n", P);
    err(b"{\"\"} 1\n", P);
    // Duplicate after decoding escapes.
    err(b"m{\"a\"=\"1\",a=\"2\"} 1\n", P);
}

#[test]
fn duplicate_and_reserved_labels() {
    let e = err(b"m 1\nm{a=\"1\",b=\"2\",a=\"3\"} 1\n", P);
    assert_eq!((e.line, e.col), (2, 15), "{e}");
    assert!(e.message.contains("duplicate"), "{e}");
    err(b"m{a=\"1\",a=\"1\"} 1\n# EOF\n", OM);
    err(b"m{__name__=\"x\"} 1\n", P);
    // Many labels take the hashed path; duplicates are still caught.
    let mut line = String::from("m{");
    for i in 0..100 {
        line.push_str(&format!("l{i}=\"v\","));
    }
    let ok = format!("{line}}} 1\n");
    assert_eq!(one(&ok, P).1.len(), 100);
    let dup = format!("{line}l7=\"x\"}} 1\n");
    assert!(err(dup.as_bytes(), P).message.contains("duplicate"));
}

#[test]
fn invalid_utf8_is_reported_with_position() {
    let e = err(b"ok 1\nm{a=\"x\xffy\"} 1\n", P);
    assert_eq!((e.line, e.col), (2, 7), "{e}");
    assert!(e.message.contains("UTF-8") && e.message.contains("label value"), "{e}");
    let e = err(b"m{\"a\xc3\"=\"x\"} 1\n", P);
    assert!(e.message.contains("UTF-8"), "{e}");
    let e = err(b"m{\xff=\"x\"} 1\n", P);
    assert_eq!((e.line, e.col), (1, 3));
    let e = err(b"# HELP m bad \xfe help\n", P);
    assert_eq!((e.line, e.col), (1, 14));
    // Plain comments are not inspected in the Prometheus format.
    parse(b"# caf\xe9\nm 1\n", P, |_| {}).expect("comment ignored");
    err(b"# HELP m caf\xe9\n# EOF\n", OM);
}

#[test]
fn label_value_escapes() {
    assert_eq!(one("m{a=\"x\\\\y\"} 1\n", P).1, l(&[("a", "x\\y")]));
    assert_eq!(one("m{a=\"x\\ny\"} 1\n", P).1, l(&[("a", "x\ny")]));
    assert_eq!(one("m{a=\"x\\\"y\"} 1\n", P).1, l(&[("a", "x\"y")]));
    // Unknown escapes: an error in 0.0.4 (as prometheus/common), kept verbatim
    // in OpenMetrics (its ABNF allows `\` + any char).
    let e = err(b"m{a=\"x\\ty\"} 1\n", P);
    assert_eq!(e.col, 7);
    assert_eq!(one("m{a=\"x\\ty\"} 1\n# EOF\n", OM).1, l(&[("a", "x\\ty")]));
    // Unterminated.
    err(b"m{a=\"x} 1\n", P);
    err(b"m{a=\"x\\\n\"} 1\n", P);
}

#[test]
fn openmetrics_eof_rules() {
    let e = err(b"m 1\n", OM);
    assert_eq!(e.line, 2);
    assert!(e.message.contains("EOF"));
    err(b"", OM);
    err(b"m 1\n# EOF\n\n", OM);
    err(b"m 1\n# EOF\nm 2\n", OM);
    err(b"m 1\n# EOFx\n", OM);
    parse(b"m 1\n# EOF", OM, |_| {}).expect("no final newline is fine");
    parse(b"# EOF\n", OM, |_| {}).expect("empty exposition");
    // In the Prometheus format, "# EOF" is just a comment.
    parse(b"# EOF\nm 1\n", P, |_| {}).expect("comment");
}

#[test]
fn exemplars_are_validated_then_dropped() {
    let body = "# TYPE c counter\nc_total 1 # {trace_id=\"abc\"} 0.5 123.4\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 # {} 1\n# EOF\n";
    let s = samples(body, OM).expect("parses");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].1, l(&[]));
    for bad in [
        "c_total 1 # {a=\"b\"} x\n",
        "c_total 1 # {a=\"b\"}\n",
        "c_total 1 #{a=\"b\"} 1\n",
        "c_total 1 # a=\"b\" 1\n",
        "c_total 1 # {a=\"b\"} 1 NaN\n",
        "c_total 1 # {a=\"b\"} 1 1 1\n",
    ] {
        err(format!("# TYPE c counter\n{bad}# EOF\n").as_bytes(), OM);
    }
    let long = "x".repeat(130);
    err(format!("# TYPE c counter\nc_total 1 # {{a=\"{long}\"}} 1\n# EOF\n").as_bytes(), OM);
    // Not on gauges; not in the Prometheus format at all.
    err(b"# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n", OM);
    err(b"c_total 1 # {a=\"b\"} 1\n", P);
}

#[test]
fn openmetrics_semantic_rules() {
    let bad = [
        "# TYPE a counter\na 1\n",                                  // no _total
        "# TYPE a counter\na_total -1\n",                           // negative counter
        "# TYPE a histogram\na_bucket{le=\"1\"} 1\n",               // no +Inf bucket
        "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\n", // count without sum
        "# TYPE a histogram\na_bucket{le=\"2\"} 0\na_bucket{le=\"1\"} 0\na_bucket{le=\"+Inf\"} 0\n",
        "# TYPE a histogram\na_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\n",
        "# TYPE a summary\na{quantile=\"2\"} 1\n",
        "# TYPE a gauge\na 1 2\na 1 1\n", // timestamps go back
        "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n", // interleaved metric
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", // interleaved family
        "# TYPE a gauge\na 1\n# HELP a late\n", // metadata after samples
        "# TYPE a_created gauge\n# TYPE a counter\n", // clashing names
        "# TYPE a_s gauge\n# UNIT a_s seconds\n", // unit not a suffix
        "# TYPE a stateset\na{a=\"x\"} 2\n",
        "# TYPE a info\na_info 2\n",
    ];
    for b in bad {
        let body = format!("{b}# EOF\n");
        err(body.as_bytes(), OM);
        // ...and fine without the semantic rules.
        let lenient = ParseOptions { strict_openmetrics: false, ..Default::default() };
        parse_with(body.as_bytes(), OM, lenient, |_| {}).unwrap_or_else(|e| panic!("{b:?}: {e}"));
    }
    // Deferred errors point at the start of the offending metric point.
    let e = err(b"# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"2\"} 1\n# EOF\n", OM);
    assert_eq!((e.line, e.col), (2, 1), "{e}");
}

#[test]
fn prometheus_format_type_checks() {
    err(b"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", P);
    err(b"# TYPE h histogram\nh_bucket{le=\"1\"} -1\n", P);
    err(b"# TYPE h histogram\nh_count -1\n", P);
    err(b"# TYPE s summary\ns{quantile=\"x\"} 1\n", P);
    // Interleaved families and odd-but-valid quantiles are fine here.
    parse(b"# TYPE s summary\ns{quantile=\"-1\"} 1\nt 1\ns_count 1\n", P, |_| {}).expect("parses");
}

#[test]
fn check_collects_errors_and_resyncs() {
    let body = b"good 1\nbad{ 1\nalso good 2\nm{a=\"1\",a=\"2\"} 3\nfine 4\n\xff\xfe 5\n";
    let (sum, errs) = check(body, P);
    let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4, 6], "{errs:?}");
    assert_eq!(sum.samples, 2);
    // parse stops at the first.
    assert_eq!(err(body, P).line, 2);
    // Error display.
    assert!(errs[0].to_string().starts_with("line 2:"), "{}", errs[0]);
}

#[test]
fn check_caps_errors() {
    let body = "x{\n".repeat(5000);
    let (_, errs) = check(body.as_bytes(), P);
    assert_eq!(errs.len(), MAX_CHECK_ERRORS);
}

/// Bytes the fuzz tests draw from: the format's punctuation, digits and
/// number words, and bytes that are not UTF-8.
const FUZZ_ALPHABET: &[u8] = b"ab_:{}=\",# \t\n\\.0123456789eE+-InfNa\xff\xc3";

/// `base` with one to three bytes replaced, removed or inserted.
fn mutated(rng: &mut fastrand::Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(0..b.len());
        let byte = FUZZ_ALPHABET[rng.usize(0..FUZZ_ALPHABET.len())];
        match rng.u8(0..3) {
            0 => b[at] = byte,
            1 => {
                b.remove(at);
            }
            _ => b.insert(at, byte),
        }
    }
    b
}

#[test]
fn garbage_never_panics() {
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..20_000 {
        let len = rng.usize(0..80);
        let body: Vec<u8> = (0..len)
            .map(|_| if i % 5 == 0 { rng.u8(..) } else { FUZZ_ALPHABET[rng.usize(0..FUZZ_ALPHABET.len())] })
            .collect();
        for fmt in [P, OM] {
            let _ = parse(&body, fmt, |_| {});
            let _ = check(&body, fmt);
        }
    }
    // Mutations of a valid body.
    let base = b"# TYPE h histogram\nh_bucket{le=\"1\",a=\"x\\\"y\"} 1 # {t=\"1\"} 0.5 1\nh_bucket{le=\"+Inf\",a=\"x\\\"y\"} 2\nh_count{a=\"x\\\"y\"} 2\nh_sum{a=\"x\\\"y\"} 1\n{\"q.x\",b=\"c\"} 1\n# EOF\n";
    for _ in 0..20_000 {
        let b = mutated(&mut rng, base);
        for fmt in [P, OM] {
            let _ = parse(&b, fmt, |_| {});
            let _ = check(&b, fmt);
        }
    }
}

#[test]
fn huge_line_is_fine() {
    let mut body = String::from("m{a=\"");
    body.push_str(&"x".repeat(5_000_000));
    body.push_str("\"} 1\n");
    let mut len = 0;
    parse(body.as_bytes(), P, |s| len = s.labels[0].1.len()).expect("parses");
    assert_eq!(len, 5_000_000);
    // An error on such a line doesn't echo it back.
    body.push_str("m 1 ");
    body.push_str(&"9".repeat(1_000_000));
    let e = err(body.as_bytes(), P);
    assert!(e.message.len() < 200, "{}", e.message.len());
}

#[test]
fn newline_search_matches_naive() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..5000 {
        let len = rng.usize(0..40);
        let b: Vec<u8> = (0..len)
            .map(|_| match rng.u8(0..4) {
                0 => b'\n',
                1 => 0x0b,
                2 => 0x8a,
                _ => rng.u8(..),
            })
            .collect();
        assert_eq!(find_newline(&b), b.iter().position(|&c| c == b'\n'), "{b:?}");
    }
}

#[test]
fn quote_scan_matches_naive() {
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..5000 {
        let len = rng.usize(0..40);
        let b: Vec<u8> = (0..len)
            .map(|_| match rng.u8(0..5) {
                0 => b'"',
                1 => b'\\',
                2 => b'"' ^ 0x80,
                _ => rng.u8(..),
            })
            .collect();
        let naive = b.iter().position(|&c| c == b'"' || c == b'\\').unwrap_or(b.len());
        assert_eq!(lex::find_quote_or_backslash(&b), naive, "{b:?}");
    }
}

#[test]
fn float_fast_path_agrees_bit_for_bit_with_the_standard_parser() {
    let fixed = [
        "0",
        "-0",
        "0.5",
        "1.5e+06",
        "1.305e-06",
        "2.189426688e+10",
        "0.000123456",
        "123456789012345678",
        "9007199254740993",
        "1.7976931348623157e308",
        "4.9e-324",
        "-12.25E-3",
        ".5",
        "5.",
        "1e22",
        "1e23",
        "123456789.123456789",
        "0.1",
        "0.3",
        "9007199254740992e-22",
        "1e-22",
    ];
    for s in fixed {
        let want: f64 = s.parse().expect("valid float");
        assert_eq!(super::lex::parse_real(s).map(f64::to_bits), Some(want.to_bits()), "{s}");
    }
    // Random decimals in the shapes exporters write, fast path or not.
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20_000 {
        let width = rng.u32(1..19);
        let digits = rng.u64(..10u64.pow(width));
        let s = match rng.u8(..3) {
            0 => format!("{digits}e{}", rng.i32(-30..30)),
            1 => {
                let d = digits.to_string();
                let cut = rng.usize(0..=d.len());
                format!("{}.{}", &d[..cut], &d[cut..])
            }
            _ => format!("{}.{:06}e+{:02}", rng.u8(1..10), rng.u32(..1_000_000), rng.u8(..25)),
        };
        let s = if s.starts_with('.') && s.len() == 1 { "0".to_string() } else { s };
        let want: f64 = s.parse().expect("valid float");
        assert_eq!(super::lex::parse_real(&s).map(f64::to_bits), Some(want.to_bits()), "{s}");
    }
}

/// What `parse_keyed` yields, with a callback that knows the keys in
/// `known` and learns every key that comes back parsed: per sample its key,
/// value and timestamp, and how many came back parsed.
type KeyedRun = (Result<Vec<(SeriesKey, u64, Option<i64>)>, ParseError>, usize);

fn keyed(body: &[u8], fmt: Format, known: &mut std::collections::HashSet<SeriesKey>) -> KeyedRun {
    let (mut out, mut parsed) = (Vec::new(), 0);
    let r = parse_keyed(body, fmt, ParseOptions::scrape(), |seen| match seen {
        Seen::Key { key, value, timestamp_ms } => {
            let hit = known.contains(&key);
            if hit {
                out.push((key, value.to_bits(), timestamp_ms));
            }
            hit
        }
        Seen::Parsed { key, sample } => {
            parsed += 1;
            known.insert(key);
            out.push((key, sample.value.to_bits(), sample.timestamp_ms));
            true
        }
    });
    (r.map(|_| out), parsed)
}

/// The same samples (value, timestamp) and the same error as `parse_with`.
fn same_as_full_parse(body: &[u8], fmt: Format, run: &KeyedRun) {
    let mut full = Vec::new();
    let r = parse_with(body, fmt, ParseOptions::scrape(), |s| full.push((s.value.to_bits(), s.timestamp_ms)));
    match (&run.0, r) {
        (Ok(k), Ok(_)) => {
            let k: Vec<_> = k.iter().map(|(_, v, t)| (*v, *t)).collect();
            assert_eq!(k, full, "{:?}", String::from_utf8_lossy(body));
        }
        (Err(a), Err(b)) => assert_eq!(a, &b, "{:?}", String::from_utf8_lossy(body)),
        (a, b) => panic!("{:?}: keyed {a:?}, full {b:?}", String::from_utf8_lossy(body)),
    }
}

#[test]
fn known_series_skip_label_lexing_and_keep_their_keys() {
    let body = b"# TYPE h histogram\nh_bucket{le=\"1\",path=\"/a}b\",q=\"x\\\"}\"} 3 1000\nh_bucket{le=\"+Inf\",path=\"/a}b\",q=\"x\\\"}\"} 4 1000\nh_count{path=\"/a}b\",q=\"x\\\"}\"} 4\nh_sum 2.5\n{\"q.x\",b=\"c\"} 1\nm {a=\"b\"} 7\n";
    let mut known = std::collections::HashSet::new();
    let first = keyed(body, P, &mut known);
    assert_eq!(first.1, 6, "a new series comes back parsed");
    same_as_full_parse(body, P, &first);
    let second = keyed(body, P, &mut known);
    // The quoted name and the blank before '{' take the full path; their
    // keys are still the same, so the scraper finds them.
    assert_eq!(second.1, 2, "known series are not lexed again");
    assert_eq!(first.0, second.0, "same keys, values and timestamps");
    same_as_full_parse(body, P, &second);

    // Label order, a label's value and the family type are part of the key.
    let key_of = |b: &[u8]| keyed(b, P, &mut Default::default()).0.expect("parses")[0].0;
    let k = key_of(b"m{a=\"1\",b=\"2\"} 1\n");
    assert_eq!(k, key_of(b"m{a=\"1\",b=\"2\"} 5 100\n"), "the value is not");
    assert_ne!(k, key_of(b"m{b=\"2\",a=\"1\"} 1\n"));
    assert_ne!(k, key_of(b"m{a=\"1\",b=\"3\"} 1\n"));
    assert_ne!(k, key_of(b"# TYPE m gauge\nm{a=\"1\",b=\"2\"} 1\n"));
    // And the format: OpenMetrics rejects what the Prometheus format took.
    let mut known = std::collections::HashSet::new();
    assert!(keyed(b"# TYPE m gauge\nm{a=\"1\", b=\"2\"} 1\n", P, &mut known).0.is_ok());
    let run = keyed(b"# TYPE m gauge\nm{a=\"1\", b=\"2\"} 1\n# EOF\n", OM, &mut known);
    assert!(run.0.is_err(), "{:?}", run.0);
}

#[test]
fn a_known_series_still_fails_the_value_checks() {
    let mut known = std::collections::HashSet::new();
    let good = b"# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_count 3\n";
    assert!(keyed(good, P, &mut known).0.is_ok());
    let bad = b"# TYPE h histogram\nh_bucket{le=\"1\"} -3\nh_count 3\n";
    let run = keyed(bad, P, &mut known);
    assert_eq!(run.1, 0, "known by key");
    assert!(run.0.as_ref().is_err_and(|e| e.message.contains("negative bucket")), "{:?}", run.0);
    same_as_full_parse(bad, P, &run);
    // The same bytes under another type were checked under that type: a
    // bucket with a bad `le` learnt as untyped is no known histogram bucket.
    let mut known = std::collections::HashSet::new();
    assert!(keyed(b"h_bucket{le=\"x\"} 3\n", P, &mut known).0.is_ok());
    let run = keyed(b"# TYPE h histogram\nh_bucket{le=\"x\"} 3\n", P, &mut known);
    assert!(run.0.as_ref().is_err_and(|e| e.message.contains("'le' label")), "{:?}", run.0);
}

/// Keys learnt from a valid body let nothing through on a mutated one that
/// the full parse rejects, and read the same values from what it accepts.
#[test]
fn known_keys_never_change_what_a_body_parses_to() {
    let mut rng = fastrand::Rng::with_seed(11);
    let base: &[u8] = b"# TYPE h histogram\nh_bucket{le=\"1\",a=\"x\\\"}y\"} 1 # {t=\"1\"} 0.5 1\nh_bucket{le=\"+Inf\",a=\"x\\\"}y\"} 2\nh_count{a=\"x\\\"}y\"} 2\nh_sum{a=\"x\\\"}y\"} 1\n{\"q.x\",b=\"c\"} 1\nm{a=\"1\"} 5 1000\n# EOF\n";
    for fmt in [P, OM] {
        let mut known = std::collections::HashSet::new();
        let _ = keyed(base, fmt, &mut known);
        for _ in 0..20_000 {
            let b = mutated(&mut rng, base);
            let run = keyed(&b, fmt, &mut known.clone());
            same_as_full_parse(&b, fmt, &run);
        }
    }
}

/// Real node_exporter bodies: a second scrape lexes no labels at all.
#[test]
fn real_bodies_are_known_by_key_on_the_second_scrape() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/exposition/node_exporter");
    let mut bodies = 0;
    for entry in std::fs::read_dir(dir).expect("shared testdata beside the checkout") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let body = std::fs::read(&path).expect("readable");
        let mut known = std::collections::HashSet::new();
        let first = keyed(&body, P, &mut known);
        let n = first.0.as_ref().map(Vec::len).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(first.1, n, "{}: every series is new on the first scrape", path.display());
        let second = keyed(&body, P, &mut known);
        assert_eq!(second.1, 0, "{}", path.display());
        assert_eq!(first.0, second.0, "{}", path.display());
        same_as_full_parse(&body, P, &second);
        bodies += 1;
    }
    assert!(bodies >= 5, "node_exporter bodies found: {bodies}");
}
