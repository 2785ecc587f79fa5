//! Models in S3, against a real S3-compatible server on loopback (`moto_server`, installed by
//! scripts/test.sh into target/test-venv): load via the seed's MODEL_BUCKET + MODEL_KEY and via
//! `MODEL_URI=s3://…`, hot reload by ETag, refusal of a corrupt upload, a clear error for a
//! missing object, and a new version whose archive cannot be downloaded yet retried until it loads.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hostile_models::reloads;
use crate::{SEED, Server, bin, model_info, request, root, run_json, wait_for_version};

/// The test environment's Python with moto and boto3.
pub fn venv_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("RETAIL_TEST_VENV").map_or_else(|| root().join("target/test-venv"), PathBuf::from);
    let path = dir.join("bin").join(name);
    assert!(
        path.exists(),
        "{} not found: run scripts/test.sh, which installs moto[server] into target/test-venv",
        path.display()
    );
    path
}

/// `moto_server` on a free loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Moto {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while request(&format!("127.0.0.1:{port}"), "GET", "/", "").is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, endpoint }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ]
    }

    /// Runs a boto3 snippet against this server: `s3` is the client, `args` are `sys.argv[2..]`.
    fn boto3(&self, code: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n{code}\n"
        );
        let out =
            Command::new(venv_bin("python")).args(["-c", &script, &self.endpoint]).args(args).output().expect("python");
        assert!(out.status.success(), "boto3 {code}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Creates a bucket (if it does not exist yet).
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3(
            "try:\n    s3.create_bucket(Bucket=sys.argv[2])\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass",
            &[bucket.as_ref()],
        );
    }

    /// Uploads a file, creating the bucket if needed.
    pub fn put(&self, bucket: &str, key: &str, file: &Path) {
        self.create_bucket(bucket);
        self.boto3(
            "s3.upload_file(sys.argv[4], sys.argv[2], sys.argv[3])",
            &[bucket.as_ref(), key.as_ref(), file.as_ref()],
        );
    }

    /// Deletes an object.
    pub fn delete(&self, bucket: &str, key: &str) {
        self.boto3("s3.delete_object(Bucket=sys.argv[2], Key=sys.argv[3])", &[bucket.as_ref(), key.as_ref()]);
    }

    /// The keys under `prefix`.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.boto3(
            "for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix=sys.argv[3]).get('Contents', []):\n    print(o['Key'])",
            &[bucket.as_ref(), prefix.as_ref()],
        );
        String::from_utf8_lossy(&out).lines().map(str::to_owned).collect()
    }

    /// Downloads an object.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.boto3(
            "sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())",
            &[bucket.as_ref(), key.as_ref()],
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tar_gz(dir: &Path, out: &Path) {
    let status = Command::new("tar").arg("-czf").arg(out).arg("-C").arg(dir).arg(".").status().expect("tar");
    assert!(status.success());
}

/// Waits until `/ready` answers 200.
pub fn wait_ready(addr: &str) {
    let start = Instant::now();
    while !request(addr, "GET", "/ready", "").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(start.elapsed() < Duration::from_secs(20), "{addr} never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn status(addr: &str, method: &str, path: &str, body: &str) -> String {
    let r = request(addr, method, path, body).expect("request");
    r.split_whitespace().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn models_load_from_s3_and_reload_by_etag() {
    let moto = Moto::start();
    let env_owned = moto.env();
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tmp = tempfile::tempdir().expect("tmp");
    let default_tgz = tmp.path().join("default.tar.gz");
    tar_gz(&root().join("models/default"), &default_tgz);
    moto.put("models", "retail/model.tar.gz", &default_tgz);
    let default_version = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(root().join("models/default/manifest.json")).expect("manifest"),
    )
    .expect("json")["version"]
        .as_str()
        .expect("version")
        .to_owned();

    // The seed's variables.
    let mut seed_env = env.clone();
    seed_env.extend([("MODEL_BUCKET", "models"), ("MODEL_KEY", "retail/model.tar.gz")]);
    let server = Server::start_with_env(&[], &seed_env);
    wait_ready(server.addr());
    let info = model_info(server.addr());
    assert_eq!(info["fallback"], false);
    assert_eq!(info["source"], "s3");
    assert_eq!(info["location"], "s3://models/retail/model.tar.gz");
    assert_eq!(info["version"], default_version.as_str());
    drop(server);

    // Credentials and region from a profile in the shared files, none in the environment.
    let (credentials, config) = (tmp.path().join("credentials"), tmp.path().join("config"));
    std::fs::write(&credentials, "[ci]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        .expect("write");
    std::fs::write(&config, "[profile ci]\nregion = us-east-1\n").expect("write");
    let (credentials, config) = (credentials.display().to_string(), config.display().to_string());
    let profile_env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_PROFILE", "ci"),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("AWS_CONFIG_FILE", config.as_str()),
        ("MODEL_URI", "s3://models/retail/model.tar.gz"),
    ];
    let server = Server::start_with_env(&[], &profile_env);
    wait_ready(server.addr());
    drop(server);

    // MODEL_URI, watched by ETag: a new upload swaps in, a corrupt one is refused.
    let mut uri_env = env.clone();
    uri_env.push(("MODEL_URI", "s3://models/retail/model.tar.gz"));
    let server = Server::start_with_env(&["--model-poll-seconds", "0.2"], &uri_env);
    let addr = server.addr().to_owned();
    wait_ready(&addr);
    assert_eq!(model_info(&addr)["version"], default_version.as_str());
    run_json(bin().args(["gen-data", "--baskets", "3000", "--seed", "9", "--out"]).arg(tmp.path().join("d.csv")));
    let trained = run_json(
        bin()
            .args(["train", "--max-rounds", "4", "--data"])
            .arg(tmp.path().join("d.csv"))
            .arg("--out")
            .arg(tmp.path().join("m2")),
    );
    let new_version = trained["version"].as_str().expect("version").to_owned();
    let new_tgz = tmp.path().join("m2.tar.gz");
    tar_gz(&tmp.path().join("m2"), &new_tgz);
    moto.put("models", "retail/model.tar.gz", &new_tgz);
    let start = Instant::now();
    while model_info(&addr)["version"] != new_version.as_str() {
        assert!(start.elapsed() < Duration::from_secs(15), "the new S3 version was never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    let corrupt = tmp.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, b"not a model").expect("write");
    moto.put("models", "retail/model.tar.gz", &corrupt);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(model_info(&addr)["version"], new_version.as_str(), "a corrupt upload never serves");
    let metrics = request(&addr, "GET", "/metrics", "").expect("metrics");
    assert!(
        metrics.contains("retail_api_model_reloads_total{model=\"retail-price-sensitivity\",result=\"refused\"}"),
        "refusal counted"
    );
    drop(server);

    drop(moto);
}

#[test]
fn with_the_store_down_the_server_is_live_not_ready_and_recovers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let tgz = tmp.path().join("default.tar.gz");
    tar_gz(&root().join("models/default"), &tgz);
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("MODEL_URI", "s3://models/retail/model.tar.gz"),
    ];
    // Nothing listens on the store's port yet.
    let server = Server::start_with_env(&[], &env);
    let addr = server.addr().to_owned();
    assert_eq!(status(&addr, "GET", "/health", ""), "200", "live");
    assert_eq!(status(&addr, "GET", "/ready", ""), "503", "not ready");
    assert_eq!(status(&addr, "POST", "/predict", SEED), "503");
    assert_eq!(status(&addr, "GET", "/ping", ""), "503");
    // A second server allowed to fall back serves the embedded model meanwhile, and says so.
    let fallback = Server::start_with_env(&["--model-fallback", "embedded"], &env);
    wait_ready(fallback.addr());
    let info = model_info(fallback.addr());
    assert_eq!((info["source"].as_str(), info["fallback"].as_bool()), (Some("embedded"), Some(true)));
    assert_eq!(info["configured_source"], "s3://models/retail/model.tar.gz");
    // The store comes up, first without the object, then with it.
    let moto = Moto::start_on(port);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&addr, "GET", "/ready", ""), "503", "still no object");
    moto.put("models", "retail/model.tar.gz", &tgz);
    wait_ready(&addr);
    assert_eq!(model_info(&addr)["source"], "s3");
    assert_eq!(status(&addr, "POST", "/predict", SEED), "200");
    let start = Instant::now();
    while model_info(fallback.addr())["fallback"] != false {
        assert!(start.elapsed() < Duration::from_secs(40), "the fallback server never loaded its configured model");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = request(&addr, "GET", "/metrics", "").expect("metrics");
    assert!(
        metrics.contains("retail_api_model_reloads_total{model=\"retail-price-sensitivity\",result=\"unavailable\"}"),
        "failed attempts counted"
    );
}

#[test]
fn a_new_version_that_cannot_be_downloaded_yet_is_retried_until_it_loads() {
    // Issue 10: a failed load of a new version was recorded as seen and never retried. Here the
    // registry approves a version whose archive is not in S3 (yet): a transient failure.
    let moto = Moto::start();
    moto.create_bucket("models");
    let group = "retry-models";
    let registry = |args: &[&str]| {
        let mut cmd = bin();
        cmd.arg("registry").args(args).envs(moto.env());
        run_json(&mut cmd)
    };
    let default = root().join("models/default").display().to_string();
    registry(&["push", "--model", &default, "--uri", "s3://models/retail/", "--package-group", group, "--approve"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let v2 = tmp.path().join("v2");
    std::fs::create_dir(&v2).expect("mkdir");
    for entry in std::fs::read_dir(root().join("models/default")).expect("dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), v2.join(entry.file_name())).expect("copy");
    }
    let manifest = std::fs::read_to_string(v2.join("manifest.json")).expect("manifest");
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    manifest["version"] = "retry-v2".into();
    std::fs::write(v2.join("manifest.json"), manifest.to_string()).expect("write");
    let v2_arg = v2.display().to_string();
    let pushed = registry(&["push", "--model", &v2_arg, "--uri", "s3://models/retail/", "--package-group", group]);
    let key = pushed["model_data_url"].as_str().expect("url").trim_start_matches("s3://models/").to_owned();
    let archive = tmp.path().join("v2.tar.gz");
    std::fs::write(&archive, moto.get("models", &key)).expect("write");
    moto.delete("models", &key);

    let env_owned = moto.env();
    let mut env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("MODEL_PACKAGE_GROUP", group));
    let server = Server::start_with_env(&["--model-poll-seconds", "0.2"], &env);
    let addr = server.addr().to_owned();
    wait_ready(&addr);
    let v1 = model_info(&addr)["version"].clone();
    assert_ne!(v1, "retry-v2");
    registry(&["approve", "--package-group", group, "--version", "2"]);
    let start = Instant::now();
    while reloads(&addr, "unavailable") < 2.0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the missing archive was not retried");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(model_info(&addr)["version"], v1, "the serving model stays");
    moto.put("models", &key, &archive);
    wait_for_version(&addr, "retry-v2");
    assert_eq!(reloads(&addr, "refused"), 0.0, "a transient failure is not a refusal");
    assert_eq!(status(&addr, "POST", "/predict", SEED), "200");
}
