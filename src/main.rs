//! The `forewarn` command line: a thin face over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use forewarn::config::{Config, Located};
use forewarn::logging::{LogFormat, LogLevel};

/// `forewarn --version`: the crate version, the git commit and the build date (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FOREWARN_GIT_COMMIT"),
    ", built ",
    env!("FOREWARN_BUILD_DATE"),
    ")"
);

#[derive(Parser)]
#[command(name = "forewarn", version = VERSION, about = "Metrics-driven alerting: learn of trouble before your stakeholders do.")]
struct Cli {
    /// Log line format on stderr: logfmt (ts=… level=… msg=… key=value) or json (an object per line).
    #[arg(long = "log.format", global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,
    /// Log this level and the more severe ones (default info; warn for `demo`). RUST_LOG, when set, overrides it.
    #[arg(long = "log.level", global = true, value_enum, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
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
        /// Exit 3 when lint finds a likely mistake (findings print but exit 0 without it).
        #[arg(long)]
        lint_fatal: bool,
    },
    /// Write a forewarn config from prometheus.yml, alertmanager.yml and a web config file; keys that cannot be carried are listed on stderr.
    Import {
        /// Prometheus's config file.
        #[arg(long, value_name = "FILE")]
        prometheus: Option<PathBuf>,
        /// Alertmanager's config file.
        #[arg(long, value_name = "FILE")]
        alertmanager: Option<PathBuf>,
        /// Prometheus's web config file (--web.config.file): TLS and basic auth of the listener.
        #[arg(long = "web-config", value_name = "FILE")]
        web_config: Option<PathBuf>,
        /// Write the config here (stdout without it).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Exit 1, writing nothing, when any key could not be carried.
        #[arg(long)]
        strict: bool,
    },
    /// Manage silences on a running daemon (add, ls, expire).
    Silence {
        /// The daemon's HTTP address.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9099")]
        url: String,
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        cmd: SilenceCmd,
    },
    /// Record a deploy marker on a running daemon (for CI pipelines).
    Deploy(DeployArgs),
    /// Replay rules over history (a recording, or a Prometheus server's query_range) at simulated time.
    Replay(ReplayArgs),
    /// Print which receivers an alert with these labels would reach.
    RouteTest {
        #[arg(long, short, default_value = "forewarn.yml")]
        config: PathBuf,
        /// Exit 1 unless exactly these receivers (comma-separated) are reached.
        #[arg(long)]
        verify_receivers: Option<String>,
        /// Labels as name=value, e.g. alertname=HighLatency severity=page.
        #[arg(required = true)]
        labels: Vec<String>,
    },
    /// Run test files: `test promql FILE...` (Prometheus's PromQL test scripts), `test rules FILE...` (rule unit tests).
    Test {
        #[command(subcommand)]
        cmd: TestCmd,
    },
    /// Evaluate a PromQL expression on a running daemon and print a table.
    Query(QueryArgs),
    /// Print a shell completion script, e.g. `forewarn completions bash > /etc/bash_completion.d/forewarn`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `forewarn man | man -l -`; `forewarn man silence add` prints forewarn-silence-add(1).
    Man {
        /// The subcommand (and its subcommand) whose own page to print.
        subcommand: Vec<String>,
        /// Write every page (forewarn.1 and one per subcommand, nested ones too) into DIR and print their paths.
        #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TestCmd {
    /// Run rule unit tests (promtool's `test rules` format, plus forewarn's rule kinds and `input_markers`).
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only run test groups whose name matches this regex (repeatable).
        #[arg(long)]
        run: Vec<String>,
        /// Drop fields the rule format does not know (e.g. `namespace:`) instead of failing, like promtool's flag.
        #[arg(long)]
        ignore_unknown_fields: bool,
    },
    /// Run PromQL test scripts (Prometheus's `promqltest` format, `*.test`).
    Promql {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The PromQL expression.
    expr: String,
    /// The daemon's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:9099")]
    server: String,
    /// Evaluation time (RFC 3339 or Unix seconds; default: now).
    #[arg(long)]
    time: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

/// How to reach a daemon whose `http:` section asks for credentials or serves HTTPS.
#[derive(clap::Args)]
struct ConnArgs {
    /// Basic auth user (an `http.basic_auth_users` entry); default: $FOREWARN_USERNAME.
    #[arg(long, global = true)]
    username: Option<String>,
    /// A file holding the basic auth password; default: $FOREWARN_PASSWORD.
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// A file holding a bearer token (`http.bearer_tokens`); default: $FOREWARN_BEARER_TOKEN.
    #[arg(long, global = true)]
    bearer_token_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an https daemon (only these).
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// Do not check the https daemon's certificate.
    #[arg(long, global = true)]
    insecure_skip_verify: bool,
}

impl ConnArgs {
    /// Flags first, then `FOREWARN_USERNAME`, `FOREWARN_PASSWORD`, `FOREWARN_BEARER_TOKEN`.
    fn connection(&self) -> anyhow::Result<forewarn::http_client::Connection> {
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
        Ok(forewarn::http_client::Connection {
            username,
            password,
            bearer_token,
            ca_file: self.ca_file.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        })
    }
}

#[derive(Subcommand)]
enum SilenceCmd {
    /// Silence alerts matching all MATCHERS (name=value, name!=value, name=~re, name!~re).
    Add {
        #[arg(required = true)]
        matchers: Vec<String>,
        /// Why (required): a ticket, an incident, a maintenance.
        #[arg(long, short)]
        comment: String,
        /// Who (default: $USER).
        #[arg(long, short)]
        author: Option<String>,
        /// How long from the start, e.g. 2h, 30m.
        #[arg(long, short, default_value = "1h")]
        duration: String,
        /// Start time (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
    },
    /// List silences.
    Ls {
        /// Also list expired silences.
        #[arg(long)]
        expired: bool,
        /// Only print ids.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Expire silences now.
    Expire {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

fn main() -> ExitCode {
    // Every command (check, test, replay) parses and evaluates PromQL, whose
    // recursion may go `promql::limits::MAX_DEPTH` levels deep: run on a
    // thread with the same stack as the daemon's runtime threads.
    match std::thread::Builder::new().name("forewarn".into()).stack_size(THREAD_STACK).spawn(cli_main) {
        Ok(t) => t.join().unwrap_or(ExitCode::FAILURE),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cli_main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.cmd {
        Cmd::Demo { .. } => "warn,forewarn=warn",
        Cmd::Completions { shell } => return completions(shell),
        Cmd::Man { subcommand, out_dir } => return man(&subcommand, out_dir.as_deref()),
        _ => "info",
    };
    if let Err(e) = forewarn::logging::init(cli.log_format, cli.log_level, default_level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.cmd {
        Cmd::Check { paths, format, lint_fatal } => check(&paths, &format, lint_fatal),
        Cmd::Run { config } => exit(daemon_runtime(forewarn::service::run(config))),
        Cmd::Import { prometheus, alertmanager, web_config, output, strict } => {
            let inputs = forewarn::import::Inputs { prometheus, alertmanager, web_config, output_dir: PathBuf::new() };
            import(inputs, output, strict)
        }
        Cmd::Demo { listen } => exit(daemon_runtime(forewarn::demo::run(listen))),
        Cmd::Deploy(args) => exit(runtime().and_then(|rt| rt.block_on(deploy(args)))),
        Cmd::Silence { url, conn, cmd } => exit(runtime().and_then(|rt| rt.block_on(silence(&url, &conn, cmd)))),
        Cmd::Replay(args) => {
            let now = chrono::Utc::now().timestamp_millis();
            let run =
                |rt: tokio::runtime::Runtime| Ok(rt.block_on(forewarn::replay::command::run(&args.request(), now))?);
            exit(runtime().and_then(run).map(|report: String| print!("{report}")))
        }
        Cmd::Test { cmd: TestCmd::Promql { files } } => test_promql(&files),
        Cmd::Test { cmd: TestCmd::Rules { files, run, ignore_unknown_fields } } => {
            test_rules(&files, &run, ignore_unknown_fields)
        }
        Cmd::Query(args) => exit(runtime().and_then(|rt| rt.block_on(query(args)))),
        Cmd::RouteTest { config, verify_receivers, labels } => {
            route_test(&config, verify_receivers.as_deref(), &labels)
        }
        Cmd::Completions { .. } | Cmd::Man { .. } => ExitCode::SUCCESS,
    }
}

/// `forewarn completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "forewarn", &mut out);
    print_out(&out)
}

/// Writes `out` to stdout; a reader that stopped early (`| head`) is no error.
fn print_out(out: &[u8]) -> ExitCode {
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// `forewarn man [SUBCOMMAND...]`: forewarn(1), or forewarn-SUBCOMMAND(1) (forewarn-silence-add(1) for a
/// nested one), in roff on stdout; with `out_dir`, every page as DIR/NAME.1 (packaging/build-deb.sh).
fn man(path: &[String], out_dir: Option<&Path>) -> ExitCode {
    use clap::CommandFactory;
    // Built, so each subcommand carries its page name (forewarn-silence-add) and the
    // words a user types (forewarn silence add) for the synopsis; no `help` page.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = out_dir {
        return write_man_pages(&cmd, dir);
    }
    let mut page = &cmd;
    for (depth, name) in path.iter().enumerate() {
        page = match page.find_subcommand(name) {
            Some(sub) => sub,
            None => {
                let names: Vec<&str> = page.get_subcommands().map(|c| c.get_name()).collect();
                let of = page.get_bin_name().unwrap_or("forewarn");
                if names.is_empty() {
                    eprintln!("error: `{of}` has no subcommands; its page: `forewarn man {}`", path[..depth].join(" "));
                } else {
                    eprintln!("error: `{of}` has no subcommand {name:?}; one of: {}", names.join(", "));
                }
                return ExitCode::from(2);
            }
        };
    }
    let mut out = Vec::new();
    match man_page(page).render(&mut out) {
        Ok(()) => print_out(&out),
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The page of `cmd` (a built command): dated by the build, footed by forewarn's version.
fn man_page(cmd: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone()).date(env!("FOREWARN_BUILD_DATE")).source(format!("forewarn {VERSION}"))
}

/// `forewarn man --out-dir DIR`: every page of `cmd` and its subcommands, at any depth.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut todo = vec![cmd];
    while let Some(c) = todo.pop() {
        todo.extend(c.get_subcommands().filter(|s| !s.is_hide_set()));
        let page = man_page(c);
        let file = dir.join(page.get_filename());
        let mut out = Vec::new();
        if let Err(e) = page.render(&mut out).and_then(|()| std::fs::write(&file, out)) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        println!("{}", file.display());
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Rule files, globs or directories (their *.yml and *.yaml).
    #[arg(long, required = true, num_args = 1..)]
    rules: Vec<String>,
    /// OpenMetrics text with a timestamp on every sample, ending in `# EOF`.
    #[arg(long, required_unless_present = "source", conflicts_with = "source")]
    input: Option<PathBuf>,
    /// A Prometheus-compatible server: the series the rules read are fetched from its /api/v1/query_range.
    #[arg(long, requires = "from")]
    source: Option<String>,
    /// Start of the replay: RFC 3339, Unix seconds, `now` or `-6h` (default with --input: the first sample).
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// End of the replay, same forms (default: now with --source, the last sample with --input).
    #[arg(long, allow_hyphen_values = true)]
    to: Option<String>,
    /// Resolution of the fetched history (default: the shortest group `interval:`, else 15s).
    #[arg(long)]
    step: Option<String>,
    /// A file holding a bearer token for --source.
    #[arg(long, conflicts_with = "basic_auth_user")]
    bearer_token_file: Option<PathBuf>,
    /// Basic auth user for --source (password from --basic-auth-password-file).
    #[arg(long, requires = "basic_auth_password_file")]
    basic_auth_user: Option<String>,
    /// A file holding the basic auth password.
    #[arg(long)]
    basic_auth_password_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an https --source (only these, as Prometheus's ca_file).
    #[arg(long, requires = "source")]
    ca_file: Option<PathBuf>,
    /// PEM client certificate for an https --source that asks for one (with --key-file).
    #[arg(long, requires_all = ["source", "key_file"])]
    cert_file: Option<PathBuf>,
    /// PEM private key of --cert-file.
    #[arg(long, requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// Do not check the --source server's certificate.
    #[arg(long, requires = "source")]
    insecure_skip_verify: bool,
    /// How long each request to --source may take, e.g. 30s or 5m (default 2m).
    #[arg(long, requires = "source")]
    timeout: Option<String>,
    /// Deploy markers: a JSON list of {service, version, kind, at, ...} (the shape of POST /api/v1/deploys).
    #[arg(long)]
    markers: Option<PathBuf>,
    /// `text` (a line per alert) or `json` ({spans: [{alertname, labels, state, from, to, ...}], notifications, ...}).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
}

fn read_secret(p: &Path) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(s.trim().to_string())
}

impl ReplayArgs {
    fn request(self) -> forewarn::replay::command::Request {
        use forewarn::replay::command::{Request, Source};
        let tls = forewarn::http_client::TlsConfig {
            ca_file: self.ca_file,
            cert_file: self.cert_file,
            key_file: self.key_file,
            insecure_skip_verify: self.insecure_skip_verify,
        };
        Request {
            rules: self.rules,
            input: self.input,
            source: self.source.map(|url| Source {
                url,
                bearer_token_file: self.bearer_token_file,
                basic_auth: self.basic_auth_user.zip(self.basic_auth_password_file),
                tls,
                timeout: self.timeout,
            }),
            from: self.from,
            to: self.to,
            step: self.step,
            markers: self.markers,
            json: self.output == "json",
        }
    }
}

#[derive(clap::Args)]
struct DeployArgs {
    /// The service that changed (matches alerts' `service` or `job` label).
    #[arg(long)]
    service: String,
    /// The version now running.
    #[arg(long)]
    version: Option<String>,
    /// This is a rollback to --version.
    #[arg(long)]
    rollback: bool,
    /// deploy, rollback, restart or config (default: deploy, or rollback with --rollback).
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    url: Option<String>,
    #[arg(long)]
    commit: Option<String>,
    /// Who deployed (default: $USER).
    #[arg(long)]
    by: Option<String>,
    /// When (RFC 3339 or Unix seconds; default: now).
    #[arg(long)]
    at: Option<String>,
    /// Extra labels as name=value (repeatable), e.g. --label env=prod.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// The daemon's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:9099")]
    server: String,
    /// Bearer token (deploys.token); default: $FOREWARN_TOKEN.
    #[arg(long)]
    token: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

/// `forewarn deploy`: posts one marker and prints what was stored.
async fn deploy(a: DeployArgs) -> anyhow::Result<()> {
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

async fn silence(url: &str, conn: &ConnArgs, cmd: SilenceCmd) -> anyhow::Result<()> {
    use forewarn::notify::client;
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

/// `forewarn route-test`: the receivers on the first line (comma-separated,
/// as amtool prints them), then one line per matching route.
fn route_test(config: &Path, verify: Option<&str>, labels: &[String]) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", Located::join(&e));
            return ExitCode::FAILURE;
        }
    };
    let labels = match forewarn::notify::client::parse_labels(labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The daemon's tree: the user's routes plus the built-in `Watchdog` one.
    let parts = match forewarn::daemon::dispatcher_of(&cfg) {
        Ok(d) => d.into_parts(),
        Err(e) => {
            eprintln!("error: {}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    let (receivers, details) = forewarn::notify::client::route_test(&parts.root, &labels);
    println!("{}", receivers.join(","));
    for d in details {
        println!("  {d}");
    }
    if let Some(want) = verify {
        let want: Vec<&str> = want.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if want != receivers {
            eprintln!("WARNING: expected receivers {want:?}, got {receivers:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
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

/// Stack of every runtime thread: query and rule evaluation recurse once per
/// level of an expression, and expressions may nest up to
/// `promql::limits::MAX_DEPTH` levels.
const THREAD_STACK: usize = 16 * 1024 * 1024;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .build()
        .context("cannot start the async runtime")
}

/// Runs the daemon, then leaves without waiting for evaluations still on
/// the blocking pool (they stop at their next limit check; the process
/// must end promptly on SIGTERM whatever runs).
fn daemon_runtime<E>(main: impl std::future::Future<Output = Result<(), E>>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let rt = runtime()?;
    let result = rt.block_on(main);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(result?)
}

/// `forewarn check`: every problem as `file:line:col: message`, exit 1 on
/// any; lint findings (`file:line:col: lint: ...`) exit 3 with `--lint-fatal`.
fn check(paths: &[String], format: &str, lint_fatal: bool) -> ExitCode {
    if paths.first().map(String::as_str) == Some("metrics") {
        return check_metrics(paths.get(1).map(String::as_str), format);
    }
    let mut failed = false;
    let mut linted = 0;
    for p in &forewarn::ruletest::expand_dirs(paths) {
        match check_path(Path::new(p)) {
            Ok(summary) => {
                println!("{p}: SUCCESS: {summary}");
                let found = forewarn::ruletest::lint::lint_path(Path::new(p));
                for f in &found {
                    println!("{f}");
                }
                linted += found.len();
            }
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
    } else if linted > 0 && lint_fatal {
        println!("{linted} lint findings (--lint-fatal)");
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// `forewarn import`: the config on stdout or in `--output`, the keys not carried on stderr.
fn import(mut inputs: forewarn::import::Inputs, output: Option<PathBuf>, strict: bool) -> ExitCode {
    inputs.output_dir = output.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let imported = match forewarn::import::import(&inputs) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for n in &imported.not_carried {
        eprintln!("{n}");
    }
    if strict && !imported.not_carried.is_empty() {
        eprintln!("error: {} keys not carried (--strict); nothing written", imported.not_carried.len());
        return ExitCode::FAILURE;
    }
    match output {
        Some(path) => match std::fs::write(&path, &imported.config) {
            Ok(()) => {
                eprintln!("wrote {}; {} keys not carried", path.display(), imported.not_carried.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        None => print_out(imported.config.as_bytes()),
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
    let builtin = forewarn::selfmon::rule_groups(&cfg, &groups)?;
    let n: usize = groups.iter().map(|g| g.rules.len()).sum();
    let own: usize = builtin.iter().map(|g| g.rules.len()).sum();
    let own = if own > 0 { format!(" (+{own} built-in self-monitoring rules)") } else { String::new() };
    Ok(format!("config valid; {} rule files, {n} rules{own}", cfg.rule_files.len()))
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

/// `forewarn test promql`: a line per file, then the totals; exit 1 on any failure.
/// `forewarn test rules`: promtool-style rule unit tests; exit 1 on any failure.
fn test_rules(files: &[PathBuf], run: &[String], ignore_unknown_fields: bool) -> ExitCode {
    let mut opts = forewarn::ruletest::Options { ignore_unknown_fields, ..Default::default() };
    for r in run {
        match regex::Regex::new(r) {
            Ok(re) => opts.run.push(re),
            Err(e) => {
                eprintln!("error: --run {r:?}: invalid regex: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut failed = false;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for f in forewarn::ruletest::expand_dirs(&names) {
        let out = forewarn::ruletest::run_file(Path::new(&f), &opts);
        print!("{}", out.report());
        failed |= !out.passed();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn test_promql(files: &[PathBuf]) -> ExitCode {
    let (mut passed, mut failed, mut unsupported) = (0, 0, 0);
    for f in files {
        let r = forewarn::promql::promqltest::run_file(f);
        let verdict = if r.failed == 0 { "ok" } else { "FAILED" };
        println!("{}: {verdict}: {} passed, {} failed, {} unsupported", f.display(), r.passed, r.failed, r.unsupported);
        for line in &r.failures {
            println!("  {line}");
        }
        passed += r.passed;
        failed += r.failed;
        unsupported += r.unsupported;
    }
    println!("{passed} passed, {failed} failed, {unsupported} unsupported");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `forewarn query`: calls the daemon's `/api/v1/query` and prints a table.
async fn query(a: QueryArgs) -> anyhow::Result<()> {
    let conn = a.conn.connection()?;
    let body = forewarn::promql::client::instant(&a.server, &conn, &a.expr, a.time.as_deref()).await?;
    print!("{}", forewarn::promql::client::table(&body)?);
    Ok(())
}
