//! URLs as they may appear in logs, metric labels and errors: a token in
//! the user, password or query of a configured URL never does.

/// A configured URL as it may appear in logs and metric labels (see
/// [`redact_url`]), or `<invalid url>`.
pub fn url_label(raw: &str) -> String {
    reqwest::Url::parse(raw).map(|u| redact_url(&u)).unwrap_or_else(|_| "<invalid url>".into())
}

/// Why a configured `url` was refused; the message names the `url` key
/// (the caller adds the section it is in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The parser's message (`url::ParseError` is not re-exported by
    /// reqwest, and `url` is not a direct dependency).
    #[error("url: not a URL ({0})")]
    Parse(String),
    #[error("url: needs http:// or https:// and a host")]
    NotHttp,
}

/// A configured URL that must be `http(s)://host...`.
pub fn parse_http_url(raw: &str) -> Result<reqwest::Url, UrlError> {
    let u = reqwest::Url::parse(raw.trim()).map_err(|e| UrlError::Parse(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NotHttp);
    }
    Ok(u)
}

/// The URL as it may appear in logs and errors: no user, password or query.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    let had_query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}
