//! What one query may cost: the size and nesting of its text and syntax
//! tree (checked before and after parsing), and the time, samples and
//! cancellation of its evaluation (`Budget`).
//!
//! The parser and the evaluator are recursive, so an expression nested
//! deep enough overflows the thread's stack and aborts the process. The
//! text is therefore scanned first, without recursion, and refused when its
//! tree could be deeper than [`MAX_DEPTH`]; the parsed tree is walked (again
//! without recursion) for depth and node count before anything evaluates
//! it. The API, rule loading and `forewarn check` all parse through
//! [`super::parse`], so they refuse the same expressions.
//!
//! During evaluation every loop over steps, subquery points and series
//! calls into the `Budget`, which stops the query on its deadline, when
//! its samples pass `max_samples`, or when its caller cancels it (a client
//! that went away, a shutting-down daemon).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::Expr;

use super::EvalError;

/// How deep an expression may nest (parentheses, operators, function
/// arguments). Real rules stay far below; the evaluator's recursion at this
/// depth fits the 16 MiB stacks the daemon runs queries on.
pub const MAX_DEPTH: usize = 1000;
/// The longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 256 * 1024;
/// The most syntax tree nodes one expression may have.
pub const MAX_NODES: usize = 20_000;

/// Refuses query text whose syntax tree could nest deeper than
/// [`MAX_DEPTH`], or that is longer than [`MAX_QUERY_BYTES`], naming the
/// place (`line:col`, byte offset). Runs in one pass without recursion, so
/// it is safe on any input. The depth counted is an upper bound: each open
/// bracket adds a level, and so does each operator (binary or unary)
/// within one bracket level or function argument.
pub fn prescan(text: &str) -> Result<(), super::ParseError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(super::ParseError::TooLong(text.len()));
    }
    let b = text.as_bytes();
    // Per open bracket: its kind and the operators counted inside it so far.
    let mut levels: Vec<(u8, usize)> = vec![(b'(', 0)];
    let mut depth = 0usize;
    let mut i = 0;
    let too_deep = |at: usize| {
        let (line, col) = line_col(text, at);
        super::ParseError::NestsTooDeep { line, col, at }
    };
    while i < b.len() {
        let c = b[i];
        let in_braces = levels.last().is_some_and(|(k, _)| *k == b'{');
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => {
                levels.push((c, 0));
                depth += 1;
            }
            // Unbalanced closers are the parser's to report.
            b')' | b']' | b'}' if levels.len() > 1 => {
                if let Some((_, ops)) = levels.pop() {
                    depth = depth.saturating_sub(ops + 1);
                }
            }
            b',' => {
                // Function arguments are siblings, not nested.
                if let Some((_, ops)) = levels.last_mut() {
                    depth = depth.saturating_sub(*ops);
                    *ops = 0;
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' | b'!' if !in_braces => {
                // `<=`, `>=`, `!=` are one operator.
                if matches!(c, b'<' | b'>' | b'!') && b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
                depth += 1;
                if let Some((_, ops)) = levels.last_mut() {
                    *ops += 1;
                }
            }
            b'=' if !in_braces && b.get(i + 1) == Some(&b'=') => {
                i += 1;
                depth += 1;
                if let Some((_, ops)) = levels.last_mut() {
                    *ops += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &text[start..i];
                if !in_braces && ["and", "or", "unless", "atan2"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    depth += 1;
                    if let Some((_, ops)) = levels.last_mut() {
                        *ops += 1;
                    }
                }
                if depth > MAX_DEPTH {
                    return Err(too_deep(start));
                }
                continue;
            }
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(too_deep(i));
        }
        i += 1;
    }
    Ok(())
}

/// The index just past the string literal that opens at `i`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != q {
        // Raw (backquoted) strings have no escapes.
        if b[j] == b'\\' && q != b'`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// Refuses a parsed expression deeper than [`MAX_DEPTH`] or with more than
/// [`MAX_NODES`] nodes. Walks with an explicit stack.
pub fn check_tree(expr: &Expr) -> Result<(), super::ParseError> {
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    let mut nodes = 0usize;
    while let Some((e, depth)) = stack.pop() {
        nodes += 1;
        if depth > MAX_DEPTH {
            return Err(super::ParseError::TreeTooDeep);
        }
        if nodes > MAX_NODES {
            return Err(super::ParseError::TooManyParts);
        }
        let d = depth + 1;
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d));
                if let Some(p) = &a.param {
                    stack.push((p, d));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d)),
            Expr::Binary(x) => {
                stack.push((&x.lhs, d));
                stack.push((&x.rhs, d));
            }
            Expr::Paren(p) => stack.push((&p.expr, d)),
            Expr::Subquery(s) => stack.push((&s.expr, d)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d))),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    Ok(())
}

/// The limits one evaluation runs under (the config's `query:` section;
/// rules use their group's interval as the timeout).
#[derive(Clone, Debug)]
pub struct QueryLimits {
    /// Evaluation stops with a timeout error after this long.
    pub timeout: Duration,
    /// Evaluation stops when it would hold more samples than this.
    pub max_samples: usize,
    /// Set by the caller to stop this evaluation (its client went away).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Set by the daemon to stop every evaluation (shutting down).
    pub shutdown: Option<Arc<AtomicBool>>,
}

impl Default for QueryLimits {
    /// Prometheus's defaults: `--query.timeout=2m`, `--query.max-samples=50000000`.
    fn default() -> Self {
        QueryLimits { timeout: Duration::from_secs(120), max_samples: 50_000_000, cancel: None, shutdown: None }
    }
}

/// Message of the sample limit error, Prometheus's words.
pub const TOO_MANY_SAMPLES: &str = "query processing would load too many samples into memory in query execution";

/// One evaluation's running account: when it must end and how many samples
/// it holds. Single-threaded (one per evaluation).
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    max_samples: usize,
    held: Cell<usize>,
    cancel: Option<Arc<AtomicBool>>,
    shutdown: Option<Arc<AtomicBool>>,
}

impl Budget {
    pub fn start(limits: &QueryLimits) -> Budget {
        let now = Instant::now();
        Budget {
            deadline: now.checked_add(limits.timeout).unwrap_or(now + Duration::from_secs(365 * 86_400)),
            timeout: limits.timeout,
            max_samples: limits.max_samples,
            held: Cell::new(0),
            cancel: limits.cancel.clone(),
            shutdown: limits.shutdown.clone(),
        }
    }

    /// Errors once the query is cancelled or past its deadline.
    pub fn check(&self) -> Result<(), EvalError> {
        let set = |f: &Option<Arc<AtomicBool>>| f.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        if set(&self.cancel) || set(&self.shutdown) {
            return Err(EvalError::Canceled);
        }
        if Instant::now() >= self.deadline {
            return Err(EvalError::Timeout(self.timeout));
        }
        Ok(())
    }

    /// Accounts for `n` more samples held; errors past `max_samples` (and
    /// on cancellation or timeout, so long selections stop too).
    pub fn charge(&self, n: usize) -> Result<(), EvalError> {
        let held = self.held.get().saturating_add(n);
        self.held.set(held);
        if held > self.max_samples {
            return Err(EvalError::TooManySamples);
        }
        self.check()
    }

    /// The samples held now, to return to with [`Budget::reset_to`] when
    /// a step's intermediate values are dropped.
    pub fn held(&self) -> usize {
        self.held.get()
    }

    pub fn reset_to(&self, held: usize) {
        self.held.set(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_text_is_refused_with_its_place() {
        let minus = format!("{}up", "-".repeat(10_000));
        let e = prescan(&minus).unwrap_err().to_string();
        assert!(e.starts_with("1:1001:") && e.contains("byte 1000"), "{e}");
        let parens = format!("{}1{}", "(".repeat(40_000), ")".repeat(40_000));
        assert!(prescan(&parens).unwrap_err().to_string().contains("1:1001:"));
        let chain = vec!["up"; 5000].join(" + ");
        assert!(prescan(&chain).is_err());
        let or_chain = vec!["up"; 5000].join("\nor ");
        let e = prescan(&or_chain).unwrap_err().to_string();
        assert!(e.starts_with("1002:1:"), "{e}");
    }

    #[test]
    fn ordinary_text_passes() {
        for q in [
            "sum by (job) (rate(http_requests_total{code!=\"500\",path=~\"/a(b\"}[5m])) > 0.1",
            "a - -b",
            "order + sort_by_label(x, \"(((\")",
            "max_over_time(deriv(rate(x[1m])[5m:1m])[1h:])",
        ] {
            prescan(q).unwrap();
        }
        // Arguments are siblings: 600 operators in each of two arguments.
        let arg = vec!["1"; 600].join("+");
        prescan(&format!("atan2({arg}, {arg})")).unwrap();
        // Exactly at the limit.
        prescan(&format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH))).unwrap();
        assert!(prescan(&"x".repeat(MAX_QUERY_BYTES + 1)).is_err());
    }

    #[test]
    fn tree_limits() {
        let e = promql_parser::parser::parse(&vec!["1"; 50].join("+")).unwrap();
        check_tree(&e).unwrap();
    }

    /// `x[100y]` over many series stops at max_samples while selecting:
    /// the store stops reading at the series that passes the limit.
    #[test]
    fn selection_stops_at_the_sample_limit() {
        use crate::store::Queryable;
        let st = crate::store::Store::new(i64::MAX / 4);
        for i in 0..200 {
            let l = crate::labels::Labels::from_pairs([("__name__", "x".to_string()), ("i", i.to_string())]);
            for t in 0..50 {
                st.append(&l, t * 1000, 1.0);
            }
        }
        let opts = crate::promql::EvalOptions {
            limits: QueryLimits { max_samples: 1000, ..Default::default() },
            ..Default::default()
        };
        let e = crate::promql::parse("count_over_time(x[100y])").unwrap();
        let r = crate::promql::eval_instant(&st, &e, 100_000, &opts);
        assert!(matches!(r, Err(EvalError::TooManySamples)), "{r:?}");
        let m = crate::promql::selector_matchers(&match crate::promql::parse("x").unwrap() {
            Expr::VectorSelector(vs) => vs,
            _ => unreachable!(),
        })
        .unwrap();
        let mut asked = 0;
        let got = st.select_checked(&m, 0, 100_000, &mut |n| {
            asked += n;
            asked <= 1000
        });
        assert_eq!((asked, got.len()), (1050, 20), "reading stopped at the 21st series");
        // Within the limit it answers.
        let opts = crate::promql::EvalOptions {
            limits: QueryLimits { max_samples: 10_000, ..Default::default() },
            ..Default::default()
        };
        assert!(crate::promql::eval_instant(&st, &e, 100_000, &opts).is_ok());
    }

    #[test]
    fn budget_stops_on_samples_time_and_cancel() {
        let b = Budget::start(&QueryLimits { max_samples: 10, ..Default::default() });
        b.charge(10).unwrap();
        assert!(matches!(b.charge(1), Err(EvalError::TooManySamples)));
        b.reset_to(0);
        b.charge(5).unwrap();
        let b = Budget::start(&QueryLimits { timeout: Duration::ZERO, ..Default::default() });
        assert!(matches!(b.check(), Err(EvalError::Timeout(_))));
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget::start(&QueryLimits { cancel: Some(flag.clone()), ..Default::default() });
        b.check().unwrap();
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(b.check(), Err(EvalError::Canceled)));
    }
}
