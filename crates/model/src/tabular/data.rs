//! Reading any labelled CSV for a tabular model: one streaming pass that keeps each column as
//! numbers while every value parses as one, and as interned text from the first value that
//! does not; then column types are inferred and the rows encoded with the schema's own
//! [`Column::encode`], the function the server encodes requests with.
//!
//! # Column types
//! - `--numeric` / `--categorical` decide for the columns they name.
//! - Otherwise a column is numeric when every present value parses as a finite number, and
//!   categorical when fewer than 90% of them do. A column in between is refused as mixed types
//!   (naming the first line whose value is not a number), since it is almost always a typo or a
//!   unit in a numeric column; `--categorical` accepts it.
//! - A categorical column keeps its [`MAX_VOCABULARY`] most frequent values; the others are
//!   scored like a missing value. More than [`MAX_DISTINCT_TEXT`] distinct values (an id or free
//!   text) is refused: `--ignore` or `--id-columns` it.
//!
//! Bounded: a physical line longer than [`MAX_LINE_BYTES`] is refused as it is read, before it
//! is buffered.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::csv_lines::Lines;

use super::{Column, ColumnKind, MAX_CATEGORY_BYTES, MAX_COLUMNS, MAX_VOCABULARY, TabularSchema, Value, is_missing};

/// Longest physical line of a CSV: 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Most distinct values a text column may have.
pub const MAX_DISTINCT_TEXT: usize = 65_536;
/// Share of numbers above which a column with some text is refused as mixed types.
const MIXED_SHARE: f64 = 0.9;
/// Code of a missing text cell.
const MISSING: u32 = u32::MAX;

/// Why a CSV cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A column named on the command line is not in the header.
    #[error("line 1 (header): no column {column:?} ({what}); the columns are {}", .header.join(", "))]
    NoColumn {
        /// The missing column.
        column: String,
        /// Which option named it.
        what: &'static str,
        /// The header's columns.
        header: Vec<String>,
    },
    /// The header is unusable (repeated or empty names, too many columns).
    #[error("line 1 (header): {0}")]
    Header(String),
    /// No data lines.
    #[error("no data lines after the header")]
    Empty,
    /// The CSV structure is broken (ragged rows, a line too long, bad quoting).
    #[error("line {line}: {reason}")]
    Csv {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A value cannot be used.
    #[error("line {line}, column {column:?}: {value:?} {reason}")]
    Field {
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The value (at most 64 characters of it).
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A column cannot be used as a feature or label.
    #[error("column {column:?}: {reason}")]
    Column {
        /// Column name.
        column: String,
        /// Why.
        reason: String,
    },
}

/// Which columns play which part.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// The label column.
    pub label: String,
    /// Columns that are not features (ids, leaks, the split or time column).
    pub ignore: Vec<String>,
    /// Columns forced categorical.
    pub categorical: Vec<String>,
    /// Columns forced numeric.
    pub numeric: Vec<String>,
    /// Columns kept as text besides the features (the split or time column).
    pub keep: Vec<String>,
    /// When given, the features are exactly these columns in this order (a model's schema) and
    /// every other column is ignored.
    pub features: Option<Vec<String>>,
}

/// The cells of one column as read.
#[derive(Debug, Clone)]
pub enum Cells {
    /// Every present value parsed as a number; NaN where missing.
    Numbers(Vec<f64>),
    /// Interned text; [`u32::MAX`] where missing.
    Texts {
        /// Code of each row.
        codes: Vec<u32>,
        /// Distinct values, in order of first appearance.
        values: Vec<String>,
    },
}

impl Cells {
    /// The value of row `i`.
    pub fn value(&self, i: usize) -> Value<'_> {
        match self {
            Self::Numbers(x) if x[i].is_nan() => Value::Missing,
            Self::Numbers(x) => Value::Number(x[i]),
            Self::Texts { codes, .. } if codes[i] == MISSING => Value::Missing,
            Self::Texts { codes, values } => Value::Text(&values[codes[i] as usize]),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Numbers(x) => x.len(),
            Self::Texts { codes, .. } => codes.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One column being read.
struct Builder {
    name: String,
    cells: Cells,
    index: HashMap<String, u32>,
    /// Present values that parse as numbers, and present values.
    numbers: u64,
    present: u64,
    /// The first present value that is not a number, and its line.
    first_text: Option<(u64, String)>,
    forced: Option<Forced>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Forced {
    Numeric,
    Categorical,
}

impl Builder {
    fn new(name: String, forced: Option<Forced>) -> Self {
        let cells = match forced {
            Some(Forced::Categorical) => Cells::Texts { codes: Vec::new(), values: Vec::new() },
            _ => Cells::Numbers(Vec::new()),
        };
        Self { name, cells, index: HashMap::new(), numbers: 0, present: 0, first_text: None, forced }
    }

    fn push(&mut self, text: &str, line: u64) -> Result<(), TableError> {
        let missing = is_missing(text);
        let number = if missing { None } else { super::parse_number(text).ok() };
        if !missing {
            self.present += 1;
            self.numbers += u64::from(number.is_some());
            if number.is_none() && self.first_text.is_none() {
                self.first_text = Some((line, text.to_owned()));
            }
        }
        if let Cells::Numbers(xs) = &mut self.cells {
            match (missing, number) {
                (true, _) => xs.push(f64::NAN),
                (false, Some(x)) => xs.push(x),
                (false, None) if self.forced == Some(Forced::Numeric) => {
                    return Err(field_error(line, &self.name, text, "is not a number (the column is --numeric)"));
                }
                (false, None) => self.switch_to_texts(line)?,
            }
            if matches!(self.cells, Cells::Numbers(_)) {
                return Ok(());
            }
        }
        let code = if missing { MISSING } else { self.intern(text.trim(), line)? };
        if let Cells::Texts { codes, .. } = &mut self.cells {
            codes.push(code);
        }
        Ok(())
    }

    /// Turns the numbers read so far into text (this row's value is pushed by the caller).
    fn switch_to_texts(&mut self, line: u64) -> Result<(), TableError> {
        let Cells::Numbers(xs) = std::mem::replace(&mut self.cells, Cells::Numbers(Vec::new())) else {
            return Ok(());
        };
        self.cells = Cells::Texts { codes: Vec::with_capacity(xs.len()), values: Vec::new() };
        for x in xs {
            let code = if x.is_nan() { MISSING } else { self.intern(&super::number_text(x), line)? };
            if let Cells::Texts { codes, .. } = &mut self.cells {
                codes.push(code);
            }
        }
        Ok(())
    }

    fn intern(&mut self, text: &str, line: u64) -> Result<u32, TableError> {
        if let Some(&code) = self.index.get(text) {
            return Ok(code);
        }
        let Cells::Texts { values, .. } = &mut self.cells else { unreachable!("interning needs text cells") };
        if values.len() >= MAX_DISTINCT_TEXT {
            return Err(field_error(
                line,
                &self.name,
                text,
                &format!(
                    "is its column's value number {}: more than {MAX_DISTINCT_TEXT} distinct text values \
                     (an id or free text?); pass --ignore {} or --id-columns {}",
                    MAX_DISTINCT_TEXT + 1,
                    self.name,
                    self.name
                ),
            ));
        }
        let code = values.len() as u32;
        values.push(text.to_owned());
        self.index.insert(text.to_owned(), code);
        Ok(code)
    }
}

fn field_error(line: u64, column: &str, value: &str, reason: &str) -> TableError {
    TableError::Field {
        line,
        column: column.to_owned(),
        value: value.chars().take(64).collect(),
        reason: reason.to_owned(),
    }
}

/// A CSV as read: every used column's cells, by name.
#[derive(Debug)]
pub struct RawTable {
    /// Feature columns in header order.
    pub features: Vec<(String, Cells)>,
    /// The label column.
    pub label: Cells,
    /// Kept columns (split, time) by name.
    pub kept: HashMap<String, Cells>,
    /// Data rows.
    pub rows: usize,
    /// `sha256:<hex>` of the file.
    pub fingerprint: String,
}

/// Counts bytes per physical line (refusing one longer than [`MAX_LINE_BYTES`]) and hashes what
/// it reads.
struct Source<R> {
    inner: R,
    hasher: Sha256,
    since_newline: usize,
    line: u64,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line += 1;
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE_BYTES {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line {} is longer than {MAX_LINE_BYTES} bytes", self.line + 1),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// Reads a labelled CSV file.
pub fn read_table(path: &Path, roles: &Roles) -> Result<RawTable, TableError> {
    let file = std::fs::File::open(path).map_err(|source| TableError::Io { path: path.to_owned(), source })?;
    let source = Source {
        inner: std::io::BufReader::with_capacity(1 << 16, file),
        hasher: Sha256::new(),
        since_newline: 0,
        line: 0,
    };
    read_from(source, roles)
}

/// Reads a labelled CSV from bytes.
pub fn parse_table(bytes: &[u8], roles: &Roles) -> Result<RawTable, TableError> {
    read_from(Source { inner: bytes, hasher: Sha256::new(), since_newline: 0, line: 0 }, roles)
}

/// A CSV error of the record on `line`.
fn csv_error(e: &csv::Error, line: u64) -> TableError {
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields, the header has {expected_len} (a ragged row)")
        }
        csv::ErrorKind::Io(io) => return TableError::Csv { line: 0, reason: io.to_string() },
        _ => e.to_string(),
    };
    TableError::Csv { line, reason }
}

fn read_from<R: Read>(source: Source<R>, roles: &Roles) -> Result<RawTable, TableError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(Lines::new(source));
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.trim().to_owned()).collect(),
        Err(e) => return Err(csv_error(&e, 1)),
    };
    let (mut builders, parts) = plan(&header, roles)?;
    let label = parts[builders.len() - 1 - roles.keep.len()];
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    while reader.read_record(&mut record).map_err(|e| {
        let line = reader.get_mut().line(e.position());
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => TableError::Csv { line, reason: "is not valid UTF-8".to_owned() },
            _ => csv_error(&e, line),
        }
    })? {
        let line = reader.get_mut().line(record.position());
        if is_missing(&record[label]) {
            return Err(field_error(line, &roles.label, &record[label], "is missing: every row needs a label"));
        }
        for (builder, &column) in builders.iter_mut().zip(&parts) {
            builder.push(&record[column], line)?;
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(TableError::Empty);
    }
    let fingerprint = format!("sha256:{}", hex::encode(reader.into_inner().into_inner().hasher.finalize()));
    finish(builders, roles, rows, fingerprint)
}

/// One builder per used column (features in header order, then the label, then kept columns)
/// and its position in the header.
fn plan(header: &[String], roles: &Roles) -> Result<(Vec<Builder>, Vec<usize>), TableError> {
    let position = |name: &str, what: &'static str| {
        header.iter().position(|h| h == name).ok_or_else(|| TableError::NoColumn {
            column: name.to_owned(),
            what,
            header: header.to_vec(),
        })
    };
    let label = position(&roles.label, "--label")?;
    for (names, what) in [
        (&roles.ignore, "--ignore/--id-columns"),
        (&roles.categorical, "--categorical"),
        (&roles.numeric, "--numeric"),
        (&roles.keep, "--split-column/--time-column"),
    ] {
        for name in names {
            position(name, what)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(name) = header.iter().find(|h| h.is_empty() || !seen.insert(h.as_str())) {
        return Err(TableError::Header(format!("column name {name:?} is empty or repeated")));
    }
    let features: Vec<usize> = match &roles.features {
        Some(names) => names.iter().map(|n| position(n, "the model's columns")).collect::<Result<_, _>>()?,
        None => (0..header.len())
            .filter(|&i| i != label && !roles.ignore.contains(&header[i]) && !roles.keep.contains(&header[i]))
            .collect(),
    };
    if features.is_empty() || features.len() > MAX_COLUMNS {
        return Err(TableError::Header(format!(
            "{} feature columns (besides the label and ignored ones); 1 to {MAX_COLUMNS} are supported",
            features.len()
        )));
    }
    let forced = |name: &String| {
        if roles.categorical.contains(name) {
            Some(Forced::Categorical)
        } else if roles.numeric.contains(name) {
            Some(Forced::Numeric)
        } else {
            None
        }
    };
    let mut builders: Vec<Builder> =
        features.iter().map(|&i| Builder::new(header[i].clone(), forced(&header[i]))).collect();
    let mut parts = features;
    builders.push(Builder::new(header[label].clone(), None));
    parts.push(label);
    for name in &roles.keep {
        builders.push(Builder::new(name.clone(), Some(Forced::Categorical)));
        parts.push(position(name, "--split-column/--time-column")?);
    }
    Ok((builders, parts))
}

fn finish(builders: Vec<Builder>, roles: &Roles, rows: usize, fingerprint: String) -> Result<RawTable, TableError> {
    let n_features = builders.len() - 1 - roles.keep.len();
    let mut builders = builders.into_iter();
    let mut features = Vec::with_capacity(n_features);
    for builder in builders.by_ref().take(n_features) {
        if builder.present == 0 {
            return Err(TableError::Column {
                column: builder.name,
                reason: format!("all {rows} values are missing; pass --ignore to leave it out"),
            });
        }
        let mixed = builder.forced.is_none()
            && matches!(builder.cells, Cells::Texts { .. })
            && builder.numbers as f64 >= MIXED_SHARE * builder.present as f64;
        if mixed {
            let (line, value) = builder.first_text.clone().unwrap_or_default();
            return Err(field_error(
                line,
                &builder.name,
                &value,
                &format!(
                    "is not a number, but {} of the column's {} values are (mixed types): fix the value, \
                     or pass --categorical {} if the column is categorical",
                    builder.numbers, builder.present, builder.name
                ),
            ));
        }
        features.push((builder.name, builder.cells));
    }
    let label = builders.next().map(|b| b.cells).unwrap_or(Cells::Numbers(Vec::new()));
    let kept = builders.map(|b| (b.name, b.cells)).collect();
    Ok(RawTable { features, label, kept, rows, fingerprint })
}

/// The schema of a table's feature columns: numeric ranges, and categorical vocabularies of
/// the most frequent values (ties by value). Missing shares are recorded.
pub fn infer_schema(table: &RawTable, rows: &[usize]) -> TabularSchema {
    let columns = table
        .features
        .iter()
        .map(|(name, cells)| {
            let (kind, missing) = match cells {
                Cells::Numbers(xs) => {
                    let (mut min, mut max, mut missing) = (f64::INFINITY, f64::NEG_INFINITY, 0usize);
                    for &i in rows {
                        let x = xs[i];
                        if x.is_nan() {
                            missing += 1;
                        } else {
                            min = min.min(x);
                            max = max.max(x);
                        }
                    }
                    if min > max {
                        (min, max) = (0.0, 0.0);
                    }
                    (ColumnKind::Numeric { min, max }, missing)
                }
                Cells::Texts { codes, values } => {
                    let mut counts = vec![0usize; values.len()];
                    let mut missing = 0;
                    for &i in rows {
                        match codes[i] {
                            MISSING => missing += 1,
                            c => counts[c as usize] += 1,
                        }
                    }
                    let mut order: Vec<usize> =
                        (0..values.len()).filter(|&c| counts[c] > 0 && values[c].len() <= MAX_CATEGORY_BYTES).collect();
                    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then_with(|| values[a].cmp(&values[b])));
                    order.truncate(MAX_VOCABULARY);
                    (
                        ColumnKind::Categorical { vocabulary: order.iter().map(|&c| values[c].clone()).collect() },
                        missing,
                    )
                }
            };
            Column { name: name.clone(), kind, missing_share: missing as f64 / rows.len().max(1) as f64 }
        })
        .collect();
    TabularSchema { columns }
}

/// Encodes the rows `rows` of a table with `schema` (row-major, one value per column), with
/// the number of values scored as unseen per column.
pub fn encode_rows(table: &RawTable, schema: &TabularSchema, rows: &[usize]) -> (Vec<f64>, Vec<u64>) {
    use rayon::prelude::*;
    let nf = schema.len();
    let parts: Vec<(Vec<f64>, Vec<u64>)> = rows
        .par_chunks(16_384)
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() * nf);
            let mut unseen = vec![0u64; nf];
            let mut warnings = Vec::new();
            for &i in chunk {
                for (f, (column, (_, cells))) in schema.columns.iter().zip(&table.features).enumerate() {
                    warnings.clear();
                    // Training values were read as these columns' types, so encoding cannot fail.
                    out.push(column.encode(cells.value(i), &mut warnings).unwrap_or(f64::NAN));
                    unseen[f] +=
                        warnings.iter().filter(|w| matches!(w, super::TabularWarning::Unseen { .. })).count() as u64;
                }
            }
            (out, unseen)
        })
        .collect();
    let mut out = Vec::with_capacity(rows.len() * nf);
    let mut unseen = vec![0u64; nf];
    for (part, counts) in parts {
        out.extend_from_slice(&part);
        unseen.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
    }
    (out, unseen)
}
