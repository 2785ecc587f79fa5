//! Reading an artifact's files from a directory or a `.tar.gz` with every size limit enforced
//! while reading: sizes come from the manifest, the file metadata or the tar header and are
//! checked before a byte of content is read; reads are bounded with [`Read::take`] into memory
//! reserved up front (an allocation failure is an error, not an abort); a `.tar.gz` is read as
//! raw entries, so a GNU long-name or pax header is refused from its size instead of being read
//! whole, and neither its entries nor its decompressed stream are unbounded.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use serde::Deserialize;

use super::{
    ArtifactError, FileEntry, MANIFEST_FILE, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_ENTRIES, MAX_ARTIFACT_BYTES,
    MAX_MANIFEST_BYTES, MAX_TAR_EXTENSION_BYTES, ModelFormat, io_error, load::check_listing,
};

/// An artifact's files: name → content.
pub(super) type Files = BTreeMap<String, Vec<u8>>;

/// Longest name of an archive entry that can be an artifact file (a file name of at most 255
/// bytes, possibly under one top-level directory); longer ones are skipped unread.
const MAX_ENTRY_NAME: usize = 512;

/// What `read_dir_files` needs of the manifest to know what to read.
#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    model: ModelFormat,
    #[serde(default)]
    files: BTreeMap<String, FileEntry>,
}

/// Reads a directory artifact: the manifest, then only the files it lists. The manifest's
/// declared sizes are checked against the limits, and each file's size on disk against the
/// manifest, before any of them is read. (A manifest that does not parse is returned alone, so
/// that verification reports it.)
pub(super) fn read_dir_files(dir: &Path) -> Result<Files, ArtifactError> {
    fs::metadata(dir).map_err(io_error(dir))?;
    let manifest = read_file(dir, MANIFEST_FILE, None)?;
    let mut files = Files::new();
    if let Ok(listing) = serde_json::from_slice::<Listing>(&manifest) {
        check_listing(&listing.model, &listing.files)?;
        for (name, entry) in &listing.files {
            files.insert(name.clone(), read_file(dir, name, Some(entry.bytes))?);
        }
    }
    files.insert(MANIFEST_FILE.to_owned(), manifest);
    Ok(files)
}

/// Reads `dir/name`: a regular file of `expected` bytes (the manifest, when `None`, of at most
/// [`MAX_MANIFEST_BYTES`]), both checked from its metadata before reading; a file whose size
/// changes while it is read (a copy in progress) is [`ArtifactError::Changed`].
fn read_file(dir: &Path, name: &str, expected: Option<u64>) -> Result<Vec<u8>, ArtifactError> {
    let path = dir.join(name);
    let missing = || ArtifactError::MissingFile { file: name.to_owned() };
    // Check the type before opening: opening a FIFO would block.
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(missing()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => return Err(io_error(&path)(e)),
    }
    let file = fs::File::open(&path).map_err(io_error(&path))?;
    let size = file.metadata().map_err(io_error(&path))?.len();
    match expected {
        Some(expected) if size != expected => {
            return Err(ArtifactError::Size { file: name.to_owned(), expected, actual: size });
        }
        None if size > MAX_MANIFEST_BYTES => {
            return Err(ArtifactError::TooLarge {
                file: name.to_owned(),
                bytes: size,
                limit: MAX_MANIFEST_BYTES,
                what: "a manifest (MAX_MANIFEST_BYTES)",
            });
        }
        _ => {}
    }
    match read_exactly(file, size).map_err(io_error(&path))? {
        (bytes, true) => Ok(bytes),
        (_, false) => Err(ArtifactError::Changed { file: name.to_owned(), expected: size }),
    }
}

/// Reads `size` bytes from `reader` into memory reserved up front (an error, not an abort, when
/// it cannot be had), and one more to see whether the reader held exactly that many.
fn read_exactly(reader: impl Read, size: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    let capacity = usize::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    bytes.try_reserve_exact(capacity).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    reader.take(size.saturating_add(1)).read_to_end(&mut bytes)?;
    let exact = bytes.len() as u64 == size;
    Ok((bytes, exact))
}

/// Reads the regular files of a `.tar.gz`. The manifest may sit at the root or inside one
/// top-level directory (`model/manifest.json`); paths are taken relative to it.
pub(super) fn read_archive(path: &Path) -> Result<Files, ArtifactError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    unpack(file, path)
}

/// The files of a `.tar.gz` read from `reader`; `path` names it in errors.
pub(super) fn unpack(reader: impl Read, path: &Path) -> Result<Files, ArtifactError> {
    let archive_error = |reason: String| ArtifactError::Archive { path: path.to_owned(), reason };
    let stream = Limited { inner: flate2::read::GzDecoder::new(reader), left: MAX_ARCHIVE_BYTES };
    let mut archive = tar::Archive::new(stream);
    let mut entries = Vec::new();
    let mut extensions = Extensions::default();
    let mut total = 0u64;
    let raw = archive.entries().map_err(|e| archive_error(e.to_string()))?.raw(true);
    for (n, entry) in raw.enumerate() {
        if n == MAX_ARCHIVE_ENTRIES {
            return Err(archive_error(format!("more than {MAX_ARCHIVE_ENTRIES} entries (MAX_ARCHIVE_ENTRIES)")));
        }
        let mut entry = entry.map_err(|e| archive_error(e.to_string()))?;
        if extensions.absorb(&mut entry).map_err(archive_error)? {
            continue;
        }
        let name = extensions.name_of(&entry).map_err(archive_error)?;
        if !entry.header().entry_type().is_file() || name.len() > MAX_ENTRY_NAME || name.matches('/').count() > 1 {
            continue;
        }
        let size = entry.size();
        total = total.saturating_add(size);
        let too_large = |bytes, limit, what| ArtifactError::TooLarge {
            file: format!("{} ({name})", path.display()),
            bytes,
            limit,
            what,
        };
        if total > MAX_ARTIFACT_BYTES {
            return Err(too_large(total, MAX_ARTIFACT_BYTES, "an artifact (MAX_ARTIFACT_BYTES)"));
        }
        if name.rsplit('/').next() == Some(MANIFEST_FILE) && size > MAX_MANIFEST_BYTES {
            return Err(too_large(size, MAX_MANIFEST_BYTES, "a manifest (MAX_MANIFEST_BYTES)"));
        }
        match read_exactly(&mut entry, size) {
            Ok((bytes, true)) => entries.push((name, bytes)),
            Ok((_, false)) => return Err(archive_error(format!("{name}: truncated"))),
            Err(e) => return Err(archive_error(format!("{name}: {e}"))),
        }
    }
    relative_to_manifest(entries)
        .ok_or_else(|| archive_error(format!("no {MANIFEST_FILE} at its root or in one top-level directory")))
}

/// The entries under the directory holding the shallowest manifest (the root, or one top-level
/// directory), named relative to it.
fn relative_to_manifest(entries: Vec<(String, Vec<u8>)>) -> Option<Files> {
    let root = entries
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(MANIFEST_FILE))
        .filter(|prefix| prefix.is_empty() || (prefix.ends_with('/') && prefix.matches('/').count() == 1))
        .min_by_key(|prefix| prefix.len())?
        .to_owned();
    Some(
        entries
            .into_iter()
            .filter_map(|(name, bytes)| {
                let rel = name.strip_prefix(&root)?;
                (!rel.contains('/')).then(|| (rel.to_owned(), bytes))
            })
            .collect(),
    )
}

/// What GNU long-name and pax extension headers say about the next entry. The `tar` crate's
/// own handling reads their data whole into memory (a 9.4 MB `.tar.gz` can hold a 2 GB long
/// name), so entries are read raw and these headers are handled here, bounded by
/// [`MAX_TAR_EXTENSION_BYTES`]. They are accepted, not refused outright, because common tools
/// write small ones: pax headers for non-ASCII names (Python's `tarfile`), for extended
/// attributes (macOS `bsdtar`) or a global comment (`git archive`), long names for paths over
/// 100 bytes (GNU tar). `pack` itself never writes any.
#[derive(Debug, Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

impl Extensions {
    /// If `entry` is an extension header, reads it (refusing one over the limit from its size,
    /// before reading) and records what it says; `Ok(false)` for any other entry.
    fn absorb<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<bool, String> {
        let kind = entry.header().entry_type();
        let label = match () {
            () if kind.is_gnu_longname() => "GNU long-name",
            () if kind.is_gnu_longlink() => "GNU long-link",
            () if kind.is_pax_local_extensions() => "pax",
            () if kind.is_pax_global_extensions() => "pax global",
            () => return Ok(false),
        };
        let size = entry.size();
        if size > MAX_TAR_EXTENSION_BYTES {
            return Err(format!(
                "a {label} header of {size} bytes, more than the {MAX_TAR_EXTENSION_BYTES} bytes allowed \
                 (MAX_TAR_EXTENSION_BYTES)"
            ));
        }
        let data = match read_exactly(entry, size) {
            Ok((data, true)) => data,
            Ok((_, false)) => return Err(format!("{label} header: truncated")),
            Err(e) => return Err(format!("{label} header: {e}")),
        };
        if kind.is_gnu_longname() {
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            self.long_name = Some(data[..end].to_vec());
        } else if kind.is_pax_local_extensions() {
            for extension in tar::PaxExtensions::new(&data) {
                let extension = extension.map_err(|e| format!("pax header: {e}"))?;
                match extension.key_bytes() {
                    b"path" => self.pax_path = Some(extension.value_bytes().to_vec()),
                    b"size" => {
                        let size = extension.value().ok().and_then(|v| v.parse().ok());
                        self.pax_size = Some(size.ok_or_else(|| "pax header: size is not a number".to_owned())?);
                    }
                    _ => {}
                }
            }
        }
        Ok(true)
    }

    /// The name of `entry` (a long name or pax path if one preceded it, without `./`), clearing
    /// what was recorded. A pax size differing from the header's is refused: readers that honour
    /// one or the other would see different archives.
    fn name_of<R: Read>(&mut self, entry: &tar::Entry<'_, R>) -> Result<String, String> {
        let Self { long_name, pax_path, pax_size } = std::mem::take(self);
        if let Some(size) = pax_size
            && size != entry.size()
        {
            return Err(format!("a pax header gives size {size}, its entry's header {}", entry.size()));
        }
        let bytes = long_name.or(pax_path).unwrap_or_else(|| entry.path_bytes().into_owned());
        Ok(String::from_utf8_lossy(&bytes).trim_start_matches("./").to_owned())
    }
}

/// A reader that fails once more than `left` bytes have come out of it, so a small `.tar.gz`
/// cannot keep the loader decompressing (e.g. through the data of entries that are skipped).
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!("decompresses to more than {MAX_ARCHIVE_BYTES} bytes (MAX_ARCHIVE_BYTES)"))
        })?;
        Ok(n)
    }
}
