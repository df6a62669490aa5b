//! `forewarn replay`: turns the replay flags into the library's
//! [`Request`], runs the rules over that history at simulated time and
//! prints the report (text or JSON).

use std::process::ExitCode;

use forewarn::replay::command::{Request, Source};

use crate::runtime::{exit, runtime};
use crate::ReplayArgs;

/// Runs the replay and prints its report on stdout.
pub fn run(args: ReplayArgs) -> ExitCode {
    // Time is read at the edge and passed in: `--from -6h` and `--to now`
    // resolve against it.
    let now = chrono::Utc::now().timestamp_millis();
    let request = args.request();
    let report = runtime().and_then(|rt| Ok(rt.block_on(forewarn::replay::command::run(&request, now))?));
    exit(report.map(|report: String| print!("{report}")))
}

impl ReplayArgs {
    fn request(self) -> Request {
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
