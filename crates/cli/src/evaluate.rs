//! `retail-api evaluate`: scores an artifact on labelled data. A short summary goes to stderr,
//! the metrics JSON to stdout (or `--json FILE`), the model card to `--report DIR`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::Artifact;
use retail_model::card::sales::SalesCardInput;
use retail_model::card::{self, CardInput};
use retail_model::forecast::evaluation::evaluate_sales;
use retail_model::training;

use crate::bars::Bars;
use crate::output;
use crate::summary;

/// `retail-api evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Artifact directory or `.tar.gz`.
    #[arg(long, env = "RETAIL_MODEL")]
    model: PathBuf,
    /// Labelled transaction CSV (a basket classifier), sales CSV (a sales forecast: every row is
    /// scored, so give it a later period than the training data), or any CSV with a tabular
    /// model's columns and label.
    #[arg(long, env = "RETAIL_DATA")]
    data: PathBuf,
    /// Truth sidecar of generated data (adds the Bayes-optimal ceiling: the true class
    /// probabilities, or the true mean units).
    #[arg(long, env = "RETAIL_TRUTH")]
    truth: Option<PathBuf>,
    /// Write a model card (Markdown + SVG charts) and `metrics.json` of this evaluation into
    /// this directory.
    #[arg(long, env = "RETAIL_REPORT")]
    report: Option<PathBuf>,
    /// Write the metrics JSON to this file instead of stdout.
    #[arg(long, env = "RETAIL_EVALUATE_JSON")]
    json: Option<PathBuf>,
    /// Replace `--report` and `--json` if they exist.
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
}

/// What evaluating a model produced.
pub(crate) struct Outcome {
    /// The metrics document.
    pub(crate) json: serde_json::Value,
    /// The model card's files (name, content).
    pub(crate) card: Vec<(&'static str, Vec<u8>)>,
    /// The human summary.
    pub(crate) summary: String,
}

pub fn evaluate(args: &EvaluateArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.report {
        output::check_dir(dir, args.force)?;
    }
    if let Some(file) = &args.json {
        output::check_file(file, args.force)?;
    }
    let artifact =
        Artifact::load(&args.model).with_context(|| format!("cannot load model {}", args.model.display()))?;
    let outcome = if artifact.tabular().is_some() {
        if args.truth.is_some() {
            bail!("--truth applies to basket and sales models");
        }
        crate::tabular::evaluate(&artifact, &args.data)
    } else {
        score(&artifact, args)
    }
    .with_context(|| format!("cannot evaluate on {}", args.data.display()))?;
    let mut summary = outcome.summary;
    summary.push('\n');
    let document = serde_json::to_vec_pretty(&outcome.json)?;
    if let Some(dir) = &args.report {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let metrics = ("metrics.json", document.clone());
        for (name, bytes) in outcome.card.iter().chain([&metrics]) {
            let path = dir.join(name);
            fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        summary.push_str(&format!("report written to {} (model card and metrics.json)\n", dir.display()));
    }
    match &args.json {
        Some(file) => {
            let mut out = output::AtomicFile::create(file)?;
            std::io::Write::write_all(&mut out.writer, &document)
                .with_context(|| format!("cannot write {}", file.display()))?;
            out.commit()?;
            summary.push_str(&format!("metrics written to {}\n", file.display()));
        }
        None => summary.push_str("metrics JSON on stdout\n"),
    }
    print_summary(&summary);
    match &args.json {
        Some(_) => Ok(()),
        None => crate::train::emit(&outcome.json),
    }
}

#[allow(clippy::print_stderr)]
fn print_summary(summary: &str) {
    eprint!("{summary}");
}

/// Evaluates a basket classifier or a sales forecast.
fn score(artifact: &Artifact, args: &EvaluateArgs) -> anyhow::Result<Outcome> {
    let progress = Bars::new();
    let truth = args.truth.as_deref();
    Ok(match artifact.sales() {
        None => {
            let evaluation = training::evaluate(artifact, &args.data, truth, &progress)?;
            Outcome {
                card: card::render(&CardInput::for_evaluation(
                    &artifact.manifest,
                    &evaluation,
                    artifact.importance.as_ref(),
                )),
                summary: summary::classification(&evaluation.metrics, evaluation.bayes.as_ref(), true),
                json: serde_json::to_value(&evaluation)?,
            }
        }
        Some(stats) => {
            let evaluation = evaluate_sales(artifact, &args.data, truth, &progress)?;
            let card =
                SalesCardInput::for_evaluation(&artifact.manifest, stats, &evaluation, artifact.importance.as_ref());
            Outcome {
                card: card::sales::render(&card),
                summary: summary::regression(&evaluation.metrics, evaluation.bayes.as_ref(), true),
                json: serde_json::to_value(&evaluation)?,
            }
        }
    })
}
