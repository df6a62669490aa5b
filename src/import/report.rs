//! The list of input keys the importer did not carry, each with its file,
//! line and column and what to do instead; and the tables of keys whose
//! absence in forewarn deserves a specific explanation.
//!
//! Keys not in a table are still reported: forewarn's config loader names
//! the unknown key and the keys it takes, and `why_unknown` turns that into
//! "forewarn has no `x` here" with a likely intended key for typos.

use std::fmt;

/// One key (or list item) of an input that is not in the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotCarried {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Where it was in its file, e.g. `scrape_configs[1].kubernetes_sd_configs`.
    pub path: String,
    pub why: String,
}

impl fmt::Display for NotCarried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: key `{}` not carried: {}", self.file, self.line, self.col, self.path, self.why)
    }
}

/// `scrape_configs[3].relabel_configs[0]` -> `scrape_configs[].relabel_configs[]`.
pub fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Whether `path` (shaped) matches `pattern`: `.`-separated segments, `*`
/// within a segment matching any text, `**.` as a leading segment matching
/// any depth.
pub fn matches(pattern: &str, path: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("**.") {
        let segs: Vec<&str> = path.split('.').collect();
        return (0..segs.len()).any(|i| matches(rest, &segs[i..].join(".")));
    }
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), path.split('.').collect());
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| glob(p, s))
}

fn glob(p: &str, s: &str) -> bool {
    match p.split_once('*') {
        None => p == s,
        Some((pre, post)) => s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post),
    }
}

/// The first explanation in `table` whose pattern matches `path`.
pub fn lookup(table: &[(&str, &str)], path: &str) -> Option<String> {
    let shaped = shape(path);
    table.iter().find(|(p, _)| matches(p, &shaped)).map(|(_, why)| why.to_string())
}

/// Explains an error of forewarn's config loader about the key at hand.
pub fn why_unknown(loader_message: &str) -> String {
    // The loader's own position (in the output, not the input) is of no use here.
    let msg = match loader_message.rfind(" at line ") {
        Some(i) if loader_message[i..].contains("column") => &loader_message[..i],
        _ => loader_message,
    };
    // serde: "unknown field `x`, expected one of a, b" (or "expected `a` or `b`").
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<String> = tail
            .split_once("expected ")
            .map(|(_, e)| e.trim_start_matches("one of "))
            .map(|e| {
                e.split(", ").flat_map(|x| x.split(" or ")).map(|x| x.trim().trim_matches('`').to_string()).collect()
            })
            .unwrap_or_default();
        let close = expected.iter().filter(|e| distance(e, key) <= 2).min_by_key(|e| distance(e, key));
        return match close {
            Some(c) => format!("forewarn has no `{key}` here; did you mean `{c}`?"),
            None if expected.is_empty() => format!("forewarn has no `{key}` here"),
            None => format!("forewarn has no `{key}` here (it takes {})", expected.join(", ")),
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or_default();
        return format!("forewarn needs `{key}` in this entry and the input has none, so the entry cannot be carried");
    }
    if msg.contains("null") {
        return "an empty value, which forewarn does not take here: the key is left out, so its default applies".into();
    }
    format!("forewarn does not accept this value ({msg}); set it by hand in the output")
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Scrape and Alertmanager discovery forewarn has, for the `*_sd_configs` message.
pub const DISCOVERY: &str =
    "forewarn discovers targets from static_configs and file_sd_configs only: have a sidecar or \
                             cron job write these targets into a file_sd file and list it under file_sd_configs";

/// HTTP client settings forewarn lacks, wherever they appear.
pub const HTTP_CLIENT: &[(&str, &str)] = &[
    ("**.oauth2", "forewarn has no OAuth 2.0 client: fetch the token with another tool into a file and use `authorization: { credentials_file: ... }`"),
    ("**.proxy_url", "forewarn connects directly and has no HTTP proxy setting"),
    ("**.no_proxy", "forewarn connects directly and has no HTTP proxy setting"),
    ("**.proxy_from_environment", "forewarn connects directly and has no HTTP proxy setting"),
    ("**.proxy_connect_header", "forewarn connects directly and has no HTTP proxy setting"),
    ("**.follow_redirects", "forewarn does not follow redirects; point the URL at the final address"),
    ("**.enable_http2", "forewarn picks the HTTP version itself"),
    ("**.tls_config.server_name", "forewarn checks the certificate against the host in the URL; use that name in the URL"),
    ("**.tls_config.min_version", "forewarn uses rustls's defaults (TLS 1.2 and 1.3); the versions cannot be changed"),
    ("**.tls_config.max_version", "forewarn uses rustls's defaults (TLS 1.2 and 1.3); the versions cannot be changed"),
    ("**.tls_config.ca", "write the PEM into a file and set `ca_file`"),
    ("**.tls_config.cert", "write the PEM into a file and set `cert_file`"),
    ("**.tls_config.key", "write the PEM into a file and set `key_file`"),
    ("**.sigv4", "forewarn cannot sign requests with AWS SigV4"),
    ("**.azuread", "forewarn cannot authenticate with Azure AD"),
    ("**.google_iam", "forewarn cannot authenticate with Google IAM"),
    ("**.http_headers", "forewarn sends no custom headers on scrapes; use `authorization` or `basic_auth` for credentials"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(shape("a[3].b[10].c"), "a[].b[].c");
        assert!(matches("scrape_configs[].*_sd_configs", "scrape_configs[].dns_sd_configs"));
        assert!(!matches("scrape_configs[].*_sd_configs", "scrape_configs[].x.dns_sd_configs"));
        assert!(matches("**.oauth2", "remote_write[].oauth2"));
        assert!(matches("**.tls_config.ca", "a.tls_config.ca"));
        assert!(!matches("**.tls_config.ca", "a.tls_config.ca_file"));
    }

    #[test]
    fn typos_get_a_suggestion() {
        let m = why_unknown("unknown field `scrape_intervall`, expected one of `scrape_interval`, `scrape_timeout`");
        assert_eq!(m, "forewarn has no `scrape_intervall` here; did you mean `scrape_interval`?");
        let m = why_unknown("unknown field `zzz`, expected `a` or `b`");
        assert!(m.contains("it takes a, b"), "{m}");
        let m = why_unknown(
            "unknown field `scrape_intervall`, expected one of job_name, scrape_interval at line 3, column 5",
        );
        assert_eq!(m, "forewarn has no `scrape_intervall` here; did you mean `scrape_interval`?");
        let m = why_unknown("unknown variant `keepequal`, expected one of replace, keep at line 70, column 17");
        assert!(
            m.ends_with("(unknown variant `keepequal`, expected one of replace, keep); set it by hand in the output"),
            "{m}"
        );
    }
}
