//! Helpers the integration tests share: a private temp dir, a free port on
//! 127.0.0.1, and a child process that is killed when the test ends.
//! (Each test binary uses some of them.)
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Child;

/// A fresh, empty directory for this test process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forewarn-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the test's temp dir");
    d
}

/// A port nothing listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Kills the child when the test ends, whatever happens.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
