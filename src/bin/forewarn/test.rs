//! `forewarn test rules FILE...` and `forewarn test promql FILE...`: runs
//! the library's rule unit tests and PromQL test scripts, prints their
//! reports, and exits 1 on any failure so CI can gate on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use forewarn::ruletest::{expand_dirs, run_file, Options};

/// `forewarn test rules`: promtool-style rule unit tests, a report per file.
pub fn rules(files: &[PathBuf], run: &[String], ignore_unknown_fields: bool) -> ExitCode {
    let mut opts = Options { ignore_unknown_fields, ..Default::default() };
    for r in run {
        match regex::Regex::new(r) {
            Ok(re) => opts.run.push(re),
            Err(e) => {
                eprintln!("error: --run {r:?}: invalid regex: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut failed = false;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for f in expand_dirs(&names) {
        let out = run_file(Path::new(&f), &opts);
        print!("{}", out.report());
        failed |= !out.passed();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `forewarn test promql`: a line per file (and one per failure), then the totals.
pub fn promql(files: &[PathBuf]) -> ExitCode {
    let (mut passed, mut failed, mut unsupported) = (0, 0, 0);
    for f in files {
        let r = forewarn::promql::promqltest::run_file(f);
        let verdict = if r.failed == 0 { "ok" } else { "FAILED" };
        println!("{}: {verdict}: {} passed, {} failed, {} unsupported", f.display(), r.passed, r.failed, r.unsupported);
        for line in &r.failures {
            println!("  {line}");
        }
        passed += r.passed;
        failed += r.failed;
        unsupported += r.unsupported;
    }
    println!("{passed} passed, {failed} failed, {unsupported} unsupported");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
