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
