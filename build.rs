//! Stamps the binary with its git commit and build date for `forewarn --version`:
//! `FOREWARN_GIT_COMMIT` (short hash, `unknown` without git or `.git`, e.g. from a
//! crate tarball) and `FOREWARN_BUILD_DATE` (UTC, from `SOURCE_DATE_EPOCH` when
//! set, for reproducible builds). Re-run only when HEAD or the branch it points to
//! moves, so an ordinary rebuild does not redo it.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let dir = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()));

    // `.git` is a directory, or a file in a worktree; without it this is not
    // our checkout (a tarball unpacked inside some other repository).
    let commit = if dir.join(".git").exists() { git(&dir, &["rev-parse", "--short", "HEAD"]) } else { None };
    if commit.is_some() {
        // HEAD, the ref it names (in the common dir for a worktree) and packed-refs.
        let mut watch = vec![git(&dir, &["rev-parse", "--git-path", "HEAD"])];
        if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(git(&dir, &["rev-parse", "--git-path", &r]));
        }
        watch.push(git(&dir, &["rev-parse", "--git-path", "packed-refs"]));
        for p in watch.into_iter().flatten() {
            let p = dir.join(p);
            // A missing file would make cargo re-run this every build.
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rustc-env=FOREWARN_GIT_COMMIT={}", commit.as_deref().unwrap_or("unknown"));

    let secs =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil(secs.div_euclid(86_400));
    println!("cargo:rustc-env=FOREWARN_BUILD_DATE={y:04}-{m:02}-{d:02}");
}
