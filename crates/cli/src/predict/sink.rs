//! Writing `retail-api predict` results: CSV (`source,line,id,prediction,[P_class…],warnings,
//! error`) or JSON lines (`source`, `line`, `id` for baskets of transaction lines, then the
//! API's answer, or the error as `/invocations` lists it).

use std::io::{self, Write};

use rayon::prelude::*;
use retail_model::artifact::Artifact;
use retail_model::metrics::argmax;
use retail_server::scoring::{Explaining, Explanation, Record, RecordError, Scores, is_regression};
use serde_json::json;

use super::chunks::{Item, Row, Scored};
use super::format::{OutputFormat, cell};

/// Records formatted together on one core.
const FORMAT_ROWS: usize = 1024;

/// Writes results in one format, counting the records not scored.
pub(crate) struct Sink {
    format: OutputFormat,
    /// A classifier's class codes (empty for a regression).
    classes: Vec<String>,
    /// Their CSV cells.
    class_cells: Vec<Vec<u8>>,
    /// With explanations: the CSV columns of one record's, `BASE_<class>` then
    /// `C_<class>_<field>` per class (`BASE`, `C_<field>` for a regression).
    explained: Option<Vec<String>>,
    /// Records answered with an error.
    pub(crate) failed: usize,
    /// Records scored.
    pub(crate) scored: usize,
}

impl Sink {
    /// A sink for `artifact`'s answers, with their explanations when `explain`.
    pub(crate) fn new(format: OutputFormat, artifact: &Artifact, explain: bool) -> anyhow::Result<Self> {
        let classes = if is_regression(artifact) {
            Vec::new()
        } else {
            artifact.manifest.classes.iter().map(|c| c.code.clone()).collect()
        };
        let explained = match explain {
            true => Some(explain_columns(&classes, Explaining::of(artifact)?.fields())),
            false => None,
        };
        let class_cells = classes.iter().map(|c| cell(c.as_bytes()).into_owned()).collect();
        Ok(Self { format, classes, class_cells, explained, failed: 0, scored: 0 })
    }

    /// The CSV header (nothing for JSON lines).
    pub(crate) fn header(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.format == OutputFormat::Jsonl {
            return Ok(());
        }
        let probabilities: String = self.classes.iter().map(|c| format!(",P_{c}")).collect();
        let explained: String = self.explained.iter().flatten().map(|c| format!(",{c}")).collect();
        writeln!(out, "source,line,id,prediction{probabilities}{explained},warnings,error")
    }

    /// Writes the results of records of the input `source`, formatted on every core in parts
    /// of [`FORMAT_ROWS`] and written in order.
    pub(crate) fn write(&mut self, out: &mut dyn Write, source: &str, scored: &Scored<'_>) -> io::Result<()> {
        let parts: Vec<io::Result<(Vec<u8>, usize)>> = scored
            .rows
            .par_chunks(FORMAT_ROWS)
            .map(|part| {
                let lines: Vec<Line<'_>> = part.iter().map(|row| Line::of(scored, row)).collect();
                let failed = lines.iter().filter(|line| line.failed()).count();
                Ok((self.format(source, lines.into_iter())?, failed))
            })
            .collect();
        let mut failed = 0;
        for part in parts {
            let (bytes, part_failed) = part?;
            out.write_all(&bytes)?;
            failed += part_failed;
        }
        self.failed += failed;
        self.scored += scored.rows.len() - failed;
        Ok(())
    }

    /// The lines of records of `source`.
    fn format<'s>(&self, source: &str, rows: impl ExactSizeIterator<Item = Line<'s>>) -> io::Result<Vec<u8>> {
        let mut lines = Vec::with_capacity(rows.len() * 128);
        match self.format {
            OutputFormat::Csv => {
                let source = cell(source.as_bytes());
                for row in rows {
                    self.csv_row(&mut lines, &source, &row);
                }
                Ok(lines)
            }
            OutputFormat::Jsonl => {
                for row in rows {
                    json_row(&mut lines, source, &row)?;
                    lines.push(b'\n');
                }
                Ok(lines)
            }
        }
    }

    /// One CSV record, after the cell of its `source`.
    fn csv_row(&self, out: &mut Vec<u8>, source: &[u8], row: &Line<'_>) {
        let float = |out: &mut Vec<u8>, value: f64| {
            out.push(b',');
            super::number::push_f64(out, value);
        };
        let empty = |out: &mut Vec<u8>, n: usize| out.extend(std::iter::repeat_n(b',', n));
        out.extend_from_slice(source);
        out.push(b',');
        out.extend_from_slice(itoa::Buffer::new().format(row.line).as_bytes());
        out.push(b',');
        out.extend_from_slice(&cell(row.id.unwrap_or_default().as_bytes()));
        let (explanation, warnings) = match row.what {
            What::Record(Record::Scored { outputs, warnings, explanation }) => {
                if self.classes.is_empty() {
                    match outputs.first() {
                        Some(value) => float(out, *value),
                        None => empty(out, 1),
                    }
                } else {
                    // The class with the highest probability, as the API's answer names it.
                    out.push(b',');
                    out.extend_from_slice(self.class_cells.get(argmax(outputs)).map_or(&[][..], Vec::as_slice));
                    for p in outputs {
                        float(out, *p);
                    }
                }
                (explanation, warnings)
            }
            What::Record(Record::Failed(_)) | What::Unreadable(_) => {
                empty(out, 1 + self.classes.len());
                (None, [].as_slice())
            }
        };
        if let Some(columns) = &self.explained {
            match explanation.map(Explanation::raw) {
                Some(raw) => {
                    for (output, base) in raw.base.iter().enumerate() {
                        float(out, *base);
                        for value in raw.of_output(output) {
                            float(out, *value);
                        }
                    }
                }
                None => empty(out, columns.len()),
            }
        }
        out.push(b',');
        out.extend_from_slice(&cell(warnings.join("; ").as_bytes()));
        out.push(b',');
        match row.what {
            What::Record(Record::Failed(e)) => out.extend_from_slice(&cell(field_errors(e).as_bytes())),
            What::Unreadable(e) => out.extend_from_slice(&cell(e.as_bytes())),
            What::Record(Record::Scored { .. }) => {}
        }
        out.push(b'\n');
    }
}

/// The explanation columns: per output, `BASE_<class>` then `C_<class>_<field>` for each field
/// (`BASE` and `C_<field>` for a regression's one output).
fn explain_columns(classes: &[String], fields: &[String]) -> Vec<String> {
    let outputs: Vec<String> = match classes.is_empty() {
        true => vec![String::new()],
        false => classes.iter().map(|c| format!("_{c}")).collect(),
    };
    let mut columns = Vec::with_capacity(outputs.len() * (fields.len() + 1));
    for output in &outputs {
        columns.push(format!("BASE{output}"));
        columns.extend(fields.iter().map(|f| format!("C{output}_{f}")));
    }
    columns
}

/// One output line: an input line's number, its id (a basket's), what it became.
struct Line<'s> {
    line: u64,
    id: Option<&'s str>,
    what: What<'s>,
    /// The record's API answer (JSON lines): the chunk's scores and its index in them.
    answer: Option<(&'s Scores<'s>, usize)>,
}

/// What an input line became: a record's scores or error, or an unreadable line's error.
#[derive(Clone, Copy)]
enum What<'s> {
    Record(Record<'s>),
    Unreadable(&'s str),
}

impl<'s> Line<'s> {
    fn of(scored: &'s Scored<'s>, row: &'s Row) -> Self {
        let (what, id, answer) = match (&row.item, &scored.scores) {
            (Item::Record(i), Some(scores)) => {
                (What::Record(scores.record(*i)), scored.ids.get(*i), Some((scores, *i)))
            }
            (Item::Unreadable(e), _) => (What::Unreadable(e), None, None),
            // A chunk with records has their scores.
            (Item::Record(_), None) => (What::Unreadable("not scored"), None, None),
        };
        Self { line: row.line, id: id.map(|id| &**id), what, answer }
    }

    /// Whether the record was answered with an error.
    fn failed(&self) -> bool {
        matches!(self.what, What::Unreadable(_) | What::Record(Record::Failed(_)))
    }
}

/// A record's invalid fields in one cell: `FIELD: reason; …`, and how many more there were.
fn field_errors(e: &RecordError) -> String {
    let mut text = e.details.iter().map(|d| format!("{}: {}", d.field, d.reason)).collect::<Vec<_>>().join("; ");
    if e.total_errors > e.details.len() {
        text.push_str(&format!("; and {} more", e.total_errors - e.details.len()));
    }
    text
}

/// One JSON line: where the record came from (first), then its answer or error.
fn json_row(line: &mut Vec<u8>, source: &str, row: &Line<'_>) -> io::Result<()> {
    line.extend_from_slice(b"{\"source\":");
    serde_json::to_writer(&mut *line, source)?;
    line.extend_from_slice(format!(",\"line\":{}", row.line).as_bytes());
    if let Some(id) = row.id {
        line.extend_from_slice(b",\"id\":");
        serde_json::to_writer(&mut *line, id)?;
    }
    let rest = match (row.what, row.answer) {
        (What::Record(Record::Failed(e)), _) => serde_json::to_vec(
            &json!({"error": e.error, "code": "invalid_input", "details": e.details, "total_errors": e.total_errors}),
        )?,
        (What::Record(Record::Scored { .. }), Some((scores, i))) => serde_json::to_vec(&scores.answer(i))?,
        (What::Unreadable(e), _) => serde_json::to_vec(&json!({"error": e, "code": "malformed_json"}))?,
        (What::Record(Record::Scored { .. }), None) => serde_json::to_vec(&json!({"error": "not scored"}))?,
    };
    // `rest` is an object: its members follow ours.
    match rest.strip_prefix(b"{") {
        Some(members) if members != b"}" => {
            line.push(b',');
            line.extend_from_slice(members);
        }
        _ => line.push(b'}'),
    }
    Ok(())
}
