//! Hostile model artifacts (issue 10) hot-reloaded into a real server that runs under a
//! virtual-memory limit: a `.tar.gz` whose GNU long-name or pax header claims 2 GiB, a directory
//! listing a 3 GiB (sparse) file or a 600 MiB one, a 3.8 MB `model.json` of 100,000 trees plus
//! one depth-12 chain (4.8 GB once laid out), and leaves whose sum overflows. Each is refused
//! and counted, the process stays alive, the old model keeps answering, and its peak resident
//! memory (`VmHWM`) stays far below the limit. A model that can overflow is refused at start too.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use retail_model::artifact::sha256_hex;
use serde_json::{Value, json};

use crate::s3::tar_gz;
use crate::{SEED, Server, bin, metric, model_info, request, root};

/// Address space the server may use (`prlimit --as`): ~7× what it maps when idle (~220 MiB),
/// well below what any of the hostile artifacts asked for before the fix (2 to 4.8 GB).
const ADDRESS_SPACE_LIMIT: u64 = 1536 << 20;

/// Most resident memory the server may have reached at any point (`VmHWM`, in kB): a sixth of
/// the limit; it idles at ~12 MB.
const MAX_PEAK_KB: u64 = 256 << 10;

/// `retail-api serve` on `model_uri`, polling it every 0.2 s, under [`ADDRESS_SPACE_LIMIT`].
fn serve_limited(model_uri: &Path) -> Server {
    let uri = model_uri.to_str().expect("utf-8 path");
    Server::start_limited(
        &[&format!("--as={ADDRESS_SPACE_LIMIT}")],
        &["--model-poll-seconds", "0.2", "--model-uri", uri],
        &[],
    )
}

/// `retail_api_model_reloads_total{model, result}` as `/metrics` shows it (0 before the first one).
pub fn reloads(addr: &str, result: &str) -> f64 {
    metric(addr, &format!("retail_api_model_reloads_total{{model=\"retail-price-sensitivity\",result=\"{result}\"}} "))
}

/// The committed default model's files.
fn default_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(root().join("models/default"))
        .expect("models/default")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

/// Writes the default artifact into `dir` with `model.json` replaced by `model` (listed with its
/// checksum) and the manifest's version set to `version`.
fn artifact_with_model(dir: &Path, model: &Value, version: &str) {
    let bytes = serde_json::to_vec(model).expect("json");
    write_artifact(dir, version, |manifest, dir| {
        manifest["files"]["model.json"] = json!({"sha256": sha256_hex(&bytes), "bytes": bytes.len()});
        fs::write(dir.join("model.json"), &bytes).expect("write model.json");
    });
}

/// Copies the default artifact into `dir`, lets `change` edit the manifest and the files, and
/// writes the manifest.
fn write_artifact(dir: &Path, version: &str, change: impl FnOnce(&mut Value, &Path)) {
    fs::create_dir_all(dir).expect("mkdir");
    let mut manifest = Value::Null;
    for (name, bytes) in default_files() {
        if name == "manifest.json" {
            manifest = serde_json::from_slice(&bytes).expect("manifest");
        } else {
            fs::write(dir.join(name), bytes).expect("write");
        }
    }
    manifest["version"] = json!(version);
    change(&mut manifest, dir);
    fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
}

/// The default ensemble with its trees replaced or extended.
fn default_model() -> Value {
    serde_json::from_slice(&fs::read(root().join("models/default/model.json")).expect("model.json")).expect("json")
}

/// 100,000 single-leaf trees plus one chain of depth 12: 3.8 MB of JSON that the engine lays out
/// as 100,001 complete trees of depth 12 (4.8 GB).
fn wide_model() -> Value {
    let mut model = default_model();
    let mut trees: Vec<Value> = (0..100_000).map(|i| json!({"class": i % 3, "nodes": [], "leaves": [0.0]})).collect();
    let depth = 12;
    let nodes: Vec<Value> = (0..depth)
        .map(|i: i32| {
            let right = if i + 1 < depth { i + 1 } else { !depth };
            json!({"feature": 0, "threshold": f64::from(i), "left": !i, "right": right})
        })
        .collect();
    trees.push(json!({"class": 0, "nodes": nodes, "leaves": vec![0.0; 13]}));
    model["trees"] = json!(trees);
    model
}

/// The default ensemble plus two trees whose leaves (1e308 each) overflow when summed.
fn overflowing_model() -> Value {
    let mut model = default_model();
    let trees = model["trees"].as_array_mut().expect("trees");
    trees.extend([
        json!({"class": 0, "nodes": [], "leaves": [1e308]}),
        json!({"class": 0, "nodes": [], "leaves": [1e308]}),
    ]);
    model
}

/// The default artifact with `card.md` replaced by a sparse file of `bytes` (no disk used),
/// listed in the manifest with that size.
fn oversized_file(dir: &Path, bytes: u64) {
    write_artifact(dir, "oversized", |manifest, dir| {
        fs::File::create(dir.join("card.md")).and_then(|f| f.set_len(bytes)).expect("sparse file");
        manifest["files"]["card.md"] = json!({"sha256": sha256_hex(b""), "bytes": bytes});
    });
}

/// A `.tar.gz` that opens with an extension header (GNU long name `L` or pax `x`) claiming
/// `size` bytes of zeros, followed by the default artifact. 2 GiB of zeros compress to ~10 MB.
fn extension_bomb(out: &Path, kind: tar::EntryType, size: u64) {
    let file = fs::File::create(out).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_path("././@LongLink").expect("path");
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    gz.write_all(header.as_bytes()).expect("header");
    let zeros = vec![0u8; 1 << 20];
    let mut left = size.next_multiple_of(512);
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        gz.write_all(&zeros[..n]).expect("zeros");
        left -= n as u64;
    }
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in default_files() {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, bytes.as_slice()).expect("append");
    }
    tar.into_inner().and_then(|gz| gz.finish()).expect("finish");
}

/// Installs each `(what, artifact)` in turn at `served` with `install`, and checks the server
/// refuses it while staying alive, serving `version`, answering `/predict`, with a bounded peak.
fn each_is_refused(server: &mut Server, version: &str, artifacts: &[(&str, PathBuf)], install: impl Fn(&Path)) {
    let addr = server.addr().to_owned();
    for (what, artifact) in artifacts {
        let before = reloads(&addr, "refused");
        install(artifact);
        let start = Instant::now();
        while reloads(&addr, "refused") == before {
            if let Ok(Some(exit)) = server.child.try_wait() {
                panic!("the server died ({exit}) reloading {what}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{what}: never refused");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(server.child.try_wait().expect("wait"), None, "{what}: the server is still running");
        assert_eq!(model_info(&addr)["version"], version, "{what}: the old model keeps serving");
        let answer = request(&addr, "POST", "/predict", SEED).expect("predict");
        assert!(answer.starts_with("HTTP/1.1 200"), "{what}: {answer}");
        let peak = server.status("VmHWM");
        assert!(peak < MAX_PEAK_KB, "{what}: peak resident memory {peak} kB (limit {MAX_PEAK_KB} kB)");
    }
}

/// The version of the committed default model.
fn default_version() -> String {
    let manifest: Value =
        serde_json::from_slice(&fs::read(root().join("models/default/manifest.json")).expect("manifest"))
            .expect("json");
    manifest["version"].as_str().expect("version").to_owned()
}

#[test]
fn hostile_directories_are_refused_on_reload_under_a_memory_limit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let good = tmp.path().join("good");
    write_artifact(&good, &default_version(), |_, _| {});
    let served = tmp.path().join("served");
    std::os::unix::fs::symlink(&good, &served).expect("symlink");
    let artifacts = [
        ("a listed 3 GiB file", tmp.path().join("huge")),
        ("a listed 600 MiB file", tmp.path().join("big")),
        ("100,000 trees and one depth-12 chain", tmp.path().join("wide")),
        ("leaves that overflow when summed", tmp.path().join("overflow")),
    ];
    oversized_file(&artifacts[0].1, 3 << 30);
    oversized_file(&artifacts[1].1, 600 << 20);
    artifact_with_model(&artifacts[2].1, &wide_model(), "wide");
    artifact_with_model(&artifacts[3].1, &overflowing_model(), "overflow");

    let mut server = serve_limited(&served);
    let version = default_version();
    assert_eq!(model_info(server.addr())["version"], version.as_str());
    // Swap the directory atomically (a symlink renamed over the served one), so the poller sees
    // each artifact whole.
    let swap = |target: &Path| {
        let link = tmp.path().join("next");
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        fs::rename(&link, &served).expect("rename");
    };
    each_is_refused(&mut server, &version, &artifacts, swap);
}

#[test]
fn hostile_archives_are_refused_on_reload_under_a_memory_limit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served.tar.gz");
    tar_gz(&root().join("models/default"), &served);
    let (wide, overflow) = (tmp.path().join("wide"), tmp.path().join("overflow"));
    artifact_with_model(&wide, &wide_model(), "wide");
    artifact_with_model(&overflow, &overflowing_model(), "overflow");
    let artifacts = [
        ("a 2 GiB GNU long-name header", tmp.path().join("long-name.tar.gz")),
        ("a 2 GiB pax header", tmp.path().join("pax.tar.gz")),
        ("100,000 trees and one depth-12 chain", tmp.path().join("wide.tar.gz")),
        ("leaves that overflow when summed", tmp.path().join("overflow.tar.gz")),
    ];
    extension_bomb(&artifacts[0].1, tar::EntryType::GNULongName, 2 << 30);
    extension_bomb(&artifacts[1].1, tar::EntryType::XHeader, 2 << 30);
    tar_gz(&wide, &artifacts[2].1);
    tar_gz(&overflow, &artifacts[3].1);

    let mut server = serve_limited(&served);
    let version = default_version();
    assert_eq!(model_info(server.addr())["version"], version.as_str());
    let swap = |archive: &Path| {
        let next = tmp.path().join("next.tar.gz");
        fs::copy(archive, &next).expect("copy");
        fs::rename(&next, &served).expect("rename");
    };
    each_is_refused(&mut server, &version, &artifacts, swap);
}

#[test]
fn a_model_whose_scores_can_overflow_is_refused_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("overflow");
    artifact_with_model(&dir, &overflowing_model(), "overflow");
    let mut child = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--model-uri"])
        .arg(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started on a model whose scores overflow");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(!status.success());
    assert!(stderr.contains("model.json") && stderr.contains("score bound"), "names the file and the bound: {stderr}");
}
