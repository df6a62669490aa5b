//! The `forewarn` command line: a thin face over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use forewarn::config::{Config, Located};
use forewarn::daemon::{self, Daemon, Options};

#[derive(Parser)]
#[command(name = "forewarn", version, about = "Metrics-driven alerting: learn of trouble before your stakeholders do.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon with a config file.
    Run {
        #[arg(long, short, default_value = "forewarn.yml")]
        config: PathBuf,
    },
    /// Run the daemon on built-in demo targets; notifications print here.
    Demo {
        /// Address of the web UI and API.
        #[arg(long, default_value = "127.0.0.1:9099")]
        listen: String,
    },
    /// Validate config and rule files (`check metrics [FILE]` checks an exposition body).
    Check {
        /// Config or rule files; `metrics [FILE]` to check a /metrics body (stdin without FILE).
        #[arg(required = true)]
        paths: Vec<String>,
        /// Body format for `check metrics`.
        #[arg(long, value_parser = ["text", "openmetrics"], default_value = "text")]
        format: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.cmd {
        Cmd::Demo { .. } => "warn,forewarn=warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.cmd {
        Cmd::Check { paths, format } => check(&paths, &format),
        Cmd::Run { config } => exit(runtime().and_then(|rt| rt.block_on(run(config)))),
        Cmd::Demo { listen } => exit(runtime().and_then(|rt| rt.block_on(demo(listen)))),
    }
}

fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

async fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = Config::load(&config).map_err(|e| anyhow::anyhow!("{}", lines(&e)))?;
    let listen = cfg.http.listen.clone();
    let d = Daemon::start(cfg, Options { config_path: Some(config), console_receiver: None }).await?;
    serve_until_signal(d, &listen).await
}

async fn demo(listen: String) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot bind the demo targets")?;
    let targets = listener.local_addr()?.to_string();
    tokio::spawn(forewarn::demo::serve_targets(listener, Default::default()));
    let (cfg, _dir) = forewarn::demo::config(&targets, &listen).context("cannot prepare the demo")?;
    println!(
        "forewarn demo: scraping built-in targets at {targets} every second.\n\
         In ~10 s memory starts leaking, at ~20 s a filter starts passing everything,\n\
         at ~30 s a backlog steps up. Alerts print below as they fire and resolve.\n\
         Web UI and API: http://{listen}/  (Ctrl-C to stop)\n"
    );
    let d = Daemon::start(cfg, Options { config_path: None, console_receiver: Some("terminal".into()) }).await?;
    serve_until_signal(d, &listen).await
}

/// Serves HTTP; reloads on SIGHUP; shuts down cleanly on SIGTERM/SIGINT.
async fn serve_until_signal(d: Arc<Daemon>, listen: &str) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let reloader = d.clone();
    tokio::spawn(async move {
        let mut stop_tx = Some(stop_tx);
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    daemon::notify_systemd("RELOADING=1");
                    let _ = reloader.reload().await;
                    daemon::notify_systemd("READY=1");
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        tracing::info!("shutting down");
        daemon::notify_systemd("STOPPING=1");
        if let Some(tx) = stop_tx.take() {
            let _ = tx.send(());
        }
    });
    let ready = d.clone();
    tokio::spawn(async move {
        // READY once the listener is bound (serve flips `ready`).
        for _ in 0..200 {
            if ready.ready.load(std::sync::atomic::Ordering::SeqCst) {
                daemon::notify_systemd("READY=1");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    forewarn::http::serve(d, listen, async {
        let _ = stop_rx.await;
    })
    .await?;
    Ok(())
}

fn lines(errs: &[Located]) -> String {
    errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

/// `forewarn check`: every problem as `file:line:col: message`, exit 1 on any.
fn check(paths: &[String], format: &str) -> ExitCode {
    if paths.first().map(String::as_str) == Some("metrics") {
        return check_metrics(paths.get(1).map(String::as_str), format);
    }
    let mut failed = false;
    for p in paths {
        match check_path(Path::new(p)) {
            Ok(summary) => println!("{p}: SUCCESS: {summary}"),
            Err(errs) => {
                failed = true;
                for e in errs {
                    println!("{e}");
                }
                println!("{p}: FAILED");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check_path(path: &Path) -> Result<String, Vec<Located>> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![Located::new(&name, 0, 0, format!("cannot read: {e}"))])?;
    let default_interval = forewarn::duration::PromDuration::from_secs(60);
    // A rule file has `groups:` at the top; anything else is a config file.
    let is_rules = text.lines().any(|l| l.starts_with("groups:"));
    if is_rules {
        let groups = forewarn::rules::parse_rules(&name, &text, default_interval)?;
        let n: usize = groups.iter().map(|g| g.rules.len()).sum();
        return Ok(format!("{n} rules found"));
    }
    let cfg = Config::parse(&name, &text, path.parent())?;
    let groups = forewarn::rules::load_patterns(&cfg.rule_files, cfg.global.evaluation_interval)?;
    let n: usize = groups.iter().map(|g| g.rules.len()).sum();
    Ok(format!("config valid; {} rule files, {n} rules", cfg.rule_files.len()))
}

fn check_metrics(file: Option<&str>, format: &str) -> ExitCode {
    use std::io::Read;
    let mut body = Vec::new();
    let read = match file {
        Some(f) => std::fs::File::open(f).and_then(|mut h| h.read_to_end(&mut body)),
        None => std::io::stdin().read_to_end(&mut body),
    };
    if let Err(e) = read {
        eprintln!("error: cannot read {}: {e}", file.unwrap_or("stdin"));
        return ExitCode::FAILURE;
    }
    let fmt = if format == "openmetrics" {
        forewarn::scrape::parse::Format::OpenMetrics
    } else {
        forewarn::scrape::parse::Format::Prometheus
    };
    let (summary, errors) = forewarn::scrape::parse::check(&body, fmt);
    if errors.is_empty() {
        println!("{} series, {} samples, {} metric families", summary.series, summary.samples, summary.metric_families);
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            println!("{}:{}: {}", e.line, e.col, e.message);
        }
        ExitCode::FAILURE
    }
}
