//! Silences: matchers plus a time window during which matching alerts are
//! not notified, with who set them and why.
//!
//! Kept in memory for the dispatcher's checks and persisted in the state
//! dir's SQLite (`silences` table), so a restart keeps them. The shapes are
//! Alertmanager's API v2 (`matchers[]` with `name`, `value`, `isRegex`,
//! `isEqual`; `startsAt`, `endsAt`, `createdBy`, `comment`); input may also
//! give a matcher as a string (`severity="page"`). Validation errors name
//! the field. Expired silences are listed for 5 days, then forgotten.

use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::route::parse_matcher;
use crate::labels::{Labels, MatchOp, Matcher};
use crate::state::StateDir;

/// How long an expired silence stays listed.
const RETENTION_MS: i64 = 5 * 24 * 3600 * 1000;

/// The `silences` section of `forewarn.yml`: how much silence input is
/// stored, so nobody fills the state dir through the API (Alertmanager's
/// `--silences.max-silences` and `--silences.max-per-silence-bytes`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SilenceLimits {
    /// Most silences that are active or pending; expired ones make room
    /// (oldest first) before this is reached. 0 = no limit.
    #[serde(default = "default_max_silences")]
    pub max_silences: usize,
    /// Largest silence (matchers, comment and author as stored JSON). 0 = no limit.
    #[serde(default = "default_max_per_silence_bytes")]
    pub max_per_silence_bytes: crate::byte_size::ByteSize,
    /// Most matchers in one silence. 0 = no limit.
    #[serde(default = "default_max_matchers")]
    pub max_matchers: usize,
}

impl Default for SilenceLimits {
    fn default() -> Self {
        SilenceLimits {
            max_silences: default_max_silences(),
            max_per_silence_bytes: default_max_per_silence_bytes(),
            max_matchers: default_max_matchers(),
        }
    }
}

fn default_max_silences() -> usize {
    10_000
}
fn default_max_per_silence_bytes() -> crate::byte_size::ByteSize {
    crate::byte_size::ByteSize(64 * 1024)
}
fn default_max_matchers() -> usize {
    100
}

impl SilenceLimits {
    /// Refuses input over the per-silence limits before anything is compiled.
    fn check_input(&self, input: &SilenceInput) -> Result<(), SilenceError> {
        if self.max_matchers > 0 && input.matchers.len() > self.max_matchers {
            return Err(invalid(
                "matchers",
                format!("{} matchers, more than silences.max_matchers ({})", input.matchers.len(), self.max_matchers),
            ));
        }
        let max = self.max_per_silence_bytes.0 as usize;
        let matchers: usize = input
            .matchers
            .iter()
            .map(|m| match m {
                MatcherInput::Text(t) => t.len(),
                MatcherInput::Object(o) => o.name.len() + o.value.len() + 40,
            })
            .sum();
        let size = matchers + input.comment.len() + input.created_by.len();
        if max > 0 && size > max {
            return Err(invalid(
                "silence",
                format!(
                    "{size} bytes of matchers, comment and author, more than silences.max_per_silence_bytes ({max})"
                ),
            ));
        }
        Ok(())
    }
}

/// Why a silence was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// Bad input; the message starts with the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("silence {0} not found (list them with `forewarn silence ls`)")]
    NotFound(String),
    #[error("silences in {path}: {source} (check the state dir's disk space and permissions)")]
    Storage { path: String, source: rusqlite::Error },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
    SilenceError::Invalid { field: field.into(), message: message.into() }
}

/// One matcher as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A matcher given as an object or as `name="value"` text.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum MatcherInput {
    Text(String),
    Object(SilenceMatcher),
}

/// What a client sends to create (or, with `id`, replace) a silence.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub matchers: Vec<MatcherInput>,
    /// Defaults to now.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// `pending`, `active` or `expired` at a given time.
pub fn state(s: &Silence, now: DateTime<Utc>) -> &'static str {
    if now < s.starts_at {
        "pending"
    } else if now < s.ends_at {
        "active"
    } else {
        "expired"
    }
}

/// The matchers of a silence as label matchers (checked: names and regexes).
pub fn compile(ms: &[SilenceMatcher]) -> Result<Vec<Matcher>, SilenceError> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| {
            if !crate::rules::file::valid_label_name(&m.name) {
                return Err(invalid(format!("matchers[{i}].name"), format!("{:?} is not a valid label name", m.name)));
            }
            if m.is_regex {
                Matcher::regex(m.name.clone(), &m.value, !m.is_equal)
                    .map_err(|e| invalid(format!("matchers[{i}].value"), format!("invalid regex: {e}")))
            } else if m.is_equal {
                Ok(Matcher::equal(m.name.clone(), m.value.clone()))
            } else {
                Ok(Matcher { name: m.name.clone(), op: MatchOp::NotEqual(m.value.clone()) })
            }
        })
        .collect()
}

fn to_api(m: &Matcher) -> SilenceMatcher {
    let (value, is_regex, is_equal) = match &m.op {
        MatchOp::Equal(v) => (v.clone(), false, true),
        MatchOp::NotEqual(v) => (v.clone(), false, false),
        MatchOp::Regex(_) | MatchOp::NotRegex(_) => {
            // Display gives name=~"re"; take the pattern back out of it.
            let shown = m.to_string();
            let re = shown.split_once('"').map(|(_, r)| r.trim_end_matches('"').to_string()).unwrap_or_default();
            (re, true, matches!(m.op, MatchOp::Regex(_)))
        }
    };
    SilenceMatcher { name: m.name.clone(), value, is_regex, is_equal }
}

/// Checks input and turns it into a silence (without an id).
pub fn validate(input: &SilenceInput, now: DateTime<Utc>) -> Result<(Silence, Vec<Matcher>), SilenceError> {
    if input.matchers.is_empty() {
        return Err(invalid("matchers", "at least one matcher is needed (a silence of everything is not allowed)"));
    }
    let mut api = Vec::new();
    for (i, m) in input.matchers.iter().enumerate() {
        match m {
            MatcherInput::Object(o) => api.push(o.clone()),
            MatcherInput::Text(t) => {
                let parsed = parse_matcher(t).map_err(|e| invalid(format!("matchers[{i}]"), format!("{t:?}: {e}")))?;
                api.push(to_api(&parsed));
            }
        }
    }
    let compiled = compile(&api)?;
    if compiled.iter().all(Matcher::matches_empty) {
        return Err(invalid(
            "matchers",
            "at least one matcher must not match the empty string, or the silence would mute every alert",
        ));
    }
    let starts_at = input.starts_at.unwrap_or(now).max(now);
    let ends_at = input.ends_at.ok_or_else(|| invalid("endsAt", "required (RFC 3339, e.g. 2024-05-01T18:00:00Z)"))?;
    if ends_at <= starts_at {
        return Err(invalid("endsAt", "must be after startsAt (and in the future)"));
    }
    if input.created_by.trim().is_empty() {
        return Err(invalid("createdBy", "required: who is silencing"));
    }
    if input.comment.trim().is_empty() {
        return Err(invalid("comment", "required: why (a ticket, an incident, a maintenance)"));
    }
    let s = Silence {
        id: String::new(),
        matchers: api,
        starts_at,
        ends_at,
        updated_at: now,
        created_by: input.created_by.clone(),
        comment: input.comment.clone(),
    };
    Ok((s, compiled))
}

fn new_id() -> String {
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    let b = (b & !0xf000_0000_0000_0000) | 0x8000_0000_0000_0000;
    let a = (a & !0xf000) | 0x4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// All silences, in memory and (when opened on a state dir) in SQLite.
pub struct Silences {
    list: RwLock<Vec<(Silence, Vec<Matcher>)>>,
    db: Option<(Mutex<Connection>, String)>,
    limits: RwLock<SilenceLimits>,
}

impl Silences {
    /// Silences that last as long as the process (tests).
    pub fn in_memory() -> Silences {
        Silences { list: RwLock::new(Vec::new()), db: None, limits: RwLock::new(SilenceLimits::default()) }
    }

    /// Opens (and creates) the `silences` table and loads what it holds.
    pub fn open(dir: &StateDir) -> Result<Silences, SilenceError> {
        let path = dir.path.join("state.db").display().to_string();
        let storage = |source| SilenceError::Storage { path: path.clone(), source };
        let conn = dir.open_db().map_err(|e| match e {
            crate::state::StateError::Sqlite { source, .. } => storage(source),
            crate::state::StateError::Io { source, .. } => {
                storage(rusqlite::Error::InvalidPath(source.to_string().into()))
            }
            e @ crate::state::StateError::TooNew { .. } => storage(rusqlite::Error::InvalidPath(e.to_string().into())),
        })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, body TEXT NOT NULL, ends_ms INTEGER NOT NULL)",
        )
        .map_err(storage)?;
        let cutoff = Utc::now().timestamp_millis() - RETENTION_MS;
        conn.execute("DELETE FROM silences WHERE ends_ms < ?1", params![cutoff]).map_err(storage)?;
        let mut list = Vec::new();
        {
            let mut stmt = conn.prepare("SELECT id, body FROM silences").map_err(storage)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(storage)?;
            for row in rows {
                let (id, body) = row.map_err(storage)?;
                match serde_json::from_str::<Silence>(&body).map_err(|e| e.to_string()).and_then(|s| {
                    let m = compile(&s.matchers).map_err(|e| e.to_string())?;
                    Ok((s, m))
                }) {
                    Ok(x) => list.push(x),
                    Err(e) => {
                        tracing::error!(silence = %id, error = %e, "unreadable silence in the state dir; ignored")
                    }
                }
            }
        }
        Ok(Silences {
            list: RwLock::new(list),
            db: Some((Mutex::new(conn), path)),
            limits: RwLock::new(SilenceLimits::default()),
        })
    }

    /// Swaps the limits (at start and on reload).
    pub fn set_limits(&self, l: SilenceLimits) {
        *self.limits.write().unwrap_or_else(|p| p.into_inner()) = l;
    }

    fn forget(&self, id: &str) -> Result<(), SilenceError> {
        let Some((conn, path)) = &self.db else { return Ok(()) };
        conn.lock()
            .unwrap_or_else(|p| p.into_inner())
            .execute("DELETE FROM silences WHERE id = ?1", params![id])
            .map_err(|source| SilenceError::Storage { path: path.clone(), source })?;
        Ok(())
    }

    /// Makes room for one more silence: forgets the oldest expired ones,
    /// and refuses when active and pending silences alone fill the limit.
    fn make_room(
        &self,
        list: &mut Vec<(Silence, Vec<Matcher>)>,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<(), SilenceError> {
        if max == 0 || list.len() < max {
            return Ok(());
        }
        let live = list.iter().filter(|(s, _)| state(s, now) != "expired").count();
        if live >= max {
            ::metrics::counter!("forewarn_silences_refused_total", "limit" => "max_silences").increment(1);
            return Err(invalid(
                "silence",
                format!(
                    "{live} active or pending silences already, the limit of silences.max_silences; expire some first"
                ),
            ));
        }
        let mut expired: Vec<(DateTime<Utc>, String)> =
            list.iter().filter(|(s, _)| state(s, now) == "expired").map(|(s, _)| (s.ends_at, s.id.clone())).collect();
        expired.sort();
        for (_, id) in expired.into_iter().take(list.len() + 1 - max) {
            self.forget(&id)?;
            list.retain(|(s, _)| s.id != id);
        }
        Ok(())
    }

    fn save(&self, s: &Silence) -> Result<(), SilenceError> {
        let Some((conn, path)) = &self.db else { return Ok(()) };
        let body = serde_json::to_string(s).unwrap_or_default();
        let res = conn.lock().unwrap_or_else(|p| p.into_inner()).execute(
            "INSERT OR REPLACE INTO silences (id, body, ends_ms) VALUES (?1, ?2, ?3)",
            params![s.id, body, s.ends_at.timestamp_millis()],
        );
        // Counted and shown on /-/ready like every state-dir write.
        match res {
            Ok(_) => crate::state::faults().ok(crate::state::WriteKind::Sqlite, "silences"),
            Err(e) => {
                crate::state::faults().failed(crate::state::WriteKind::Sqlite, "silences", &e);
                return Err(SilenceError::Storage { path: path.clone(), source: e });
            }
        }
        Ok(())
    }

    /// Creates a silence, or replaces the one `input.id` names: in place
    /// when its matchers are unchanged, else by expiring it and creating a
    /// new one (Alertmanager's rule). Returns the id.
    pub fn upsert(&self, input: &SilenceInput, now: DateTime<Utc>) -> Result<String, SilenceError> {
        let limits = self.limits.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Err(e) = limits.check_input(input) {
            ::metrics::counter!("forewarn_silences_refused_total", "limit" => "size").increment(1);
            return Err(e);
        }
        let (mut s, compiled) = validate(input, now)?;
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = input.id.as_deref().filter(|i| !i.is_empty()) {
            let Some(pos) = list.iter().position(|(x, _)| x.id == id) else {
                return Err(SilenceError::NotFound(id.to_string()));
            };
            let old = &list[pos].0;
            if old.matchers == s.matchers && state(old, now) != "expired" {
                s.id = id.to_string();
                if state(old, now) == "active" {
                    s.starts_at = old.starts_at;
                }
                self.save(&s)?;
                list[pos] = (s, compiled);
                return Ok(id.to_string());
            }
            let mut expired = old.clone();
            if state(&expired, now) != "expired" {
                expired.ends_at = now;
                expired.updated_at = now;
                self.save(&expired)?;
                list[pos].0 = expired;
            }
        }
        self.make_room(&mut list, limits.max_silences, now)?;
        s.id = new_id();
        self.save(&s)?;
        tracing::info!(silence = %s.id, created_by = %s.created_by, ends_at = %s.ends_at, "silence created");
        let id = s.id.clone();
        list.push((s, compiled));
        Ok(id)
    }

    /// Ends a silence now. Expiring an expired silence is not an error.
    pub fn expire(&self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        let Some((s, _)) = list.iter_mut().find(|(s, _)| s.id == id) else {
            return Err(SilenceError::NotFound(id.to_string()));
        };
        if state(s, now) == "expired" {
            return Ok(());
        }
        let mut e = s.clone();
        e.ends_at = now;
        if e.starts_at > now {
            e.starts_at = now;
        }
        e.updated_at = now;
        self.save(&e)?;
        *s = e;
        tracing::info!(silence = %id, "silence expired");
        Ok(())
    }

    /// Every silence, newest first.
    pub fn list(&self) -> Vec<Silence> {
        let mut v: Vec<Silence> =
            self.list.read().unwrap_or_else(|p| p.into_inner()).iter().map(|(s, _)| s.clone()).collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
        v
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).iter().find(|(s, _)| s.id == id).map(|(s, _)| s.clone())
    }

    /// Whether an active silence matches these labels at `now_ms`.
    pub fn is_silenced(&self, labels: &Labels, now_ms: i64) -> bool {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        list.iter().any(|(s, ms)| {
            s.starts_at.timestamp_millis() <= now_ms
                && now_ms < s.ends_at.timestamp_millis()
                && ms.iter().all(|m| m.matches(labels))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn input(json: &str) -> SilenceInput {
        serde_json::from_str(json).unwrap()
    }

    /// Seconds from a recent instant (old silences are dropped on open).
    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(Utc::now().timestamp() / 60 * 60 + s, 0).unwrap()
    }

    #[test]
    fn silences_match_expire_and_persist() {
        let dir = StateDir::ephemeral().unwrap();
        let now = t(0);
        let ends = (now + Duration::hours(1)).to_rfc3339();
        let id;
        {
            let s = Silences::open(&dir).unwrap();
            id = s
                .upsert(
                    &input(&format!(
                        r#"{{"matchers":["alertname=\"Disk\"",{{"name":"host","value":"db-.*","isRegex":true}}],"endsAt":"{ends}","createdBy":"ana","comment":"OPS-1"}}"#
                    )),
                    now,
                )
                .unwrap();
            let hit = Labels::from_pairs([("alertname", "Disk"), ("host", "db-1")]);
            let miss = Labels::from_pairs([("alertname", "Disk"), ("host", "web-1")]);
            assert!(s.is_silenced(&hit, now.timestamp_millis()));
            assert!(!s.is_silenced(&miss, now.timestamp_millis()));
            assert!(!s.is_silenced(&hit, t(3600).timestamp_millis()), "ended");
        }
        let s = Silences::open(&dir).unwrap();
        let got = s.get(&id).unwrap();
        assert_eq!(got.created_by, "ana");
        assert_eq!(
            got.matchers[0],
            SilenceMatcher { name: "alertname".into(), value: "Disk".into(), is_regex: false, is_equal: true }
        );
        s.expire(&id, t(10)).unwrap();
        assert_eq!(state(&s.get(&id).unwrap(), t(10)), "expired");
        let hit = Labels::from_pairs([("alertname", "Disk"), ("host", "db-1")]);
        assert!(!s.is_silenced(&hit, t(10).timestamp_millis()));
        assert!(matches!(s.expire("nope", t(10)), Err(SilenceError::NotFound(_))));
        drop(s);
        assert_eq!(state(&Silences::open(&dir).unwrap().get(&id).unwrap(), t(11)), "expired", "expiry persisted");
        let _ = std::fs::remove_dir_all(&dir.path);
    }

    #[test]
    fn validation_names_the_field() {
        let now = t(0);
        let ends = (now + Duration::hours(1)).to_rfc3339();
        let err = |j: String| Silences::in_memory().upsert(&input(&j), now).unwrap_err().to_string();
        assert!(err(format!(r#"{{"matchers":[],"endsAt":"{ends}","createdBy":"a","comment":"c"}}"#))
            .starts_with("matchers:"));
        assert!(err(format!(r#"{{"matchers":["a=~\".*\""],"endsAt":"{ends}","createdBy":"a","comment":"c"}}"#))
            .contains("empty string"));
        assert!(err(format!(r#"{{"matchers":["bad matcher"],"endsAt":"{ends}","createdBy":"a","comment":"c"}}"#))
            .starts_with("matchers[0]"));
        assert!(err(format!(r#"{{"matchers":["a=b"],"endsAt":"{ends}","comment":"c"}}"#)).starts_with("createdBy:"));
        assert!(err(format!(r#"{{"matchers":["a=b"],"endsAt":"{ends}","createdBy":"a"}}"#)).starts_with("comment:"));
        assert!(err(r#"{"matchers":["a=b"],"createdBy":"a","comment":"c"}"#.into()).starts_with("endsAt:"));
        let past = (now - Duration::hours(1)).to_rfc3339();
        assert!(err(format!(r#"{{"matchers":["a=b"],"endsAt":"{past}","createdBy":"a","comment":"c"}}"#))
            .starts_with("endsAt:"));
        assert!(err(format!(r#"{{"matchers":[{{"name":"a","value":"(","isRegex":true}}],"endsAt":"{ends}","createdBy":"a","comment":"c"}}"#))
            .starts_with("matchers[0].value"));
    }

    #[test]
    fn update_in_place_or_replace() {
        let s = Silences::in_memory();
        let now = t(0);
        let body = |id: &str, m: &str, h: i64| {
            input(&format!(
                r#"{{"id":"{id}","matchers":["{m}"],"endsAt":"{}","createdBy":"a","comment":"c"}}"#,
                (now + Duration::hours(h)).to_rfc3339()
            ))
        };
        let id = s.upsert(&body("", "a=b", 1), now).unwrap();
        assert_eq!(s.upsert(&body(&id, "a=b", 2), now).unwrap(), id, "same matchers: extended in place");
        assert_eq!(s.get(&id).unwrap().ends_at, now + Duration::hours(2));
        let id2 = s.upsert(&body(&id, "a=c", 2), now).unwrap();
        assert_ne!(id2, id);
        assert_eq!(state(&s.get(&id).unwrap(), now), "expired");
        assert_eq!(s.list().len(), 2);
        assert!(matches!(s.upsert(&body("unknown", "a=b", 1), now), Err(SilenceError::NotFound(_))));
    }
}
