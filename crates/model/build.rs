//! Embeds the files of `models/default` (the shipped basket classifier) and
//! `models/sales-forecast` (the shipped sales forecast) and `models/tabular` (the shipped generic
//! tabular classifier), gzip-compressed (they are JSON and
//! text: about a fifth of the size in the binary and the image), and records the toolchain
//! version for artifact provenance.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let models = manifest_dir.join("../../models");
    let code = [
        ("FILES", "default", "Files of `models/default` (the basket classifier)"),
        ("FORECAST_FILES", "sales-forecast", "Files of `models/sales-forecast` (the sales forecast)"),
        ("TABULAR_FILES", "tabular", "Files of `models/tabular` (the generic tabular classifier)"),
    ]
    .map(|(name, dir, doc)| embed(name, &models.join(dir), doc))
    .concat();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(out, code).expect("write embedded.rs");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=RETAIL_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
}

/// A static `name` of the files of `model_dir` (name, gzip-compressed content), sorted by name;
/// empty when the directory is absent.
fn embed(name: &str, model_dir: &Path, doc: &str) -> String {
    println!("cargo:rerun-if-changed={}", model_dir.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(name);
    fs::create_dir_all(&out).expect("create the embedded files' directory");
    let mut entries = Vec::new();
    if let Ok(dir) = fs::read_dir(model_dir) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
                let file = entry.file_name().to_string_lossy().into_owned();
                let compressed = out.join(format!("{file}.gz"));
                // The gzip header's time is 0, so the bytes depend on the content only.
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                gz.write_all(&fs::read(&path).expect("read a model file")).expect("compress");
                fs::write(&compressed, gz.finish().expect("compress")).expect("write a compressed model file");
                entries.push(format!("    ({file:?}, include_bytes!({:?})),\n", compressed.display().to_string()));
            }
        }
    }
    entries.sort();
    format!(
        "/// {doc}, embedded at build time (name, gzip-compressed content).\npub static {name}: &[(&str, &[u8])] = &[\n{}];\n",
        entries.concat()
    )
}
