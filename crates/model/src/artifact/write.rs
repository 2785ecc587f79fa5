//! Writing artifacts: an atomically replaced directory, and the reproducible `model.tar.gz`
//! that `registry push` uploads.

use std::fs;
use std::path::{Path, PathBuf};

use super::read::read_dir_files;
use super::{Artifact, ArtifactError, FileEntry, MANIFEST_FILE, Manifest, io_error, sha256_hex};

/// Writes an artifact directory atomically: files go to a temporary sibling directory, the
/// manifest gets their checksums, and the directory is renamed into place. An existing `out` is
/// replaced only when `replace` is set. Nothing is left half-written on error.
pub fn write_dir(
    out: &Path,
    mut manifest: Manifest,
    files: &[(&str, Vec<u8>)],
    replace: bool,
) -> Result<(), ArtifactError> {
    if out.exists() && !replace {
        return Err(ArtifactError::Invalid {
            file: out.display().to_string(),
            reason: "already exists (pass --force to replace it)".to_owned(),
        });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    let base = out.file_name().and_then(|n| n.to_str()).unwrap_or("artifact");
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    let result = (|| {
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_error(&tmp))?;
        manifest.files.clear();
        for (name, bytes) in files {
            let path = tmp.join(name);
            fs::write(&path, bytes).map_err(io_error(&path))?;
            manifest
                .files
                .insert((*name).to_owned(), FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 });
        }
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ArtifactError::Parse { file: MANIFEST_FILE.to_owned(), reason: e.to_string() })?;
        let path = tmp.join(MANIFEST_FILE);
        fs::write(&path, json).map_err(io_error(&path))?;
        if out.exists() {
            let old = parent.join(format!(".{base}.old-{}", std::process::id()));
            fs::rename(out, &old).map_err(io_error(out))?;
            fs::rename(&tmp, out).map_err(io_error(out))?;
            fs::remove_dir_all(&old).map_err(io_error(&old))
        } else {
            fs::rename(&tmp, out).map_err(io_error(out))
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Verifies the artifact directory `dir` and packs it as a reproducible `model.tar.gz`: the
/// manifest and the files it lists, at the archive's root, in name order, with fixed owners,
/// modes and times (so the same artifact always gives the same bytes and checksum).
pub fn pack(dir: &Path) -> Result<(Artifact, Vec<u8>), ArtifactError> {
    let files = read_dir_files(dir)?;
    let artifact = Artifact::from_files(&files)?;
    let archive_error = |e: std::io::Error| ArtifactError::Archive { path: dir.to_owned(), reason: e.to_string() };
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for name in std::iter::once(MANIFEST_FILE).chain(artifact.manifest.files.keys().map(String::as_str)) {
        let bytes = &files[name];
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice()).map_err(archive_error)?;
    }
    let bytes = tar.into_inner().and_then(|gz| gz.finish()).map_err(archive_error)?;
    Ok((artifact, bytes))
}
