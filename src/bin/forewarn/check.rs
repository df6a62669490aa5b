//! `forewarn check FILE...` and `forewarn check metrics [FILE]`: prints what
//! the library finds in config and rule files (load errors, then lint) or
//! in a `/metrics` body, and turns it into the exit code CI scripts read.

use std::path::Path;
use std::process::ExitCode;

use forewarn::ruletest::{check::check_file, expand_dirs, lint::lint_path};
use forewarn::scrape::parse;

/// Every problem as `file:line:col: message`, exit 1 on any; lint findings
/// (`file:line:col: lint: ...`) exit 3 with `--lint-fatal`.
pub fn run(paths: &[String], format: &str, lint_fatal: bool) -> ExitCode {
    if paths.first().map(String::as_str) == Some("metrics") {
        return metrics(paths.get(1).map(String::as_str), format);
    }
    let mut failed = false;
    let mut linted = 0;
    for p in &expand_dirs(paths) {
        match check_file(Path::new(p)) {
            Ok(summary) => {
                println!("{p}: SUCCESS: {summary}");
                let found = lint_path(Path::new(p));
                for f in &found {
                    println!("{f}");
                }
                linted += found.len();
            }
            Err(errs) => {
                failed = true;
                for e in errs {
                    println!("{e}");
                }
                println!("{p}: FAILED");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else if linted > 0 && lint_fatal {
        println!("{linted} lint findings (--lint-fatal)");
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// `check metrics`: the body in `file` (stdin without one) parsed as a
/// scrape would parse it; its counts, or every error as `line:col: message`.
fn metrics(file: Option<&str>, format: &str) -> ExitCode {
    use std::io::Read;
    let mut body = Vec::new();
    let read = match file {
        Some(f) => std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut body)),
        None => std::io::stdin().read_to_end(&mut body),
    };
    if let Err(e) = read {
        eprintln!("error: cannot read {}: {e}", file.unwrap_or("stdin"));
        return ExitCode::FAILURE;
    }
    let fmt = if format == "openmetrics" { parse::Format::OpenMetrics } else { parse::Format::Prometheus };
    let (summary, errors) = parse::check(&body, fmt);
    if errors.is_empty() {
        println!("{} series, {} samples, {} metric families", summary.series, summary.samples, summary.metric_families);
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            println!("{}:{}: {}", e.line, e.col, e.message);
        }
        ExitCode::FAILURE
    }
}
