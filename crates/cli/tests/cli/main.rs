//! Integration tests of the `retail-api` binary (one test binary, real processes).

mod auth;
mod capture;
mod default_model;
mod drift;
mod edge;
mod explain;
mod forecast;
mod hostile_bodies;
mod hostile_models;
mod metrics_list;
mod onnx;
mod pipeline;
mod predict;
mod registry;
mod reload;
mod s3;
mod serve;
mod tabular;
mod usability;
mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The seed request.
pub const SEED: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

/// The binary under test: `RETAIL_API_BIN` when set (to run these tests against another build,
/// e.g. to show a test fails on an older one), else the one cargo built.
pub fn bin_path() -> PathBuf {
    std::env::var_os("RETAIL_API_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_retail-api")), PathBuf::from)
}

/// The binary under test, as a command.
pub fn bin() -> Command {
    Command::new(bin_path())
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

/// Log lines a test server keeps for inspection (the oldest; later ones are read and dropped).
const KEPT_LOG_LINES: usize = 10_000;

/// `retail-api serve` on the embedded model and an ephemeral loopback port; killed when dropped,
/// so a failing test does not leave it running.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its JSON "serving" log line (`addr`, `model`, `source`).
    pub serving: serde_json::Value,
    /// Its log lines after "serving" (up to [`KEPT_LOG_LINES`]).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread that reads the log; it ends when the process closes stderr.
    reader: Option<std::thread::JoinHandle<()>>,
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
        Self::start_command(bin(), flags, env)
    }

    /// [`Server::start_with_env`] with the server's limits set first by `prlimit` (e.g.
    /// `--nofile=1024:1024`, `--as=BYTES`).
    pub fn start_limited(limits: &[&str], flags: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("prlimit");
        command.args(limits).arg("--").arg(bin_path());
        Self::start_command(command, flags, env)
    }

    fn start_command(mut command: Command, flags: &[&str], env: &[(&str, &str)]) -> Self {
        // Hermetic: only the variables the test gives configure the model source.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("AWS_") || n.starts_with("MODEL_")) {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(flags)
            .env("LOG_FORMAT", "json")
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
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().expect("lock");
                if kept.len() < KEPT_LOG_LINES {
                    kept.push(line);
                }
            }
        });
        Self { child, serving, log, reader: Some(reader) }
    }

    /// Waits for the process to exit, and for its last log lines to be read.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let exit = self.child.wait().expect("wait");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("log reader");
        }
        exit
    }

    /// The server's JSON log lines so far (after "serving").
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log.lock().expect("lock").iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// A line of `/proc/<pid>/status`, e.g. `VmHWM` or `Threads`, as a number (kB for sizes).
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
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

/// The body of an HTTP answer, as JSON.
pub fn json_body(answer: &str) -> serde_json::Value {
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap_or_default()
}

/// The value of a series on `/metrics` (e.g. `name{label="x"}`), summed over the lines that
/// start with it; 0 when absent.
pub fn metric(addr: &str, series: &str) -> f64 {
    let answer = request(addr, "GET", "/metrics", "").expect("metrics");
    answer.lines().filter(|l| l.starts_with(series)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// `GET /model/info`.
pub fn model_info(addr: &str) -> serde_json::Value {
    json_body(&request(addr, "GET", "/model/info", "").expect("model info"))
}

/// Waits until `/model/info` reports `version`.
pub fn wait_for_version(addr: &str, version: &str) {
    let start = Instant::now();
    while model_info(addr)["version"] != version {
        assert!(start.elapsed() < Duration::from_secs(20), "version {version} never served");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a closed-loop load generator saw: each answer's time and model version, and each
/// failure (a non-200 status line or a connection error).
pub struct LoadReport {
    /// Requests sent.
    pub sent: usize,
    /// Successful answers: when, and which model version answered.
    pub answers: Vec<(Instant, String)>,
    /// Failed requests.
    pub failures: Vec<String>,
}

/// `clients` threads sending the seed `/predict` request, one connection each, until finished.
pub struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<(Instant, String)>>>,
    failures: Arc<Mutex<Vec<String>>>,
    clients: Vec<JoinHandle<usize>>,
}

impl Load {
    /// Starts the clients.
    pub fn start(addr: &str, clients: usize) -> Self {
        Self::start_on(addr, "/predict", clients)
    }

    /// Starts the clients, sending the seed request to `path`.
    pub fn start_on(addr: &str, path: &'static str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (addr, stop, answers, failures) =
                    (addr.to_owned(), stop.clone(), answers.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut sent = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        sent += 1;
                        match request(&addr, "POST", path, SEED) {
                            Ok(r) if r.starts_with("HTTP/1.1 200") => {
                                let version = json_body(&r)["model_version"].as_str().unwrap_or_default().to_owned();
                                answers.lock().expect("lock").push((Instant::now(), version));
                            }
                            Ok(r) => {
                                failures.lock().expect("lock").push(r.lines().next().unwrap_or_default().to_owned())
                            }
                            Err(e) => failures.lock().expect("lock").push(e),
                        }
                    }
                    sent
                })
            })
            .collect();
        Self { stop, answers, failures, clients }
    }

    /// Requests answered so far (successfully or not).
    pub fn done(&self) -> usize {
        self.answers.lock().expect("lock").len() + self.failures.lock().expect("lock").len()
    }

    /// Stops the clients and reports.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.clients.into_iter().map(|c| c.join().expect("client")).sum();
        LoadReport { sent, answers: take(&self.answers), failures: take(&self.failures) }
    }
}

fn take<T>(shared: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *shared.lock().expect("lock"))
}
