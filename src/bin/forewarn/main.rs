//! The `forewarn` command line: the clap definitions of every subcommand
//! and flag, and one call per subcommand. The bodies live beside this file,
//! one per subcommand (`check.rs`, `import.rs`, `silence.rs`, ...), and call
//! the library; `runtime.rs` owns threads, the async runtime and exit codes,
//! `docs.rs` the man pages and completions generated from these definitions.
//! Printing results, exit codes and `anyhow` stay in this binary; the
//! library returns values and typed errors.

mod check;
mod conn;
mod deploy;
mod docs;
mod import;
mod query;
mod replay;
mod route_test;
mod runtime;
mod silence;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

fn main() -> ExitCode {
    runtime::one_malloc_arena();
    runtime::on_main_thread(cli_main)
}

/// Parses the arguments, sets up logging and TLS, and makes the one call
/// that runs the subcommand.
fn cli_main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.cmd {
        Cmd::Demo { .. } => "warn,forewarn=warn",
        // These print pages about the binary itself: no logging to set up.
        Cmd::Completions { shell } => return docs::completions(shell),
        Cmd::Man { subcommand, out_dir } => return docs::man(&subcommand, out_dir.as_deref()),
        _ => "info",
    };
    if let Err(e) = forewarn::logging::init(cli.log_format, cli.log_level, default_level) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // reqwest is built without a crypto provider (`rustls-no-provider`):
    // every HTTPS request needs this process default; an earlier one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.cmd {
        Cmd::Run { config } => runtime::daemon(forewarn::service::run(config)),
        Cmd::Demo { listen } => runtime::daemon(forewarn::demo::run(listen)),
        Cmd::Check { paths, format, lint_fatal } => check::run(&paths, &format, lint_fatal),
        Cmd::Import { prometheus, alertmanager, web_config, output, strict } => {
            import::run(prometheus, alertmanager, web_config, output, strict)
        }
        Cmd::Silence { url, conn, cmd } => runtime::block_on(silence::run(&url, &conn, cmd)),
        Cmd::Deploy(args) => runtime::block_on(deploy::run(args)),
        Cmd::Replay(args) => replay::run(args),
        Cmd::RouteTest { config, verify_receivers, labels } => {
            route_test::run(&config, verify_receivers.as_deref(), &labels)
        }
        Cmd::Test { cmd: TestCmd::Rules { files, run, ignore_unknown_fields } } => {
            test::rules(&files, &run, ignore_unknown_fields)
        }
        Cmd::Test { cmd: TestCmd::Promql { files } } => test::promql(&files),
        Cmd::Query(args) => runtime::block_on(query::run(args)),
        // Answered before logging, above.
        Cmd::Completions { .. } | Cmd::Man { .. } => ExitCode::SUCCESS,
    }
}
