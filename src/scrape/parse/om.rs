//! OpenMetrics 1.0 semantic rules, checked while samples stream past.
//!
//! The lexer only knows lines; this knows metric families (TYPE/HELP/UNIT and
//! the sample-name suffixes each type allows), metrics (label sets within a
//! family) and metric points (the samples of one metric sharing a timestamp),
//! and enforces what the spec says a valid exposition must satisfy:
//! no interleaving of families/metrics, no clashing names, metadata before
//! samples, counter/histogram/summary value rules, bucket ordering, the +Inf
//! bucket, `_count`/`_sum` pairing, non-decreasing timestamps, where exemplars
//! may appear. Rules that need a whole metric point are checked when the point
//! ends, and reported at the line where it started.
//!
//! Memory is per family / per metric (a few small strings and hashes), never
//! per sample.

use std::collections::HashSet;

use super::hash::{hash_str, without, IdBuild};
use super::lex::parse_number;
use super::{Format, MetricType, ParsedSample};

/// The part of a sample name after the family name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Suffix {
    None,
    Total,
    Created,
    Count,
    Sum,
    Bucket,
    Gcount,
    Gsum,
    Info,
}

impl Suffix {
    pub(super) const NON_EMPTY: [Suffix; 8] = [
        Suffix::Total,
        Suffix::Created,
        Suffix::Count,
        Suffix::Sum,
        Suffix::Bucket,
        Suffix::Gcount,
        Suffix::Gsum,
        Suffix::Info,
    ];

    pub(super) fn text(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::Total => "_total",
            Suffix::Created => "_created",
            Suffix::Count => "_count",
            Suffix::Sum => "_sum",
            Suffix::Bucket => "_bucket",
            Suffix::Gcount => "_gcount",
            Suffix::Gsum => "_gsum",
            Suffix::Info => "_info",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Which sample-name suffixes a family of type `t` produces. OpenMetrics is
/// exact (spec "Suffixes"); the Prometheus format is looser because 0.0.4
/// counters carry `_total` in the family name itself and info/untyped are
/// Prometheus-side conventions.
pub(super) fn allowed_suffixes(t: MetricType, fmt: Format) -> &'static [Suffix] {
    use Suffix as S;
    match (t, fmt) {
        (MetricType::Counter, Format::OpenMetrics) => &[S::Total, S::Created],
        (MetricType::Counter, Format::Prometheus) => &[S::None, S::Total, S::Created],
        (MetricType::Summary, _) => &[S::None, S::Count, S::Sum, S::Created],
        (MetricType::Histogram, _) => &[S::Bucket, S::Count, S::Sum, S::Created],
        (MetricType::GaugeHistogram, _) => &[S::Bucket, S::Gcount, S::Gsum],
        (MetricType::Info, Format::OpenMetrics) => &[S::Info],
        (MetricType::Info, Format::Prometheus) => &[S::None, S::Info],
        (MetricType::Gauge | MetricType::StateSet | MetricType::Unknown | MetricType::Untyped, _) => &[S::None],
    }
}

/// If `sample` is a sample name of family `family` (of type `t`), which suffix.
/// Matched as byte patterns: this runs for every sample, and `==` on `&str`
/// would call memcmp once per candidate suffix.
pub(super) fn split_suffix(sample: &str, family: &str, t: MetricType, fmt: Format) -> Option<Suffix> {
    let rest = sample.strip_prefix(family)?;
    let suf = match rest.as_bytes() {
        b"" => Suffix::None,
        b"_total" => Suffix::Total,
        b"_created" => Suffix::Created,
        b"_count" => Suffix::Count,
        b"_sum" => Suffix::Sum,
        b"_bucket" => Suffix::Bucket,
        b"_gcount" => Suffix::Gcount,
        b"_gsum" => Suffix::Gsum,
        b"_info" => Suffix::Info,
        _ => return None,
    };
    allowed_suffixes(t, fmt).contains(&suf).then_some(suf)
}

/// An error found by the validator; `line` may be earlier than the current
/// line (a metric point is judged when it ends).
#[derive(Debug)]
pub(super) struct Deferred {
    pub line: usize,
    pub msg: String,
}

#[derive(Default)]
pub(super) struct Validator {
    fam: Option<Family>,
    /// Every family name seen so far (a name may only start one family).
    seen: HashSet<String>,
    /// Every sample name any finished-typed family can produce, to catch
    /// clashes such as a gauge `a_created` next to a counter `a`.
    claimed: HashSet<String>,
    pub families: usize,
    pub errors: Vec<Deferred>,
    /// Recycled buffer for quantile/state keys of a point.
    spare_keys: Vec<u64>,
}

struct Family {
    name: String,
    typ: MetricType,
    has_type: bool,
    has_help: bool,
    has_unit: bool,
    unit_nonempty: bool,
    start_line: usize,
    sampled: bool,
    done: HashSet<u64, IdBuild>,
    metric: Option<Metric>,
}

struct Metric {
    id: u64,
    with_ts: bool,
    last_ts: Option<f64>,
    point: Point,
}

#[derive(Default)]
struct Point {
    line: usize,
    ts: Option<f64>,
    seen: u16,
    last_le: Option<f64>,
    last_bucket: f64,
    inf_bucket: Option<f64>,
    neg_le: bool,
    count: Option<f64>,
    sum: Option<f64>,
    /// Quantiles (summary) or states (stateset) already in this point.
    keys: Vec<u64>,
}

fn check_unit_type(name: &str, t: MetricType, unit_nonempty: bool) -> Option<String> {
    (unit_nonempty && matches!(t, MetricType::Info | MetricType::StateSet))
        .then(|| format!("metric family {name:?} of type {t} must not have a unit"))
}

impl Validator {
    fn err(&mut self, line: usize, msg: String) {
        self.errors.push(Deferred { line, msg });
    }

    fn start_family(&mut self, name: &str, line: usize) {
        if !self.seen.insert(name.to_owned()) {
            self.err(
                line,
                format!("metric family {name:?} appears more than once (families must not be interleaved or repeated)"),
            );
        }
        self.families += 1;
        self.fam = Some(Family {
            name: name.to_owned(),
            typ: MetricType::Unknown,
            has_type: false,
            has_help: false,
            has_unit: false,
            unit_nonempty: false,
            start_line: line,
            sampled: false,
            done: HashSet::default(),
            metric: None,
        });
    }

    /// Records the sample names `fam` can produce; its type is final by now.
    fn claim(&mut self, name: &str, typ: MetricType, line: usize) {
        for s in allowed_suffixes(typ, Format::OpenMetrics) {
            let sample = format!("{name}{}", s.text());
            if self.claimed.contains(&sample) {
                self.err(
                    line,
                    format!("sample name {sample:?} of metric family {name:?} clashes with an earlier metric family"),
                );
            } else {
                self.claimed.insert(sample);
            }
        }
    }

    fn finish_family(&mut self) {
        let Some(mut f) = self.fam.take() else {
            return;
        };
        if let Some(m) = f.metric.take() {
            report(&mut self.errors, point_error(&f.name, f.typ, &m.point), m.point.line);
            self.spare_keys = m.point.keys;
        }
        if !f.sampled {
            self.claim(&f.name, f.typ, f.start_line);
        }
    }

    /// `# TYPE`, `# HELP` or `# UNIT` line. `typ`/`unit` as applicable.
    pub(super) fn metadata(
        &mut self,
        kind: &'static str,
        name: &str,
        typ: Option<MetricType>,
        unit: Option<&str>,
        line: usize,
    ) {
        let same = self.fam.as_ref().is_some_and(|f| f.name == name);
        if !same {
            self.finish_family();
            self.start_family(name, line);
        }
        let Some(f) = self.fam.as_mut() else {
            return;
        };
        if f.sampled {
            let msg = format!("{kind} line for metric family {name:?} after its samples");
            self.err(line, msg);
            return;
        }
        let dup = match kind {
            "TYPE" => std::mem::replace(&mut f.has_type, true),
            "HELP" => std::mem::replace(&mut f.has_help, true),
            _ => std::mem::replace(&mut f.has_unit, true),
        };
        if dup {
            let msg = format!("more than one {kind} line for metric family {name:?}");
            self.err(line, msg);
            return;
        }
        if let Some(t) = typ {
            f.typ = t;
        }
        if let Some(u) = unit {
            if !u.is_empty() {
                f.unit_nonempty = true;
                let suffixed = name.strip_suffix(u).is_some_and(|rest| rest.ends_with('_'));
                if !suffixed {
                    let msg = format!(
                        "unit {u:?} is not a suffix of the metric family name {name:?} (it must end in \"_{u}\")"
                    );
                    self.err(line, msg);
                    return;
                }
            }
        }
        if let Some(msg) = check_unit_type(name, f.typ, f.unit_nonempty) {
            self.err(line, msg);
        }
    }

    /// One sample. `ts` is the OpenMetrics timestamp in seconds.
    pub(super) fn sample(&mut self, s: &ParsedSample<'_>, set_hash: u64, ts: Option<f64>, exemplar: bool, line: usize) {
        let resolved = self.fam.as_ref().and_then(|f| split_suffix(s.name, &f.name, f.typ, Format::OpenMetrics));
        let suffix = match resolved {
            Some(x) => x,
            None => {
                // A sample that can't belong to the current family starts a new,
                // untyped one named after it.
                self.finish_family();
                self.start_family(s.name, line);
                Suffix::None
            }
        };
        let Some(f) = self.fam.as_mut() else {
            return;
        };
        if !f.sampled {
            f.sampled = true;
            let (name, typ) = (f.name.clone(), f.typ);
            self.claim(&name, typ, line);
        }
        match self.sample_in_family(s, set_hash, suffix, ts, exemplar, line) {
            Ok(()) => {}
            Err(msg) => self.err(line, msg),
        }
    }

    fn sample_in_family(
        &mut self,
        s: &ParsedSample<'_>,
        set_hash: u64,
        suffix: Suffix,
        ts: Option<f64>,
        exemplar: bool,
        line: usize,
    ) -> Result<(), String> {
        let Some(f) = self.fam.as_mut() else {
            return Ok(());
        };
        let typ = f.typ;
        let fname = f.name.as_str();
        let v = s.value;
        let label = |n: &str| s.labels.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_ref());
        let what = |kind: &str| format!("{kind} of {typ} {fname:?}");
        let counter_like = |v: f64, kind: &str| -> Result<(), String> {
            if v.is_nan() || v < 0.0 {
                return Err(format!("{} must not be NaN or negative, got {v}", what(kind)));
            }
            Ok(())
        };
        let integral = |v: f64, kind: &str| -> Result<(), String> {
            if v.fract() != 0.0 {
                return Err(format!("{} must be an integer, got {v}", what(kind)));
            }
            Ok(())
        };

        let exemplar_ok = matches!(
            (typ, suffix),
            (MetricType::Counter, Suffix::Total) | (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket)
        );
        if exemplar && !exemplar_ok {
            return Err(format!(
                "exemplars are only allowed on counter _total and histogram _bucket samples, not on {:?} ({typ})",
                s.name
            ));
        }

        // Per-sample value and label rules; `key` distinguishes samples within
        // one metric point; `skip` is the label that is not part of the metric
        // identity.
        let mut le = None;
        let mut key = None;
        let mut skip = None;
        match (typ, suffix) {
            (MetricType::Counter, Suffix::Total) => counter_like(v, "_total")?,
            (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => {
                let Some(raw) = label("le") else {
                    return Err(format!("{} has no \"le\" label", what("bucket")));
                };
                let b = match parse_number(raw) {
                    Some(b) if b.is_nan() => None,
                    // Canonical +Inf only: "+INF" would otherwise hide a missing +Inf bucket.
                    Some(b) if b == f64::INFINITY && raw != "+Inf" => None,
                    other => other,
                };
                let Some(b) = b else {
                    return Err(format!("invalid \"le\" label value {raw:?} in {}", what("bucket")));
                };
                counter_like(v, "bucket")?;
                integral(v, "bucket")?;
                le = Some(b);
                skip = Some("le");
            }
            (MetricType::Histogram | MetricType::GaugeHistogram, _) => {
                if label("le").is_some() {
                    return Err(format!("only _bucket samples of {typ} {fname:?} may have an \"le\" label"));
                }
                match suffix {
                    Suffix::Count | Suffix::Gcount => {
                        counter_like(v, suffix.text())?;
                        integral(v, suffix.text())?;
                    }
                    Suffix::Sum => counter_like(v, "_sum")?,
                    Suffix::Gsum if v.is_nan() => {
                        return Err(format!("{} must not be NaN", what("_gsum")));
                    }
                    _ => {}
                }
            }
            (MetricType::Summary, Suffix::None) => {
                let Some(raw) = label("quantile") else {
                    return Err(format!("{} needs a \"quantile\" label", what("quantile sample")));
                };
                let q = parse_number(raw).filter(|q| (0.0..=1.0).contains(q));
                let Some(q) = q else {
                    return Err(format!(
                        "invalid \"quantile\" label value {raw:?} in {} (must be a number from 0 to 1)",
                        what("quantile sample")
                    ));
                };
                if v < 0.0 {
                    return Err(format!("{} must not be negative, got {v}", what("quantile value")));
                }
                key = Some(q.to_bits());
                skip = Some("quantile");
            }
            (MetricType::Summary, _) => {
                if label("quantile").is_some() {
                    return Err(format!("only quantile samples of summary {fname:?} may have a \"quantile\" label"));
                }
                match suffix {
                    Suffix::Count => {
                        counter_like(v, "_count")?;
                        integral(v, "_count")?;
                    }
                    Suffix::Sum => counter_like(v, "_sum")?,
                    _ => {}
                }
            }
            (MetricType::StateSet, _) => {
                let Some(state) = label(fname) else {
                    return Err(format!(
                        "sample of stateset {fname:?} needs a label named {fname:?} holding the state"
                    ));
                };
                if v != 0.0 && v != 1.0 {
                    return Err(format!("{} must be 0 or 1, got {v}", what("state value")));
                }
                key = Some(hash_str(state));
                skip = Some(fname);
            }
            (MetricType::Info, _) if v != 1.0 => {
                return Err(format!("{} must be 1, got {v}", what("value")));
            }
            _ => {}
        }

        let id = match skip {
            Some(k) => without(set_hash, &s.labels, k),
            None => set_hash,
        };
        // Split borrows: the family stays borrowed while errors are recorded.
        let Validator { fam, errors, spare_keys, .. } = self;
        let Some(f) = fam.as_mut() else {
            return Ok(());
        };
        let fname = f.name.as_str();
        if f.metric.as_ref().is_none_or(|m| m.id != id) {
            let mut keys = std::mem::take(spare_keys);
            keys.clear();
            let new = Metric {
                id,
                with_ts: ts.is_some(),
                last_ts: None,
                point: Point { line, ts, keys, ..Point::default() },
            };
            if let Some(old) = f.metric.replace(new) {
                report(errors, point_error(fname, typ, &old.point), old.point.line);
                *spare_keys = old.point.keys;
                f.done.insert(old.id);
                if f.done.contains(&id) {
                    return Err(format!(
                        "samples of one metric of family {fname:?} are not contiguous (metrics must not be interleaved)"
                    ));
                }
            }
        }
        let Some(m) = f.metric.as_mut() else {
            return Ok(());
        };
        if m.with_ts != ts.is_some() {
            return Err(format!("metric of family {fname:?} mixes samples with and without timestamps"));
        }
        if let (Some(t), Some(last)) = (ts, m.last_ts) {
            if t < last {
                return Err(format!(
                    "timestamp {t} is earlier than the previous one ({last}) for the same metric of family {fname:?}"
                ));
            }
        }
        m.last_ts = ts;

        let p = &mut m.point;
        let repeated = match suffix {
            Suffix::Bucket => p.last_le.is_some_and(|last| le.is_some_and(|b| b <= last)),
            _ => match key {
                Some(k) => p.keys.contains(&k),
                None => p.seen & suffix.bit() != 0,
            },
        };
        let new_ts = matches!((ts, p.ts), (Some(a), Some(b)) if a != b);
        if repeated && ts.is_none() {
            return Err(if suffix == Suffix::Bucket {
                format!("buckets of {typ} {fname:?} are not in increasing \"le\" order")
            } else {
                format!("duplicate sample {:?} for the same metric of family {fname:?}", s.name)
            });
        }
        if repeated || new_ts {
            report(errors, point_error(fname, typ, p), p.line);
            let mut keys = std::mem::take(&mut p.keys);
            keys.clear();
            *p = Point { line, ts, keys, ..Point::default() };
        }

        p.seen |= suffix.bit();
        if let Some(k) = key {
            p.keys.push(k);
        }
        match suffix {
            Suffix::Bucket => {
                let b = le.unwrap_or(f64::INFINITY);
                if b < 0.0 {
                    p.neg_le = true;
                }
                if p.last_le.is_some() && v < p.last_bucket {
                    return Err(format!(
                        "bucket values of {fname:?} must be cumulative: le={b} has {v}, less than the previous bucket's {}",
                        p.last_bucket
                    ));
                }
                p.last_bucket = v;
                p.last_le = Some(b);
                if b == f64::INFINITY {
                    p.inf_bucket = Some(v);
                }
            }
            Suffix::Count | Suffix::Gcount => p.count = Some(v),
            Suffix::Sum | Suffix::Gsum => p.sum = Some(v),
            _ => {}
        }
        Ok(())
    }

    /// At `# EOF` (or end of input).
    pub(super) fn finish(&mut self) {
        self.finish_family();
    }
}

fn report(errors: &mut Vec<Deferred>, msg: Option<String>, line: usize) {
    if let Some(msg) = msg {
        errors.push(Deferred { line, msg });
    }
}

/// Rules over a complete metric point.
fn point_error(name: &str, typ: MetricType, p: &Point) -> Option<String> {
    let (count, sum) = match typ {
        MetricType::GaugeHistogram => ("_gcount", "_gsum"),
        _ => ("_count", "_sum"),
    };
    match typ {
        MetricType::Histogram | MetricType::GaugeHistogram => {
            if p.inf_bucket.is_none() {
                Some(format!("{typ} {name:?} has a metric point without a le=\"+Inf\" bucket"))
            } else if p.count.is_some() != p.sum.is_some() {
                Some(format!("{typ} {name:?}: {count} and {sum} must be both present or both absent"))
            } else if p.count.is_some() && p.count != p.inf_bucket {
                Some(format!("{typ} {name:?}: {count} must equal the +Inf bucket"))
            } else if typ == MetricType::Histogram && p.neg_le && p.sum.is_some() {
                Some(format!("histogram {name:?} has negative buckets, so it must not have a _sum"))
            } else if typ == MetricType::GaugeHistogram && !p.neg_le && p.sum.is_some_and(|s| s < 0.0) {
                Some(format!("gaugehistogram {name:?}: _gsum may only be negative when there are negative buckets"))
            } else {
                None
            }
        }
        MetricType::Counter if p.seen & Suffix::Total.bit() == 0 => {
            Some(format!("counter {name:?} has a metric point without a _total sample"))
        }
        _ => None,
    }
}
