//! `forewarn silence add|ls|expire`: manages the silences of a running
//! daemon through its Alertmanager-compatible API, as amtool does.

use anyhow::Context;
use forewarn::notify::client;

use crate::{ConnArgs, SilenceCmd};

/// Runs one silence subcommand against the daemon at `url`.
pub async fn run(url: &str, conn: &ConnArgs, cmd: SilenceCmd) -> anyhow::Result<()> {
    let conn = &conn.connection()?;
    match cmd {
        SilenceCmd::Add { matchers, comment, author, duration, start } => {
            let start = match start {
                Some(s) => Some(
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .with_context(|| format!("--start {s:?}: expected RFC 3339, e.g. 2024-05-01T18:00:00Z"))?
                        .with_timezone(&chrono::Utc),
                ),
                None => None,
            };
            let d = forewarn::duration::PromDuration::parse(&duration)
                .map_err(|e| anyhow::anyhow!("--duration {duration:?}: {e}"))?;
            let end = start.unwrap_or_else(chrono::Utc::now) + chrono::Duration::milliseconds(d.as_millis());
            let author = author.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "forewarn-cli".into());
            let id = client::silence_add(url, conn, &matchers, start, end, &author, &comment).await?;
            println!("{id}");
        }
        SilenceCmd::Ls { expired, quiet } => {
            for s in client::silence_list(url, conn).await? {
                if !expired && s["status"]["state"] == "expired" {
                    continue;
                }
                if quiet {
                    println!("{}", s["id"].as_str().unwrap_or(""));
                } else {
                    println!("{}", client::format_silence(&s));
                }
            }
        }
        SilenceCmd::Expire { ids } => {
            for id in ids {
                client::silence_expire(url, conn, &id).await?;
                println!("expired {id}");
            }
        }
    }
    Ok(())
}
