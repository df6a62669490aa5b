//! `forewarn completions SHELL` and `forewarn man`: the shell completion
//! scripts and man pages, generated from the clap definitions in `main.rs`
//! so they cannot drift from the flags (packaging/build-deb.sh ships what
//! these print).

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::runtime::print_out;
use crate::{Cli, VERSION};

/// `forewarn completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "forewarn", &mut out);
    print_out(&out)
}

/// `forewarn man [SUBCOMMAND...]`: forewarn(1), or forewarn-SUBCOMMAND(1) (forewarn-silence-add(1) for a
/// nested one), in roff on stdout; with `out_dir`, every page as DIR/NAME.1 (packaging/build-deb.sh).
pub fn man(path: &[String], out_dir: Option<&Path>) -> ExitCode {
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
