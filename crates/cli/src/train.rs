//! `gen-data`, `train` and `evaluate`: the model pipeline commands (cargo feature `train`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::{Manifest, ModelMetrics};
use retail_model::forecast::SALES_HEADER;
use retail_model::forecast::calendar::parse_date;
use retail_model::forecast::training::{self as forecast_training, SalesTrainConfig};
use retail_model::gbdt::{Objective, Params};
use retail_model::synth::sales::{self, SalesConfig};
use retail_model::synth::{self, GenConfig};
use retail_model::training::{self, TrainConfig};

pub(crate) use crate::bars::Bars;
use crate::output::{self, AtomicFile};

/// What `gen-data` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataKind {
    /// Basket transaction lines in the dunnhumby schema (the price-sensitivity classifier's data).
    Baskets,
    /// Daily units sold per store × product (the forecast schema:
    /// `store_id,product_id,date,price,promotion,units`).
    Sales,
    /// A generic table like the seed's example input: 20 numeric columns `f1..f20` (some
    /// missing) and a binary `label` (`train --label label`).
    Tabular,
}

/// `retail-api gen-data`.
#[derive(Debug, Args)]
pub struct GenDataArgs {
    /// Dataset kind.
    #[arg(long, env = "RETAIL_DATA_KIND", value_enum, default_value_t = DataKind::Baskets)]
    kind: DataKind,
    /// Number of baskets to generate (`--kind baskets`).
    #[arg(long, env = "RETAIL_BASKETS", default_value_t = 200_000)]
    baskets: u64,
    /// Number of rows (`--kind tabular`; default 20,000).
    #[arg(long, env = "RETAIL_ROWS")]
    rows: Option<u64>,
    /// Seed of customers and baskets, or of prices, promotions and units (the world itself is fixed).
    #[arg(long, env = "RETAIL_SEED", default_value_t = 7)]
    seed: u64,
    /// Number of stores, ids 1..=N (`--kind sales`; default 20).
    #[arg(long, env = "RETAIL_SALES_STORES")]
    stores: Option<u32>,
    /// Number of products, ids spread over 1..=max(999, 3N) (`--kind sales`; default 300).
    #[arg(long, env = "RETAIL_SALES_PRODUCTS")]
    products: Option<u32>,
    /// Number of days (`--kind sales`; default 731).
    #[arg(long, env = "RETAIL_SALES_DAYS")]
    days: Option<u32>,
    /// First day, YYYY-MM-DD (`--kind sales`; default 2023-01-01).
    #[arg(long, env = "RETAIL_SALES_START")]
    start: Option<String>,
    /// Transaction or sales CSV to write.
    #[arg(long, env = "RETAIL_DATA_OUT")]
    out: PathBuf,
    /// Also write the truth sidecar to this CSV: each basket's true class probabilities, or each
    /// sales row's expected units.
    #[arg(long, env = "RETAIL_TRUTH_OUT")]
    truth: Option<PathBuf>,
    /// Replace `--out` and `--truth` if they exist.
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
}

/// `retail-api train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Transaction CSV with the dunnhumby header, or sales CSV
    /// (`store_id,product_id,date,price,promotion,units`): the header says which model to train.
    #[arg(long, env = "RETAIL_DATA")]
    pub(crate) data: PathBuf,
    /// Artifact directory to write.
    #[arg(long, env = "RETAIL_MODEL_OUT")]
    pub(crate) out: PathBuf,
    /// The kind of data, and so of model: baskets (a price-sensitivity classifier) or sales (a
    /// forecast of units sold). Default: detected from the CSV header.
    #[arg(long, env = "RETAIL_TRAIN_KIND", value_enum)]
    pub(crate) kind: Option<DataKind>,
    /// Replace `--out` if it exists.
    #[arg(long, env = "RETAIL_FORCE")]
    pub(crate) force: bool,
    /// Seed of the customer split, augmentation and training (a forecast only records it: its
    /// split is by date and nothing is drawn at random).
    #[arg(long, env = "RETAIL_TRAIN_SEED", default_value_t = 42)]
    pub(crate) seed: u64,
    /// Model version (default: first 12 hex digits of the sha256 of the ensemble, and of a
    /// forecast's statistics).
    #[arg(long = "model-version", env = "RETAIL_MODEL_VERSION")]
    pub(crate) model_version: Option<String>,
    /// Shrinkage of every tree (default: 0.3 baskets, 0.5 sales).
    #[arg(long, env = "RETAIL_LEARNING_RATE")]
    pub(crate) learning_rate: Option<f64>,
    /// Most boosting rounds (default: 500 baskets, 1000 sales).
    #[arg(long, env = "RETAIL_MAX_ROUNDS")]
    pub(crate) max_rounds: Option<usize>,
    /// Stop after this many rounds without validation improvement (default: 20 baskets, 30 sales).
    #[arg(long, env = "RETAIL_EARLY_STOPPING_ROUNDS")]
    pub(crate) early_stopping_rounds: Option<usize>,
    /// Most leaves per tree (default: 31 baskets, 15 sales).
    #[arg(long, env = "RETAIL_MAX_LEAVES")]
    pub(crate) max_leaves: Option<usize>,
    /// Most split levels per tree, at most 12 (default: 5 baskets, 8 sales).
    #[arg(long, env = "RETAIL_MAX_DEPTH")]
    pub(crate) max_depth: Option<usize>,
    /// Fewest rows (baskets) per leaf (default: 50 baskets, 200 sales).
    #[arg(long, env = "RETAIL_MIN_DATA_IN_LEAF")]
    pub(crate) min_data_in_leaf: Option<usize>,
    /// L2 regularisation of leaf values (default: 1).
    #[arg(long, env = "RETAIL_LAMBDA_L2")]
    pub(crate) lambda_l2: Option<f64>,
    /// Share of customers held out for early stopping (baskets; default 0.1).
    #[arg(long, env = "RETAIL_VALIDATION_SHARE")]
    pub(crate) validation_share: Option<f64>,
    /// Share of customers held out for the reported metrics (baskets; default 0.1).
    #[arg(long, env = "RETAIL_TEST_SHARE")]
    pub(crate) test_share: Option<f64>,
    /// What a forecast minimises (sales): poisson (counts on a log link) or squared_error.
    #[arg(long, env = "RETAIL_OBJECTIVE", value_enum)]
    pub(crate) objective: Option<ObjectiveArg>,
    /// Days before the test days held out for early stopping (sales; default 28).
    #[arg(long, env = "RETAIL_VALIDATION_DAYS")]
    pub(crate) validation_days: Option<u32>,
    /// The latest days, held out for the reported metrics (sales; default 28).
    #[arg(long, env = "RETAIL_TEST_DAYS")]
    pub(crate) test_days: Option<u32>,
    /// Flags of a tabular model (`--label` and what goes with it).
    #[command(flatten)]
    pub(crate) tabular: crate::tabular::TabularArgs,
}

/// `retail-api train --objective`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectiveArg {
    /// Poisson deviance of counts, log link (LightGBM's `poisson`).
    Poisson,
    /// Least squares.
    #[value(name = "squared_error", alias = "squared-error")]
    SquaredError,
}

/// Prints a JSON document on stdout (the commands' machine-readable result).
#[allow(clippy::print_stdout)]
pub(crate) fn emit(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn gen_data(args: &GenDataArgs) -> anyhow::Result<()> {
    output::check_file(&args.out, args.force)?;
    if let Some(truth) = &args.truth {
        output::check_file(truth, args.force)?;
    }
    match args.kind {
        DataKind::Baskets => gen_baskets(args),
        DataKind::Sales => gen_sales(args),
        DataKind::Tabular => {
            let config =
                retail_model::synth::tabular::TabularConfig { rows: args.rows.unwrap_or(20_000), seed: args.seed };
            if config.rows == 0 {
                bail!("--rows must be at least 1");
            }
            write_generated(args, |data, truth, progress| {
                retail_model::synth::tabular::generate(config, data, truth, progress)
            })
        }
    }
}

fn gen_baskets(args: &GenDataArgs) -> anyhow::Result<()> {
    let sales_only = [
        ("--stores", args.stores.is_some()),
        ("--products", args.products.is_some()),
        ("--days", args.days.is_some()),
        ("--start", args.start.is_some()),
    ];
    if let Some((flag, _)) = sales_only.iter().find(|(_, given)| *given) {
        bail!("{flag} applies to --kind sales");
    }
    if args.baskets == 0 {
        bail!("--baskets must be at least 1");
    }
    let config = GenConfig { baskets: args.baskets, seed: args.seed };
    write_generated(args, |data, truth, progress| synth::generate(config, data, truth, progress))
}

/// Writes what `generate` produces to `--out` (and the truth sidecar to `--truth`), each
/// atomically, and prints its summary.
fn write_generated<S: serde::Serialize>(
    args: &GenDataArgs,
    generate: impl FnOnce(&mut dyn Write, Option<&mut dyn Write>, &Bars) -> std::io::Result<S>,
) -> anyhow::Result<()> {
    let mut data = AtomicFile::create(&args.out)?;
    let mut truth = args.truth.as_deref().map(AtomicFile::create).transpose()?;
    let progress = Bars::new();
    let summary = generate(&mut data.writer, truth.as_mut().map(|t| &mut t.writer as &mut dyn Write), &progress)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    data.commit()?;
    if let Some(t) = truth {
        t.commit()?;
    }
    drop(progress);
    emit(&summary)
}

fn gen_sales(args: &GenDataArgs) -> anyhow::Result<()> {
    let defaults = SalesConfig::default();
    let start = match &args.start {
        Some(text) => parse_date(text).map_err(|e| anyhow::anyhow!("--start {e}"))?,
        None => defaults.start,
    };
    let config = SalesConfig {
        seed: args.seed,
        stores: args.stores.unwrap_or(defaults.stores),
        products: args.products.unwrap_or(defaults.products),
        start,
        days: args.days.unwrap_or(defaults.days),
    };
    if let Err(reason) = config.check() {
        bail!("--stores/--products/--days/--start: {reason}");
    }
    write_generated(args, |data, truth, progress| sales::generate(config, data, truth, progress))
}

pub(crate) fn created_at() -> String {
    // Reproducible builds set SOURCE_DATE_EPOCH; everyone else gets the current time.
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or_else(retail_model::time::now_rfc3339, retail_model::time::rfc3339)
}

/// The kind of a data file from its header: sales when it has every sales column, else baskets
/// (whose reader then names any missing column).
fn detect_kind(path: &Path) -> DataKind {
    use std::io::{BufRead, BufReader, Read};
    let mut line = String::new();
    let read = fs::File::open(path).and_then(|f| BufReader::new(f.take(64 * 1024)).read_line(&mut line));
    let columns: Vec<&str> = line.trim_start_matches('\u{feff}').trim_end().split(',').map(str::trim).collect();
    let sales = read.is_ok() && SALES_HEADER.iter().all(|h| columns.contains(h));
    if sales { DataKind::Sales } else { DataKind::Baskets }
}

/// The booster parameters: the kind's defaults, overridden by the flags given.
fn params(args: &TrainArgs, defaults: Params) -> anyhow::Result<Params> {
    let params = Params {
        learning_rate: args.learning_rate.unwrap_or(defaults.learning_rate),
        max_rounds: args.max_rounds.unwrap_or(defaults.max_rounds),
        early_stopping_rounds: args.early_stopping_rounds.unwrap_or(defaults.early_stopping_rounds),
        max_leaves: args.max_leaves.unwrap_or(defaults.max_leaves),
        max_depth: args.max_depth.unwrap_or(defaults.max_depth),
        min_data_in_leaf: args.min_data_in_leaf.unwrap_or(defaults.min_data_in_leaf),
        lambda_l2: args.lambda_l2.unwrap_or(defaults.lambda_l2),
        ..defaults
    };
    if params.max_depth == 0 || params.max_depth > retail_model::engine::MAX_DEPTH {
        bail!("--max-depth must be between 1 and {}", retail_model::engine::MAX_DEPTH);
    }
    if params.max_leaves < 2 || !(params.learning_rate > 0.0 && params.learning_rate <= 1.0) || params.max_rounds == 0 {
        bail!("--max-leaves must be >= 2, --learning-rate in (0, 1] and --max-rounds >= 1");
    }
    Ok(params)
}

pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let replace = output::check_dir(&args.out, args.force)?;
    if let Some(label) = &args.tabular.label {
        return crate::tabular::train(args, label, replace);
    }
    let kind = args.kind.unwrap_or_else(|| detect_kind(&args.data));
    let (given, other, this): (&[(&str, bool)], &str, &str) = match kind {
        DataKind::Baskets => (
            &[
                ("--objective", args.objective.is_some()),
                ("--validation-days", args.validation_days.is_some()),
                ("--test-days", args.test_days.is_some()),
            ],
            "sales data",
            "basket data",
        ),
        DataKind::Sales => (
            &[("--validation-share", args.validation_share.is_some()), ("--test-share", args.test_share.is_some())],
            "basket data",
            "sales data",
        ),
        DataKind::Tabular => (&[], "", ""),
    };
    if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
        bail!("{flag} applies to {other} ({} is read as {this})", args.data.display());
    }
    let manifest = match kind {
        DataKind::Baskets => train_baskets(args, replace)?,
        DataKind::Sales => train_sales(args, replace)?,
        DataKind::Tabular => bail!("a tabular model needs --label COLUMN"),
    };
    written(&args.out, &manifest, "test_metrics")
}

fn train_baskets(args: &TrainArgs, replace: bool) -> anyhow::Result<Manifest> {
    let mut config = TrainConfig::new(args.data.clone(), args.out.clone(), created_at());
    config.replace = replace;
    config.seed = args.seed;
    config.version.clone_from(&args.model_version);
    config.validation_share = args.validation_share.unwrap_or(config.validation_share);
    config.test_share = args.test_share.unwrap_or(config.test_share);
    config.params = params(args, Params::default())?;
    let progress = Bars::new();
    training::train(&config, &progress).with_context(|| format!("training from {} failed", args.data.display()))
}

fn train_sales(args: &TrainArgs, replace: bool) -> anyhow::Result<Manifest> {
    let mut config = SalesTrainConfig::new(args.data.clone(), args.out.clone(), created_at());
    config.replace = replace;
    config.seed = args.seed;
    config.version.clone_from(&args.model_version);
    config.validation_days = args.validation_days.unwrap_or(config.validation_days);
    config.test_days = args.test_days.unwrap_or(config.test_days);
    config.params = params(args, forecast_training::default_params())?;
    config.objective = match args.objective {
        None | Some(ObjectiveArg::Poisson) => Objective::poisson(),
        Some(ObjectiveArg::SquaredError) => Objective::SquaredError,
    };
    let progress = Bars::new();
    forecast_training::train_sales(&config, &progress)
        .with_context(|| format!("training a sales forecast from {} failed", args.data.display()))
}

/// Logs and prints (as JSON) an artifact just written: where, which version, how it was made,
/// and its headline metrics under `metrics_key`.
pub(crate) fn written(out: &Path, manifest: &Manifest, metrics_key: &str) -> anyhow::Result<()> {
    tracing::info!(out = %out.display(), version = %manifest.version, "artifact written");
    let mut report = serde_json::json!({
        "artifact": out,
        "name": manifest.name,
        "version": manifest.version,
        "model": manifest.model,
        "training": manifest.training,
    });
    report[metrics_key] = match &manifest.metrics {
        ModelMetrics::Classification(m) => serde_json::json!({
            "rows": m.rows, "accuracy": m.accuracy, "macro_f1": m.macro_f1, "log_loss": m.log_loss, "ece": m.ece,
            "roc_auc": m.roc_auc,
        }),
        ModelMetrics::Regression(r) => serde_json::to_value(r)?,
    };
    emit(&report)
}
