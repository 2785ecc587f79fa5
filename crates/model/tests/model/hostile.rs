//! Hostile artifacts (issue 10) are refused with an error that names the limit, found from
//! declared sizes before anything large is read, parsed or allocated.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use retail_model::artifact::{
    Artifact, ArtifactError, MANIFEST_FILE, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_ENTRIES, MAX_ARTIFACT_BYTES,
    MAX_MANIFEST_BYTES, MAX_MODEL_FILE_BYTES, MAX_TAR_EXTENSION_BYTES, MODEL_FILE, sha256_hex,
};
use retail_model::engine::{MAX_COMPILED_BYTES, MAX_SCORE_MAGNITUDE};
use serde_json::{Value, json};

type Files = BTreeMap<String, Vec<u8>>;

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default")
}

fn default_files() -> Files {
    fs::read_dir(default_dir())
        .expect("models/default")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// `files` with `name` replaced by `content`, listed in the manifest with its checksum.
fn with_file(mut files: Files, name: &str, content: Vec<u8>) -> Files {
    let mut manifest: Value = serde_json::from_slice(&files[MANIFEST_FILE]).expect("manifest");
    manifest["files"][name] = json!({"sha256": sha256_hex(&content), "bytes": content.len()});
    files.insert(MANIFEST_FILE.to_owned(), serde_json::to_vec_pretty(&manifest).expect("json"));
    files.insert(name.to_owned(), content);
    files
}

fn default_model() -> Value {
    serde_json::from_slice(&default_files()[MODEL_FILE]).expect("model.json")
}

fn write_dir(dir: &Path, files: &Files) {
    fs::create_dir_all(dir).expect("mkdir");
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).expect("write");
    }
}

/// A `.tar.gz` of `prefix` (raw bytes written first: crafted headers) followed by `files`.
fn tar_gz(prefix: &[u8], files: &Files, append: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut tar = tar::Builder::new(prefix.to_vec());
    append(&mut tar);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, name, bytes.as_slice()).expect("append");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().expect("tar")).expect("gzip");
    gz.finish().expect("gzip")
}

/// A raw tar header of `kind` claiming `size` bytes.
fn header(kind: tar::EntryType, path: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_path(path).expect("path");
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    header.as_bytes().to_vec()
}

fn refused(bytes: &[u8]) -> String {
    Artifact::from_tar_gz(bytes, "hostile.tar.gz").expect_err("refused").to_string()
}

#[test]
fn long_name_and_pax_headers_are_refused_from_their_size_without_reading_them() {
    // Issue 10: a 9.4 MB .tar.gz holding a 2 GB long name loaded with a 4.2 GB peak. Here the
    // claimed data is not even there: the header alone is refused.
    let two_gib = 2u64 << 30;
    for (kind, label) in [
        (tar::EntryType::GNULongName, "GNU long-name"),
        (tar::EntryType::GNULongLink, "GNU long-link"),
        (tar::EntryType::XHeader, "pax"),
        (tar::EntryType::XGlobalHeader, "pax global"),
    ] {
        let message = refused(&tar_gz(&header(kind, "././@LongLink", two_gib), &Files::new(), |_| {}));
        let expected = format!("a {label} header of {two_gib} bytes, more than the {MAX_TAR_EXTENSION_BYTES} bytes");
        assert!(message.contains(&expected), "{message}");
    }
}

#[test]
fn small_long_name_and_pax_headers_are_honoured() {
    // GNU tar writes long names for paths over 100 bytes; here a long top-level directory.
    let top = "m".repeat(150);
    let files: Files = default_files().into_iter().map(|(n, b)| (format!("{top}/{n}"), b)).collect();
    let artifact = Artifact::from_tar_gz(tar_gz(&[], &files, |_| {}), "long.tar.gz").expect("loads");
    assert_eq!(artifact.manifest.name, "retail-price-sensitivity");
    // Pax: a path record renames the next entry (as Python's tarfile writes for non-ASCII
    // names); a global header (as git archive writes) is ignored.
    let mut files = default_files();
    let manifest = files.remove(MANIFEST_FILE).expect("manifest");
    let record = b"22 comment=git commit\n";
    let mut global = header(tar::EntryType::XGlobalHeader, "pax_global_header", record.len() as u64);
    global.extend_from_slice(record);
    global.resize(1024, 0);
    let archive = tar_gz(&global, &files, |tar| {
        tar.append_pax_extensions([("path", b"manifest.json".as_slice())]).expect("pax");
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, "renamed-by-pax", manifest.as_slice()).expect("append");
    });
    Artifact::from_tar_gz(&archive, "pax.tar.gz").expect("a pax path names the manifest");
    // A pax size that disagrees with the tar header is refused: readers would disagree.
    let archive = tar_gz(&[], &default_files(), |tar| {
        tar.append_pax_extensions([("size", b"7".as_slice())]).expect("pax");
    });
    assert!(refused(&archive).contains("a pax header gives size 7"), "{}", refused(&archive));
}

#[test]
fn archives_are_bounded_in_entries_sizes_and_decompressed_bytes() {
    let empty = tar_gz(&[], &Files::new(), |tar| {
        for i in 0..=MAX_ARCHIVE_ENTRIES {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            tar.append_data(&mut header, format!("f{i}"), std::io::empty()).expect("append");
        }
    });
    assert!(refused(&empty).contains(&format!("more than {MAX_ARCHIVE_ENTRIES} entries")), "{}", refused(&empty));

    // An entry claiming more than the artifact limit is refused from its header (its data is
    // not there); so is a manifest over its own limit.
    let huge = header(tar::EntryType::Regular, "model.json", MAX_ARTIFACT_BYTES + 1);
    let message = refused(&tar_gz(&huge, &Files::new(), |_| {}));
    assert!(message.contains(&format!("more than the {MAX_ARTIFACT_BYTES} bytes allowed")), "{message}");
    let manifest = header(tar::EntryType::Regular, "manifest.json", MAX_MANIFEST_BYTES + 1);
    let message = refused(&tar_gz(&manifest, &Files::new(), |_| {}));
    assert!(message.contains(&format!("more than the {MAX_MANIFEST_BYTES} bytes allowed")), "{message}");

    // Entries that are skipped still count: a directory entry carrying zeros past the limit.
    let size = MAX_ARCHIVE_BYTES.next_multiple_of(512);
    let mut prefix = header(tar::EntryType::Directory, "d/", size);
    prefix.resize(prefix.len() + size as usize, 0);
    let message = refused(&tar_gz(&prefix, &default_files(), |_| {}));
    assert!(message.contains(&format!("decompresses to more than {MAX_ARCHIVE_BYTES} bytes")), "{message}");
}

#[test]
fn directory_files_are_checked_from_their_metadata_before_reading() {
    // Issue 10: a 3 GB file in a directory source was read whole before the 512 MB check.
    let tmp = tempfile::tempdir().expect("tmp");
    let three_gib = 3u64 << 30;
    let sparse = |path: &Path| fs::File::create(path).and_then(|f| f.set_len(three_gib)).expect("sparse file");

    // Listed with its true size: over the artifact limit, from the manifest alone.
    let dir = tmp.path().join("listed");
    let mut files = with_file(default_files(), "card.md", Vec::new());
    let mut manifest: Value = serde_json::from_slice(&files[MANIFEST_FILE]).expect("manifest");
    manifest["files"]["card.md"]["bytes"] = json!(three_gib);
    files.insert(MANIFEST_FILE.to_owned(), serde_json::to_vec(&manifest).expect("json"));
    write_dir(&dir, &files);
    sparse(&dir.join("card.md"));
    let err = Artifact::load(&dir).expect_err("too large");
    assert!(matches!(&err, ArtifactError::TooLarge { limit, .. } if *limit == MAX_ARTIFACT_BYTES), "{err}");

    // Listed with the old size: its metadata disagrees, so it is not read either.
    let dir = tmp.path().join("swapped");
    write_dir(&dir, &default_files());
    sparse(&dir.join("card.md"));
    let err = Artifact::load(&dir).expect_err("size");
    assert!(matches!(&err, ArtifactError::Size { file, actual, .. } if file == "card.md" && *actual == three_gib));

    // Not listed: not part of the artifact, never read.
    let dir = tmp.path().join("unlisted");
    write_dir(&dir, &default_files());
    sparse(&dir.join("junk.bin"));
    Artifact::load(&dir).expect("an unlisted file is ignored");

    // A listing cannot reach outside the directory.
    let dir = tmp.path().join("escape");
    write_dir(&dir, &with_file(default_files(), "../outside", b"x".to_vec()));
    let err = Artifact::load(&dir).expect_err("escape");
    assert!(err.to_string().contains("\"../outside\", which is not a plain file name"), "{err}");
}

#[test]
fn model_files_and_manifests_are_capped_before_they_are_parsed() {
    // Valid JSON (the default model followed by whitespace) just over the cap.
    let mut padded = default_files()[MODEL_FILE].clone();
    padded.resize(MAX_MODEL_FILE_BYTES as usize + 1, b' ');
    let err = Artifact::from_files(&with_file(default_files(), MODEL_FILE, padded)).expect_err("too large");
    assert!(matches!(&err, ArtifactError::TooLarge { file, .. } if file == MODEL_FILE), "{err}");
    assert!(err.to_string().contains(&MAX_MODEL_FILE_BYTES.to_string()), "{err}");

    let mut files = default_files();
    let manifest = files.get_mut(MANIFEST_FILE).expect("manifest");
    manifest.resize(MAX_MANIFEST_BYTES as usize + 1, b' ');
    let err = Artifact::from_files(&files).expect_err("too large");
    assert!(matches!(&err, ArtifactError::TooLarge { file, .. } if file == MANIFEST_FILE), "{err}");
}

#[test]
fn models_that_would_compile_too_large_or_overflow_are_refused_naming_the_limit() {
    // Issue 10: 100,000 single leaves plus one depth-12 chain: 3.8 MB that expanded to 4.8 GB.
    let mut wide = default_model();
    let mut trees: Vec<Value> = (0..100_000).map(|i| json!({"class": i % 3, "nodes": [], "leaves": [0.0]})).collect();
    let nodes: Vec<Value> = (0..12)
        .map(|i: i32| json!({"feature": 0, "threshold": f64::from(i), "left": !i, "right": if i < 11 { i + 1 } else { !12 }}))
        .collect();
    trees.push(json!({"class": 0, "nodes": nodes, "leaves": vec![0.0; 13]}));
    wide["trees"] = json!(trees);
    let files = with_file(default_files(), MODEL_FILE, serde_json::to_vec(&wide).expect("json"));
    let message = Artifact::from_files(&files).expect_err("too large").to_string();
    assert!(message.starts_with("model.json: compiled, the ensemble would take"), "{message}");
    assert!(message.contains(&format!("cap of {MAX_COMPILED_BYTES} bytes")), "{message}");

    // Issue 10: leaves of 1e308 loaded and answered "probabilities": {"LA": null, …}.
    let mut overflow = default_model();
    let extra =
        [json!({"class": 0, "nodes": [], "leaves": [1e308]}), json!({"class": 0, "nodes": [], "leaves": [1e308]})];
    overflow["trees"].as_array_mut().expect("trees").extend(extra);
    let files = with_file(default_files(), MODEL_FILE, serde_json::to_vec(&overflow).expect("json"));
    let message = Artifact::from_files(&files).expect_err("overflows").to_string();
    assert!(message.starts_with("model.json: class LA:"), "{message}");
    assert!(message.contains(&format!("score bound {MAX_SCORE_MAGNITUDE:e}")), "{message}");
}

#[test]
fn only_read_failures_are_transient() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = Artifact::load(&tmp.path().join("nope.tar.gz")).expect_err("missing");
    assert!(missing.is_transient(), "{missing}");
    let dir = tmp.path().join("tampered");
    let mut files = default_files();
    files.get_mut("card.md").expect("card").push(b'!');
    write_dir(&dir, &files);
    let tampered = Artifact::load(&dir).expect_err("tampered");
    assert!(!tampered.is_transient(), "{tampered}");
}
