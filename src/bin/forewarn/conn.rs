//! How the client subcommands (silence, deploy, query) reach a daemon whose
//! `http:` section asks for credentials or serves HTTPS: the `ConnArgs`
//! flags, falling back to environment variables, read into the library's
//! [`Connection`].

use std::path::Path;

use anyhow::Context;
use forewarn::http_client::Connection;

use crate::ConnArgs;

impl ConnArgs {
    /// Flags first, then `FOREWARN_USERNAME`, `FOREWARN_PASSWORD`, `FOREWARN_BEARER_TOKEN`.
    pub fn connection(&self) -> anyhow::Result<Connection> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let username = self.username.clone().or_else(|| env("FOREWARN_USERNAME"));
        let password = match &self.password_file {
            Some(p) => Some(read_secret(p)?),
            None => env("FOREWARN_PASSWORD"),
        };
        anyhow::ensure!(
            password.is_none() || username.is_some(),
            "a password was given (--password-file or FOREWARN_PASSWORD) without --username"
        );
        let bearer_token = match &self.bearer_token_file {
            Some(p) => Some(read_secret(p)?),
            None => env("FOREWARN_BEARER_TOKEN"),
        };
        Ok(Connection {
            username,
            password,
            bearer_token,
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        })
    }
}

/// The secret in file `p`, without the newline an editor or `echo` leaves.
fn read_secret(p: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(s.trim().to_string())
}
