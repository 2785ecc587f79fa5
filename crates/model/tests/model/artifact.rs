//! Artifact loading verifies everything, against the committed default model.

use std::fs;
use std::path::{Path, PathBuf};

use retail_model::artifact::{Artifact, ArtifactError, MANIFEST_FILE, MODEL_FILE, Manifest, ModelKind};

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default")
}

fn copy_default(to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(default_dir()).expect("models/default") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn committed_default_model_loads_and_is_the_embedded_one() {
    let disk = Artifact::load(&default_dir()).expect("models/default loads");
    let embedded = Artifact::embedded_default().expect("embedded model loads");
    assert_eq!(disk.manifest, embedded.manifest);
    assert_eq!(disk.manifest.classes.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(), ["LA", "MM", "UM"]);
}

#[test]
fn the_shipped_basket_manifest_parses_and_serializes_byte_identically() {
    // Written before manifests had a kind, split dates, a validation metric or a row count:
    // none of them appears when it is absent, so the bytes are the same.
    let text = fs::read(default_dir().join(MANIFEST_FILE)).expect("manifest");
    let manifest: Manifest = serde_json::from_slice(&text).expect("parses");
    assert_eq!(manifest.kind, ModelKind::BasketClassifier);
    assert!(manifest.training.validation_log_loss.is_some() && manifest.training.validation_metric.is_none());
    assert!(manifest.training.rows.dates.is_none() && manifest.provenance.rows.is_none());
    // Byte for byte up to the numbers' last digit: serde_json (without `float_roundtrip`) may
    // parse a float one ulp off, which then prints differently.
    let again = serde_json::to_vec_pretty(&manifest).expect("json");
    assert_eq!(crate::numbers_masked(&again), crate::numbers_masked(&text), "{}", String::from_utf8_lossy(&again));
    let value = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).expect("json");
    assert_eq!(value(&again)["version"], value(&text)["version"]);
}

#[test]
fn tampered_truncated_missing_and_future_artifacts_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tmp");

    let dir = tmp.path().join("tampered");
    copy_default(&dir);
    let model = fs::read(dir.join(MODEL_FILE)).expect("read");
    let mut changed = model.clone();
    let i = changed.iter().position(|&c| c == b'7').expect("a digit");
    changed[i] = b'8';
    fs::write(dir.join(MODEL_FILE), &changed).expect("write");
    let err = Artifact::load(&dir).expect_err("tampered");
    assert!(matches!(&err, ArtifactError::Checksum { file, .. } if file == MODEL_FILE), "{err}");
    assert!(err.to_string().contains("model.json") && err.to_string().contains("tampered"), "{err}");

    let dir = tmp.path().join("truncated");
    copy_default(&dir);
    fs::write(dir.join(MODEL_FILE), &model[..model.len() / 2]).expect("write");
    let err = Artifact::load(&dir).expect_err("truncated");
    assert!(matches!(&err, ArtifactError::Size { file, .. } if file == MODEL_FILE), "{err}");

    let dir = tmp.path().join("missing");
    copy_default(&dir);
    fs::remove_file(dir.join("card.md")).expect("rm");
    let err = Artifact::load(&dir).expect_err("missing");
    assert!(matches!(&err, ArtifactError::MissingFile { file } if file == "card.md"), "{err}");

    let dir = tmp.path().join("future");
    copy_default(&dir);
    let manifest = fs::read_to_string(dir.join(MANIFEST_FILE)).expect("read");
    fs::write(dir.join(MANIFEST_FILE), manifest.replacen("\"format_version\": 1", "\"format_version\": 3", 1))
        .expect("write");
    let err = Artifact::load(&dir).expect_err("future");
    assert!(matches!(err, ArtifactError::UnsupportedVersion { found: 3 }), "{err}");

    let dir = tmp.path().join("garbage");
    copy_default(&dir);
    fs::write(dir.join(MANIFEST_FILE), b"{not json").expect("write");
    let err = Artifact::load(&dir).expect_err("garbage");
    assert!(matches!(&err, ArtifactError::Parse { file, .. } if file == MANIFEST_FILE), "{err}");

    let err = Artifact::load(&tmp.path().join("nope.tar.gz")).expect_err("absent");
    assert!(err.to_string().contains("nope.tar.gz"), "{err}");
    fs::write(tmp.path().join("broken.tar.gz"), b"not gzip").expect("write");
    let err = Artifact::load(&tmp.path().join("broken.tar.gz")).expect_err("broken");
    assert!(matches!(err, ArtifactError::Archive { .. }), "{err}");
}

#[test]
fn tar_gz_with_or_without_a_top_level_directory_loads() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (name, prefix) in [("flat.tar.gz", ""), ("nested.tar.gz", "model/")] {
        let path = tmp.path().join(name);
        let file = fs::File::create(&path).expect("create");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
        for entry in fs::read_dir(default_dir()).expect("dir") {
            let entry = entry.expect("entry");
            let archived = format!("{prefix}{}", entry.file_name().to_string_lossy());
            builder.append_path_with_name(entry.path(), archived).expect("append");
        }
        builder.into_inner().expect("finish").finish().expect("gzip");
        let artifact = Artifact::load(&path).expect("tar.gz loads");
        assert_eq!(artifact.manifest.name, "retail-price-sensitivity");
    }
}
