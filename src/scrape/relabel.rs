//! Relabeling, with Prometheus's semantics: `relabel_configs` rewrite a
//! target's labels before it is scraped, `metric_relabel_configs` rewrite
//! (or drop) each scraped sample before it is stored.
//!
//! A rule joins its `source_labels` values with `separator`, matches the
//! result against `regex` (anchored at both ends), and then acts:
//! `replace`, `keep`, `drop`, `hashmod`, `labelmap`, `labeldrop`,
//! `labelkeep`. `replacement` may refer to groups as `$1`, `${1}` or `$name`.

use regex::Regex;
use serde::Deserialize;

use crate::labels::Labels;

/// What a rule does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
}

/// One `relabel_configs` / `metric_relabel_configs` entry, as written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_regex")]
    pub regex: String,
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

fn default_separator() -> String {
    ";".into()
}
fn default_regex() -> String {
    "(.*)".into()
}
fn default_replacement() -> String {
    "$1".into()
}

/// Why a rule is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RelabelError {
    #[error("invalid regex {regex:?}: {source}")]
    Regex { regex: String, source: regex::Error },
    #[error("action {0:?} needs a target_label")]
    NoTarget(Action),
    #[error("action hashmod needs a modulus greater than 0")]
    NoModulus,
    #[error("action {0:?} takes no source_labels, target_label or replacement other than the default")]
    Extra(Action),
}

/// Why a list of rules is unusable: the first bad rule, by index (the
/// caller prefixes the list's key, e.g. `relabel_configs[2]: ...`).
#[derive(Debug, thiserror::Error)]
#[error("[{index}]: {source}")]
pub struct CompileError {
    pub index: usize,
    #[source]
    pub source: RelabelError,
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Relabel {
    cfg: RelabelConfig,
    regex: Regex,
}

impl Relabel {
    pub fn new(cfg: &RelabelConfig) -> Result<Self, RelabelError> {
        let regex = Regex::new(&format!("^(?s:{})$", cfg.regex))
            .map_err(|source| RelabelError::Regex { regex: cfg.regex.clone(), source })?;
        match cfg.action {
            Action::Replace | Action::HashMod if cfg.target_label.is_empty() => {
                return Err(RelabelError::NoTarget(cfg.action))
            }
            Action::HashMod if cfg.modulus == 0 => return Err(RelabelError::NoModulus),
            Action::LabelDrop | Action::LabelKeep
                if !cfg.source_labels.is_empty()
                    || !cfg.target_label.is_empty()
                    || cfg.replacement != default_replacement() =>
            {
                return Err(RelabelError::Extra(cfg.action))
            }
            _ => {}
        }
        Ok(Relabel { cfg: cfg.clone(), regex })
    }

    /// Compiles a list of rules; the error names the rule's index.
    pub fn compile(cfgs: &[RelabelConfig]) -> Result<Vec<Relabel>, CompileError> {
        cfgs.iter()
            .enumerate()
            .map(|(index, c)| Relabel::new(c).map_err(|source| CompileError { index, source }))
            .collect()
    }

    /// Applies the rule; false means "drop this target / sample".
    fn apply(&self, labels: &mut Labels) -> bool {
        let c = &self.cfg;
        let value = || c.source_labels.iter().map(|n| labels.value(n)).collect::<Vec<_>>().join(&c.separator);
        match c.action {
            Action::Keep => self.regex.is_match(&value()),
            Action::Drop => !self.regex.is_match(&value()),
            Action::Replace => {
                let v = value();
                if let Some(caps) = self.regex.captures(&v) {
                    let mut target = String::new();
                    caps.expand(&c.target_label, &mut target);
                    if !valid_label_name(&target) {
                        return true;
                    }
                    let mut res = String::new();
                    caps.expand(&c.replacement, &mut res);
                    labels.set(target, res);
                }
                true
            }
            Action::HashMod => {
                let v = value();
                let sum = md5(v.as_bytes());
                let h = u64::from_be_bytes(sum[8..].try_into().unwrap_or_default());
                labels.set(c.target_label.clone(), (h % c.modulus).to_string());
                true
            }
            Action::LabelMap => {
                let mut add = Vec::new();
                for (n, v) in labels.iter() {
                    if self.regex.is_match(n) {
                        let new = self.regex.replace(n, c.replacement.as_str()).into_owned();
                        add.push((new, v.to_string()));
                    }
                }
                for (n, v) in add {
                    labels.set(n, v);
                }
                true
            }
            Action::LabelDrop | Action::LabelKeep => {
                let keep_matching = c.action == Action::LabelKeep;
                let gone: Vec<String> = labels
                    .iter()
                    .filter(|(n, _)| self.regex.is_match(n) != keep_matching)
                    .map(|(n, _)| n.to_string())
                    .collect();
                for n in gone {
                    labels.remove(&n);
                }
                true
            }
        }
    }
}

/// Runs `rules` in order; `None` when one of them drops the label set.
pub fn process(mut labels: Labels, rules: &[Relabel]) -> Option<Labels> {
    for r in rules {
        if !r.apply(&mut labels) {
            return None;
        }
    }
    Some(labels)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// MD5 (RFC 1321): `hashmod` must shard exactly as Prometheus does.
fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let k: [u32; 64] = std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4294967296.0) as u32);
    let mut st: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut msg = input.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((input.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in msg.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]])
        });
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[(i / 16) * 4 + i % 4]));
        }
        for (s, v) in st.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (i, w) in st.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Relabel {
        let c: RelabelConfig = serde_saphyr::from_str(yaml).expect("rule yaml");
        Relabel::new(&c).expect("valid rule")
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn md5_matches_rfc_vectors() {
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(md5(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn replace_with_groups_and_default_regex() {
        let r =
            rule("{source_labels: [__address__], regex: '(.*):(\\d+)', target_label: host, replacement: '${1}-$2'}");
        let out = process(l(&[("__address__", "db1:9100")]), &[r]).unwrap();
        assert_eq!(out.get("host"), Some("db1-9100"));
        // Default regex (.*) and replacement $1 copy the joined value.
        let r = rule("{source_labels: [a, b], target_label: c}");
        let out = process(l(&[("a", "x"), ("b", "y")]), &[r]).unwrap();
        assert_eq!(out.get("c"), Some("x;y"));
    }

    #[test]
    fn replace_is_anchored_and_noop_without_match() {
        let r = rule("{source_labels: [a], regex: 'b', target_label: c, replacement: hit}");
        let out = process(l(&[("a", "abc")]), std::slice::from_ref(&r)).unwrap();
        assert_eq!(out.get("c"), None, "regex must be anchored");
        let out = process(l(&[("a", "b")]), &[r]).unwrap();
        assert_eq!(out.get("c"), Some("hit"));
    }

    #[test]
    fn replace_with_empty_result_deletes_the_label() {
        let r = rule("{source_labels: [missing], target_label: env}");
        let out = process(l(&[("env", "prod")]), &[r]).unwrap();
        assert_eq!(out.get("env"), None);
    }

    #[test]
    fn replace_into_invalid_target_name_is_skipped() {
        let r = rule("{source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: v}");
        let out = process(l(&[("a", "1bad")]), &[r]).unwrap();
        assert_eq!(out, l(&[("a", "1bad")]));
    }

    #[test]
    fn keep_and_drop() {
        let keep = rule("{source_labels: [env], regex: 'prod|staging', action: keep}");
        assert!(process(l(&[("env", "prod")]), std::slice::from_ref(&keep)).is_some());
        assert!(process(l(&[("env", "dev")]), std::slice::from_ref(&keep)).is_none());
        assert!(process(l(&[]), &[keep]).is_none(), "a missing label is the empty string");
        let drop = rule("{source_labels: [__name__], regex: 'go_.*', action: drop}");
        assert!(process(l(&[("__name__", "go_gc_seconds")]), std::slice::from_ref(&drop)).is_none());
        assert!(process(l(&[("__name__", "http_requests_total")]), &[drop]).is_some());
    }

    #[test]
    fn hashmod_shards_like_prometheus() {
        let r = rule("{source_labels: [__address__], modulus: 8, target_label: __tmp_hash, action: hashmod}");
        let out = process(l(&[("__address__", "abc")]), &[r]).unwrap();
        // md5("abc") = 900150983cd24fb0 d6963f7d28e17f72; last 8 bytes big-endian mod 8.
        let expected = 0xd6963f7d28e17f72u64 % 8;
        assert_eq!(out.get("__tmp_hash"), Some(expected.to_string().as_str()));
    }

    #[test]
    fn labelmap_copies_matching_names() {
        let r = rule("{regex: '__meta_kubernetes_pod_label_(.+)', action: labelmap}");
        let out = process(l(&[("__meta_kubernetes_pod_label_app", "api"), ("x", "1")]), &[r]).unwrap();
        assert_eq!(out.get("app"), Some("api"));
        assert_eq!(out.get("__meta_kubernetes_pod_label_app"), Some("api"), "labelmap copies, not moves");
        assert_eq!(out.get("x"), Some("1"));
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let input = l(&[("__name__", "m"), ("pod", "p"), ("pod_ip", "1.2.3.4"), ("job", "j")]);
        let drop = rule("{regex: 'pod.*', action: labeldrop}");
        let out = process(input.clone(), &[drop]).unwrap();
        assert_eq!(out, l(&[("__name__", "m"), ("job", "j")]));
        let keep = rule("{regex: '__name__|job', action: labelkeep}");
        let out = process(input, &[keep]).unwrap();
        assert_eq!(out, l(&[("__name__", "m"), ("job", "j")]));
    }

    #[test]
    fn rules_run_in_order() {
        let rules =
            [rule("{source_labels: [a], target_label: b}"), rule("{source_labels: [b], regex: 'x', action: drop}")];
        assert!(process(l(&[("a", "x")]), &rules).is_none());
        assert!(process(l(&[("a", "y")]), &rules).is_some());
    }

    #[test]
    fn invalid_rules_are_rejected() {
        let bad = |y: &str| Relabel::new(&serde_saphyr::from_str::<RelabelConfig>(y).expect("yaml")).is_err();
        assert!(bad("{source_labels: [a], regex: '(', target_label: b}"));
        assert!(bad("{source_labels: [a]}"), "replace needs target_label");
        assert!(bad("{source_labels: [a], target_label: b, action: hashmod}"), "hashmod needs modulus");
        assert!(bad("{regex: x, target_label: b, action: labeldrop}"));
        assert!(serde_saphyr::from_str::<RelabelConfig>("{action: rename}").is_err());
    }
}
