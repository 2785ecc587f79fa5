//! `retail-api predict`: offline batch scoring with an artifact. Transaction CSVs are scored per
//! basket; JSONL files hold one `/predict` body per line (flat record or `basket_items`).

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::Artifact;
use retail_model::data;
use retail_model::features::N_FEATURES;
use retail_model::progress::Silent;
use retail_server::scoring::{self, Cancel, ScoreError};
use serde_json::json;

/// `retail-api predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model: an artifact directory or `.tar.gz` (default: the embedded model).
    #[arg(long, env = "RETAIL_MODEL")]
    model: Option<PathBuf>,
    /// Input: a transaction CSV (`.csv`, scored per basket) or JSON lines (`.jsonl`, one
    /// `/predict` body per line).
    #[arg(long, env = "RETAIL_PREDICT_INPUT")]
    input: PathBuf,
    /// Output file (default: stdout). CSV for CSV input, JSON lines for JSON lines.
    #[arg(long, env = "RETAIL_PREDICT_OUT")]
    out: Option<PathBuf>,
    /// Replace `--out` if it exists.
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
    /// Explain each prediction (exact TreeSHAP, in log-odds): JSON lines get `explanation` as
    /// `?explain=true` answers have it; CSV rows get `BASE_<class>` and `C_<class>_<field>`
    /// columns (base + Σ contributions = the class score). Fails for a model without
    /// `explain.json`.
    #[arg(long, env = "RETAIL_PREDICT_EXPLAIN")]
    explain: bool,
}

pub fn predict(args: &PredictArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        crate::output::check_file(out, args.force)?;
    }
    let artifact = match &args.model {
        Some(path) => Artifact::load(path).with_context(|| format!("cannot load model {}", path.display()))?,
        None => Artifact::embedded_default().context("cannot load the embedded default model")?,
    };
    if args.explain {
        scoring::Explaining::of(&artifact).context("--explain")?;
    }
    let mut file = args.out.as_deref().map(crate::output::AtomicFile::create).transpose()?;
    let mut out: Box<dyn Write + '_> = match &mut file {
        Some(file) => Box::new(&mut file.writer),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let extension = args.input.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let failed = match extension.as_str() {
        "csv" => score_csv(&artifact, args, &mut out)?,
        "jsonl" | "ndjson" => score_jsonl(&artifact, args, &mut out)?,
        _ => bail!("{}: input must end in .csv (transactions) or .jsonl (one request per line)", args.input.display()),
    };
    out.flush().context("cannot write predictions")?;
    drop(out);
    if let Some(file) = file {
        file.commit()?;
    }
    if failed > 0 {
        bail!("{failed} input row(s) could not be scored; their errors are in the output");
    }
    Ok(())
}

/// One row per basket: id, predicted class, class probabilities, warnings.
fn score_csv(artifact: &Artifact, args: &PredictArgs, out: &mut dyn Write) -> anyhow::Result<usize> {
    let (baskets, _) =
        data::read_baskets(&args.input, &Silent).with_context(|| format!("cannot read {}", args.input.display()))?;
    let classes: Vec<&str> = artifact.manifest.classes.iter().map(|c| c.code.as_str()).collect();
    let pipeline = artifact.pipeline().context("this command scores basket classifiers")?;
    let mut rows = Vec::with_capacity(baskets.len() * N_FEATURES);
    let mut warnings = Vec::with_capacity(baskets.len());
    for i in 0..baskets.len() {
        // Reading validated every basket, so encoding cannot fail here.
        let encoded = pipeline.encode(&baskets.record(i)).with_context(|| format!("basket {}", baskets.ids[i]))?;
        rows.extend_from_slice(&encoded.features);
        warnings.push(encoded.unseen.iter().map(|u| format!("{}={}", u.field, u.value)).collect::<Vec<_>>().join(";"));
    }
    let probabilities = scoring::probabilities(artifact, &rows, &Cancel::default())?;
    let explaining = args.explain.then(|| scoring::Explaining::of(artifact)).transpose()?;
    let explained = match &explaining {
        Some(e) => e.rows(&rows, N_FEATURES, &Cancel::default())?,
        None => Vec::new(),
    };
    let p_columns: Vec<String> = classes.iter().map(|c| format!("P_{c}")).collect();
    let explain_columns = explaining.as_ref().map(|e| explain_header(&classes, e.fields())).unwrap_or_default();
    writeln!(out, "BASKET_ID,PREDICTION,{}{explain_columns},UNSEEN", p_columns.join(","))?;
    for (i, p) in probabilities.chunks(classes.len()).enumerate() {
        let best = classes[retail_model::metrics::argmax(p)];
        let p: Vec<String> = p.iter().map(f64::to_string).collect();
        let explanation = explained.get(i).map(explain_cells).unwrap_or_default();
        writeln!(out, "{},{best},{}{explanation},{}", baskets.ids[i], p.join(","), warnings[i])?;
    }
    Ok(0)
}

/// The explanation columns of the CSV header, each starting with a comma: per class
/// `BASE_<class>` then `C_<class>_<field>` for each field.
fn explain_header(classes: &[&str], fields: &[String]) -> String {
    let mut header = String::new();
    for class in classes {
        header.push_str(&format!(",BASE_{class}"));
        for field in fields {
            header.push_str(&format!(",C_{class}_{field}"));
        }
    }
    header
}

/// One row's explanation cells, in [`explain_header`]'s order, each starting with a comma.
fn explain_cells(e: &retail_model::explain::Explanation) -> String {
    let mut cells = String::new();
    for (c, base) in e.base.iter().enumerate() {
        cells.push_str(&format!(",{base}"));
        for value in e.of_output(c) {
            cells.push_str(&format!(",{value}"));
        }
    }
    cells
}

/// One JSON line per input line: the prediction, or the error with the line number. Lines are
/// read and scored one at a time by the server's scoring module.
fn score_jsonl(artifact: &Artifact, args: &PredictArgs, out: &mut dyn Write) -> anyhow::Result<usize> {
    let file = fs::File::open(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let mut failed = 0;
    for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", args.input.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = match scoring::score_one(artifact, &line, args.explain) {
            Ok(prediction) => serde_json::to_value(prediction)?,
            Err(error) => {
                failed += 1;
                error_line(n + 1, error)
            }
        };
        writeln!(out, "{answer}")?;
    }
    Ok(failed)
}

/// The output line of an input line that was not scored.
fn error_line(line: usize, error: ScoreError) -> serde_json::Value {
    match error {
        ScoreError::Invalid(errors) => {
            json!({"line": line, "error": "request has invalid fields", "code": "invalid_input", "details": errors.listed(), "total_errors": errors.total()})
        }
        other => json!({"line": line, "error": format!("not valid JSON: {other}"), "code": "malformed_json"}),
    }
}
