//! CSV rows (SageMaker's `text/csv`), read one row at a time into the batch: a basket
//! classifier's flat record in the seed's column order, or a tabular model's columns in schema
//! order (an empty cell is missing); a header row optional.

use std::borrow::Cow;

use super::batch::{Batch, BatchAnswers, ErrorsMode};
use super::record::{FLAT_FIELDS, encode_flat};
use super::scores::{Scores, scores};
use super::slot::Slot;
use super::tabular::encode_slots;
use super::{Cancel, Encoder, Explaining, FieldErrors, Row, ScoreError, Scorer};

/// The CSV columns, the seed's field order.
pub const CSV_COLUMNS: [&str; 8] =
    ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT", "SPEND", "QUANTITY", "PROD_CODE_20", "PROD_CODE_30"];

/// For each of [`FLAT_FIELDS`], its CSV column.
const COLUMN_OF_FIELD: [usize; 8] = {
    let mut columns = [0; 8];
    let mut f = 0;
    while f < 8 {
        let mut c = 0;
        while !const_eq(CSV_COLUMNS[c], FLAT_FIELDS[f]) {
            c += 1;
        }
        columns[f] = c;
        f += 1;
    }
    columns
};

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Scores CSV rows (at most `max_rows`); every invalid field is listed as `records[i].FIELD`.
/// A basket row: a number that does not parse stays a string, so the record check names it. A
/// tabular row: cells are text, read by their column as training read them. With `explain`,
/// each answer carries its record's explanation.
pub fn score_csv<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    limits: (usize, ErrorsMode),
    explain: bool,
    cancel: &Cancel,
) -> Result<BatchAnswers, ScoreError> {
    csv_scores(model, body, limits, explain, cancel).map(Scores::into_answers)
}

/// [`score_csv`]'s scores, before answers are built from them.
pub fn csv_scores<'m, M: Scorer + ?Sized>(
    model: &'m M,
    body: &[u8],
    limits: (usize, ErrorsMode),
    explain: bool,
    cancel: &Cancel,
) -> Result<Scores<'m>, ScoreError> {
    let explaining = explain.then(|| Explaining::of(model.artifact())).transpose()?;
    let batch = match model.encoder() {
        Encoder::Tabular(schema) => {
            let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
            // A header is the column names; an unlikely first row of data equal to them reads so.
            let header = |row: &csv::StringRecord| row.iter().map(str::trim_ascii).eq(names.iter().copied());
            read_rows(body, &names, header, Encoder::Tabular(schema), limits, cancel, |cells| {
                let slots: Vec<Slot<'_>> =
                    cells.iter().map(|cell| Slot::Str(Cow::Borrowed(cell.trim_ascii()))).collect();
                encode_slots(schema, &slots, "")
            })?
        }
        _ => {
            let pipeline = model.basket_pipeline()?;
            let header = |row: &csv::StringRecord| row.get(0).map(str::trim_ascii) == Some(CSV_COLUMNS[0]);
            read_rows(body, &CSV_COLUMNS, header, Encoder::Basket(pipeline), limits, cancel, |row| {
                let slots: [Slot<'_>; 8] = std::array::from_fn(|f| {
                    let cell = row.get(COLUMN_OF_FIELD[f]).unwrap_or_default().trim_ascii();
                    let number = if f < 2 { cell.parse::<f64>().ok().filter(|n| n.is_finite()) } else { None };
                    number.map_or(Slot::Str(Cow::Borrowed(cell)), Slot::Number)
                });
                encode_flat(pipeline, slots.each_ref()).map(Row::Basket)
            })?
        }
    };
    scores(model, batch.finish(Ok(()), limits.1)?, explaining.as_ref(), cancel)
}

/// Reads CSV rows of `columns` into a batch, skipping a first row `is_header` says is one;
/// `encode` reads a row of the right length, trimming its cells (`str::trim_ascii`).
fn read_rows<'p>(
    body: &[u8],
    columns: &[&str],
    is_header: impl Fn(&csv::StringRecord) -> bool,
    encoder: Encoder<'p>,
    (max_rows, mode): (usize, ErrorsMode),
    cancel: &Cancel,
    encode: impl Fn(&csv::StringRecord) -> Result<Row, FieldErrors>,
) -> Result<Batch<'p>, ScoreError> {
    // Cells are trimmed where they are read: the reader's own trimming copies every row.
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut batch = Batch::new(encoder, max_rows, cancel);
    let mut row = csv::StringRecord::new();
    let mut line = 0;
    loop {
        line += 1;
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ScoreError::Malformed(format!("CSV row {line}: {e}"))),
        }
        if line == 1 && is_header(&row) {
            continue;
        }
        let pushed = if row.len() == columns.len() {
            batch.push(|| encode(&row))
        } else {
            let mut errors = FieldErrors::default();
            let shown =
                if columns.len() > 12 { format!("{}, …", columns[..12].join(",")) } else { columns.join(",") };
            let reason = || format!("has {} columns, expected {} ({shown})", row.len(), columns.len());
            if mode == ErrorsMode::AllOrNothing {
                errors.push(|| format!("row {line}"), reason);
                return Err(ScoreError::Invalid(errors));
            }
            errors.field("row", reason);
            batch.push(|| Err(errors))
        };
        if pushed.is_err() {
            break;
        }
    }
    Ok(batch)
}
