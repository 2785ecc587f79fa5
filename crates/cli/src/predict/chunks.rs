//! Reading an input in chunks of records and scoring each chunk with the server's HTTP-free
//! scoring module (the parsing, feature pipeline, warnings and errors of `/invocations`), so the
//! offline answers are the API's. Flat CSV rows go through SageMaker's CSV reader as they are
//! (a sales forecast's rows become JSON records by their header); JSON lines become one batch
//! body per chunk; transaction lines are aggregated per basket (the whole input, since a
//! basket's lines may be anywhere in it), then scored as flat rows.

use std::io::{BufRead, Read};

use anyhow::{Context, bail};
use rayon::prelude::*;
use retail_model::artifact::{Artifact, Features};
use retail_server::scoring::{self, CSV_COLUMNS, Cancel, ErrorsMode, SALES_FIELDS, Scores};

use super::format::{InputFormat, header_cells};

/// Records scored at once.
pub(crate) const CHUNK_RECORDS: usize = 8192;

/// The model records are scored with, and whether each answer carries its explanation.
#[derive(Clone, Copy)]
pub(crate) struct Model<'a> {
    pub(crate) artifact: &'a Artifact,
    pub(crate) explain: bool,
}

/// What one input line became.
#[derive(Debug)]
pub(crate) enum Item {
    /// The chunk's record `i`: its scores, or its invalid fields.
    Record(usize),
    /// The line is not a JSON value.
    Unreadable(String),
}

/// One input line's result: its 1-based line (a basket's first line) and what it became.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) line: u64,
    pub(crate) item: Item,
}

/// A chunk's results: a row per line, in line order; the records' scores, and their ids (a
/// transaction basket's `BASKET_ID`, one per record, or none).
#[derive(Debug)]
pub(crate) struct Scored<'m> {
    pub(crate) rows: Vec<Row>,
    pub(crate) scores: Option<Scores<'m>>,
    pub(crate) ids: Vec<Box<str>>,
}

/// How the records of a chunk are handed to the scoring module.
#[derive(Debug, Clone)]
enum Body {
    /// CSV rows of [`CSV_COLUMNS`] or a tabular model's columns, in order.
    Csv,
    /// JSON lines.
    Json,
    /// CSV rows of these sales fields, turned into JSON records.
    SalesCsv(Vec<String>),
}

/// A chunk: its records' bytes (one per line) and lines, ids and unreadable lines.
#[derive(Default)]
struct Chunk {
    body: Vec<u8>,
    lines: Vec<u64>,
    ids: Vec<Box<str>>,
    unreadable: Vec<(u64, String)>,
}

/// Scores the input `name` read from `reader`, handing each chunk's results (in line order) to
/// `emit`. `format` is the asked one, else detected from `name` and the first line.
pub(crate) fn score_input(
    model: Model<'_>,
    name: &str,
    mut reader: Box<dyn BufRead + Send>,
    format: Option<InputFormat>,
    emit: &mut dyn FnMut(InputFormat, Scored<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut line = 0;
    let mut first = Vec::new();
    let Some(first_line) = next_line(&mut reader, &mut line, (name, &mut first))? else { return Ok(()) };
    let format = format.unwrap_or_else(|| InputFormat::detect(name, &first));
    let emit = &mut |rows: Scored<'_>| emit(format, rows);
    if format == InputFormat::Transactions {
        let mut header = first;
        header.push(b'\n');
        let lines = std::io::Cursor::new(header).chain(reader);
        // The header was the first non-blank line: number the lines of the file, not of `lines`.
        return score_transactions(model, (name, first_line - 1), lines, emit);
    }
    let (body, header) = match format {
        InputFormat::Jsonl => (Body::Json, false),
        _ => flat_body(model.artifact, name, &first)?,
    };
    let pending = (!header).then_some((first_line, first));
    let mut input = Input { reader, line, pending, name, text: Vec::new() };
    score_stream(model, (name, &body), &mut || input.chunks(&body), emit)
}

/// Scores the chunks `next` reads until it reads none, handing each chunk's results to `emit`
/// in order. While chunks are scored on the pool, this thread writes the results of the ones
/// before and reads the next ones.
fn score_stream<'a>(
    model: Model<'a>,
    (name, body): (&str, &Body),
    next: &mut dyn FnMut() -> anyhow::Result<Vec<Chunk>>,
    emit: &mut dyn FnMut(Scored<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut chunks = next()?;
    let mut scored = Vec::new();
    while !chunks.is_empty() || !scored.is_empty() {
        let mut next_scored = Vec::new();
        let current = std::mem::take(&mut chunks);
        let (emitted, read) = rayon::in_place_scope(|scope| {
            scope.spawn(|_| next_scored = score_all(model, name, body, current));
            // Read first: the pool formats what `emit` writes, so reading after it would leave the
            // pool idle once it has scored and formatted.
            let read = next();
            let emitted = scored.drain(..).try_for_each(|rows: anyhow::Result<Scored<'a>>| emit(rows?));
            (emitted, read)
        });
        emitted?;
        match read {
            Ok(read) => chunks = read,
            Err(e) => {
                // What was read before the failure is still written.
                for rows in next_scored {
                    emit(rows?)?;
                }
                return Err(e);
            }
        }
        scored = next_scored;
    }
    Ok(())
}

/// A line-oriented input being read: its reader, the last line read, a line read but not yet
/// added (the first one when it is not a header).
struct Input<'a> {
    reader: Box<dyn BufRead + Send>,
    line: u64,
    pending: Option<(u64, Vec<u8>)>,
    name: &'a str,
    /// The line being read.
    text: Vec<u8>,
}

impl Input<'_> {
    /// The next chunks (at most [`parallel_chunks`] of [`CHUNK_RECORDS`] records); none at the
    /// end of the input.
    fn chunks(&mut self, body: &Body) -> anyhow::Result<Vec<Chunk>> {
        let mut chunks = Vec::with_capacity(parallel_chunks());
        while chunks.len() < parallel_chunks() {
            let mut chunk = Chunk::default();
            while chunk.lines.len() < CHUNK_RECORDS {
                if let Some((n, text)) = self.pending.take() {
                    add_line(&mut chunk, body, n, &text);
                    continue;
                }
                let Some(n) = next_line(&mut self.reader, &mut self.line, (self.name, &mut self.text))? else { break };
                add_line(&mut chunk, body, n, &self.text);
            }
            if chunk.lines.is_empty() && chunk.unreadable.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        Ok(chunks)
    }
}

/// Chunks read ahead and scored at once, one per core and as many again (so a core that
/// finishes early finds work): with 8,192 records each, a few tens of thousands in memory.
fn parallel_chunks() -> usize {
    rayon::current_num_threads().clamp(1, 64) * 2
}

/// Scores chunks on every core, their results in order.
fn score_all<'a>(model: Model<'a>, name: &str, body: &Body, chunks: Vec<Chunk>) -> Vec<anyhow::Result<Scored<'a>>> {
    chunks.into_par_iter().map(|chunk| score_chunk(model, name, body, chunk)).collect()
}

/// Reads the next non-blank line into `text`, without its line ending; its number.
fn next_line(
    reader: &mut dyn BufRead,
    line: &mut u64,
    (name, text): (&str, &mut Vec<u8>),
) -> anyhow::Result<Option<u64>> {
    loop {
        text.clear();
        if reader.read_until(b'\n', text).with_context(|| format!("cannot read {name}"))? == 0 {
            return Ok(None);
        }
        *line += 1;
        while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            text.pop();
        }
        if !text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Some(*line));
        }
    }
}

/// How flat CSV rows reach the model, and whether `first` is their header (a first line naming
/// any of the model's columns). Basket and tabular rows must have the model's columns in order.
fn flat_body(artifact: &Artifact, name: &str, first: &[u8]) -> anyhow::Result<(Body, bool)> {
    let cells = header_cells(first);
    let columns: Vec<String> = match &artifact.features {
        Features::Basket(_) => CSV_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        Features::Tabular(schema) => schema.columns.iter().map(|c| c.name.clone()).collect(),
        Features::Sales(_) => {
            let header = cells.iter().any(|c| SALES_FIELDS.contains(&c.as_str()));
            if let Some(other) = cells.iter().find(|c| header && !SALES_FIELDS.contains(&c.as_str())) {
                bail!("{name}, line 1: unknown column {other:?}; a sales forecast reads {}", SALES_FIELDS.join(","));
            }
            let names = if header { cells } else { SALES_FIELDS.iter().map(|f| (*f).to_owned()).collect() };
            return Ok((Body::SalesCsv(names), header));
        }
    };
    let header = cells.iter().any(|c| columns.contains(c));
    if header && cells != columns {
        bail!(
            "{name}, line 1: the header must be the model's columns in this order: {}; got {}",
            columns.join(","),
            cells.join(",")
        );
    }
    Ok((Body::Csv, header))
}

/// Adds the line `n` to the chunk: as it is, or as a JSON record (a sales CSV row); a JSON line
/// that is not one JSON value is set aside as unreadable.
fn add_line(chunk: &mut Chunk, body: &Body, n: u64, text: &[u8]) {
    match body {
        Body::Csv => chunk.body.extend_from_slice(text),
        Body::Json => {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(text) {
                chunk.unreadable.push((n, format!("not valid JSON: {e}")));
                return;
            }
            chunk.body.push(if chunk.lines.is_empty() { b'[' } else { b',' });
            chunk.body.extend_from_slice(text);
        }
        Body::SalesCsv(names) => {
            chunk.body.push(if chunk.lines.is_empty() { b'[' } else { b',' });
            sales_record(&mut chunk.body, names, text);
        }
    }
    chunk.body.push(b'\n');
    chunk.lines.push(n);
}

/// A sales CSV row as a JSON record: numbers as numbers, other cells as strings, empty cells
/// left out (so the record check names them as missing).
fn sales_record(out: &mut Vec<u8>, names: &[String], row: &[u8]) {
    out.push(b'{');
    let cells = String::from_utf8_lossy(row);
    let mut first = true;
    for (name, cell) in names.iter().zip(cells.split(',').map(str::trim)) {
        if cell.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        let value = match cell.parse::<f64>() {
            Ok(n) if n.is_finite() => cell.to_owned(),
            _ => serde_json::Value::from(cell).to_string(),
        };
        out.extend_from_slice(format!("{}:{value}", serde_json::Value::from(name.as_str())).as_bytes());
    }
    out.push(b'}');
}

/// Scores a chunk with inline errors: each record answered in its place, merged with the
/// unreadable lines in line order.
fn score_chunk<'a>(model: Model<'a>, name: &str, body: &Body, chunk: Chunk) -> anyhow::Result<Scored<'a>> {
    let Chunk { body: mut bytes, lines, ids, unreadable } = chunk;
    let limits = (lines.len() + 1, ErrorsMode::Inline);
    let cancel = Cancel::default();
    let Model { artifact, explain } = model;
    let scores = match body {
        _ if lines.is_empty() => None,
        Body::Csv => Some(scoring::csv_scores(artifact, &bytes, limits, explain, &cancel)),
        Body::Json | Body::SalesCsv(_) => {
            bytes.push(b']');
            Some(scoring::invocations_scores(artifact, &bytes, limits, explain, &cancel))
        }
    };
    let first = lines.first().copied().unwrap_or_default();
    let scores = scores.transpose().with_context(|| format!("{name}: cannot score the records from line {first}"))?;
    let answered = scores.as_ref().map_or(0, Scores::len);
    if answered != lines.len() {
        bail!("{name}: {answered} answers for {} records from line {first}", lines.len());
    }
    let records = lines.into_iter().enumerate().map(|(i, line)| Row { line, item: Item::Record(i) });
    let mut rows: Vec<Row> =
        records.chain(unreadable.into_iter().map(|(line, e)| Row { line, item: Item::Unreadable(e) })).collect();
    rows.sort_by_key(|row| row.line);
    Ok(Scored { rows, scores, ids })
}

/// Transaction reading is left out of the serving build (the container image).
#[cfg(not(feature = "train"))]
fn score_transactions(
    _: Model<'_>,
    (name, _): (&str, u64),
    _: impl Read,
    _: &mut dyn FnMut(Scored<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    bail!(
        "{name}: transaction lines need the full build of retail-api (this one serves); score flat rows or JSON lines"
    )
}

/// Aggregates transaction lines per basket and scores the baskets as flat rows.
#[cfg(feature = "train")]
fn score_transactions(
    model: Model<'_>,
    (name, skipped): (&str, u64),
    lines: impl Read,
    emit: &mut dyn FnMut(Scored<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let artifact = model.artifact;
    if artifact.pipeline().is_none() {
        bail!(
            "{name}: transaction lines are scored per basket, by a basket classifier; this model is a {}",
            artifact.kind().as_str()
        );
    }
    let baskets =
        retail_model::data::read_unlabelled(name, lines, &retail_model::progress::Silent).with_context(|| {
            format!(
                "cannot read {name}{}",
                if skipped > 0 { format!(" (after {skipped} blank lines)") } else { String::new() }
            )
        })?;
    let mut starts = (0..baskets.len()).step_by(CHUNK_RECORDS);
    let mut next = || {
        let ranges: Vec<_> = starts
            .by_ref()
            .take(parallel_chunks())
            .map(|start| start..baskets.len().min(start + CHUNK_RECORDS))
            .collect();
        Ok(ranges.into_par_iter().map(|range| basket_chunk(&baskets, range, skipped)).collect())
    };
    score_stream(model, (name, &Body::Csv), &mut next, emit)
}

/// Baskets `range` as a chunk of flat CSV rows (cells as the `csv` crate writes them, numbers as
/// `{}` writes them), each with its first line and id.
#[cfg(feature = "train")]
fn basket_chunk(baskets: &retail_model::data::Baskets, range: std::ops::Range<usize>, skipped: u64) -> Chunk {
    let mut chunk = Chunk { body: Vec::with_capacity(range.len() * 64), ..Chunk::default() };
    let body = &mut chunk.body;
    for b in range {
        let r = baskets.record(b);
        for text in [r.basket_size, r.basket_type, r.store_region, r.store_format] {
            body.extend_from_slice(&super::format::cell(text.as_bytes()));
            body.push(b',');
        }
        for number in [r.spend, r.quantity] {
            super::number::push_f64(body, number);
            body.push(b',');
        }
        body.extend_from_slice(&super::format::cell(r.prod_code_20.as_bytes()));
        body.push(b',');
        body.extend_from_slice(&super::format::cell(r.prod_code_30.as_bytes()));
        body.push(b'\n');
        chunk.lines.push(baskets.first_lines[b] + skipped);
        chunk.ids.push(baskets.ids[b].clone());
    }
    chunk
}
