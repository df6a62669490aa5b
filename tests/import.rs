//! `forewarn import` on the config files teams really have (tests/data/import,
//! see SOURCES there): Debian's default prometheus.yml and alertmanager.yml,
//! the documentation examples and the upstream test configs. Each import must
//! write a config that `forewarn check` accepts and that the daemon's loader
//! reads with the same jobs, routes and receivers; every input key is either
//! in the output with the same value or in the report with its line; the
//! input's comments are in the output.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod support;
use support::{temp_dir, BIN};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/import");

/// One line of the report: `file:line:col: key `path` not carried: why`.
#[derive(Debug)]
struct Line {
    file: String,
    line: usize,
    col: usize,
    path: String,
    why: String,
}

struct Run {
    config: PathBuf,
    text: String,
    report: Vec<Line>,
}

fn data(name: &str) -> String {
    format!("{DATA}/{name}")
}

/// Runs `forewarn import ARGS -o DIR/forewarn.yml` and parses its report.
fn import(tag: &str, args: &[&str]) -> Run {
    let dir = temp_dir(tag);
    let config = dir.join("forewarn.yml");
    let out = Command::new(BIN).arg("import").args(args).arg("-o").arg(&config).output().expect("run forewarn import");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "forewarn import {args:?} failed:\n{stderr}");
    let mut report = Vec::new();
    for l in stderr.lines().filter(|l| !l.starts_with("wrote ")) {
        let parsed = (|| {
            let (head, why) = l.split_once(" not carried: ")?;
            let (place, key) = head.split_once(": key `")?;
            let mut parts = place.rsplitn(3, ':');
            let col = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            let file = parts.next()?.to_string();
            Some(Line { file, line, col, path: key.strip_suffix('`')?.to_string(), why: why.to_string() })
        })();
        report.push(parsed.unwrap_or_else(|| panic!("report line not in the file:line:col form: {l:?}\n{stderr}")));
    }
    assert!(stderr.lines().any(|l| l.starts_with("wrote ")), "{stderr}");
    let text = std::fs::read_to_string(&config).expect("the output was written");
    Run { config, text, report }
}

fn check_passes(config: &Path) {
    let out = Command::new(BIN).arg("check").arg(config).output().expect("run forewarn check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = std::fs::read_to_string(config).unwrap_or_default();
    assert!(
        out.status.success(),
        "forewarn check failed:\n{stdout}{}\n--- output ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn read_yaml(path: &str) -> Value {
    yaml(&std::fs::read_to_string(path).expect("read test data"))
}

/// Every leaf of `v` (scalars and empty collections) with its path, written
/// as the report writes it: `a.b[0].c`.
fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        Value::Object(m) if !m.is_empty() => m.iter().for_each(|(k, x)| leaves(x, join(k), out)),
        Value::Array(a) if !a.is_empty() => {
            a.iter().enumerate().for_each(|(i, x)| leaves(x, format!("{path}[{i}]"), out))
        }
        _ => out.push((path, v.clone())),
    }
}

/// The value at a report-style path.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        let (key, indexes) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        for ix in indexes.split('[').filter(|s| !s.is_empty()) {
            cur = cur.get(ix.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

/// Each key of `input` is reported (itself or a parent) or is in `output`
/// at `rename(path)` with the same value; each reported key is absent.
fn every_key_accounted(file: &str, input: &Value, output: &Value, report: &[Line], rename: impl Fn(&str) -> String) {
    let mine: Vec<&Line> = report.iter().filter(|l| l.file.ends_with(file)).collect();
    let mut all = Vec::new();
    leaves(input, String::new(), &mut all);
    for (path, value) in &all {
        let reported = mine.iter().any(|l| {
            *path == l.path || path.starts_with(&format!("{}.", l.path)) || path.starts_with(&format!("{}[", l.path))
        });
        if reported {
            continue;
        }
        let got = at(output, &rename(path)).unwrap_or_else(|| panic!("{file}: `{path}` neither carried nor reported"));
        let same = got == value
            || (value.is_null() && got.as_array().is_some_and(Vec::is_empty))
            || matches!((got, value), (Value::String(g), Value::String(v)) if Path::new(g).is_absolute() && g.ends_with(&format!("/{v}")));
        assert!(same, "{file}: `{path}` is {value} in the input but {got} in the output");
    }
    for l in &mine {
        assert!(at(output, &rename(&l.path)).is_none(), "{file}: `{}` reported but in the output", l.path);
        assert!(at(input, &l.path).is_some(), "{file}: reported `{}` is not an input key", l.path);
    }
}

/// The report line for `path` of `file`.
fn reported<'a>(run: &'a Run, file: &str, path: &str) -> &'a Line {
    run.report
        .iter()
        .find(|l| l.file.ends_with(file) && l.path == path)
        .unwrap_or_else(|| panic!("`{path}` of {file} not reported: {:#?}", run.report))
}

/// The input's own-line comments, but for those listed (comments of keys not carried).
fn comments_kept(input: &str, output: &str, gone: &[&str]) {
    let out_lines: Vec<&str> = output.lines().map(str::trim).collect();
    for c in input.lines().map(str::trim).filter(|l| l.starts_with('#')) {
        if gone.contains(&c) {
            assert!(!out_lines.contains(&c), "comment of a key not carried is in the output: {c:?}");
        } else {
            assert!(out_lines.contains(&c), "comment lost: {c:?}\n--- output ---\n{output}");
        }
    }
}

fn same(a: &str) -> String {
    a.to_string()
}

#[test]
fn debian_defaults_round_trip() {
    let prom = data("debian-prometheus.yml");
    let am = data("debian-alertmanager.yml");
    let run = import("import-debian", &["--prometheus", &prom, "--alertmanager", &am]);
    check_passes(&run.config);
    let out = yaml(&run.text);
    every_key_accounted("debian-prometheus.yml", &read_yaml(&prom), &out, &run.report, same);
    every_key_accounted("debian-alertmanager.yml", &read_yaml(&am), &out, &run.report, same);

    // Exactly these were left behind, at these places.
    let left: Vec<(&str, usize, usize, &str)> =
        run.report.iter().map(|l| (l.file.rsplit('/').next().unwrap_or(""), l.line, l.col, l.path.as_str())).collect();
    assert_eq!(
        left,
        vec![
            ("debian-alertmanager.yml", 12, 1, "templates"),
            ("debian-alertmanager.yml", 103, 3, "receivers[1].pagerduty_configs"),
            ("debian-alertmanager.yml", 111, 3, "receivers[3].pagerduty_configs"),
            ("debian-alertmanager.yml", 115, 3, "receivers[4].pagerduty_configs"),
        ]
    );
    assert!(reported(&run, "debian-alertmanager.yml", "templates").why.contains("Go template"));
    assert!(reported(&run, "debian-alertmanager.yml", "receivers[1].pagerduty_configs")
        .why
        .contains("no pagerduty integration"));

    // The daemon's loader reads the same jobs, route tree and receivers.
    let cfg = forewarn::config::Config::load(&run.config).expect("loads");
    let jobs: Vec<(&str, Option<String>, Vec<String>)> = cfg
        .scrape_configs
        .iter()
        .map(|j| {
            (
                j.job_name.as_str(),
                j.scrape_interval.map(|d| d.to_string()),
                j.static_configs.iter().flat_map(|s| s.targets.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("prometheus", Some("5s".to_string()), vec!["localhost:9090".to_string()]),
            ("node", None, vec!["localhost:9100".to_string()])
        ]
    );
    assert_eq!(cfg.global.scrape_interval.to_string(), "15s");
    assert_eq!(cfg.global.external_labels.get("monitor").map(String::as_str), Some("example"));
    assert_eq!(cfg.global.smtp_smarthost.as_deref(), Some("localhost:25"));
    assert_eq!(cfg.alerting.alertmanagers.len(), 1);
    let route = cfg.route.as_ref().expect("route");
    assert_eq!(route.receiver.as_deref(), Some("team-X-mails"));
    assert_eq!(route.group_by.as_deref(), Some(&["alertname".to_string(), "cluster".into(), "service".into()][..]));
    let tree: Vec<(Option<&str>, usize)> =
        route.routes.iter().map(|r| (r.receiver.as_deref(), r.routes.len())).collect();
    assert_eq!(tree, vec![(Some("team-X-mails"), 1), (Some("team-Y-mails"), 1), (Some("team-DB-pager"), 2)]);
    assert_eq!(route.routes[0].match_re.get("service").map(String::as_str), Some("^(foo1|foo2|baz)$"));
    let receivers: Vec<(&str, usize)> =
        cfg.receivers.iter().map(|r| (r.name.as_str(), r.email_configs.len())).collect();
    assert_eq!(
        receivers,
        vec![("team-X-mails", 1), ("team-X-pager", 1), ("team-Y-mails", 1), ("team-Y-pager", 0), ("team-DB-pager", 0)]
    );
    assert_eq!(cfg.inhibit_rules.len(), 1);
    assert_eq!(cfg.inhibit_rules[0].equal, vec!["alertname", "cluster", "service"]);

    // Comments: every one, but those of the templates and pagerduty keys.
    comments_kept(&std::fs::read_to_string(&prom).unwrap_or_default(), &run.text, &[]);
    comments_kept(
        &std::fs::read_to_string(&am).unwrap_or_default(),
        &run.text,
        &["# The directory from which notification templates are read."],
    );
    // ...beside the keys they describe.
    assert!(run.text.contains("scrape_interval: 15s # Set the scrape interval to every 15 seconds."), "{}", run.text);
    assert!(
        run.text.contains("  # Attach these labels to any time series or alerts when communicating with\n"),
        "{}",
        run.text
    );
    assert!(run.text.contains("  # A default receiver\n  receiver: team-X-mails\n"), "{}", run.text);
}

#[test]
fn upstream_test_configs_round_trip() {
    let prom = data("prometheus-conf.good.yml");
    let am = data("alertmanager-conf.good.yml");
    let run = import("import-upstream", &["--prometheus", &prom, "--alertmanager", &am]);
    check_passes(&run.config);
    let out = yaml(&run.text);
    let bearer = |p: &str| {
        p.replace(".bearer_token_file", ".authorization.credentials_file")
            .replace(".bearer_token", ".authorization.credentials")
    };
    every_key_accounted("prometheus-conf.good.yml", &read_yaml(&prom), &out, &run.report, bearer);
    every_key_accounted("alertmanager-conf.good.yml", &read_yaml(&am), &out, &run.report, same);

    // Specific explanations, at the right lines.
    let k8s = reported(&run, "prometheus-conf.good.yml", "scrape_configs[4].kubernetes_sd_configs");
    assert!(k8s.why.contains("file_sd_configs"), "{k8s:?}");
    let line = k8s.line;
    let text = std::fs::read_to_string(&prom).unwrap_or_default();
    assert_eq!(text.lines().nth(line - 1).map(str::trim), Some("kubernetes_sd_configs:"), "{k8s:?}");
    let rr = reported(&run, "prometheus-conf.good.yml", "remote_read");
    assert_eq!((rr.line, rr.col), (53, 1));
    let runtime = reported(&run, "prometheus-conf.good.yml", "runtime");
    assert_eq!((runtime.line, runtime.col), (19, 1));
    let slack = reported(&run, "alertmanager-conf.good.yml", "global.slack_api_url");
    assert_eq!((slack.line, slack.col), (8, 3));
    let http = reported(&run, "alertmanager-conf.good.yml", "global.http_config");
    assert!(http.why.contains("webhook_configs"), "{http:?}");
    // Every report line points at its key in its file.
    for l in &run.report {
        let text = std::fs::read_to_string(&l.file).unwrap_or_default();
        let src = text.lines().nth(l.line - 1).unwrap_or_default();
        let last = l.path.rsplit('.').next().unwrap_or_default();
        let key = last.split('[').next().unwrap_or_default();
        // A key points at itself; a list item at its first key.
        assert!(src[l.col - 1..].starts_with(key) || l.path.ends_with(']'), "{l:?} points at {src:?}");
    }

    // Semantics the daemon sees.
    let cfg = forewarn::config::Config::load(&run.config).expect("loads");
    let input = read_yaml(&prom);
    let jobs: Vec<&str> = cfg.scrape_configs.iter().map(|j| j.job_name.as_str()).collect();
    let in_jobs: Vec<&str> = input["scrape_configs"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["job_name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(jobs, in_jobs);
    let relabels = cfg.scrape_configs[0].relabel_configs.iter().map(|r| r.target_label.as_str()).collect::<Vec<_>>();
    assert_eq!(relabels, vec!["job", "cde", "abc", "abc"], "keepequal and dropequal rules are not carried");
    assert_eq!(cfg.scrape_configs[1].scheme, "https");
    assert_eq!(cfg.scrape_configs[1].metrics_path, "/my_path");
    let receivers: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        receivers.len(),
        yaml(&std::fs::read_to_string(&am).unwrap_or_default())["receivers"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(cfg.global.smtp_hello.as_deref(), Some("host.example.org"));
    assert_eq!(cfg.global.smtp_auth_password.as_deref(), Some("multiline\nmysecret"));
    assert!(run.text.contains("# my global config\nglobal:\n"), "{}", &run.text[..200.min(run.text.len())]);
    assert!(run.text.contains("          # continue: true\n"), "{}", run.text);
}

#[test]
fn docs_example_and_web_config_round_trip() {
    let prom = data("prometheus-docs-example.yml");
    let am = data("alertmanager-simple.yml");
    let web = data("prometheus-web-config.yml");
    let run = import("import-docs", &["--prometheus", &prom, "--alertmanager", &am, "--web-config", &web]);
    check_passes(&run.config);
    let out = yaml(&run.text);
    every_key_accounted("prometheus-docs-example.yml", &read_yaml(&prom), &out, &run.report, same);
    every_key_accounted("alertmanager-simple.yml", &read_yaml(&am), &out, &run.report, same);
    every_key_accounted("prometheus-web-config.yml", &read_yaml(&web), &out, &run.report, |p| format!("http.{p}"));
    comments_kept(&std::fs::read_to_string(&prom).unwrap_or_default(), &run.text, &[]);
    comments_kept(&std::fs::read_to_string(&web).unwrap_or_default(), &run.text, &[]);
    let cfg = forewarn::config::Config::load(&run.config).expect("loads");
    assert_eq!(cfg.http.basic_auth_users.keys().collect::<Vec<_>>(), vec!["alice", "bob"]);
    let tls = cfg.http.tls_server_config.as_ref().expect("tls carried");
    assert!(tls.cert_file.is_absolute() && tls.cert_file.ends_with("web-server.crt"), "{tls:?}");
}

#[test]
fn exporter_toolkit_web_configs() {
    let users = data("web-web_config_users.good.yml");
    let run = import("import-web-users", &["--web-config", &users]);
    check_passes(&run.config);
    assert!(run.report.is_empty(), "{:?}", run.report);
    every_key_accounted("web-web_config_users.good.yml", &read_yaml(&users), &yaml(&run.text), &run.report, |p| {
        format!("http.{p}")
    });

    let mtls = data("web-tls_config_noAuth.requireandverifyclientcert.good.yml");
    let run = import("import-web-mtls", &["--web-config", &mtls]);
    check_passes(&run.config);
    let cfg = forewarn::config::Config::load(&run.config).expect("loads");
    assert!(cfg.http.tls_server_config.is_some_and(|t| t.client_ca_file.is_some()));

    let headers = data("web-web_config_headers.good.yml");
    let run = import("import-web-headers", &["--web-config", &headers]);
    check_passes(&run.config);
    let h = reported(&run, "web-web_config_headers.good.yml", "http_server_config");
    assert_eq!((h.line, h.col), (1, 1));
    assert!(h.why.contains("reverse proxy"), "{h:?}");
}

#[test]
fn strict_fails_and_writes_nothing_when_keys_are_left() {
    let dir = temp_dir("import-strict");
    let config = dir.join("forewarn.yml");
    let am = data("debian-alertmanager.yml");
    let out =
        Command::new(BIN).args(["import", "--strict", "--alertmanager", &am, "-o"]).arg(&config).output().expect("run");
    assert!(!out.status.success());
    assert!(!config.exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("debian-alertmanager.yml:12:1: key `templates` not carried:"), "{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");
    // Nothing left behind: --strict succeeds; no -o prints the config.
    let prom = data("debian-prometheus.yml");
    let out = Command::new(BIN).args(["import", "--strict", "--prometheus", &prom]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  - job_name: 'prometheus'\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_inputs_name_the_place() {
    let dir = temp_dir("import-bad");
    let run = |args: &[&str]| {
        let out = Command::new(BIN).arg("import").args(args).output().expect("run");
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let missing = dir.join("nope.yml").display().to_string();
    let e = run(&["--prometheus", &missing]);
    assert!(e.contains(&missing) && e.contains("cannot read"), "{e}");
    let broken = dir.join("broken.yml");
    std::fs::write(&broken, "global:\n  scrape_interval: 15s\nscrape_configs: [ { job_name: x }\n").expect("write");
    let e = run(&["--prometheus", &broken.display().to_string()]);
    assert!(e.contains(&format!("{}:", broken.display())) && e.contains(":3:"), "{e}");
    let shape = dir.join("shape.yml");
    std::fs::write(&shape, "# jobs\nscrape_configs:\n  job_name: x\n").expect("write");
    let e = run(&["--prometheus", &shape.display().to_string()]);
    assert!(e.contains(&format!("{}:2:1: `scrape_configs` must be a list", shape.display())), "{e}");
    assert!(run(&[]).contains("nothing to import"));
}
