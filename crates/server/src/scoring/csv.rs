//! CSV rows (SageMaker's `text/csv`), read one row at a time into the batch: a basket
//! classifier's flat record in the seed's column order, or a tabular model's columns in schema
//! order (an empty cell is missing); a header row optional.

use std::borrow::Cow;

use retail_model::csv_plain;

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
            let header = |row: &[&str]| row.iter().map(|c| c.trim_ascii()).eq(names.iter().copied());
            read_rows(body, &names, header, Encoder::Tabular(schema), limits, cancel, |cells| {
                let slots: Vec<Slot<'_>> =
                    cells.iter().map(|cell| Slot::Str(Cow::Borrowed(cell.trim_ascii()))).collect();
                encode_slots(schema, &slots, "")
            })?
        }
        _ => {
            let pipeline = model.basket_pipeline()?;
            let header = |row: &[&str]| row.first().map(|c| c.trim_ascii()) == Some(CSV_COLUMNS[0]);
            read_rows(body, &CSV_COLUMNS, header, Encoder::Basket(pipeline), limits, cancel, |row| {
                let slots: [Slot<'_>; 8] = std::array::from_fn(|f| {
                    let cell = row.get(COLUMN_OF_FIELD[f]).copied().unwrap_or_default().trim_ascii();
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
    is_header: impl Fn(&[&str]) -> bool,
    encoder: Encoder<'p>,
    (max_rows, mode): (usize, ErrorsMode),
    cancel: &Cancel,
    encode: impl Fn(&[&str]) -> Result<Row, FieldErrors>,
) -> Result<Batch<'p>, ScoreError> {
    let mut batch = Batch::new(encoder, max_rows, cancel);
    // Adds row `line`; false once the batch takes no more.
    let mut add = |line: usize, row: &[&str]| {
        if line == 1 && is_header(row) {
            return Ok(true);
        }
        let pushed = if row.len() == columns.len() {
            batch.push(|| encode(row))
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
        Ok(pushed.is_ok())
    };
    match plain(body) {
        Some(text) => {
            let (mut row, mut line, mut added) = (Vec::with_capacity(columns.len()), 0, Ok(()));
            csv_plain::records(text.as_bytes(), |_, record, commas| {
                line += 1;
                row.clear();
                // Commas and line ends are ASCII: every field of valid UTF-8 text is text.
                let cell = |i| std::str::from_utf8(csv_plain::field(record, commas, i)).unwrap_or_default();
                row.extend((0..=commas.len()).map(cell));
                add(line, &row).unwrap_or_else(|e| {
                    added = Err(e);
                    false
                })
            });
            added?;
        }
        None => {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
            let mut record = csv::StringRecord::new();
            for line in 1.. {
                match reader.read_record(&mut record) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => return Err(ScoreError::Malformed(format!("CSV row {line}: {e}"))),
                }
                if !add(line, &record.iter().collect::<Vec<_>>())? {
                    break;
                }
            }
        }
    }
    Ok(batch)
}

/// `body` as text when it is valid UTF-8 without quotes: its rows can be split directly
/// ([`csv_plain::records`]).
fn plain(body: &[u8]) -> Option<&str> {
    if body.contains(&b'"') { None } else { std::str::from_utf8(body).ok() }
}

#[cfg(test)]
mod tests {
    use retail_model::artifact::Artifact;

    use super::*;

    /// `body` with the first cell of each row quoted: the same rows to the CSV reader, which
    /// the direct split never sees.
    fn quoted(body: &str) -> String {
        body.split_inclusive(['\n', '\r'])
            .map(|row| match row.split_once(',') {
                Some((first, rest)) => format!("\"{first}\",{rest}"),
                None => row.to_owned(),
            })
            .collect()
    }

    fn answers(artifact: &Artifact, body: &str, mode: ErrorsMode) -> String {
        match score_csv(artifact, body.as_bytes(), (100, mode), false, &Cancel::default()) {
            Ok(answers) => serde_json::to_string(&answers.items).expect("json"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn rows_split_directly_read_as_the_csv_reader_reads_them() {
        let artifact = Artifact::embedded_default().expect("default model");
        let header = CSV_COLUMNS.join(",");
        let row = "M,MIXED,LONDON,LS,125.5,3,FOOD,FRESH";
        let bodies = [
            format!("{header}\n{row}\n"),
            format!("{row}\r\n{row}\r\n"),
            format!("{row}\r{row}\r"),
            format!("\n\n{row}\n\r\n{row}"),
            format!("{row}\n M , MIXED ,LONDON,LS, 125.5 ,3,FOOD,FRESH \n"),
            format!("{row},\n{row}\nM,MIXED\n"),
            format!("{row}\nS,GROCERY,NOWHERE,XX,abc,-1,,\n"),
            format!("{header}\n{row}\n{header}\n"),
            format!(" {header}\n{row}"),
        ];
        for body in &bodies {
            let twin = quoted(body);
            assert_ne!(body, &twin);
            assert!(plain(body.as_bytes()).is_some() && plain(twin.as_bytes()).is_none());
            for mode in [ErrorsMode::Inline, ErrorsMode::AllOrNothing] {
                assert_eq!(answers(&artifact, body, mode), answers(&artifact, &twin, mode), "{body:?}");
            }
        }
    }
}
