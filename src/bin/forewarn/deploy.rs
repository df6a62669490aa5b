//! `forewarn deploy --service S`: records a deploy marker on a running
//! daemon (`POST /api/v1/deploys`), as a CI pipeline's last step.

use anyhow::Context;

use crate::DeployArgs;

/// Posts one marker and prints what the daemon stored.
pub async fn run(a: DeployArgs) -> anyhow::Result<()> {
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').with_context(|| format!("--label {l:?}: expected name=value"))?;
        labels.insert(k.trim().to_string(), serde_json::Value::String(v.trim().to_string()));
    }
    let body = serde_json::json!({
        "service": a.service,
        "version": a.version,
        "kind": a.kind,
        "rollback": a.rollback,
        "url": a.url,
        "commit": a.commit,
        "by": a.by.or_else(|| std::env::var("USER").ok()),
        "at": a.at,
        "labels": labels,
    });
    let token = a.token.or_else(|| std::env::var("FOREWARN_TOKEN").ok());
    let conn = a.conn.connection()?;
    let m = forewarn::deploys::client::post_marker(&a.server, &conn, token.as_deref(), &body).await?;
    println!(
        "recorded {} {} of {} at {} (id {})",
        m.kind.as_str(),
        m.version,
        m.service,
        forewarn::deploys::rfc3339(m.at),
        m.id
    );
    Ok(())
}
