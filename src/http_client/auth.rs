//! The `Authorization` header from `basic_auth` or `authorization`.
//! Secrets kept in files (`basic_auth.password_file`,
//! `authorization.credentials_file`) are read at every request, as
//! Prometheus does, so a rotated secret is used at the next request without
//! a reload; a file that cannot be read fails that request with an error
//! naming it.

use std::fmt;
use std::path::PathBuf;

use base64::Engine;

use super::{Authorization, BasicAuth};

/// Why `basic_auth`/`authorization` is refused at load, or its secret
/// file could not be read for a request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("basic_auth and authorization are both set; keep one")]
    BothSet,
    #[error("authorization needs credentials or credentials_file")]
    NoCredentials,
    #[error("cannot read {what} {}: {source}; fix the file or the path", path.display())]
    ReadSecret { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// The source of a request's `Authorization` header.
#[derive(Clone, PartialEq)]
pub enum Auth {
    /// Known from the config alone (inline password or credentials).
    Fixed(String),
    /// `basic_auth` with `password_file`, read per request.
    BasicFile { username: String, file: PathBuf },
    /// `authorization` with `credentials_file`, read per request.
    CredentialsFile { kind: String, file: PathBuf },
}

/// Never prints a secret: targets and configs get logged with `{:?}`.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Fixed(_) => f.write_str("Fixed(<secret>)"),
            Auth::BasicFile { username, file } => write!(f, "BasicFile({username}, {})", file.display()),
            Auth::CredentialsFile { kind, file } => write!(f, "CredentialsFile({kind}, {})", file.display()),
        }
    }
}

impl Auth {
    /// The header value for a request starting now; reads the secret file,
    /// if any, so the error names the file when it is missing or unreadable.
    pub async fn header(&self) -> Result<String, AuthError> {
        match self {
            Auth::Fixed(h) => Ok(h.clone()),
            Auth::BasicFile { username, file } => {
                let password = read_secret("basic_auth.password_file", file).await?;
                Ok(basic_header(username, &password))
            }
            Auth::CredentialsFile { kind, file } => {
                let creds = read_secret("authorization.credentials_file", file).await?;
                Ok(format!("{kind} {creds}"))
            }
        }
    }
}

/// The `Authorization` header source for `basic_auth`/`authorization`.
pub fn auth(basic_auth: Option<&BasicAuth>, authorization: Option<&Authorization>) -> Result<Option<Auth>, AuthError> {
    match (basic_auth, authorization) {
        (Some(_), Some(_)) => Err(AuthError::BothSet),
        (Some(b), None) => Ok(Some(basic(b))),
        (None, Some(a)) => bearer(a).map(Some),
        (None, None) => Ok(None),
    }
}

async fn read_secret(what: &'static str, path: &std::path::Path) -> Result<String, AuthError> {
    tokio::fs::read_to_string(path).await.map(|s| s.trim().to_string()).map_err(|source| AuthError::ReadSecret {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn basic_header(username: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {token}")
}

fn basic(b: &BasicAuth) -> Auth {
    match (&b.password, &b.password_file) {
        (Some(p), _) => Auth::Fixed(basic_header(&b.username, p.expose())),
        (None, Some(f)) => Auth::BasicFile { username: b.username.clone(), file: f.clone() },
        (None, None) => Auth::Fixed(basic_header(&b.username, "")),
    }
}

fn bearer(a: &Authorization) -> Result<Auth, AuthError> {
    match (&a.credentials, &a.credentials_file) {
        (Some(c), _) => Ok(Auth::Fixed(format!("{} {}", a.kind, c.expose()))),
        (None, Some(f)) => Ok(Auth::CredentialsFile { kind: a.kind.clone(), file: f.clone() }),
        (None, None) => Err(AuthError::NoCredentials),
    }
}
