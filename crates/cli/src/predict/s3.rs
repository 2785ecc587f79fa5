//! S3 for `retail-api predict`, behind blocking `Read` and `Write`: objects are read in ranged
//! GETs of [`PART_BYTES`] and written as multipart uploads of parts of that size, so neither an
//! input nor an output is ever held whole in memory. The client is the server's (same
//! credential chain and `AWS_ENDPOINT_URL`).

use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::Context;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Runtime;

/// Bytes per ranged read and per uploaded part (S3 parts are at least 5 MiB, but the last).
const PART_BYTES: usize = 8 << 20;

/// A bucket's client and the runtime its calls are driven on.
#[derive(Clone)]
pub(crate) struct Bucket {
    name: String,
    store: AmazonS3,
    runtime: Arc<Runtime>,
}

impl Bucket {
    /// A client for `name`, configured from the AWS environment.
    pub(crate) fn new(name: &str, runtime: Arc<Runtime>) -> anyhow::Result<Self> {
        let store = retail_server::store::client(name)?;
        Ok(Self { name: name.to_owned(), store, runtime })
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// Every key under `prefix` (a folder: `dir/` or `dir`; empty for the whole bucket), sorted.
    pub(crate) fn list(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut folders = vec![Path::from(prefix.trim_end_matches('/'))];
        while let Some(folder) = folders.pop() {
            let prefix = (!folder.as_ref().is_empty()).then_some(&folder);
            let listed = self
                .runtime
                .block_on(self.store.list_with_delimiter(prefix))
                .with_context(|| format!("cannot list {}", self.uri(folder.as_ref())))?;
            keys.extend(listed.objects.into_iter().map(|o| o.location.to_string()));
            folders.extend(listed.common_prefixes);
        }
        keys.sort();
        Ok(keys)
    }

    /// A reader of the object `key`.
    pub(crate) fn open(&self, key: &str) -> anyhow::Result<ObjectReader> {
        let path = Path::from(key);
        let meta =
            self.runtime.block_on(self.store.head(&path)).with_context(|| format!("cannot read {}", self.uri(key)))?;
        Ok(ObjectReader { bucket: self.clone(), path, size: meta.size, next: 0, part: Vec::new(), at: 0 })
    }

    /// A writer of the object `key`; the object appears only when [`ObjectWriter::commit`] runs.
    pub(crate) fn create(&self, key: &str) -> ObjectWriter {
        ObjectWriter { bucket: self.clone(), path: Path::from(key), buffer: Vec::new(), upload: None }
    }
}

/// An object read part by part.
pub(crate) struct ObjectReader {
    bucket: Bucket,
    path: Path,
    size: u64,
    /// Offset of the next part to fetch.
    next: u64,
    part: Vec<u8>,
    /// Bytes of `part` already read.
    at: usize,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.part.len() {
            if self.next >= self.size {
                return Ok(0);
            }
            let end = self.size.min(self.next + PART_BYTES as u64);
            let bytes = self.bucket.runtime.block_on(self.bucket.store.get_range(&self.path, self.next..end));
            let bytes = bytes.map_err(|e| io::Error::other(format!("{}: {e}", self.bucket.uri(self.path.as_ref()))))?;
            self.part.clear();
            self.part.extend_from_slice(&bytes);
            self.at = 0;
            self.next = end;
        }
        let n = buf.len().min(self.part.len() - self.at);
        buf[..n].copy_from_slice(&self.part[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// An object written as a multipart upload (started with the first full part).
pub(crate) struct ObjectWriter {
    bucket: Bucket,
    path: Path,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
}

impl ObjectWriter {
    fn error(&self, e: &object_store::Error) -> io::Error {
        io::Error::other(format!("cannot write {}: {e}", self.bucket.uri(self.path.as_ref())))
    }

    fn upload_part(&mut self) -> io::Result<()> {
        let store = &self.bucket.store;
        if self.upload.is_none() {
            let upload = self.bucket.runtime.block_on(store.put_multipart(&self.path)).map_err(|e| self.error(&e))?;
            self.upload = Some(upload);
        }
        let part = PutPayload::from(std::mem::take(&mut self.buffer));
        let Some(upload) = self.upload.as_mut() else { return Ok(()) };
        let sent = self.bucket.runtime.block_on(upload.put_part(part));
        sent.map_err(|e| self.error(&e))
    }

    /// Finishes the object: a single PUT when it fits in one part, else the last part and the
    /// upload's completion.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        let runtime = self.bucket.runtime.clone();
        if self.upload.is_none() {
            let content = PutPayload::from(std::mem::take(&mut self.buffer));
            runtime.block_on(self.bucket.store.put(&self.path, content)).map_err(|e| self.error(&e))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            self.upload_part()?;
        }
        if let Some(mut upload) = self.upload.take() {
            runtime.block_on(upload.complete()).map_err(|e| self.error(&e))?;
        }
        Ok(())
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= PART_BYTES {
            self.upload_part()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Still there only when `commit` did not run: abandon the parts sent.
        if let Some(mut upload) = self.upload.take() {
            let _ = self.bucket.runtime.block_on(upload.abort());
        }
    }
}
