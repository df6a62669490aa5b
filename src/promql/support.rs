//! [`check_supported`]: the load-time gate that refuses expressions the
//! evaluator would answer wrongly or not at all, so a rule file using them
//! fails loudly instead of alerting on a silently wrong value.

use promql_parser::parser::Expr;

use super::{aggregate, functions, range_functions, EvalError};

/// Walks the whole expression and reports the first construct the evaluator
/// does not implement.
pub fn check_supported(expr: &Expr) -> Result<(), EvalError> {
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => selector(&vs.matchers),
        Expr::MatrixSelector(ms) => selector(&ms.vs.matchers),
        Expr::Paren(p) => check_supported(&p.expr),
        Expr::Unary(u) => check_supported(&u.expr),
        Expr::Subquery(s) => check_supported(&s.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(EvalError::Unsupported("fill modifiers in binary operations".into()));
                }
            }
            check_supported(&b.lhs)?;
            check_supported(&b.rhs)
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !aggregate::SUPPORTED.contains(&op.as_str()) {
                return Err(EvalError::Unsupported(format!("aggregation {op}")));
            }
            if let Some(p) = &a.param {
                check_supported(p)?;
            }
            check_supported(&a.expr)
        }
        Expr::Call(c) => {
            let name = c.func.name;
            if !functions::SUPPORTED.contains(&name) && !range_functions::SUPPORTED.contains(&name) {
                return Err(EvalError::Unsupported(format!("function {name}")));
            }
            c.args.args.iter().try_for_each(|a| check_supported(a))
        }
        Expr::Extension(e) => Err(EvalError::Unsupported(format!("extension expression {}", e.expr.name()))),
    }
}

fn selector(m: &promql_parser::label::Matchers) -> Result<(), EvalError> {
    if m.or_matchers.is_empty() {
        Ok(())
    } else {
        Err(EvalError::Unsupported("`or` inside label matchers".into()))
    }
}

/// The metric name of every selector under `expr`, `None` for a selector
/// without a literal one (`{job="x"}`, `{__name__=~"a|b"}`): what a rule
/// reads, for waking it when those names get fresh samples.
pub fn selector_names(expr: &Expr) -> Vec<Option<String>> {
    fn name(vs: &promql_parser::parser::VectorSelector) -> Option<String> {
        vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__" && matches!(m.op, promql_parser::label::MatchOp::Equal))
                .map(|m| m.value.clone())
        })
    }
    fn walk(e: &Expr, out: &mut Vec<Option<String>>) {
        match e {
            Expr::VectorSelector(vs) => out.push(name(vs)),
            Expr::MatrixSelector(ms) => out.push(name(&ms.vs)),
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

#[cfg(test)]
mod selector_names_tests {
    #[test]
    fn names_of_every_selector_and_none_for_nameless_ones() {
        let e = crate::promql::parse(
            r#"sum(rate(a_total[5m])) / on() group_left count({__name__="b"}) > max_over_time(({job="x"})[1h:1m])"#,
        )
        .unwrap();
        let got = super::selector_names(&e);
        assert_eq!(got, vec![Some("a_total".to_string()), Some("b".to_string()), None]);
        assert!(super::selector_names(&crate::promql::parse("vector(1)").unwrap()).is_empty());
    }
}
