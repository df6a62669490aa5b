use std::collections::BTreeMap;

use super::gofmt::{duration_string, strconv_float, time_string};
use super::*;

fn labels() -> Labels {
    Labels::from_pairs([("instance", "web-1:9100"), ("job", "node"), ("severity", "page")])
}

fn data_with(value: f64) -> TemplateData {
    let mut d = TemplateData::for_alert(
        &labels(),
        value,
        &Labels::from_pairs([("cluster", "eu")]),
        "http://prom.example.com/prometheus",
    );
    d.vars.insert("changes".into(), TplValue::List(vec!["a".into(), "b".into(), "c".into()]));
    d.vars.insert("trend".into(), TplValue::List(vec![]));
    d
}

fn render_v(text: &str, value: f64) -> String {
    match Template::parse("t", text) {
        Ok(t) => match t.render(&data_with(value)) {
            Ok(s) => s,
            Err(e) => panic!("render {text:?}: {e}"),
        },
        Err(e) => panic!("parse {text:?}: {e}"),
    }
}

fn r(text: &str) -> String {
    render_v(text, 0.1234)
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match Template::parse("t", text) {
        Err(TemplateError::Parse { line, col, message, .. }) => (line, col, message),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

fn exec_err(text: &str) -> String {
    let t = Template::parse("t", text).unwrap_or_else(|e| panic!("parse {text:?}: {e}"));
    match t.render(&data_with(0.1234)) {
        Err(TemplateError::Exec { message, .. }) => message,
        other => panic!("expected an exec error for {text:?}, got {other:?}"),
    }
}

#[test]
fn annotation_examples() {
    assert_eq!(r("{{ $labels.instance }} is at {{ $value | humanizePercentage }}"), "web-1:9100 is at 12.34%");
    assert_eq!(r(r#"{{ printf "%.2f" $value }}"#), "0.12");
    assert_eq!(r("{{ if gt $value 100.0 }}high{{ else }}ok{{ end }}"), "ok");
    assert_eq!(render_v("{{ if gt $value 100.0 }}high{{ else }}ok{{ end }}", 250.0), "high");
    assert_eq!(
        r("{{- range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end -}}"),
        "instance=web-1:9100 job=node severity=page "
    );
    assert_eq!(r("{{ with $labels.job }}{{ . }}{{ end }}"), "node");
}

#[test]
fn dot_and_dollar_access() {
    assert_eq!(r("{{ .Labels.job }}/{{ .ExternalLabels.cluster }}/{{ $externalLabels.cluster }}"), "node/eu/eu");
    assert_eq!(r("{{ .Value }} {{ $.Value }}"), "0.1234 0.1234");
    assert_eq!(r("{{ .ExternalURL }}"), "http://prom.example.com/prometheus");
}

#[test]
fn missing_label_is_empty_like_prometheus() {
    assert_eq!(r("[{{ $labels.nope }}][{{ .Labels.nope }}][{{ index $labels \"nope\" }}]"), "[][][]");
    // A missing field of the mixed-type dot is Go's "no value".
    assert_eq!(r("{{ .Nope }}"), "<no value>");
    assert_eq!(r("{{ .Nope.Deeper }}"), "<no value>");
    assert_eq!(r("{{ print .Nope }}"), "<nil>");
}

#[test]
fn go_float_formatting_of_values() {
    for (v, want) in [
        (1e6, "1e+06"),
        (0.1, "0.1"),
        (3.0, "3"),
        (1.5e-7, "1.5e-07"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        (-2.5, "-2.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (0.0, "0"),
    ] {
        assert_eq!(render_v("{{ $value }}", v), want, "value {v}");
    }
}

#[test]
fn strconv_rules() {
    assert_eq!(strconv_float(1234.5678, 'g', Some(4)), "1235");
    assert_eq!(strconv_float(12345.0, 'g', Some(4)), "1.234e+04");
    assert_eq!(strconv_float(0.0001234, 'g', Some(4)), "0.0001234");
    assert_eq!(strconv_float(0.00001234, 'g', Some(4)), "1.234e-05");
    assert_eq!(strconv_float(100.0, 'g', Some(4)), "100");
    assert_eq!(strconv_float(1e6, 'g', None), "1e+06");
    assert_eq!(strconv_float(1234.5, 'e', Some(3)), "1.234e+03");
    assert_eq!(strconv_float(2.5, 'f', Some(0)), "2");
    assert_eq!(strconv_float(0.0, 'e', Some(2)), "0.00e+00");
    assert_eq!(strconv_float(1e100, 'g', None), "1e+100");
}

#[test]
fn humanize_matches_prometheus() {
    let h = |t: &str, v: f64| render_v(&format!("{{{{ $value | {t} }}}}"), v);
    assert_eq!(h("humanize", 1234567.0), "1.235M");
    assert_eq!(h("humanize", 0.0012), "1.2m");
    assert_eq!(h("humanize", 0.0), "0");
    assert_eq!(h("humanize", 1000.0), "1k");
    assert_eq!(h("humanize", 999.0), "999");
    assert_eq!(h("humanize", 2048.0), "2.048k");
    assert_eq!(h("humanize", -1234567.0), "-1.235M");
    assert_eq!(h("humanize", 1.5), "1.5");
    assert_eq!(h("humanize", f64::NAN), "NaN");
    assert_eq!(h("humanize", f64::INFINITY), "+Inf");
    assert_eq!(h("humanize1024", 1048576.0), "1Mi");
    assert_eq!(h("humanize1024", 1024.0), "1ki");
    assert_eq!(h("humanize1024", 1536.0), "1.5ki");
    assert_eq!(h("humanize1024", 1.0), "1");
    assert_eq!(h("humanize1024", 0.5), "0.5");
    assert_eq!(h("humanizeDuration", 3661.0), "1h 1m 1s");
    assert_eq!(h("humanizeDuration", 0.5), "500ms");
    assert_eq!(h("humanizeDuration", 0.0), "0s");
    assert_eq!(h("humanizeDuration", 90061.0), "1d 1h 1m 1s");
    assert_eq!(h("humanizeDuration", 59.5), "59.5s");
    assert_eq!(h("humanizeDuration", 60.0), "1m 0s");
    assert_eq!(h("humanizeDuration", -3661.0), "-1h 1m 1s");
    assert_eq!(h("humanizeDuration", 0.0005), "500us");
    assert_eq!(h("humanizeDuration", 1.23456), "1.235s");
    assert_eq!(h("humanizePercentage", 0.1234), "12.34%");
    assert_eq!(h("humanizePercentage", 1.0), "100%");
    assert_eq!(h("humanizePercentage", 0.5), "50%");
    assert_eq!(h("humanizeTimestamp", 1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
    assert_eq!(h("humanizeTimestamp", 0.0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(h("humanizeTimestamp", f64::NAN), "NaN");
}

#[test]
fn humanize_accepts_strings_and_ints_like_convert_to_float() {
    assert_eq!(r(r#"{{ humanize "1234567" }}"#), "1.235M");
    assert_eq!(r("{{ humanize 1024 }}"), "1.024k");
    assert_eq!(r("{{ humanize1024 2048 }}"), "2ki");
    assert!(exec_err(r#"{{ humanize "abc" }}"#)
        .ends_with(r#"error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax"#));
    assert!(exec_err("{{ humanize $labels }}").ends_with("can't convert map[string]string to float"));
}

#[test]
fn printf_verbs() {
    assert_eq!(r(r#"{{ printf "%s=%d" "a" 5 }}"#), "a=5");
    assert_eq!(r(r#"{{ printf "%5.1f|%-5s|%05d" 3.14159 "ab" 42 }}"#), "  3.1|ab   |00042");
    assert_eq!(r(r#"{{ printf "%q" "hi\n" }}"#), r#""hi\n""#);
    assert_eq!(r(r#"{{ printf "%x %X %x" 255 "hi" -255 }}"#), "ff 6869 -ff");
    assert_eq!(r(r#"{{ printf "%e" 1234.5678 }}"#), "1.234568e+03");
    assert_eq!(r(r#"{{ printf "%g" 0.000012345 }}"#), "1.2345e-05");
    assert_eq!(r(r#"{{ printf "%v %v %t" true nil false }}"#), "true <nil> false");
    assert_eq!(render_v(r#"{{ printf "%d" $value }}"#, 3.0), "%!d(float64=3)");
    assert_eq!(r(r#"{{ printf "%s" 5 }}"#), "%!s(int=5)");
    assert_eq!(r(r#"{{ printf "%d %d" 1 }}"#), "1 %!d(MISSING)");
    assert_eq!(r(r#"{{ printf "%d" 1 2 }}"#), "1%!(EXTRA int=2)");
    assert_eq!(r(r#"{{ printf "100%%" }}"#), "100%");
    assert_eq!(r(r#"{{ printf "%+d|% d|%+.1f" 5 5 2.25 }}"#), "+5| 5|+2.2");
    assert_eq!(r(r#"{{ printf "%.3s|%6.2f|%-6.2f|" "abcdef" 3.14159 2.5 }}"#), "abc|  3.14|2.50  |");
    assert_eq!(r(r#"{{ printf "%08.3f" -3.14159 }}"#), "-003.142");
    assert_eq!(r(r#"{{ printf "%v" $labels.job }}"#), "node");
    assert_eq!(r(r#"{{ printf "%[2]s-%[1]s" "a" "b" }}"#), "b-a");
    assert_eq!(r(r#"{{ printf "%*d" 4 7 }}"#), "   7");
    assert_eq!(r(r#"{{ printf "%c%c" 72 'i' }}"#), "Hi");
    assert_eq!(r(r#"{{ printf "%.0f %.1f" 2.5 0.25 }}"#), "2 0.2");
    assert_eq!(r(r#"{{ printf "%6.2f%%" 12.3456 }}"#), " 12.35%");
    assert_eq!(r(r#"{{ printf "%v" $changes }}"#), "[a b c]");
    assert_eq!(r(r#"{{ printf "%d" }}"#), "%!d(MISSING)");
    assert_eq!(r(r#"{{ printf "%z" 1 }}"#), "%!z(int=1)");
    assert_eq!(r(r#"{{ printf "x%" }}"#), "x%!(NOVERB)");
    assert_eq!(r(r#"{{ 3 | printf "%d" }}"#), "3");
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(r("a  {{- 1 -}}  b"), "a1b");
    assert_eq!(r("a\n\t{{- 1 }}\n b"), "a1\n b");
    assert_eq!(r("a {{- /* c */ -}} b"), "ab");
    assert_eq!(r("{{/* only a comment */}}x"), "x");
    assert_eq!(r("{{- /* multi\nline */ -}}\n y"), "y");
    // "-3" is a number, not a trim marker.
    assert_eq!(r("{{-3}}"), "-3");
}

#[test]
fn variables_declare_and_assign() {
    assert_eq!(r("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(r("{{ $x := 0 }}{{ range $changes }}{{ $x = . }}{{ end }}{{ $x }}"), "c");
    assert_eq!(r("{{ if $j := $labels.job }}{{ $j }}{{ end }}"), "node");
    let (_, _, m) = parse_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}");
    assert_eq!(m, r#"undefined variable "$y""#);
    let (_, _, m) = parse_err("{{ $z = 1 }}");
    assert_eq!(m, r#"undefined variable "$z""#);
    // $ is the root data even inside range/with.
    assert_eq!(r("{{ range $changes }}{{ $.Labels.job }}{{ end }}"), "nodenodenode");
}

#[test]
fn range_forms() {
    assert_eq!(r("{{ range $i, $c := $changes }}{{ $i }}:{{ $c }} {{ end }}"), "0:a 1:b 2:c ");
    assert_eq!(r("{{ range $c := $changes }}{{ $c }}{{ end }}"), "abc");
    assert_eq!(r("{{ range $changes }}{{ . }}{{ end }}"), "abc");
    assert_eq!(r("{{ range $trend }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(r("{{ range .Nope }}x{{ else }}nil is empty{{ end }}"), "nil is empty");
    assert_eq!(r("{{ range $changes }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}"), "a");
    assert_eq!(r("{{ range $changes }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}"), "ac");
    assert_eq!(r("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert!(exec_err("{{ range 100000000000 }}{{ end }}").contains("exceeds the limit"));
    assert_eq!(r("{{ range $k, $v := $externalLabels }}{{ $k }}{{ $v }}{{ end }}"), "clustereu");
    let (_, _, m) = parse_err("{{ break }}");
    assert_eq!(m, "{{break}} outside {{range}}");
    assert!(exec_err("{{ range $value }}{{ end }}").contains("range can't iterate over 0.1234"));
}

#[test]
fn if_with_else_chains() {
    let t = r#"{{ if eq $labels.severity "info" }}i{{ else if eq $labels.severity "page" }}p{{ else }}o{{ end }}"#;
    assert_eq!(r(t), "p");
    assert_eq!(r("{{ with $labels.nope }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(r("{{ with $labels.nope }}x{{ else with $labels.job }}{{ . }}{{ end }}"), "node");
    assert_eq!(r("{{ if 0 }}a{{ else if \"\" }}b{{ else if $changes }}c{{ end }}"), "c");
    assert_eq!(r("{{ if .Nope }}a{{ else }}b{{ end }}"), "b");
}

#[test]
fn define_template_block_tmpl() {
    assert_eq!(r(r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" $labels.job }}"#), "[node]");
    assert_eq!(r(r#"{{ template "x" }}{{ define "x" }}<{{ . }}>{{ end }}"#), "<<no value>>");
    assert_eq!(r(r#"{{ block "b" .Labels }}{{ .job }}{{ end }}!"#), "node!");
    assert_eq!(r(r#"{{ define "x" }}X{{ . }}{{ end }}{{ tmpl "x" 1 }}"#), "X1");
    assert!(exec_err(r#"{{ template "nope" }}"#).contains(r#"no such template "nope""#));
    // Like Go, a defined template has its own scope: only $ is predeclared.
    let (_, _, m) = parse_err(r#"{{ define "x" }}{{ $labels.job }}{{ end }}"#);
    assert_eq!(m, r#"undefined variable "$labels""#);
    let (_, _, m) = parse_err(r#"{{ define "x" }}a{{ end }}{{ define "x" }}b{{ end }}"#);
    assert!(m.contains("multiple definition"), "{m}");
    assert!(
        exec_err(r#"{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}"#).contains("maximum template depth")
    );
}

#[test]
fn go_builtins() {
    assert_eq!(r("{{ len $labels }} {{ len \"héllo\" }} {{ len $changes }}"), "3 6 3");
    assert_eq!(r(r#"{{ index $labels "job" }} {{ index $changes 1 }} {{ index "abc" 0 }}"#), "node b 97");
    assert_eq!(r(r#"{{ slice "abcdef" 1 3 }} {{ slice $changes 1 }} {{ slice "abc" }}"#), "bc [b c] abc");
    assert_eq!(r("{{ not true }} {{ not 0 }} {{ not \"\" }}"), "false true true");
    assert_eq!(r(r#"{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" "x" }} {{ or 0 "" }}"#), "0 2 x ");
    // and/or short-circuit: the failing index is never evaluated.
    assert_eq!(r("{{ and false (index $changes 9) }}"), "false");
    assert_eq!(
        r(r#"{{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ le 2 2 }} {{ ge 1.5 2.5 }}"#),
        "true true true true false"
    );
    assert_eq!(r(r#"{{ eq $labels.nope "" }} {{ eq .Nope nil }}"#), "true true");
    assert_eq!(r(r#"{{ print 1 2 "a" "b" 3 }}"#), "1 2ab3");
    assert_eq!(r(r#"{{ println 1 "a" }}"#), "1 a\n");
    assert_eq!(r(r#"{{ html "<a href='x'>&</a>" }}"#), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    assert_eq!(r(r#"{{ "it's <b>" | js }}"#), r"it\'s \u003Cb\u003E");
    assert_eq!(r(r#"{{ urlquery "a b&c=d/é" }}"#), "a+b%26c%3Dd%2F%C3%A9");
    assert_eq!(r("{{ (args 1 2).arg1 }} {{ (index $changes 0) }}"), "2 a");
    assert_eq!(r("{{ $labels }}"), "map[instance:web-1:9100 job:node severity:page]");
    assert_eq!(r("{{ $changes }} {{ args 1 \"x\" }}"), "[a b c] map[arg0:1 arg1:x]");
}

#[test]
fn comparison_type_rules_follow_go() {
    // Go's int constant vs float64 value: the classic Prometheus gotcha.
    assert!(
        exec_err("{{ if gt $value 100 }}x{{ end }}").ends_with("error calling gt: incompatible types for comparison")
    );
    assert!(exec_err(r#"{{ eq 1 "1" }}"#).contains("incompatible types for comparison"));
    assert!(exec_err("{{ lt true false }}").contains("invalid type for comparison"));
    assert!(exec_err("{{ eq $labels $labels }}").contains("non-comparable"));
    assert!(exec_err("{{ eq 1 }}").contains("missing argument for comparison"));
}

#[test]
fn prometheus_string_functions() {
    assert_eq!(r(r#"{{ title "hello world-foo bar_baz" }}"#), "Hello World-Foo Bar_baz");
    assert_eq!(r(r#"{{ toUpper "abc" }} {{ toLower "ÀBC" }}"#), "ABC àbc");
    assert_eq!(r(r#"{{ match "^web" $labels.instance }} {{ match "^db" $labels.instance }}"#), "true false");
    assert_eq!(r(r#"{{ reReplaceAll "(.*):(.*)" "$1" $labels.instance }}"#), "web-1");
    assert_eq!(r(r#"{{ reReplaceAll "(?P<h>[a-z]+)-(\\d)" "${h}_$2" "web-1" }}"#), "web_1");
    assert_eq!(r(r#"{{ $labels.instance | reReplaceAll ":.*" "" }}"#), "web-1");
    assert!(exec_err(r#"{{ match "(" "x" }}"#).contains("error calling match: error parsing regexp"));
    assert_eq!(
        r(r#"{{ stripPort "web-1:9100" }} {{ stripPort "[::1]:9090" }} {{ stripPort "host" }} {{ stripPort "::1" }}"#),
        "web-1 ::1 host ::1"
    );
    assert_eq!(
        r(
            r#"{{ stripDomain "foo.example.com:9100" }} {{ stripDomain "10.0.0.1:80" }} {{ stripDomain "foo.bar" }} {{ stripDomain "[::1]:80" }}"#
        ),
        "foo:9100 10.0.0.1:80 foo [::1]:80"
    );
    assert_eq!(r(r#"{{ graphLink "up == 0" }}"#), "/graph?g0.expr=up+%3D%3D+0&g0.tab=0");
    assert_eq!(r(r#"{{ tableLink "rate(x[5m])" }}"#), "/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1");
    assert_eq!(r("{{ externalURL }} {{ pathPrefix }}"), "http://prom.example.com/prometheus /prometheus");
    assert_eq!(r(r#"{{ safeHtml "<b>" }}"#), "<b>");
}

#[test]
fn prometheus_time_functions() {
    assert_eq!(
        r(r#"{{ parseDuration "1h30m" }} {{ parseDuration "1m" | humanizeDuration }} {{ parseDuration "1500ms" }}"#),
        "5400 1m 0s 1.5"
    );
    assert!(exec_err(r#"{{ parseDuration "5x" }}"#).contains(r#"not a valid duration string: "5x""#));
    assert_eq!(
        r("{{ toDuration 3661 }} {{ toDuration 1.5 }} {{ toDuration 0.5 }} {{ toDuration 60 }}"),
        "1h1m1s 1.5s 500ms 1m0s"
    );
    assert_eq!(
        r("{{ toTime 0 }}|{{ toTime 1435065584.5 }}"),
        "1970-01-01 00:00:00 +0000 UTC|2015-06-23 13:19:44.5 +0000 UTC"
    );
    assert_eq!(r("{{ toTime 1435065584 | humanizeTimestamp }}"), "2015-06-23 13:19:44 +0000 UTC");
    assert_eq!(r("{{ humanizeDuration (toDuration 90) }}"), "1m 30s");
    let t = Template::parse("t", "{{ now }} {{ now | humanizeTimestamp }}").unwrap();
    let opts = RenderOptions { now: Some(1_700_000_000.0), query: None, escape_html: false };
    assert_eq!(t.render_with(&data_with(1.0), &opts).unwrap(), "1.7e+09 2023-11-14 22:13:20 +0000 UTC");
}

#[test]
fn query_functions_with_and_without_hook() {
    let hook = |q: &str| -> Result<Vec<(Labels, f64)>, String> {
        if q == "bad" {
            return Err("parse error".into());
        }
        Ok(vec![
            (Labels::from_pairs([("instance", "b"), ("__value__", "two")]), 2.0),
            (Labels::from_pairs([("instance", "a")]), 1.0),
        ])
    };
    let opts = RenderOptions { now: None, query: Some(&hook), escape_html: false };
    let run = |text: &str| Template::parse("t", text).unwrap().render_with(&data_with(1.0), &opts);
    assert_eq!(run(r#"{{ with query "up" }}{{ . | first | value }}{{ end }}"#).unwrap(), "2");
    assert_eq!(
        run(r#"{{ range query "up" | sortByLabel "instance" }}{{ label "instance" . }}={{ .Value }} {{ end }}"#)
            .unwrap(),
        "a=1 b=2 "
    );
    assert_eq!(run(r#"{{ query "up" | first | strvalue }}"#).unwrap(), "two");
    assert!(run(r#"{{ query "bad" }}"#).unwrap_err().to_string().contains("error calling query: parse error"));
    let msg = exec_err(r#"{{ query "up" | first | value }}"#);
    assert!(msg.contains("query is not supported in templates yet"), "{msg}");
    // first on an empty vector.
    let empty = TemplateData { vars: BTreeMap::new(), dot: TplValue::List(vec![]) };
    let e = Template::parse("t", "{{ first . }}").unwrap().render(&empty).unwrap_err();
    assert!(e.to_string().contains("first() called on vector with no elements"));
    // value/label on a sample built by TplValue::sample.
    let one = TemplateData { vars: BTreeMap::new(), dot: TplValue::sample(&labels(), 42.0) };
    assert_eq!(Template::parse("t", r#"{{ label "job" . }} {{ value . }}"#).unwrap().render(&one).unwrap(), "node 42");
}

#[test]
fn literals() {
    assert_eq!(
        r("{{ 0x1F }} {{ 1e3 }} {{ 'a' }} {{ -2.50 }} {{ 1_000 }} {{ 017 }} {{ .5 }}"),
        "31 1000 97 -2.5 1000 15 0.5"
    );
    assert_eq!(r(r#"{{ "a\tb\u00e9\x41" }}"#), "a\tbéA");
    assert_eq!(r("{{ `a\\nb` }}"), "a\\nb");
    assert_eq!(r("{{ true }} {{ false }}"), "true false");
    assert_eq!(r("{{ printf\n  \"%s\"\n  $labels.job }}"), "node");
}

#[test]
fn parse_errors_have_positions() {
    assert_eq!(parse_err("ab {{ $labels.instance"), (1, 4, "unclosed action".into()));
    assert_eq!(parse_err("hello\n  {{ foo 1 }}"), (2, 6, r#"function "foo" not defined"#.into()));
    assert_eq!(parse_err("{{ if true }}x").2, "unexpected EOF");
    assert_eq!(parse_err("x{{ end }}"), (1, 2, "unexpected {{end}}".into()));
    assert_eq!(parse_err("{{ else }}").2, "unexpected {{else}}");
    assert_eq!(parse_err(r#"{{ "abc }}"#).2, "unterminated quoted string");
    assert_eq!(parse_err("{{ $undefined }}"), (1, 4, r#"undefined variable "$undefined""#.into()));
    assert_eq!(parse_err("{{ . | 3 }}").2, "non executable command in pipeline stage 2");
    assert_eq!(parse_err("{{ }}").2, "missing value for command");
    assert_eq!(parse_err("{{ if }}{{ end }}").2, "missing value for if");
    assert_eq!(parse_err("{{/* unclosed").2, "unclosed comment");
    assert_eq!(parse_err("{{/* x */ }}").2, "comment ends before closing delimiter");
    assert_eq!(parse_err("{{ ) }}").2, "unexpected right paren");
    assert_eq!(parse_err("{{ (1 }}").2, "unclosed left paren");
    assert_eq!(parse_err("{{ 3x }}").2, r#"bad number syntax: "3x""#);
    assert_eq!(parse_err("{{ # }}").2, "bad character '#' (U+0023) in action");
    assert_eq!(parse_err("{{ $x, $y := 1 }}").2, "too many declarations in command");
    assert_eq!(parse_err("{{ $x := 1, 2 }}").2, r#"unexpected "," in operand"#);
    assert_eq!(parse_err("{{ .a|}}").2, "missing command after \"|\"");
    assert_eq!(parse_err(r#"{{ "a".b }}"#).2, r#"unexpected . after term "a""#);
    assert_eq!(parse_err("{{ if 1 }}{{ else }}{{ else }}{{ end }}").2, "expected end; found {{else}}");
    assert_eq!(parse_err("{{ range 1 }}{{ else if 1 }}{{ end }}").2, "unexpected {{else if}} in {{range}}");
    assert_eq!(parse_err("é{{ nope }}"), (1, 5, r#"function "nope" not defined"#.into()));
    let deep = format!("{}1{}", "{{ ".to_string() + &"(".repeat(200), ")".repeat(200) + " }}");
    assert!(parse_err(&deep).2.contains("nesting deeper"));
    // Display carries the template name and position.
    let e = Template::parse("summary", "x\n{{ nope }}").unwrap_err();
    assert_eq!(e.to_string(), r#"summary:2:4: function "nope" not defined"#);
}

#[test]
fn exec_errors() {
    assert!(exec_err("{{ toUpper 1 }}").ends_with("wrong type for value; expected string; got int"));
    assert!(exec_err("{{ humanize }}").ends_with("wrong number of args for humanize: want 1 got 0"));
    assert!(exec_err("{{ $labels.job.x }}").ends_with("can't evaluate field x in type string"));
    assert!(exec_err("{{ nil }}").ends_with("nil is not a command"));
    assert!(exec_err("{{ index $changes 5 }}").ends_with("error calling index: index out of range: 5"));
    assert!(exec_err("{{ index $changes 1.0 }}").contains("cannot index slice/array with type float64"));
    assert!(exec_err("{{ len 3 }}").ends_with("error calling len: len of type int"));
    assert!(exec_err("{{ $value | $labels.job }}").contains("is not a method but has arguments"));
    assert!(exec_err(r#"{{ "x" | (printf "%s") }}"#).contains("can't give argument to non-function"));
    let t = Template::parse("summary", "ok {{ toUpper 1 }}").unwrap();
    let e = t.render(&data_with(1.0)).unwrap_err();
    assert_eq!(e.to_string(), "summary: executing: 1:7: wrong type for value; expected string; got int");
}

#[test]
fn referenced_labels_for_lint() {
    let t = Template::parse(
        "d",
        r#"{{ $labels.instance }} {{ .Labels.job }} {{ index $labels "team" }} {{ $externalLabels.cluster }}
{{ define "x" }}{{ .Labels.region }}{{ end }}{{ if (eq $labels.severity "page") }}{{ end }}"#,
    )
    .unwrap();
    assert_eq!(t.referenced_label_names(), vec!["instance", "job", "region", "severity", "team"]);
}

#[test]
fn parse_with_vars_allows_extra_names() {
    assert!(Template::parse("t", "{{ $custom }}").is_err());
    let t = Template::parse_with_vars("t", "{{ $custom }}", &["custom"]).unwrap();
    let mut d = TemplateData::default();
    d.vars.insert("custom".into(), "v".into());
    assert_eq!(t.render(&d).unwrap(), "v");
    // A known variable absent from the data is no value.
    assert_eq!(Template::parse("t", "{{ $deploy }}").unwrap().render(&TemplateData::default()).unwrap(), "<no value>");
}

#[test]
fn go_time_and_duration_strings() {
    assert_eq!(time_string(0, 0), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(time_string(951_782_400, 120_000_000), "2000-02-29 00:00:00.12 +0000 UTC");
    assert_eq!(time_string(-1, 0), "1969-12-31 23:59:59 +0000 UTC");
    assert_eq!(duration_string(0), "0s");
    assert_eq!(duration_string(1), "1ns");
    assert_eq!(duration_string(1_500), "1.5µs");
    assert_eq!(duration_string(3_600_000_000_000), "1h0m0s");
    assert_eq!(duration_string(-90_000_000_000), "-1m30s");
    assert_eq!(duration_string(100_000_000_000_000), "27h46m40s");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // Each level of "r" nests 40 ifs; the walk limit trips before the stack does.
    let ifs = "{{ if true }}".repeat(40) + "{{ template \"r\" }}" + &"{{ end }}".repeat(40);
    let text = format!("{{{{ define \"r\" }}}}{ifs}{{{{ end }}}}{{{{ template \"r\" }}}}");
    let msg = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || exec_err(&text))
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    assert!(msg.contains("nesting exceeds"), "{msg}");
}

#[test]
fn template_is_send_sync_and_reusable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
    let t = Template::parse("t", "{{ $value }}").unwrap();
    assert_eq!(t.render(&data_with(1.0)).unwrap(), "1");
    assert_eq!(t.render(&data_with(2.0)).unwrap(), "2");
    assert_eq!(t.name(), "t");
}

#[test]
fn escape_html_escapes_printed_values_only() {
    let tpl =
        Template::parse_with_vars("t", r#"<b>{{ .x }}</b>{{ .x | html }}{{ safeHtml "<i>ok</i>" }}"#, &[]).unwrap();
    let mut m = std::collections::BTreeMap::new();
    m.insert("x".to_string(), TplValue::from("<script>alert(1)</script>"));
    let data = TemplateData { vars: Default::default(), dot: TplValue::Map(m) };
    let opts = RenderOptions { escape_html: true, ..Default::default() };
    let out = tpl.render_with(&data, &opts).unwrap();
    assert_eq!(out, "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>&lt;script&gt;alert(1)&lt;/script&gt;<i>ok</i>");
    assert_eq!(tpl.render(&data).unwrap().matches("<script>").count(), 1, "text templates stay raw");
}
