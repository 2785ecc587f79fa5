//! Output paths of the writing commands: checked before any work starts, so a run is never
//! thrown away at the end, and never replaced without `--force`.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The refusal every writing flag gives for an existing path.
fn exists(path: &Path) -> anyhow::Error {
    anyhow::anyhow!("{} already exists; pass --force to replace it", path.display())
}

/// The directory a new file or directory at `path` goes into must exist.
fn parent_exists(path: &Path) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.is_dir() => {
            bail!("cannot write {}: no directory {}", path.display(), parent.display())
        }
        _ => Ok(()),
    }
}

/// Checks that the file `path` may be written: its directory exists, and it does not exist
/// unless `force`.
pub(crate) fn check_file(path: &Path, force: bool) -> anyhow::Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => bail!("{} is a directory, not a file", path.display()),
        Ok(_) if !force => Err(exists(path)),
        Ok(_) => Ok(()),
        Err(_) => parent_exists(path),
    }
}

/// Checks that the directory `path` may be written: it does not exist or is empty, unless
/// `force`. Returns whether the writer must replace what is there (an empty directory or
/// `--force`).
#[cfg(feature = "train")]
pub(crate) fn check_dir(path: &Path, force: bool) -> anyhow::Result<bool> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => bail!("{} exists and is not a directory", path.display()),
        Ok(_) => {
            let empty = fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?.next().is_none();
            if empty || force { Ok(true) } else { Err(exists(path)) }
        }
        Err(_) => parent_exists(path).map(|()| false),
    }
}

/// A file written under a temporary name and renamed into place on success.
pub(crate) struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    /// Where the content goes.
    pub(crate) writer: BufWriter<fs::File>,
}

impl AtomicFile {
    /// Creates the temporary file beside `path` (checked with [`check_file`] first).
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let name = path.file_name().with_context(|| format!("{}: not a file path", path.display()))?;
        let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let file = fs::File::create(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { tmp, path: path.to_owned(), writer: BufWriter::with_capacity(1 << 20, file) })
    }

    /// Moves the finished file into place.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        self.writer.flush().with_context(|| format!("cannot write {}", self.path.display()))?;
        fs::rename(&self.tmp, &self.path).with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Still there only when `commit` did not run: discard the partial file.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(all(test, feature = "train"))]
mod tests {
    use super::*;

    #[test]
    fn existing_paths_need_force_and_parents_must_exist() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("f.csv");
        assert!(check_file(&file, false).is_ok());
        fs::write(&file, "x").expect("write");
        let refused = check_file(&file, false).expect_err("exists").to_string();
        assert_eq!(refused, format!("{} already exists; pass --force to replace it", file.display()));
        assert!(check_file(&file, true).is_ok());
        assert!(check_file(&tmp.path().join("no/f.csv"), true).is_err());
        let dir = tmp.path().join("d");
        assert!(!check_dir(&dir, false).expect("absent"));
        fs::create_dir(&dir).expect("mkdir");
        assert!(check_dir(&dir, false).expect("empty"));
        fs::write(dir.join("x"), "x").expect("write");
        assert!(check_dir(&dir, false).is_err());
        assert!(check_dir(&dir, true).expect("forced"));
        assert!(check_dir(&file, true).is_err(), "a file is not a directory");
    }
}
