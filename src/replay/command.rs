//! `forewarn replay` from its flags to its printed report: load the rules,
//! read the times, plan the history (an `--input` recording, or the series
//! the rules read fetched from `--source` for the window plus each rule's
//! warm-up), replay, and correlate with `--markers`. The command line only
//! parses the flags into a [`Request`] and prints what [`run`] returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::output::{self, Progress};
use super::source::{self, SourceError, SourceOptions};
use super::{needs, time, History, ReplayError};
use crate::duration::PromDuration;
use crate::rules::{ChangesHook, EvalContext, RestartsHook};
use crate::yaml::Located;

/// What `forewarn replay` was asked, as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Rule files, globs or directories (their *.yml and *.yaml).
    pub rules: Vec<String>,
    /// OpenMetrics text with a timestamp on every sample.
    pub input: Option<PathBuf>,
    /// A Prometheus-compatible server to fetch the history from.
    pub source: Option<Source>,
    /// `--from` and `--to`: RFC 3339, Unix seconds, `now` or `-6h`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// `--step`: resolution of the fetched history.
    pub step: Option<String>,
    /// Deploy markers: a JSON list in the shape of `POST /api/v1/deploys`.
    pub markers: Option<PathBuf>,
    /// JSON output instead of a line per alert.
    pub json: bool,
}

/// How to reach `--source`; secrets are file paths, read here.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub url: String,
    pub bearer_token_file: Option<PathBuf>,
    /// (user, password file).
    pub basic_auth: Option<(String, PathBuf)>,
    pub tls: super::client::TlsConfig,
    /// `--timeout` as given, e.g. `30s`.
    pub timeout: Option<String>,
}

/// Why a replay could not run; each message names the flag or file.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{}", Located::join(.0))]
    Rules(Vec<Located>),
    #[error("--{flag}: {err}")]
    Time { flag: &'static str, err: time::TimeError },
    #[error("cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{}: {err}", path.display())]
    Markers { path: PathBuf, err: crate::deploys::DeploysError },
    #[error("{0}")]
    Flags(String),
    #[error(transparent)]
    Input(#[from] ReplayError),
    #[error(transparent)]
    Needs(#[from] needs::NeedsError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, CommandError> {
    std::fs::read(path).map_err(|err| CommandError::Read { path: path.to_path_buf(), err })
}

fn read_text(path: &Path) -> Result<String, CommandError> {
    std::fs::read_to_string(path).map_err(|err| CommandError::Read { path: path.to_path_buf(), err })
}

fn read_secret(path: &Path) -> Result<String, CommandError> {
    Ok(read_text(path)?.trim().to_string())
}

/// Runs the replay `req` asks for at simulated time (`now` only resolves
/// `now` and `-6h` in the flags); returns the report as it is printed.
pub async fn run(req: &Request, now: i64) -> Result<String, CommandError> {
    let files: Vec<String> = crate::ruletest::expand_dirs(&req.rules);
    let mut groups = crate::rules::load_patterns(&files, PromDuration::from_secs(60)).map_err(CommandError::Rules)?;
    let time = |flag: &'static str, t: &Option<String>| -> Result<Option<i64>, CommandError> {
        t.as_deref().map(|t| time::parse_time(t, now).map_err(|err| CommandError::Time { flag, err })).transpose()
    };
    let (from, to) = (time("from", &req.from)?, time("to", &req.to)?);
    let (h, from, to, eval_start) = match (&req.input, &req.source) {
        (Some(input), _) => {
            let h = super::load_openmetrics(&input.display().to_string(), &read(input)?)?;
            let (from, to) = (from.unwrap_or(h.start), to.unwrap_or(h.end));
            (h, from, to, from)
        }
        (None, Some(src)) => {
            let from = from.ok_or_else(|| CommandError::Flags("--source needs --from".into()))?;
            let to = to.unwrap_or(now);
            if from >= to {
                return Err(CommandError::Flags("--from must be before --to".into()));
            }
            let (h, eval_start) = fetch(req, src, &files, from, to).await?;
            (h, from, to, eval_start)
        }
        (None, None) => return Err(CommandError::Flags("give --input FILE or --source URL".into())),
    };
    let markers = match &req.markers {
        Some(p) => {
            let m = crate::deploys::load_markers_json(&read_text(p)?)
                .map_err(|err| CommandError::Markers { path: p.clone(), err })?;
            Some(Arc::new(m))
        }
        None => None,
    };
    let ctx = EvalContext {
        changes: markers.clone().map(ChangesHook::from_markers),
        restarts: markers.clone().map(RestartsHook::from_markers),
        ..Default::default()
    };
    let mut progress = Progress::new("replay");
    let mut report = super::run(&mut groups, &h.store, eval_start, to, &ctx, |f| progress.update(f));
    report.clip(from);
    for w in &h.warnings {
        tracing::warn!("{w}");
    }
    report.warnings = h.warnings.clone();
    if let Some(m) = &markers {
        super::correlate(&mut report, m, to);
    }
    Ok(if req.json {
        format!("{}\n", serde_json::to_string_pretty(&output::json(&report, from, to))?)
    } else {
        output::text(&report, from, to)
    })
}

/// Fetches from `--source` what the rules read between `from` and `to`,
/// starting early enough for each rule's window (returned: where the
/// evaluation starts).
async fn fetch(
    req: &Request,
    src: &Source,
    files: &[String],
    from: i64,
    to: i64,
) -> Result<(History, i64), CommandError> {
    let mut needs = needs::Needs::default();
    for f in files {
        for path in glob::glob(f).into_iter().flatten().flatten() {
            needs.add_file(&path.display().to_string(), &read_text(&path)?)?;
        }
    }
    let step = match &req.step {
        Some(s) => PromDuration::parse(s).map_err(|e| CommandError::Flags(format!("--step {s:?}: {e}")))?.as_millis(),
        None => needs.min_interval_ms.unwrap_or(15_000),
    };
    if step < 1 {
        return Err(CommandError::Flags("--step must be at least 1ms".into()));
    }
    if let Some(r) = needs.min_range_ms.filter(|r| *r < 2 * step) {
        tracing::warn!(
            "a range window of {r} ms holds fewer than two points at step {step} ms; rate() there gives nothing (use --step)"
        );
    }
    let bearer_token = src.bearer_token_file.as_deref().map(read_secret).transpose()?;
    let basic_auth = match &src.basic_auth {
        Some((user, password_file)) => Some((user.clone(), read_secret(password_file)?)),
        None => None,
    };
    let timeout = match src.timeout.as_deref() {
        Some(t) => Some(
            PromDuration::parse(t)
                .ok()
                .map(|d| Duration::from_millis(d.as_millis().max(0) as u64))
                .filter(|d| !d.is_zero())
                .ok_or_else(|| CommandError::Flags(format!("--timeout {t:?}: give a duration such as 30s or 5m")))?,
        ),
        None => None,
    };
    let opts = SourceOptions { url: src.url.clone(), bearer_token, basic_auth, timeout, tls: src.tls.clone() };
    let eval_start = from - needs.warmup_ms;
    let mut chunks = source::plan(&needs.selectors, eval_start, to, step);
    chunks.extend(source::plan_pinned(&needs.pinned, step));
    let mut bar = Progress::new("fetch");
    let h = source::fetch(&opts, &chunks, step, |f| bar.update(f)).await?;
    if h.samples == 0 {
        tracing::warn!(
            "{} has no samples for the {} selectors the rules read between --from and --to",
            src.url,
            needs.selectors.len() + needs.pinned.len()
        );
    }
    Ok((h, eval_start))
}
