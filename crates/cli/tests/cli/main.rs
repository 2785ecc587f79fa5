//! Integration tests of the `retail-api` binary (one test binary, real processes).

mod default_model;
mod pipeline;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_retail-api"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command, asserting success; returns stdout parsed as JSON.
pub fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed:\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a command expected to fail; returns its output.
pub fn run_fail(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(!out.status.success(), "{cmd:?} should fail");
    out
}
