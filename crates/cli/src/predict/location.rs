//! Where `retail-api predict` reads and writes: a local file or directory, or an S3 object or
//! prefix; the input files of a shard; one output per input under an output prefix.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::runtime::Runtime;

use super::s3::{Bucket, ObjectWriter};
use crate::output::AtomicFile;

/// Bytes buffered per input read.
const READ_BUFFER: usize = 1 << 20;

/// A local path or an S3 location, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A file or directory.
    Local(PathBuf),
    /// `s3://bucket/key`: an object, or a prefix (ending in `/`, or listing objects).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key or prefix (possibly empty).
        key: String,
    },
}

impl Location {
    /// Reads `s3://bucket/key` or a local path.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let Some(rest) = text.strip_prefix("s3://") else { return Ok(Self::Local(PathBuf::from(text))) };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("{text}: expected s3://bucket/key or s3://bucket/prefix/");
        }
        Ok(Self::S3 { bucket: bucket.to_owned(), key: key.to_owned() })
    }

    /// Whether it names a folder: ends with `/`, or is an existing local directory.
    pub(crate) fn is_folder(&self) -> bool {
        match self {
            Self::Local(path) => path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/'),
            Self::S3 { key, .. } => key.is_empty() || key.ends_with('/'),
        }
    }
}

/// `--shard i/N`: the i-th (0-based) of every N input files, in sorted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// Which one.
    pub(crate) index: usize,
    /// Of how many.
    pub(crate) count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parsed = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Self { index, count }),
            _ => Err(format!("{text:?}: expected i/N with 0 <= i < N, e.g. 0/4")),
        }
    }
}

/// One input file: its name in the output and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input {
    /// As printed in the `source` column: the path or `s3://` URI.
    pub(crate) name: String,
    /// Its path relative to the input folder (its file name for a single file).
    pub(crate) relative: String,
    location: Location,
}

/// Opens S3 buckets on one runtime, made when the first is needed.
#[derive(Default)]
pub(crate) struct Clients {
    runtime: Option<Arc<Runtime>>,
}

impl Clients {
    fn bucket(&mut self, name: &str) -> anyhow::Result<Bucket> {
        let runtime = match &self.runtime {
            Some(runtime) => runtime.clone(),
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
                self.runtime.insert(Arc::new(runtime)).clone()
            }
        };
        Bucket::new(name, runtime)
    }

    /// The input files at `location`, sorted: the file or object itself, or every file of a
    /// directory (not hidden, not recursing) or every object under a prefix.
    pub(crate) fn inputs(&mut self, location: &Location) -> anyhow::Result<Vec<Input>> {
        let inputs = match location {
            Location::Local(path) if path.is_dir() => local_files(path)?,
            Location::Local(path) => {
                let relative = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                vec![Input { name: path.display().to_string(), relative, location: location.clone() }]
            }
            Location::S3 { bucket, key } if location.is_folder() => {
                let client = self.bucket(bucket)?;
                let keys = client.list(key)?;
                if keys.is_empty() {
                    bail!("s3://{bucket}/{key}: no objects under this prefix");
                }
                let input = |k: String| Input {
                    name: format!("s3://{bucket}/{k}"),
                    relative: k[key.len().min(k.len())..].trim_start_matches('/').to_owned(),
                    location: Location::S3 { bucket: bucket.clone(), key: k },
                };
                keys.into_iter().map(input).collect()
            }
            Location::S3 { bucket, key } => {
                let relative = key.rsplit('/').next().unwrap_or_default().to_owned();
                vec![Input { name: format!("s3://{bucket}/{key}"), relative, location: location.clone() }]
            }
        };
        Ok(inputs)
    }

    /// A buffered reader of `input`.
    pub(crate) fn open(&mut self, input: &Input) -> anyhow::Result<Box<dyn BufRead + Send>> {
        match &input.location {
            Location::Local(path) => {
                let file = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
                Ok(Box::new(BufReader::with_capacity(READ_BUFFER, file)))
            }
            Location::S3 { bucket, key } => {
                Ok(Box::new(BufReader::with_capacity(READ_BUFFER, self.bucket(bucket)?.open(key)?)))
            }
        }
    }

    /// A new output at `location` (a file or an object), or stdout for `None`.
    pub(crate) fn create(&mut self, location: Option<&Location>, force: bool) -> anyhow::Result<Output> {
        match location {
            None => Ok(Output::Stdout(BufWriter::with_capacity(1 << 20, std::io::stdout()))),
            Some(Location::Local(path)) => {
                crate::output::check_file(path, force)?;
                Ok(Output::File(AtomicFile::create(path)?))
            }
            Some(Location::S3 { bucket, key }) => Ok(Output::S3(self.bucket(bucket)?.create(key))),
        }
    }
}

/// The files of a local directory, sorted by name (hidden files skipped).
fn local_files(dir: &Path) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let relative = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !relative.starts_with('.') {
            let location = Location::Local(entry.path());
            inputs.push(Input { name: entry.path().display().to_string(), relative, location });
        }
    }
    if inputs.is_empty() {
        bail!("{}: no input files in this directory", dir.display());
    }
    inputs.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(inputs)
}

/// The inputs of `shard`: the i-th of every N, in sorted order.
pub(crate) fn shard(inputs: Vec<Input>, shard: Option<Shard>) -> Vec<Input> {
    let Some(Shard { index, count }) = shard else { return inputs };
    inputs.into_iter().enumerate().filter(|(k, _)| k % count == index).map(|(_, input)| input).collect()
}

/// Where the output of `input` goes under the folder `out`: its relative path with the
/// extension `extension`.
pub(crate) fn output_in(out: &Location, input: &Input, extension: &str) -> Location {
    let stem = match input.relative.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() && !stem.ends_with('/') => stem,
        _ => &input.relative,
    };
    let name = format!("{stem}.{extension}");
    match out {
        Location::Local(dir) => Location::Local(dir.join(name)),
        Location::S3 { bucket, key } => {
            let key = if key.is_empty() { name } else { format!("{}/{name}", key.trim_end_matches('/')) };
            Location::S3 { bucket: bucket.clone(), key }
        }
    }
}

/// An output being written; it appears (file renamed, object completed) on [`Output::commit`].
pub(crate) enum Output {
    /// Standard output.
    Stdout(BufWriter<std::io::Stdout>),
    /// A local file.
    File(AtomicFile),
    /// An S3 object.
    S3(ObjectWriter),
}

impl Output {
    /// Where the content goes.
    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match self {
            Self::Stdout(w) => w,
            Self::File(f) => &mut f.writer,
            Self::S3(o) => o,
        }
    }

    /// Finishes the output.
    pub(crate) fn commit(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().context("cannot write predictions"),
            Self::File(f) => f.commit(),
            Self::S3(o) => o.commit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(relative: &str) -> Input {
        Input { name: relative.to_owned(), relative: relative.to_owned(), location: Location::Local(relative.into()) }
    }

    #[test]
    fn shards_take_every_nth_file_and_cover_the_input_once() {
        let all: Vec<Input> = ["a", "b", "c", "d", "e"].into_iter().map(input).collect();
        let names = |s: Vec<Input>| s.into_iter().map(|i| i.relative).collect::<Vec<_>>();
        assert_eq!(names(shard(all.clone(), Some("0/2".parse().expect("shard")))), ["a", "c", "e"]);
        assert_eq!(names(shard(all.clone(), Some("1/2".parse().expect("shard")))), ["b", "d"]);
        assert_eq!(names(shard(all, None)).len(), 5);
        for bad in ["2/2", "1", "-1/2", "a/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn locations_parse_and_outputs_follow_their_inputs() {
        let s3 = Location::parse("s3://b/in/").expect("s3");
        assert_eq!(s3, Location::S3 { bucket: "b".into(), key: "in/".into() });
        assert!(s3.is_folder());
        assert!(!Location::parse("s3://b/in/x.csv").expect("object").is_folder());
        assert!(Location::parse("s3:///x").is_err());
        let out = Location::parse("s3://o/scored/").expect("out");
        let at = output_in(&out, &input("day/part-1.csv"), "jsonl");
        assert_eq!(at, Location::S3 { bucket: "o".into(), key: "scored/day/part-1.jsonl".into() });
    }
}
