//! Integration tests of the `retail-api` binary (one test binary, real processes).

mod default_model;
mod onnx;
mod pipeline;
mod reload;
mod s3;
mod serve;
mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
    assert!(out.status.success(), "{:?} failed:\n{}", cmd, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a command expected to fail; returns its output.
pub fn run_fail(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(!out.status.success(), "{cmd:?} should fail");
    out
}

/// `retail-api serve` on the embedded model and an ephemeral loopback port; killed when dropped,
/// so a failing test does not leave it running.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its JSON "serving" log line (`addr`, `model`, `source`).
    pub serving: serde_json::Value,
}

impl Server {
    /// Starts the server and waits until it logs that it is serving.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Server::start`] with extra `serve` flags.
    pub fn start_with(flags: &[&str]) -> Self {
        Self::start_with_env(flags, &[])
    }

    /// [`Server::start`] with extra `serve` flags and environment variables.
    pub fn start_with_env(flags: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = bin()
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(flags)
            .env("LOG_FORMAT", "json")
            .env_remove("MODEL_URI")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let serving = loop {
            let line = lines.next().expect("server logs before exiting").expect("line");
            let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            if log["message"] == "serving" {
                break log;
            }
        };
        // Keep reading the log so the server never blocks on a full stderr pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, serving }
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> &str {
        self.serving["addr"].as_str().expect("addr")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Once the process has been waited for, `kill` signals nothing and succeeds.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on its own connection; `Err` when the connection failed after it was sent.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| format!("read: {e}"))?;
    Ok(response)
}
