//! CSV rows of the flat record (SageMaker's `text/csv`), read one row at a time into the batch:
//! columns in the seed's order, a header row optional.

use std::borrow::Cow;

use super::batch::{Batch, BatchAnswers, ErrorsMode, answers};
use super::record::{FLAT_FIELDS, encode_flat};
use super::slot::Slot;
use super::{Cancel, Encoder, FieldErrors, Row, ScoreError, Scorer};

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
/// A number that does not parse stays a string, so the record check names it.
pub fn score_csv<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    (max_rows, mode): (usize, ErrorsMode),
    cancel: &Cancel,
) -> Result<BatchAnswers, ScoreError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(body);
    let pipeline = model.basket_pipeline()?;
    let mut batch = Batch::new(Encoder::Basket(pipeline), max_rows, cancel);
    let mut row = csv::StringRecord::new();
    let mut line = 0;
    loop {
        line += 1;
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(ScoreError::Malformed(format!("CSV row {line}: {e}"))),
        }
        if line == 1 && row.get(0) == Some(CSV_COLUMNS[0]) {
            continue;
        }
        if row.len() != CSV_COLUMNS.len() {
            let mut errors = FieldErrors::default();
            let reason =
                || format!("has {} columns, expected {} ({})", row.len(), CSV_COLUMNS.len(), CSV_COLUMNS.join(","));
            if mode == ErrorsMode::AllOrNothing {
                errors.push(|| format!("row {line}"), reason);
                return Err(ScoreError::Invalid(errors));
            }
            errors.field("row", reason);
            if batch.push(|| Err(errors)).is_err() {
                break;
            }
            continue;
        }
        let slots: [Slot<'_>; 8] = std::array::from_fn(|f| {
            let cell = row.get(COLUMN_OF_FIELD[f]).unwrap_or_default();
            let number = if f < 2 { cell.parse::<f64>().ok().filter(|n| n.is_finite()) } else { None };
            number.map_or(Slot::Str(Cow::Borrowed(cell)), Slot::Number)
        });
        if batch.push(|| encode_flat(pipeline, slots.each_ref()).map(Row::Basket)).is_err() {
            break;
        }
    }
    answers(model, batch.finish(Ok(()), mode)?, cancel)
}
