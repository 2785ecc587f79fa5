//! Reading transaction lines a block at a time, the blocks parsed on every core. The input is
//! cut into blocks of whole records (after a line break outside quotes); each block is parsed
//! on its own, with values interned and baskets indexed within it and lines numbered from its
//! start; the blocks are then merged in file order, mapping their values and baskets onto the
//! file's and numbering their lines from the file's start. The result is the one reading the
//! file line by line would give: the same baskets in the same order, the same interned ids, and
//! the same first error (a block stops at its first error, and a basket whose basket-level
//! values differ from those of its first line in an earlier block is refused at its first line
//! in this one, which comes before any error of the block).

use std::borrow::Cow;
use std::io::Read;

use rayon::prelude::*;

use super::{
    BASKET_COLUMNS, Baskets, DataError, Interner, Line, aggregate, column, header, inconsistent, number, parse_label,
};
use crate::TARGET;
use crate::csv_lines::{BytesReader, Lines};
use crate::csv_plain;
use crate::progress::Progress;

/// Bytes read into a block (a record longer than this makes its block longer).
pub(super) const BLOCK_BYTES: usize = 4 << 20;

/// Reads and parses the transaction lines of the input `name` from `reader`; `required` are
/// the columns its header must have, `total` its size when known (0 when not), for progress.
pub(super) fn read(
    (name, reader): (&str, impl Read),
    progress: &dyn Progress,
    required: &[&str],
    total: u64,
) -> Result<Baskets, DataError> {
    read_blocks((name, reader), progress, required, (total, BLOCK_BYTES))
}

/// [`read`] in blocks of `block_bytes`.
fn read_blocks(
    (name, reader): (&str, impl Read),
    progress: &dyn Progress,
    required: &[&str],
    (total, block_bytes): (u64, usize),
) -> Result<Baskets, DataError> {
    progress.stage("reading transactions", total);
    let mut blocks = Blocks { reader, name, block_bytes, carry: Vec::new(), spare: Vec::new(), end: false };
    let first = blocks.next(progress)?.unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(Lines::new(&first[..]));
    let columns = Columns::of(&header(&mut reader, required)?);
    let mut merged = Merged::default();
    merged.merge(&mut parse(reader, &columns, &first))?;
    // While a batch of blocks is parsed on the pool, this thread merges the batch before and
    // reads the next.
    let width = rayon::current_num_threads().clamp(1, 64) * 2;
    let mut batch = blocks.batch(width, progress)?;
    let mut parsed: Vec<(Block, Vec<u8>)> = Vec::new();
    // What merging left of the blocks is freed on the pool, where it was allocated.
    let mut merged_blocks = Vec::new();
    while !batch.is_empty() || !parsed.is_empty() {
        let current = std::mem::take(&mut batch);
        let mut next_parsed = Vec::new();
        let (merge, next) = rayon::in_place_scope(|scope| {
            let garbage = std::mem::take(&mut merged_blocks);
            scope.spawn(|_| drop(garbage));
            scope.spawn(|_| {
                next_parsed = current.into_par_iter().map(|bytes| (parse_block(&bytes, &columns), bytes)).collect();
            });
            let merge = parsed.drain(..).try_for_each(|(mut block, bytes)| {
                blocks.spare.push(bytes);
                let merge = merged.merge(&mut block);
                merged_blocks.push(block);
                merge
            });
            let next = if merge.is_ok() { blocks.batch(width, progress) } else { Ok(Vec::new()) };
            (merge, next)
        });
        merge?;
        batch = next?;
        parsed = next_parsed;
    }
    let Merged { out, interner, lines, .. } = merged;
    aggregate(out, interner.values, lines)
}

/// Where the columns a basket needs are in the header.
struct Columns {
    fields: usize,
    quantity: usize,
    spend: usize,
    basket: usize,
    customer: Option<usize>,
    label: Option<usize>,
    department: usize,
    commodity: usize,
    basket_level: [usize; 4],
}

impl Columns {
    /// The columns of a header holding every required one.
    fn of(header: &csv::ByteRecord) -> Self {
        let col = |name: &str| column(header, name);
        let optional = |name: &str| header.iter().position(|h| h == name.as_bytes());
        Self {
            fields: header.len(),
            quantity: col("QUANTITY"),
            spend: col("SPEND"),
            basket: col("BASKET_ID"),
            customer: optional("CUST_CODE"),
            label: optional(TARGET),
            department: col("PROD_CODE_20"),
            commodity: col("PROD_CODE_30"),
            basket_level: BASKET_COLUMNS.map(col),
        }
    }
}

/// A block's baskets (ids, customers, labels, basket-level values and first lines, numbered
/// from the block's start), interned values and lines; its first error, if any, ends it.
#[derive(Default)]
struct Block {
    out: Baskets,
    interner: Interner,
    index: BasketIndex,
    lines: Vec<Line>,
    error: Option<DataError>,
    /// Line breaks in the block.
    breaks: u64,
    /// The basket of the last line, and the raw values of its basket-level columns and
    /// customer with their ids: a basket's lines usually follow each other, so most lines
    /// repeat them and need no lookup.
    last: Option<u32>,
    last_values: [(Vec<u8>, Option<u32>); 5],
}

/// The records `reader` reads from `bytes` as a block.
fn parse(mut reader: BytesReader<'_>, columns: &Columns, bytes: &[u8]) -> Block {
    let mut block = Block { breaks: line_breaks(bytes), ..Block::default() };
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = reader.get_mut().line(e.position());
                block.error = Some(DataError::Csv { line, reason: e.to_string() });
                break;
            }
        }
        let line = reader.get_mut().line(record.position());
        if let Err(e) = block.add(columns, (record.len(), |i| record.get(i).unwrap_or_default()), line) {
            block.error = Some(e);
            break;
        }
    }
    block
}

/// The records of a block without quotes ([`csv_plain::records`]), in a quarter of the CSV
/// reader's time (docs/decisions.md).
fn parse_plain(bytes: &[u8], columns: &Columns) -> Block {
    let mut block = Block::default();
    block.breaks = csv_plain::records(bytes, |breaks, record, commas| {
        let field = |i: usize| csv_plain::field(record, commas, i);
        match block.add(columns, (commas.len() + 1, field), breaks + 1) {
            Ok(()) => true,
            Err(e) => {
                block.error = Some(e);
                false
            }
        }
    });
    block
}

/// A block after the first: split directly when it has no quotes, else by the CSV reader.
fn parse_block(bytes: &[u8], columns: &Columns) -> Block {
    if memchr::memchr(b'"', bytes).is_none() {
        return parse_plain(bytes, columns);
    }
    let mut csv = csv::ReaderBuilder::new();
    parse(csv.has_headers(false).flexible(true).from_reader(Lines::new(bytes)), columns, bytes)
}

/// Line breaks as [`Lines`] counts them: `\n`, `\r\n` and a lone `\r`.
fn line_breaks(bytes: &[u8]) -> u64 {
    memchr::memchr2_iter(b'\n', b'\r', bytes)
        .filter(|&at| bytes[at] == b'\n' || bytes.get(at + 1) != Some(&b'\n'))
        .count() as u64
}

/// The id of `raw`: the last one's when `raw` is the last value (`last`), else `intern`'s.
fn cached(
    last: &mut (Vec<u8>, Option<u32>),
    raw: &[u8],
    intern: impl FnOnce(&[u8]) -> Result<u32, DataError>,
) -> Result<u32, DataError> {
    if let (value, Some(id)) = last
        && value.as_slice() == raw
    {
        return Ok(*id);
    }
    let id = intern(raw)?;
    last.0.clear();
    last.0.extend_from_slice(raw);
    last.1 = Some(id);
    Ok(id)
}

/// What a basket's every line must agree on: customer, label and basket-level values.
type BasketLevel = (Option<u32>, Option<u8>, [u32; 4]);

impl Block {
    /// Adds the transaction line of `fields` fields, `field` reading each (line `line` of the
    /// block).
    fn add<'r>(
        &mut self,
        c: &Columns,
        (fields, field): (usize, impl Fn(usize) -> &'r [u8] + Copy),
        line: u64,
    ) -> Result<(), DataError> {
        if fields != c.fields {
            let reason = format!("found a record with {fields} fields, but the header has {}", c.fields);
            return Err(DataError::Csv { line, reason });
        }
        let spend = number(field(c.spend), line, "SPEND", 0.0)?;
        let quantity = number(field(c.quantity), line, "QUANTITY", f64::MIN_POSITIVE)?;
        let interner = &mut self.interner;
        let department = interner.intern(field(c.department), line, "PROD_CODE_20")?;
        let commodity = interner.intern(field(c.commodity), line, "PROD_CODE_30")?;
        let mut level = [0; 4];
        for (k, value) in level.iter_mut().enumerate() {
            *value = cached(&mut self.last_values[k], field(c.basket_level[k]), |raw| {
                interner.intern(raw, line, BASKET_COLUMNS[k])
            })?;
        }
        let customer_raw = c.customer.map_or(&b""[..], field);
        let customer = match customer_raw.is_empty() {
            true => None,
            false => {
                Some(cached(&mut self.last_values[4], customer_raw, |raw| interner.intern(raw, line, "CUST_CODE"))?)
            }
        };
        let label = match c.label {
            Some(c) => parse_label(field(c), line)?,
            None => None,
        };
        let raw = field(c.basket);
        let id = std::str::from_utf8(raw).map_err(|_| DataError::Field {
            line,
            column: "BASKET_ID".to_owned(),
            value: String::from_utf8_lossy(raw).into_owned(),
            reason: "is not valid UTF-8".to_owned(),
        })?;
        if id.is_empty() {
            let column = "BASKET_ID".to_owned();
            return Err(DataError::Field { line, column, value: String::new(), reason: "is empty".to_owned() });
        }
        let last = self.last.filter(|&b| *self.out.ids[b as usize] == *id);
        let level = (line, (customer, label, level));
        let basket = basket(&mut self.out, (&mut self.index, last), &self.interner.values, Cow::Borrowed(id), level)?;
        self.last = Some(basket);
        self.lines.push(Line { basket, department, commodity, spend, quantity });
        Ok(())
    }
}

/// The basket `id` of a line `line` with `level`: a known one (refused if its first line had
/// other basket-level values), or a new one.
fn basket(
    out: &mut Baskets,
    (index, known): (&mut BasketIndex, Option<u32>),
    values: &[Box<str>],
    id: Cow<'_, str>,
    (line, level): (u64, BasketLevel),
) -> Result<u32, DataError> {
    let (customer, label, basket_level) = level;
    if let Some(b) = known.or_else(|| index.find(&out.ids, &id)) {
        // Interned ids are canonical spellings: equal ids, equal values (no text built).
        let first = &out.categories[b as usize][2..];
        if out.customers[b as usize] != customer || out.labels[b as usize] != label || first != basket_level {
            return Err(inconsistent(out, values, b as usize, line, level));
        }
        return Ok(b);
    }
    let b = out.ids.len() as u32;
    out.ids.push(id.into_owned().into_boxed_str());
    index.insert(&out.ids, b);
    out.customers.push(customer);
    out.labels.push(label);
    out.categories.push([0, 0, basket_level[0], basket_level[1], basket_level[2], basket_level[3]]);
    out.first_lines.push(line);
    Ok(b)
}

/// Baskets by id: the ids are the baskets' own (`Baskets::ids`), not copies.
#[derive(Default)]
struct BasketIndex {
    table: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::FixedState,
}

impl BasketIndex {
    fn hash(&self, id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    /// The basket with the id `id`, among baskets `ids`.
    fn find(&self, ids: &[Box<str>], id: &str) -> Option<u32> {
        self.table.find(self.hash(id), |&b| *ids[b as usize] == *id).copied()
    }

    /// Adds basket `b` of `ids`.
    fn insert(&mut self, ids: &[Box<str>], b: u32) {
        let hasher = &self.hasher;
        let hash = |&b: &u32| std::hash::BuildHasher::hash_one(hasher, &*ids[b as usize]);
        self.table.insert_unique(hash(&b), b, hash);
    }
}

/// The blocks merged so far, and the line breaks before the next.
#[derive(Default)]
struct Merged {
    out: Baskets,
    interner: Interner,
    index: BasketIndex,
    lines: Vec<Line>,
    breaks: u64,
}

impl Merged {
    /// Adds the next block: its values and baskets become the file's, its lines are numbered
    /// from the file's start; its error, or a basket refused against an earlier block, is the
    /// file's.
    fn merge(&mut self, block: &mut Block) -> Result<(), DataError> {
        let Block { out, interner, lines, error, breaks, .. } = block;
        let breaks = *breaks;
        let base = self.breaks;
        self.breaks += breaks;
        let values: Vec<u32> = std::mem::take(&mut interner.values)
            .into_iter()
            .map(|v| self.interner.canonical_id(String::from(v)))
            .collect();
        let file = |id: u32| values[id as usize];
        let mut baskets = Vec::with_capacity(out.ids.len());
        // A basket new to the file takes the block's copy of its id.
        for (b, id) in std::mem::take(&mut out.ids).into_iter().enumerate() {
            let level =
                (out.customers[b].map(file), out.labels[b], std::array::from_fn(|k| file(out.categories[b][2 + k])));
            let line = base + out.first_lines[b];
            let index = (&mut self.index, None);
            baskets.push(basket(&mut self.out, index, &self.interner.values, Cow::Owned(id.into()), (line, level))?);
        }
        self.lines.extend(lines.iter().map(|l| Line {
            basket: baskets[l.basket as usize],
            department: file(l.department),
            commodity: file(l.commodity),
            spend: l.spend,
            quantity: l.quantity,
        }));
        error.take().map_or(Ok(()), |e| Err(e.shifted(base)))
    }
}

/// The input cut into blocks of whole records.
struct Blocks<'a, R> {
    reader: R,
    name: &'a str,
    block_bytes: usize,
    /// Bytes read after the last block's end: the start of the next.
    carry: Vec<u8>,
    /// Buffers of parsed blocks, to read into again.
    spare: Vec<Vec<u8>>,
    end: bool,
}

impl<R: Read> Blocks<'_, R> {
    /// The next blocks, at most `width`; none at the end of the input.
    fn batch(&mut self, width: usize, progress: &dyn Progress) -> Result<Vec<Vec<u8>>, DataError> {
        let mut batch = Vec::with_capacity(width);
        while batch.len() < width {
            let Some(block) = self.next(progress)? else { break };
            batch.push(block);
        }
        Ok(batch)
    }

    /// The next block: at least [`Self::block_bytes`] bytes (unless the input ends first), cut
    /// after its last line break outside quotes.
    fn next(&mut self, progress: &dyn Progress) -> Result<Option<Vec<u8>>, DataError> {
        let mut block = self.spare.pop().unwrap_or_default();
        block.clear();
        block.append(&mut self.carry);
        loop {
            // Up to a block's size, or another block's worth when no record ended in it.
            let want = if block.len() < self.block_bytes { self.block_bytes - block.len() } else { self.block_bytes };
            block.reserve(want);
            let io = |source| DataError::Io { path: self.name.into(), source };
            let got = (&mut self.reader).take(want as u64).read_to_end(&mut block).map_err(io)?;
            progress.advance(got as u64);
            self.end |= got < want;
            if self.end {
                break;
            }
            if let Some(end) = record_end(&block) {
                self.carry.extend_from_slice(&block[end..]);
                block.truncate(end);
                break;
            }
        }
        Ok((!block.is_empty()).then_some(block))
    }
}

/// Where the last whole record of `bytes` (starting at a record) ends: after its last `\n`
/// outside quotes.
fn record_end(bytes: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', bytes).is_none() {
        return memchr::memrchr(b'\n', bytes).map(|at| at + 1);
    }
    let mut quoted = false;
    let mut end = None;
    for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
        match bytes[at] {
            b'"' => quoted = !quoted,
            _ if !quoted => end = Some(at + 1),
            _ => {}
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::synth::{GenConfig, HEADER, generate};

    /// The file read in blocks of `bytes`: its baskets, or its error.
    fn read_in(data: &[u8], bytes: usize) -> Result<String, String> {
        let baskets = read_blocks(("t.csv", data), &Silent, &HEADER, (0, bytes)).map_err(|e| e.to_string())?;
        let b = &baskets;
        Ok(format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {}",
            b.ids, b.customers, b.labels, b.categories, b.spend, b.quantity, b.first_lines, b.values, b.lines
        ))
    }

    /// Reading in blocks of a few sizes gives what reading the file as one block does.
    fn same_in_any_blocks(data: &[u8]) -> Result<String, String> {
        let whole = read_in(data, data.len() + 1);
        for bytes in [1, 7, 64, 1000, 4096] {
            assert_eq!(read_in(data, bytes), whole, "blocks of {bytes} bytes");
        }
        whole
    }

    fn generated(baskets: u64) -> String {
        let mut data = Vec::new();
        generate(GenConfig { baskets, seed: 5 }, &mut data, None, &Silent).expect("generate");
        String::from_utf8(data).expect("text")
    }

    #[test]
    fn blocks_of_any_size_give_the_baskets_of_one() {
        let data = generated(300);
        assert!(same_in_any_blocks(data.as_bytes()).is_ok());
        // Baskets whose lines are spread over the file, CRLF endings and blank lines.
        let (header, body) = data.split_once('\n').expect("header");
        let mut lines: Vec<&str> = body.lines().collect();
        lines.sort_by_key(|l| l.len() % 7);
        let spread = format!("{header}\r\n\r\n{}\r\n\n", lines.join("\r\n"));
        assert!(same_in_any_blocks(spread.as_bytes()).is_ok());
        let mixed: String =
            lines.iter().enumerate().map(|(i, l)| format!("{l}{}", ["\n", "\r", "\r\n", "\n\r\r\n"][i % 4])).collect();
        assert!(same_in_any_blocks(format!("{header}\n{mixed}").as_bytes()).is_ok());
    }

    #[test]
    fn a_quoted_line_break_is_never_a_block_end() {
        let data = generated(40);
        // PROD_CODE (not read) of every other line quoted, with a line break and a quote in it.
        let quote = |(i, line): (usize, &str)| {
            let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
            if i % 2 == 1 {
                fields[6] = format!("\"P\nR\"\"D{}\"", fields[6]);
            }
            fields.join(",")
        };
        let quoted: Vec<String> = data.lines().enumerate().map(quote).collect();
        let quoted = quoted.join("\n");
        assert!(same_in_any_blocks(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn the_first_error_in_the_file_is_the_one_reported() {
        let data = generated(200);
        let lines: Vec<&str> = data.lines().collect();
        let with = |edits: &[(usize, &str, &str)]| {
            let mut l: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
            for (n, from, to) in edits {
                l[n - 1] = l[n - 1].replacen(from, to, 1);
            }
            l.join("\n")
        };
        // The label of a basket seen in an earlier block changes on a later line (line 300's
        // basket is line 299's when both are one basket's: find one).
        let n = (3..lines.len())
            .find(|&n| basket_of(lines[n - 1]) == basket_of(lines[n - 2]))
            .expect("a basket of two lines");
        let label = |n: usize| lines[n - 1].split(',').nth(16).expect("label").to_owned();
        let other = if label(n) == "LA" { "MM" } else { "LA" };
        let changed = with(&[(n, &format!(",{},", label(n)), &format!(",{other},"))]);
        let e = same_in_any_blocks(changed.as_bytes()).expect_err("inconsistent");
        assert!(e.starts_with(&format!("line {n}, column BASKET_PRICE_SENSITIVITY")), "{e}");
        // An earlier error wins over it; a later one does not.
        let earlier = with(&[(n, &format!(",{},", label(n)), &format!(",{other},")), (n - 1, ",", ",x,")]);
        assert!(same_in_any_blocks(earlier.as_bytes()).expect_err("bad").starts_with(&format!("line {}", n - 1)));
        let later = with(&[(n, &format!(",{},", label(n)), &format!(",{other},")), (lines.len(), ",", ",x,")]);
        assert!(same_in_any_blocks(later.as_bytes()).expect_err("bad").starts_with(&format!("line {n},")));
        let ragged = with(&[(lines.len() - 1, ",", ",x,")]);
        let e = same_in_any_blocks(ragged.as_bytes()).expect_err("ragged");
        assert_eq!(e, format!("line {}: found a record with 23 fields, but the header has 22", lines.len() - 1));
    }

    fn basket_of(line: &str) -> &str {
        line.split(',').nth(14).expect("basket id")
    }

    /// Fails after handing out `0.1` bytes.
    struct Broken<'a>(&'a [u8], usize);

    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            let n = buf.len().min(self.1).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            (self.0, self.1) = (&self.0[n..], self.1 - n);
            Ok(n)
        }
    }

    #[test]
    fn a_read_failure_names_the_input_once() {
        let data = generated(100);
        let e = read_blocks(("s3://b/t.csv", Broken(data.as_bytes(), 5000)), &Silent, &HEADER, (0, 1000))
            .expect_err("broken")
            .to_string();
        assert_eq!(e, "s3://b/t.csv: connection reset");
    }
}
