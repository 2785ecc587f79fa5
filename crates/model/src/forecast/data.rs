//! Reading sales CSVs (see the schema in [`crate::forecast`]) into [`SalesColumns`], and their
//! truth sidecars. Columns are found by name in any order (extra columns are ignored); each row
//! goes through [`SalesRecord::validate`], the check requests get. Errors name the line and
//! column. Files larger than [`MAX_SALES_FILE_BYTES`] or with more than [`MAX_SALES_ROWS`] rows
//! are refused before they can exhaust memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{MAX_UNITS, SALES_HEADER, SalesColumns, SalesRecord, TRUTH_HEADER};
use crate::csv_lines::{BytesReader, Lines};
use crate::progress::Progress;

/// Largest sales or truth file read, bytes.
pub const MAX_SALES_FILE_BYTES: u64 = 4 << 30;
/// Most rows read from one file.
pub const MAX_SALES_ROWS: usize = 100_000_000;

/// Why a sales file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SalesDataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_SALES_FILE_BYTES`].
    #[error("{path}: {bytes} bytes, more than the {limit} bytes allowed")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The header lacks required columns.
    #[error("line 1 (header): missing column(s) {}; expected the header {expected}", .missing.join(", "))]
    Header {
        /// Missing column names.
        missing: Vec<String>,
        /// The expected header.
        expected: String,
    },
    /// The file has a header but no data lines.
    #[error("no data lines after the header")]
    Empty,
    /// More rows than [`MAX_SALES_ROWS`].
    #[error("line {line}: more than {limit} rows")]
    TooManyRows {
        /// 1-based line number of the first row over the limit.
        line: u64,
        /// The limit.
        limit: usize,
    },
    /// The CSV structure is broken (e.g. wrong number of fields).
    #[error("line {line}: {reason}")]
    Csv {
        /// 1-based line number.
        line: u64,
        /// Parser message.
        reason: String,
    },
    /// A value cannot be used.
    #[error("line {line}, column {column}: {value:?} {reason}")]
    Field {
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The value found.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// The truth sidecar does not describe the same rows as the data.
    #[error("truth sidecar: {0}")]
    Truth(String),
}

/// Reads a sales CSV file; also returns its bytes (for fingerprints).
pub fn read_sales(path: &Path, progress: &dyn Progress) -> Result<(SalesColumns, Vec<u8>), SalesDataError> {
    let bytes = read_bounded(path)?;
    let rows = parse_sales(&bytes, progress)?;
    Ok((rows, bytes))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, SalesDataError> {
    let io = |source| SalesDataError::Io { path: path.to_owned(), source };
    let bytes = std::fs::metadata(path).map_err(io)?.len();
    if bytes > MAX_SALES_FILE_BYTES {
        return Err(SalesDataError::TooLarge { path: path.to_owned(), bytes, limit: MAX_SALES_FILE_BYTES });
    }
    std::fs::read(path).map_err(io)
}

/// A CSV reader over `bytes` and the index of each `required` column.
fn open_csv<'a, const N: usize>(
    bytes: &'a [u8],
    required: [&str; N],
) -> Result<(BytesReader<'a>, [usize; N]), SalesDataError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(Lines::new(bytes));
    let header = reader.byte_headers().map_err(|e| SalesDataError::Csv { line: 1, reason: e.to_string() })?.clone();
    let find = |name: &str| header.iter().position(|h| h == name.as_bytes());
    let missing: Vec<String> = required.iter().filter(|h| find(h).is_none()).map(|h| (*h).to_owned()).collect();
    if !missing.is_empty() {
        return Err(SalesDataError::Header { missing, expected: required.join(",") });
    }
    Ok((reader, required.map(|name| find(name).unwrap_or_default())))
}

/// Reads the next record; `None` at the end of the data.
fn next_record(
    reader: &mut BytesReader<'_>,
    record: &mut csv::ByteRecord,
    rows: usize,
) -> Result<Option<u64>, SalesDataError> {
    match reader.read_byte_record(record) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => {
            return Err(SalesDataError::Csv { line: reader.get_mut().line(e.position()), reason: e.to_string() });
        }
    }
    let line = reader.get_mut().line(record.position());
    if rows >= MAX_SALES_ROWS {
        return Err(SalesDataError::TooManyRows { line, limit: MAX_SALES_ROWS });
    }
    Ok(Some(line))
}

fn field_error(line: u64, column: &str, raw: &[u8], reason: &str) -> SalesDataError {
    SalesDataError::Field {
        line,
        column: column.to_owned(),
        value: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_owned(),
    }
}

fn integer(raw: &[u8], line: u64, column: &str) -> Result<i64, SalesDataError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| field_error(line, column, raw, "is not an integer"))
}

fn number(raw: &[u8], line: u64, column: &str) -> Result<f64, SalesDataError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| field_error(line, column, raw, "is not a number"))
}

fn text<'a>(raw: &'a [u8], line: u64, column: &str) -> Result<&'a str, SalesDataError> {
    std::str::from_utf8(raw).map_err(|_| field_error(line, column, raw, "is not valid UTF-8"))
}

/// A row's key fields, validated as a request would be.
fn parse_key(fields: [&[u8]; 5], line: u64) -> Result<super::ParsedSales, SalesDataError> {
    let record = SalesRecord {
        store_id: integer(fields[0], line, "store_id")?,
        product_id: integer(fields[1], line, "product_id")?,
        date: text(fields[2], line, "date")?,
        price: number(fields[3], line, "price")?,
        promotion: integer(fields[4], line, "promotion")?,
    };
    record.validate().map_err(|invalid| {
        let first = &invalid.errors[0];
        let k = SALES_HEADER.iter().position(|h| *h == first.field).unwrap_or_default();
        field_error(line, &first.field, fields[k], &first.reason)
    })
}

/// Parses sales CSV bytes.
pub fn parse_sales(bytes: &[u8], progress: &dyn Progress) -> Result<SalesColumns, SalesDataError> {
    let (mut reader, cols) = open_csv(bytes, SALES_HEADER)?;
    progress.stage("reading sales", bytes.len() as u64);
    let mut out = SalesColumns::default();
    let mut record = csv::ByteRecord::new();
    let mut last_offset = 0;
    while let Some(line) = next_record(&mut reader, &mut record, out.len())? {
        let field = |k: usize| record.get(cols[k]).unwrap_or_default();
        let row = parse_key([field(0), field(1), field(2), field(3), field(4)], line)?;
        let units = integer(field(5), line, "units")?;
        let units = u32::try_from(units)
            .ok()
            .filter(|u| *u <= MAX_UNITS)
            .ok_or_else(|| field_error(line, "units", field(5), &format!("must be within 0..={MAX_UNITS}")))?;
        out.push(&row, units);
        let offset = record.position().map_or(0, csv::Position::byte);
        if offset - last_offset > 1 << 22 {
            progress.advance(offset - last_offset);
            last_offset = offset;
        }
    }
    if out.is_empty() {
        return Err(SalesDataError::Empty);
    }
    progress.advance(bytes.len() as u64 - last_offset);
    Ok(out)
}

/// A truth sidecar: each row's key and the mean its units were drawn from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalesTruth {
    /// Store id of each row.
    pub store_id: Vec<i64>,
    /// Product id of each row.
    pub product_id: Vec<i64>,
    /// Day of each row, days since 1970-01-01.
    pub day: Vec<i64>,
    /// Expected units of each row.
    pub expected_units: Vec<f64>,
}

impl SalesTruth {
    /// Expected units of each row of `rows`, matched by (store, product, date); an error when a
    /// row has no truth.
    pub fn aligned(&self, rows: &SalesColumns) -> Result<Vec<f64>, SalesDataError> {
        let same_order = self.expected_units.len() == rows.len()
            && self.store_id == rows.store_id
            && self.product_id == rows.product_id
            && self.day == rows.day;
        if same_order {
            return Ok(self.expected_units.clone());
        }
        let mut by_key = HashMap::with_capacity(self.expected_units.len());
        for i in 0..self.expected_units.len() {
            by_key.insert((self.store_id[i], self.product_id[i], self.day[i]), self.expected_units[i]);
        }
        (0..rows.len())
            .map(|i| {
                let key = (rows.store_id[i], rows.product_id[i], rows.day[i]);
                by_key.get(&key).copied().ok_or_else(|| {
                    let date = super::calendar::format_date(key.2);
                    SalesDataError::Truth(format!("no row for store {} product {} date {date}", key.0, key.1))
                })
            })
            .collect()
    }
}

/// Reads a truth sidecar (`store_id,product_id,date,expected_units`).
pub fn read_sales_truth(path: &Path) -> Result<SalesTruth, SalesDataError> {
    let bytes = read_bounded(path)?;
    parse_sales_truth(&bytes)
}

/// Parses truth sidecar bytes.
pub fn parse_sales_truth(bytes: &[u8]) -> Result<SalesTruth, SalesDataError> {
    let (mut reader, cols) = open_csv(bytes, TRUTH_HEADER)?;
    let mut out = SalesTruth::default();
    let mut record = csv::ByteRecord::new();
    while let Some(line) = next_record(&mut reader, &mut record, out.expected_units.len())? {
        let field = |k: usize| record.get(cols[k]).unwrap_or_default();
        let store_id = integer(field(0), line, "store_id")?;
        let product_id = integer(field(1), line, "product_id")?;
        let day = super::calendar::parse_date(text(field(2), line, "date")?)
            .map_err(|e| field_error(line, "date", field(2), &e.to_string()))?;
        let expected = number(field(3), line, "expected_units")?;
        if !(expected.is_finite() && expected >= 0.0) {
            return Err(field_error(line, "expected_units", field(3), "must be a finite number >= 0"));
        }
        out.store_id.push(store_id);
        out.product_id.push(product_id);
        out.day.push(day);
        out.expected_units.push(expected);
    }
    if out.expected_units.is_empty() {
        return Err(SalesDataError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    const H: &str = "store_id,product_id,date,price,promotion,units";

    fn parse(body: &str) -> Result<SalesColumns, SalesDataError> {
        parse_sales(format!("{H}\n{body}\n").as_bytes(), &Silent)
    }

    #[test]
    fn reads_rows_in_any_column_order() {
        let rows = parse("1,123,2024-01-01,29.99,0,3\n2,7,2024-01-02,1.50,1,0").expect("parse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.row(0).day, crate::time::days_from_civil(2024, 1, 1));
        assert_eq!((rows.price[0], rows.promotion[1], rows.units[0]), (29.99, true, 3));
        let shuffled = "units,date,extra,promotion,price,product_id,store_id\n3,2024-01-01,x,0,29.99,123,1\n";
        let other = parse_sales(shuffled.as_bytes(), &Silent).expect("parse");
        assert_eq!(other.row(0), rows.row(0));
        assert_eq!(other.units, [3]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad = |body: &str| parse(body).expect_err("bad").to_string();
        let e = bad("1,123,2024-01-01,29.99,0,3\n1,123,2023-02-30,29.99,0,3");
        assert!(e.contains("line 3, column date") && e.contains("not a calendar date"), "{e}");
        let e = bad("1,abc,2024-01-01,29.99,0,3");
        assert!(e.contains("line 2, column product_id") && e.contains("not an integer"), "{e}");
        let e = bad("1,1,2024-01-01,-2,0,3");
        assert!(e.contains("column price") && e.contains(">= 0.01"), "{e}");
        let e = bad("1,1,2024-01-01,2,2,3");
        assert!(e.contains("column promotion") && e.contains("0 or 1"), "{e}");
        let e = bad("-4,1,2024-01-01,2,0,3");
        assert!(e.contains("column store_id") && e.contains("negative"), "{e}");
        let e = bad("1,1,2024-01-01,2,0,-3");
        assert!(e.contains("column units") && e.contains("0..="), "{e}");
        let e = bad("1,1,2024-01-01,NaN,0,3");
        assert!(e.contains("column price") && e.contains("NaN"), "{e}");
        let e = bad("1,2,3");
        assert!(e.contains("line 2"), "{e}");
        let e = parse_sales(b"store_id,date\n1,2\n", &Silent).expect_err("header").to_string();
        assert!(e.contains("missing column(s) product_id, price, promotion, units"), "{e}");
        let e = parse_sales(format!("{H}\n").as_bytes(), &Silent).expect_err("empty").to_string();
        assert!(e.contains("no data lines"), "{e}");
    }

    #[test]
    fn truth_aligns_by_key_in_any_order() {
        let rows = parse("1,5,2024-01-01,2.00,0,3\n2,5,2024-01-01,2.00,0,1").expect("parse");
        let truth =
            parse_sales_truth(b"store_id,product_id,date,expected_units\n2,5,2024-01-01,0.5\n1,5,2024-01-01,2.25\n")
                .expect("truth");
        assert_eq!(truth.aligned(&rows).expect("aligned"), [2.25, 0.5]);
        let partial = parse_sales_truth(b"store_id,product_id,date,expected_units\n1,5,2024-01-01,2.25\n").expect("t");
        let e = partial.aligned(&rows).expect_err("missing").to_string();
        assert!(e.contains("store 2 product 5 date 2024-01-01"), "{e}");
        let e = parse_sales_truth(b"store_id,product_id,date,expected_units\n1,5,2024-01-01,-1\n").expect_err("neg");
        assert!(e.to_string().contains("line 2, column expected_units"), "{e}");
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("big.csv");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_SALES_FILE_BYTES + 1).expect("sparse file");
        let e = read_sales(&path, &Silent).expect_err("too large");
        assert!(matches!(e, SalesDataError::TooLarge { .. }), "{e}");
        let e = read_sales(&dir.path().join("missing.csv"), &Silent).expect_err("missing");
        assert!(matches!(e, SalesDataError::Io { .. }), "{e}");
    }
}
