//! How a subcommand runs at the binary's edge: on a thread with a deep
//! enough stack, on a tokio runtime when it talks to the network or runs the
//! daemon, and ending in an exit code with its error on stderr. The one place
//! `anyhow::Error` turns into `error: ...` and exit status 1.

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;

/// Stack of the main thread and of every runtime thread: query and rule
/// evaluation recurse once per level of an expression, and expressions may
/// nest up to `promql::limits::MAX_DEPTH` levels.
const THREAD_STACK: usize = 16 * 1024 * 1024;

/// How long an idle thread of the runtime's blocking pool waits for work
/// before it exits. Every rule evaluation runs in `block_in_place`, which
/// hands the worker's queue to a pool thread; with tokio's default (10 s)
/// that thread has exited by the next evaluation of a 15 s group, so each
/// evaluation paid a thread's start and exit (stack mapping, a malloc
/// arena's teardown): a third of an idle daemon's CPU. Longer than the usual
/// scrape and evaluation intervals, so a steady daemon keeps its threads.
const IDLE_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(300);

/// Asks glibc's malloc for one arena shared by every thread, unless the
/// user chose a number (`MALLOC_ARENA_MAX`, or `arena_max` in
/// `GLIBC_TUNABLES`). By default glibc gives threads their own arenas, up to
/// eight per core; the daemon's series and chunks are then allocated on
/// whichever runtime thread scraped them, each arena keeps its own free
/// space, and at 50,000 series two arenas held 4.5 MiB more than one (31.1
/// vs 26.6 MiB anonymous RSS, a tenth of the daemon's RSS; bench/README.md
/// "One malloc arena"). Contention is not the cost it sounds: each thread
/// still serves small allocations from its own cache without the lock, and
/// CPU per sample did not move. Called first in `main`, before any other
/// thread exists, so that no thread is handed an arena of its own.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !chosen {
            // SAFETY: mallopt takes no pointers; it sets a limit read when
            // a thread first allocates.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
    }
}

/// Runs `cli_main` on a thread with [`THREAD_STACK`]: every command (check,
/// test, replay) parses and evaluates PromQL, whose recursion may go as deep
/// on the CLI as in the daemon's runtime threads.
pub fn on_main_thread(cli_main: fn() -> ExitCode) -> ExitCode {
    match std::thread::Builder::new().name("forewarn".into()).stack_size(THREAD_STACK).spawn(cli_main) {
        Ok(t) => t.join().unwrap_or(ExitCode::FAILURE),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client subcommand (deploy, silence, query) to its end.
pub fn block_on(main: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    exit(runtime().and_then(|rt| rt.block_on(main)))
}

/// Runs the daemon, then leaves without waiting for evaluations still on
/// the blocking pool (they stop at their next limit check; the process
/// must end promptly on SIGTERM whatever runs).
pub fn daemon<E>(main: impl Future<Output = Result<(), E>>) -> ExitCode
where
    E: std::error::Error + Send + Sync + 'static,
{
    let run = || -> anyhow::Result<()> {
        let rt = runtime()?;
        let result = rt.block_on(main);
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
        Ok(result?)
    };
    exit(run())
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK)
        .thread_keep_alive(IDLE_THREAD_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")
}

/// Success, or the error with its causes (`{:#}`) on stderr and exit 1.
pub fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `out` to stdout; a reader that stopped early (`| head`) is no error.
pub fn print_out(out: &[u8]) -> ExitCode {
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
