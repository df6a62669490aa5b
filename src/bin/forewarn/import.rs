//! `forewarn import`: writes the config the library builds from
//! prometheus.yml, alertmanager.yml and a web config file to stdout or
//! `--output`, and lists on stderr every key it could not carry.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::runtime::print_out;

/// The config on stdout or in `output`, the keys not carried on stderr;
/// with `strict`, any key not carried fails with nothing written.
pub fn run(
    prometheus: Option<PathBuf>,
    alertmanager: Option<PathBuf>,
    web_config: Option<PathBuf>,
    output: Option<PathBuf>,
    strict: bool,
) -> ExitCode {
    // Relative paths in the imported config (rule files, certificates) are
    // rewritten to resolve from where the config is written.
    let output_dir = output.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let inputs = forewarn::import::Inputs { prometheus, alertmanager, web_config, output_dir };
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
