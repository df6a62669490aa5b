//! Every rule of the awesome-prometheus-alerts corpus loads (parse, validate,
//! [`check_supported`](forewarn::promql::check_supported)) and evaluates
//! without error against synthetic data: a series for every selector the rule
//! uses, so functions, operators and aggregations run on real samples.

use std::path::{Path, PathBuf};

use forewarn::labels::Labels;
use forewarn::promql::{self, EvalOptions, Expr};
use forewarn::rules::Rule;
use forewarn::store::Store;
use promql_parser::label::MatchOp;

const CORPUS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/rules-corpus/awesome-prometheus-alerts/dist/rules");

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

/// The label sets a rule's selectors ask for (metric name and `=` matchers).
fn selector_labels(e: &Expr, out: &mut Vec<Labels>) {
    match e {
        Expr::VectorSelector(vs) => {
            let mut pairs: Vec<(String, String)> =
                vs.name.iter().map(|n| ("__name__".to_string(), n.clone())).collect();
            for m in &vs.matchers.matchers {
                if matches!(m.op, MatchOp::Equal) {
                    pairs.push((m.name.clone(), m.value.clone()));
                }
            }
            pairs.push(("instance".into(), "host:9100".into()));
            pairs.push(("job".into(), "corpus".into()));
            out.push(Labels::from_pairs(pairs));
        }
        Expr::MatrixSelector(ms) => selector_labels(&Expr::VectorSelector(ms.vs.clone()), out),
        Expr::Paren(p) => selector_labels(&p.expr, out),
        Expr::Unary(u) => selector_labels(&u.expr, out),
        Expr::Subquery(s) => selector_labels(&s.expr, out),
        Expr::Binary(b) => {
            selector_labels(&b.lhs, out);
            selector_labels(&b.rhs, out);
        }
        Expr::Aggregate(a) => selector_labels(&a.expr, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selector_labels(a, out)),
        _ => {}
    }
}

#[test]
fn every_corpus_rule_loads_and_evaluates() {
    let root = Path::new(CORPUS);
    if !root.exists() {
        eprintln!("skipped: {CORPUS} is not on this machine");
        return;
    }
    let mut files = Vec::new();
    yml_files(root, &mut files);
    assert!(files.len() > 100, "expected the whole corpus, found {} files", files.len());
    let interval = forewarn::duration::PromDuration::from_secs(60);
    let (mut rules, mut with_data, mut errors) = (0, 0, Vec::new());
    for f in &files {
        let groups = match forewarn::rules::load_file(f, interval) {
            Ok(g) => g,
            Err(errs) => {
                errors.extend(errs.iter().map(|e| e.to_string()));
                continue;
            }
        };
        for r in groups.iter().flat_map(|g| &g.rules) {
            let text = match r {
                Rule::Alert(a) => &a.expr_text,
                Rule::Record(r) => &r.expr_text,
            };
            rules += 1;
            let expr = match promql::parse(text) {
                Ok(e) => e,
                Err(e) => {
                    errors.push(format!("{}: {text}: {e}", f.display()));
                    continue;
                }
            };
            let mut series = Vec::new();
            selector_labels(&expr, &mut series);
            let store = Store::new(i64::MAX / 4);
            for (i, labels) in series.iter().enumerate() {
                for step in 0..=480i64 {
                    // Rising, with a wobble: counters increase, gauges move.
                    let v = (step as f64) * (1.0 + i as f64) + (step % 7) as f64;
                    store.append(labels, step * 15_000, v);
                }
            }
            match promql::eval_instant(&store, &expr, 480 * 15_000, &EvalOptions::default()) {
                Ok(promql::Value::Vector(v)) if !v.is_empty() => with_data += 1,
                Ok(_) => {}
                Err(e) => errors.push(format!("{}: {text}: {e}", f.display())),
            }
        }
    }
    println!("rules corpus: {} files, {rules} rules checked, {with_data} with a non-empty result", files.len());
    assert!(errors.is_empty(), "{} problems:\n{}", errors.len(), errors.join("\n"));
    assert!(rules > 500, "only {rules} rules found");
}
