//! `forewarn query EXPR`: evaluates a PromQL expression on a running daemon
//! through its `/api/v1/query` and prints the result as a table.

use crate::QueryArgs;

/// Calls the daemon and prints the table on stdout.
pub async fn run(a: QueryArgs) -> anyhow::Result<()> {
    let conn = a.conn.connection()?;
    let body = forewarn::promql::client::instant(&a.server, &conn, &a.expr, a.time.as_deref()).await?;
    print!("{}", forewarn::promql::client::table(&body)?);
    Ok(())
}
