//! The routing tree: which receivers hear of an alert, and how its
//! notifications are grouped and timed.
//!
//! Alertmanager's semantics: a route matches when all its matchers do; its
//! children are tried in order and the first match wins unless that child
//! sets `continue`; a route none of whose children match handles the alert
//! itself. Children inherit the receiver, grouping and timing they do not set.

use super::config::RouteConfig;
use crate::duration::PromDuration;
use crate::labels::{Labels, MatchOp, Matcher};

/// Why an Alertmanager matcher (`name="value"`, ...) was refused.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("expected name=value, name!=value, name=~regex or name!~regex")]
    NoOperator,
    #[error("invalid label name {0:?}")]
    LabelName(String),
    #[error("value ends with a backslash")]
    TrailingBackslash,
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
}

/// Why the routing tree was refused; names the route by its id (`0.1.2`).
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("route {id}: matcher {matcher:?}: {source}")]
    Matcher { id: String, matcher: String, source: MatcherError },
    #[error("route {id}: match_re {label}: {source}")]
    MatchRe { id: String, label: String, source: regex::Error },
    /// `field` is `group_interval` or `repeat_interval`.
    #[error("route {id}: {field} must be greater than 0s")]
    ZeroInterval { id: String, field: &'static str },
}

/// How alerts are split into groups under a route.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupBy {
    Labels(Vec<String>),
    /// `group_by: ['...']`: every distinct label set is its own group.
    All,
}

impl GroupBy {
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels.keep_only(names),
        }
    }
}

/// A node of the routing tree with its inherited settings resolved.
#[derive(Clone, Debug)]
pub struct Route {
    /// Position in the tree, e.g. `0.1.0`; part of every group key.
    pub id: String,
    pub receiver: String,
    pub group_by: GroupBy,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub group_wait: PromDuration,
    pub group_interval: PromDuration,
    pub repeat_interval: PromDuration,
    /// Names of `time_intervals` when this route sends nothing (not inherited).
    pub mute_time_intervals: Vec<String>,
    /// When set, names of `time_intervals` outside which it sends nothing.
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
}

impl Route {
    /// Builds the tree from config, with Alertmanager's defaults at the root.
    pub fn from_config(cfg: &RouteConfig) -> Result<Route, RouteError> {
        let root_defaults = Route {
            id: "0".into(),
            receiver: String::new(),
            group_by: GroupBy::Labels(Vec::new()),
            matchers: Vec::new(),
            continue_matching: false,
            group_wait: PromDuration::from_secs(30),
            group_interval: PromDuration::from_secs(300),
            repeat_interval: PromDuration::from_secs(4 * 3600),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            routes: Vec::new(),
        };
        build(cfg, &root_defaults, "0".into())
    }

    /// The routes that handle an alert with these labels (at least one for the root).
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        let mut out = Vec::new();
        self.collect(labels, &mut out);
        out
    }

    fn collect<'a>(&'a self, labels: &Labels, out: &mut Vec<&'a Route>) -> bool {
        if !self.matchers.iter().all(|m| m.matches(labels)) {
            return false;
        }
        let mut any_child = false;
        for child in &self.routes {
            if child.collect(labels, out) {
                any_child = true;
                if !child.continue_matching {
                    break;
                }
            }
        }
        if !any_child {
            out.push(self);
        }
        true
    }

    /// Every route in the tree, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut v = vec![self];
        for c in &self.routes {
            v.extend(c.walk());
        }
        v
    }
}

fn build(cfg: &RouteConfig, parent: &Route, id: String) -> Result<Route, RouteError> {
    let mut matchers = Vec::new();
    for m in &cfg.matchers {
        matchers.push(parse_matcher(m).map_err(|source| RouteError::Matcher {
            id: id.clone(),
            matcher: m.clone(),
            source,
        })?);
    }
    for (k, v) in &cfg.match_eq {
        matchers.push(Matcher::equal(k.clone(), v.clone()));
    }
    for (k, v) in &cfg.match_re {
        matchers.push(Matcher::regex(k.clone(), v, false).map_err(|source| RouteError::MatchRe {
            id: id.clone(),
            label: k.clone(),
            source,
        })?);
    }
    let group_by = match &cfg.group_by {
        None => parent.group_by.clone(),
        Some(v) if v.iter().any(|l| l == "...") => GroupBy::All,
        Some(v) => GroupBy::Labels(v.clone()),
    };
    let mut route = Route {
        id: id.clone(),
        receiver: cfg.receiver.clone().unwrap_or_else(|| parent.receiver.clone()),
        group_by,
        matchers,
        continue_matching: cfg.continue_matching,
        group_wait: cfg.group_wait.unwrap_or(parent.group_wait),
        group_interval: cfg.group_interval.unwrap_or(parent.group_interval),
        repeat_interval: cfg.repeat_interval.unwrap_or(parent.repeat_interval),
        // Alertmanager does not inherit these: each route names its own.
        mute_time_intervals: cfg.mute_time_intervals.clone(),
        active_time_intervals: cfg.active_time_intervals.clone(),
        routes: Vec::new(),
    };
    if route.group_interval.is_zero() {
        return Err(RouteError::ZeroInterval { id, field: "group_interval" });
    }
    if route.repeat_interval.is_zero() {
        return Err(RouteError::ZeroInterval { id, field: "repeat_interval" });
    }
    for (i, c) in cfg.routes.iter().enumerate() {
        let child = build(c, &route, format!("{id}.{i}"))?;
        route.routes.push(child);
    }
    Ok(route)
}

/// Parses an Alertmanager matcher: `name="value"`, `name=value`, `name!=v`,
/// `name=~"re"`, `name!~"re"`; surrounding braces are allowed.
pub fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let t = s.trim();
    let t = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(t).trim();
    let ops = ["=~", "!~", "!=", "="];
    let (pos, op) = ops
        .iter()
        .filter_map(|op| t.find(op).map(|p| (p, *op)))
        .min_by_key(|(p, op)| (*p, std::cmp::Reverse(op.len())))
        .ok_or(MatcherError::NoOperator)?;
    let name = t[..pos].trim();
    if name.is_empty() || !crate::rules::file::valid_label_name(name) {
        return Err(MatcherError::LabelName(name.to_string()));
    }
    let raw = t[pos + op.len()..].trim();
    let value = if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        unquote(&raw[1..raw.len() - 1])?
    } else {
        raw.to_string()
    };
    Ok(match op {
        "=" => Matcher::equal(name, value),
        "!=" => Matcher { name: name.to_string(), op: MatchOp::NotEqual(value) },
        "=~" => Matcher::regex(name, &value, false)?,
        _ => Matcher::regex(name, &value, true)?,
    })
}

fn unquote(s: &str) -> Result<String, MatcherError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c @ ('\\' | '"')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c)
                }
                None => return Err(MatcherError::TrailingBackslash),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(y: &str) -> RouteConfig {
        crate::yaml::parse("r.yml", y).unwrap()
    }

    #[test]
    fn first_matching_child_wins_unless_continue() {
        let r = Route::from_config(&cfg(
            "receiver: default\ngroup_by: [alertname]\nroutes:\n  - matchers: ['severity=\"page\"']\n    receiver: pager\n    continue: true\n  - matchers: [team=~\"db|infra\"]\n    receiver: db\n  - receiver: never\n",
        ))
        .unwrap();
        let names = |l: &[(&str, &str)]| -> Vec<String> {
            r.matching(&Labels::from_pairs(l.iter().copied())).iter().map(|r| r.receiver.clone()).collect()
        };
        assert_eq!(names(&[("severity", "page"), ("team", "db")]), vec!["pager", "db"]);
        assert_eq!(names(&[("team", "infra")]), vec!["db"]);
        assert_eq!(names(&[("team", "web")]), vec!["never"]);
        assert_eq!(r.routes[0].group_by, GroupBy::Labels(vec!["alertname".into()]));
        assert_eq!(r.routes[0].group_wait.as_millis(), 30_000);
    }

    #[test]
    fn matcher_syntax() {
        assert!(parse_matcher("a=b").unwrap().matches_value("b"));
        assert!(parse_matcher("a!=\"b\"").unwrap().matches_value("c"));
        assert!(parse_matcher("a=~\"b.*\"").unwrap().matches_value("bcd"));
        assert!(!parse_matcher("{a!~\"b.*\"}").unwrap().matches_value("bcd"));
        assert!(parse_matcher("nonsense").is_err());
        assert!(parse_matcher("a=~\"(\"").is_err());
    }
}
