//! Reading dunnhumby transaction CSVs into baskets (the training example unit) and truth
//! sidecars. Lines are grouped by `BASKET_ID`; spend and quantity are summed in file order and
//! the dominant department and commodity group are found by [`dominant_by_spend`], the same rule
//! the generator and `basket_items` use. Errors name the line and column.

mod blocks;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::catalogue;
use crate::csv_lines::{BytesReader, Lines};
use crate::features::{BasketRecord, N_CATEGORICAL, dominant_by_spend};
use crate::progress::Progress;
use crate::synth::HEADER;
use crate::{CLASSES, TARGET};

/// Why a data file was refused.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The header lacks required columns.
    #[error("line 1 (header): missing column(s) {}; expected the dunnhumby header {}", .missing.join(", "), HEADER.join(","))]
    Header {
        /// Missing column names.
        missing: Vec<String>,
    },
    /// The file has a header but no data lines.
    #[error("no data lines after the header")]
    Empty,
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
    /// A basket-level column changes between lines of one basket.
    #[error("line {line}, column {column}: basket {basket} has {found:?} here but {first:?} on its first line")]
    Inconsistent {
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: &'static str,
        /// The basket.
        basket: String,
        /// Value on the basket's first line.
        first: String,
        /// Value on this line.
        found: String,
    },
}

impl DataError {
    /// The error with its line number `by` lines further on (an error of a block of lines
    /// numbered from its start).
    fn shifted(mut self, by: u64) -> Self {
        if let Self::Csv { line, .. } | Self::Field { line, .. } | Self::Inconsistent { line, .. } = &mut self {
            *line += by;
        }
        self
    }
}

/// Basket-level categorical columns in [`BasketRecord::categories`] order, after the two
/// line-level ones (`PROD_CODE_20`, `PROD_CODE_30`) that are aggregated by spend.
const BASKET_COLUMNS: [&str; 4] = ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT"];

/// Baskets read from a transaction file; category values are interned (canonical spelling).
#[derive(Debug, Default)]
pub struct Baskets {
    /// `BASKET_ID` of each basket.
    pub ids: Vec<Box<str>>,
    /// Interned `CUST_CODE`, `None` for baskets without a customer.
    pub customers: Vec<Option<u32>>,
    /// Total spend.
    pub spend: Vec<f64>,
    /// Total quantity.
    pub quantity: Vec<f64>,
    /// Interned categorical values in [`BasketRecord::categories`] order.
    pub categories: Vec<[u32; N_CATEGORICAL]>,
    /// Class index of the label, `None` when the basket is labelled `XX`.
    pub labels: Vec<Option<u8>>,
    /// Interned strings.
    pub values: Vec<Box<str>>,
    /// Transaction lines read.
    pub lines: u64,
    /// The 1-based file line of each basket's first transaction line.
    pub first_lines: Vec<u64>,
}

impl Baskets {
    /// Number of baskets.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no baskets.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The basket as the model sees it.
    pub fn record(&self, i: usize) -> BasketRecord<&str> {
        let c = self.categories[i].map(|v| &*self.values[v as usize]);
        BasketRecord {
            spend: self.spend[i],
            quantity: self.quantity[i],
            prod_code_20: c[0],
            prod_code_30: c[1],
            basket_size: c[2],
            basket_type: c[3],
            store_region: c[4],
            store_format: c[5],
        }
    }

    /// Key the train/validation/test split groups by: the customer, or the basket itself when
    /// it has no customer.
    pub fn group_key(&self, i: usize) -> &str {
        match self.customers[i] {
            Some(c) => &self.values[c as usize],
            None => &self.ids[i],
        }
    }
}

/// Reads a transaction CSV file.
pub fn read_baskets(path: &Path, progress: &dyn Progress) -> Result<(Baskets, Vec<u8>), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let baskets = parse_baskets(&bytes, progress)?;
    Ok((baskets, bytes))
}

struct Line {
    basket: u32,
    department: u32,
    commodity: u32,
    spend: f64,
    quantity: f64,
}

#[derive(Default)]
struct Interner {
    ids: foldhash::HashMap<Box<[u8]>, u32>,
    values: Vec<Box<str>>,
    canonical: foldhash::HashMap<String, u32>,
}

impl Interner {
    /// Id of the canonical spelling of a raw value.
    fn intern(&mut self, raw: &[u8], line: u64, column: &str) -> Result<u32, DataError> {
        if let Some(&id) = self.ids.get(raw) {
            return Ok(id);
        }
        let text = std::str::from_utf8(raw).map_err(|_| DataError::Field {
            line,
            column: column.to_owned(),
            value: String::from_utf8_lossy(raw).into_owned(),
            reason: "is not valid UTF-8".to_owned(),
        })?;
        let id = self.canonical_id(catalogue::canonical(text));
        self.ids.insert(raw.into(), id);
        Ok(id)
    }

    /// Id of a canonical spelling.
    fn canonical_id(&mut self, canonical: String) -> u32 {
        let next = self.values.len() as u32;
        *self.canonical.entry(canonical).or_insert_with_key(|canonical| {
            self.values.push(canonical.as_str().into());
            next
        })
    }
}

/// A CSV reader over `bytes` and its header, after checking that every `required` column is
/// present (extra columns are allowed).
fn open_csv<'a>(bytes: &'a [u8], required: &[&str]) -> Result<(BytesReader<'a>, csv::ByteRecord), DataError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(Lines::new(bytes));
    let header = header(&mut reader, required)?;
    Ok((reader, header))
}

/// The header `reader` starts with, after checking that every `required` column is present.
fn header<R: Read>(reader: &mut csv::Reader<R>, required: &[&str]) -> Result<csv::ByteRecord, DataError> {
    let header = reader.byte_headers().map_err(|e| DataError::Csv { line: 1, reason: e.to_string() })?.clone();
    let missing: Vec<String> =
        required.iter().filter(|h| !header.iter().any(|x| x == h.as_bytes())).map(|h| (*h).to_owned()).collect();
    if missing.is_empty() { Ok(header) } else { Err(DataError::Header { missing }) }
}

/// The columns scoring needs: a basket's id, its lines' amounts and products, and its
/// basket-level categories (the label, the customer and the rest are optional).
pub const SCORING_COLUMNS: [&str; 9] = [
    "BASKET_ID",
    "QUANTITY",
    "SPEND",
    "PROD_CODE_20",
    "PROD_CODE_30",
    "BASKET_SIZE",
    "BASKET_TYPE",
    "STORE_REGION",
    "STORE_FORMAT",
];

/// Index of a column known to be in `header`.
fn column(header: &csv::ByteRecord, name: &str) -> usize {
    header.iter().position(|h| h == name.as_bytes()).unwrap_or_default()
}

/// Parses transaction CSV bytes with the full dunnhumby header (training, evaluation).
pub fn parse_baskets(bytes: &[u8], progress: &dyn Progress) -> Result<Baskets, DataError> {
    blocks::read(("input", bytes), progress, &HEADER, bytes.len() as u64)
}

/// Parses transaction CSV bytes to score: only [`SCORING_COLUMNS`] are required; a basket
/// without a `BASKET_PRICE_SENSITIVITY` column is unlabelled (`None`), like one labelled `XX`.
pub fn parse_unlabelled(bytes: &[u8], progress: &dyn Progress) -> Result<Baskets, DataError> {
    blocks::read(("input", bytes), progress, &SCORING_COLUMNS, bytes.len() as u64)
}

/// [`parse_unlabelled`] of the transaction lines read from `reader` (the input `name`), a block
/// at a time: blocks are parsed on every core while the next ones are read, and the input is
/// never held whole in memory.
pub fn read_unlabelled(name: &str, reader: impl Read, progress: &dyn Progress) -> Result<Baskets, DataError> {
    blocks::read((name, reader), progress, &SCORING_COLUMNS, 0)
}

/// Sums each basket's lines (in file order) into its spend and quantity, finds its dominant
/// department and commodity, and checks every basket's totals.
fn aggregate(mut out: Baskets, values: Vec<Box<str>>, mut lines: Vec<Line>) -> Result<Baskets, DataError> {
    if lines.is_empty() {
        return Err(DataError::Empty);
    }
    out.lines = lines.len() as u64;
    // Lines of one basket are usually contiguous; a stable sort keeps file order within a basket.
    if !lines.windows(2).all(|w| w[0].basket <= w[1].basket) {
        lines.sort_by_key(|l| l.basket);
    }
    let n = out.ids.len();
    out.spend = vec![0.0; n];
    out.quantity = vec![0.0; n];
    let mut departments: Vec<(u32, f64)> = Vec::new();
    let mut commodities: Vec<(u32, f64)> = Vec::new();
    for group in lines.chunk_by(|a, b| a.basket == b.basket) {
        let b = group[0].basket as usize;
        departments.clear();
        commodities.clear();
        for l in group {
            out.spend[b] += l.spend;
            out.quantity[b] += l.quantity;
            add(&mut departments, l.department, l.spend);
            add(&mut commodities, l.commodity, l.spend);
        }
        let name = |id: &u32| &*values[*id as usize];
        out.categories[b][0] = *dominant_by_spend(&departments, name).unwrap_or(&group[0].department);
        out.categories[b][1] = *dominant_by_spend(&commodities, name).unwrap_or(&group[0].commodity);
    }
    out.values = values;
    for (b, &line) in out.first_lines.iter().enumerate() {
        if let Err(invalid) = out.record(b).validate() {
            let error = &invalid.errors[0];
            return Err(DataError::Field {
                line,
                column: error.field.clone(),
                value: out.ids[b].to_string(),
                reason: format!("(basket total) {}", error.reason),
            });
        }
    }
    Ok(out)
}

fn add(totals: &mut Vec<(u32, f64)>, key: u32, spend: f64) {
    match totals.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += spend,
        None => totals.push((key, spend)),
    }
}

fn number(raw: &[u8], line: u64, column: &str, min: f64) -> Result<f64, DataError> {
    let fail = |reason: &str| DataError::Field {
        line,
        column: column.to_owned(),
        value: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.to_owned(),
    };
    let value: f64 =
        std::str::from_utf8(raw).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| fail("is not a number"))?;
    if !value.is_finite() {
        return Err(fail("is not a finite number"));
    }
    if value < min {
        return Err(fail(if min > 0.0 { "must be positive" } else { "must not be negative" }));
    }
    Ok(value)
}

fn parse_label(raw: &[u8], line: u64) -> Result<Option<u8>, DataError> {
    if raw == b"XX" {
        return Ok(None);
    }
    CLASSES.iter().position(|c| c.as_bytes() == raw).map(|i| Some(i as u8)).ok_or_else(|| DataError::Field {
        line,
        column: TARGET.to_owned(),
        value: String::from_utf8_lossy(raw).into_owned(),
        reason: format!("is not a class ({} or XX)", CLASSES.join(", ")),
    })
}

/// The error for a line of basket `b` whose customer, label or basket-level columns differ
/// from its first line's: the first column that differs, both values named.
fn inconsistent(
    out: &Baskets,
    values: &[Box<str>],
    b: usize,
    line: u64,
    (customer, label, basket_level): (Option<u32>, Option<u8>, [u32; 4]),
) -> DataError {
    let name = |id: Option<u32>| id.map_or_else(String::new, |i| values[i as usize].to_string());
    let mut columns = vec![
        ("CUST_CODE", name(out.customers[b]), name(customer)),
        (TARGET, label_name(out.labels[b]), label_name(label)),
    ];
    for (k, column) in BASKET_COLUMNS.iter().enumerate() {
        columns.push((column, name(Some(out.categories[b][2 + k])), name(Some(basket_level[k]))));
    }
    let (column, first, found) = columns.into_iter().find(|(_, first, found)| first != found).unwrap_or((
        "CUST_CODE",
        String::new(),
        String::new(),
    ));
    DataError::Inconsistent { line, column, basket: out.ids[b].to_string(), first, found }
}

fn label_name(label: Option<u8>) -> String {
    label.map_or("XX", |l| CLASSES[l as usize]).to_owned()
}

/// Reads a truth sidecar (`BASKET_ID,P_LA,P_MM,P_UM,...`) into basket id → true probabilities.
pub fn read_truth(path: &Path) -> Result<HashMap<String, [f64; 3]>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_owned(), source })?;
    let expected = ["BASKET_ID", "P_LA", "P_MM", "P_UM"];
    let (mut reader, header) = open_csv(&bytes, &expected)?;
    let cols = expected.map(|name| column(&header, name));
    let mut truth = HashMap::new();
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| DataError::Csv { line: reader.get_mut().line(e.position()), reason: e.to_string() })?
    {
        let line = reader.get_mut().line(record.position());
        let field = |i: usize| record.get(cols[i]).unwrap_or_default();
        let mut p = [0.0; 3];
        for (k, slot) in p.iter_mut().enumerate() {
            *slot = number(field(k + 1), line, expected[k + 1], 0.0)?;
        }
        truth.insert(String::from_utf8_lossy(field(0)).into_owned(), p);
    }
    if truth.is_empty() {
        return Err(DataError::Empty);
    }
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use crate::synth::{GenConfig, generate, label};

    const H: &str = "SHOP_WEEK,SHOP_DATE,SHOP_WEEKDAY,SHOP_HOUR,QUANTITY,SPEND,PROD_CODE,PROD_CODE_10,PROD_CODE_20,PROD_CODE_30,PROD_CODE_40,CUST_CODE,CUST_PRICE_SENSITIVITY,CUST_LIFESTAGE,BASKET_ID,BASKET_SIZE,BASKET_PRICE_SENSITIVITY,BASKET_TYPE,BASKET_DOMINANT_MISSION,STORE_CODE,STORE_FORMAT,STORE_REGION";

    fn line(quantity: &str, spend: &str, dept: &str, comm: &str, cust: &str, basket: &str, label: &str) -> String {
        format!(
            "200614,20060403,2,10,{quantity},{spend},P1,CL1,{dept},{comm},D1,{cust},MM,YA,{basket},M,{label},MIXED,TOP_UP,S1,LS,LONDON"
        )
    }

    #[test]
    fn a_basket_whose_customer_or_label_changes_is_refused_naming_line_column_and_values() {
        let parse = |second: String| {
            let csv = [H.to_owned(), line("1", "2.00", "FOOD", "FRESH", "C1", "B1", "MM"), second].join("\n");
            parse_baskets(csv.as_bytes(), &Silent).map(|b| b.len()).map_err(|e| e.to_string())
        };
        assert_eq!(
            parse(line("1", "1.00", "FOOD", "FRESH", "C2", "B1", "MM")),
            Err("line 3, column CUST_CODE: basket B1 has \"C2\" here but \"C1\" on its first line".to_owned())
        );
        assert_eq!(
            parse(line("1", "1.00", "FOOD", "FRESH", "C1", "B1", "UM")),
            Err(format!("line 3, column {TARGET}: basket B1 has \"UM\" here but \"MM\" on its first line"))
        );
        let region = line("1", "1.00", "FOOD", "FRESH", "C1", "B1", "MM").replace(",LS,LONDON", ",LS,NORTH");
        assert_eq!(
            parse(region),
            Err("line 3, column STORE_REGION: basket B1 has \"NORTH\" here but \"LONDON\" on its first line".to_owned())
        );
        // Spellings that canonicalise alike are the same value.
        let lower = line("1", "1.00", "FOOD", "FRESH", "C1", "B1", "MM").replace(",LS,LONDON", ",ls,london");
        assert_eq!(parse(lower), Ok(1));
    }

    #[test]
    fn aggregates_baskets_by_dominant_spend_even_when_interleaved() {
        let csv = [
            H.to_owned(),
            line("1", "2.00", "FOOD", "FRESH", "C1", "B1", "MM"),
            line("2", "3.00", "DRINKS", "BEER_CIDER", "", "B2", "XX"),
            line("1", "1.50", "food", "grocery", "C1", "B1", "MM"),
            line("1", "1.00", "FOOD", "Grocery", "C1", "B1", "MM"),
        ]
        .join("\n");
        let b = parse_baskets(csv.as_bytes(), &Silent).expect("parse");
        assert_eq!(b.len(), 2);
        assert_eq!(b.lines, 4);
        let r = b.record(0);
        assert_eq!((r.spend, r.quantity), (4.5, 3.0));
        assert_eq!((r.prod_code_20, r.prod_code_30), ("FOOD", "GROCERY"));
        assert_eq!(b.labels, vec![Some(1), None]);
        assert_eq!(b.group_key(0), "C1");
        assert_eq!(b.group_key(1), "B2", "no customer: the basket is its own group");
    }

    #[test]
    fn scoring_reads_unlabelled_lines_of_the_basket_columns_and_keeps_first_lines() {
        let header =
            "BASKET_ID,QUANTITY,SPEND,PROD_CODE_20,PROD_CODE_30,BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT";
        let csv = format!(
            "{header}\nB1,1,2.00,FOOD,FRESH,M,MIXED,LONDON,LS\nB2,2,3.00,DRINKS,BEER_CIDER,S,MIXED,LONDON,LS\nB1,1,1.00,FOOD,FRESH,M,MIXED,LONDON,LS\n"
        );
        let b = parse_unlabelled(csv.as_bytes(), &Silent).expect("parse");
        assert_eq!((b.len(), b.first_lines.clone()), (2, vec![2, 3]));
        assert_eq!(b.labels, vec![None, None]);
        assert_eq!(b.record(0).spend, 3.0);
        assert!(parse_baskets(csv.as_bytes(), &Silent).is_err(), "training still needs the label");
        let e = parse_unlabelled(b"BASKET_ID,SPEND\nB1,1\n", &Silent).expect_err("header").to_string();
        assert!(e.contains("missing column(s) QUANTITY"), "{e}");
        let labelled = [H.to_owned(), line("1", "2.00", "FOOD", "FRESH", "C1", "B1", "MM")].join("\n");
        assert_eq!(parse_unlabelled(labelled.as_bytes(), &Silent).expect("labelled").labels, vec![Some(1)]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad = |l: String| parse_baskets(format!("{H}\n{l}\n").as_bytes(), &Silent).expect_err("bad").to_string();
        let e = bad(line("1", "abc", "FOOD", "FRESH", "C1", "B1", "MM"));
        assert!(e.contains("line 2, column SPEND") && e.contains("not a number"), "{e}");
        let e = bad(line("1", "-1", "FOOD", "FRESH", "C1", "B1", "MM"));
        assert!(e.contains("column SPEND") && e.contains("negative"), "{e}");
        let e = bad(line("0", "1", "FOOD", "FRESH", "C1", "B1", "MM"));
        assert!(e.contains("column QUANTITY"), "{e}");
        let e = bad(line("1", "NaN", "FOOD", "FRESH", "C1", "B1", "MM"));
        assert!(e.contains("finite"), "{e}");
        let e = bad(line("1", "1", "FOOD", "FRESH", "C1", "B1", "HIGH"));
        assert!(e.contains("column BASKET_PRICE_SENSITIVITY"), "{e}");
        let e = bad(format!(
            "{}\n{}",
            line("1", "1", "FOOD", "FRESH", "C1", "B1", "MM"),
            line("1", "1", "FOOD", "FRESH", "C2", "B1", "MM")
        ));
        assert!(e.contains("line 3, column CUST_CODE") && e.contains("B1"), "{e}");
        let e = bad("1,2,3".to_owned());
        assert!(e.contains("line 2"), "{e}");
        let e = parse_baskets(b"A,B\n1,2\n", &Silent).expect_err("header").to_string();
        assert!(e.contains("missing column(s) SHOP_WEEK"), "{e}");
        let e = parse_baskets(format!("{H}\n").as_bytes(), &Silent).expect_err("empty").to_string();
        assert!(e.contains("no data lines"), "{e}");
        let e = parse_baskets(b"", &Silent).expect_err("empty file").to_string();
        assert!(e.contains("missing column"), "{e}");
    }

    #[test]
    fn reading_generated_data_recovers_the_generator_records_exactly() {
        let (mut data, mut truth) = (Vec::new(), Vec::new());
        generate(GenConfig { baskets: 3000, seed: 11 }, &mut data, Some(&mut truth), &Silent).expect("generate");
        let baskets = parse_baskets(&data, &Silent).expect("parse");
        assert_eq!(baskets.len(), 3000);
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &truth).expect("write");
        let truth = read_truth(&path).expect("truth");
        // The label model applied to the reconstructed record gives the sidecar's probabilities
        // bit for bit: training sees exactly what the labels were drawn from.
        for i in 0..baskets.len() {
            let p = label::class_probabilities(&baskets.record(i));
            assert_eq!(p, truth[&*baskets.ids[i]], "basket {}", baskets.ids[i]);
        }
    }
}
