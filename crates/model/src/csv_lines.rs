//! Physical line numbers of CSV records (the header is line 1, the first data row line 2), as
//! an editor shows them. The `csv` crate's record position is where the parser *started*
//! reading the record, which is a line early after a `\r\n` ending (it stops at the `\r`, so
//! the `\n` starts the next record) and after a blank line. [`Lines`] wraps the reader, notes
//! where each `\n` is as the bytes stream through, and turns a record's byte position into the
//! line of its first character.

use std::collections::VecDeque;
use std::io::Read;

/// A CSV reader over bytes in memory that knows the physical line of each record.
pub type BytesReader<'a> = csv::Reader<Lines<&'a [u8]>>;

/// A reader that remembers where line breaks are, for [`Lines::line`].
#[derive(Debug)]
pub struct Lines<R> {
    inner: R,
    /// Bytes read so far.
    read: u64,
    /// Where the run of `\r`/`\n` bytes the last byte read belongs to began.
    run: Option<u64>,
    /// A `\r` just read: a line break of its own unless a `\n` follows (offset, run start).
    cr: Option<(u64, u64)>,
    /// Line breaks not yet before a record asked about: their offset and the start of their run
    /// of `\r`/`\n` bytes. Bounded by the read-ahead of the CSV reader's buffer.
    pending: VecDeque<(u64, u64)>,
    /// Line breaks before the last record asked about.
    counted: u64,
}

impl<R> Lines<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, read: 0, run: None, cr: None, pending: VecDeque::new(), counted: 0 }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn observe(&mut self, chunk: &[u8]) {
        let mut from = 0;
        // Only line breaks need a look: memchr finds them, skipping the bytes between.
        for at in memchr::memchr2_iter(b'\n', b'\r', chunk) {
            if at > from {
                self.other();
            }
            self.line_break(self.read + at as u64, chunk[at]);
            from = at + 1;
        }
        if chunk.len() > from {
            self.other();
        }
        self.read += chunk.len() as u64;
    }

    /// A run of bytes that are not line breaks: a `\r` before it was a line break of its own.
    fn other(&mut self) {
        if let Some(cr) = self.cr.take() {
            self.pending.push_back(cr);
        }
        self.run = None;
    }

    /// A `\n` or `\r` at offset `at`.
    fn line_break(&mut self, at: u64, byte: u8) {
        // A `\r` is a line break of its own unless this is the `\n` of `\r\n`.
        if let Some(cr) = self.cr.take()
            && byte != b'\n'
        {
            self.pending.push_back(cr);
        }
        let start = *self.run.get_or_insert(at);
        match byte {
            b'\n' => self.pending.push_back((at, start)),
            _ => self.cr = Some((at, start)),
        }
    }

    /// The physical line (1-based) of the record at `position`, from records in file order; 0
    /// when the position is unknown. A record starts at the first byte after `position` that
    /// is not a line break, so every break before it, or in the run of breaks `position` is
    /// in, comes before its line.
    pub fn line(&mut self, position: Option<&csv::Position>) -> u64 {
        let Some(position) = position else { return 0 };
        let at = position.byte();
        while let Some(&(offset, run)) = self.pending.front() {
            if offset >= at && run > at {
                break;
            }
            self.counted += 1;
            self.pending.pop_front();
        }
        self.counted + 1
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes `step` at a time: line breaks split across reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// The line of each data record and of a CSV error, for `text`; the same whatever the reads.
    fn lines(text: &str) -> Vec<u64> {
        let all = lines_read(Lines::new(text.as_bytes()));
        for step in [1, 2, 3] {
            assert_eq!(lines_read(Lines::new(Trickle(text.as_bytes(), step))), all, "{step} bytes per read: {text:?}");
        }
        all
    }

    fn lines_read<R: Read>(source: Lines<R>) -> Vec<u64> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(source);
        let _ = reader.byte_headers().expect("header");
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => out.push(reader.get_mut().line(record.position())),
                Ok(false) => return out,
                Err(e) => {
                    out.push(reader.get_mut().line(e.position()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn records_are_numbered_as_an_editor_shows_them() {
        assert_eq!(lines("a,b\n1,2\n3,4\n"), [2, 3]);
        assert_eq!(lines("a,b\r\n1,2\r\n3,4\r\n"), [2, 3]);
        assert_eq!(lines("a,b\n1,2\n\n3,4\n"), [2, 4]);
        assert_eq!(lines("a,b\r\n1,2\r\n\r\n\r\n3,4"), [2, 5]);
        assert_eq!(lines("a,b\n\"x\ny\",2\n3,4\n"), [2, 4], "a quoted line break");
        assert_eq!(lines("a,b\r1,2\r3,4\r"), [2, 3], "old Mac endings");
        assert_eq!(lines("a,b\r\n1,2\r\n3\r\n"), [2, 3], "the ragged row's line");
    }

    #[test]
    fn a_long_file_is_counted_through_small_reads() {
        let text: String =
            std::iter::once("a,b\r\n".to_owned()).chain((0..5000).map(|i| format!("{i},x\r\n"))).collect();
        let got = lines(&text);
        assert_eq!(got.len(), 5000);
        assert!(got.iter().enumerate().all(|(i, &line)| line == i as u64 + 2));
    }
}
