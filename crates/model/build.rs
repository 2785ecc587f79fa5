//! Embeds the files of `models/default` (the shipped default model) and records the toolchain
//! version for artifact provenance.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let model_dir = manifest_dir.join("../../models/default");
    println!("cargo:rerun-if-changed={}", model_dir.display());
    let mut entries = Vec::new();
    if let Ok(dir) = fs::read_dir(&model_dir) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = entry.file_name().to_string_lossy().into_owned();
                let abs = fs::canonicalize(&path).expect("model file path");
                entries.push(format!("    ({name:?}, include_bytes!({:?})),\n", abs.display().to_string()));
            }
        }
    }
    entries.sort();
    let code = format!(
        "/// Files of `models/default`, embedded at build time (name, content).\npub static FILES: &[(&str, &[u8])] = &[\n{}];\n",
        entries.concat()
    );
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
