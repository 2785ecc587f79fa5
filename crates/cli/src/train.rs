//! `gen-data`, `train` and `evaluate`: the model pipeline commands (cargo feature `train`).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use retail_model::artifact::{Artifact, Manifest, ModelMetrics};
use retail_model::card::{self, CardInput};
use retail_model::forecast::calendar::parse_date;
use retail_model::gbdt::Params;
use retail_model::progress::Progress;
use retail_model::synth::sales::{self, SalesConfig};
use retail_model::synth::{self, GenConfig};
use retail_model::training::{self, TrainConfig};

/// What `gen-data` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataKind {
    /// Basket transaction lines in the dunnhumby schema (the price-sensitivity classifier's data).
    Baskets,
    /// Daily units sold per store × product (the forecast schema:
    /// `store_id,product_id,date,price,promotion,units`).
    Sales,
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
}

/// `retail-api train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Transaction CSV with the dunnhumby header.
    #[arg(long, env = "RETAIL_DATA")]
    data: PathBuf,
    /// Artifact directory to write.
    #[arg(long, env = "RETAIL_MODEL_OUT")]
    out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
    /// Seed of the customer split, augmentation and training.
    #[arg(long, env = "RETAIL_TRAIN_SEED", default_value_t = 42)]
    seed: u64,
    /// Model version (default: first 12 hex digits of the ensemble's sha256).
    #[arg(long = "model-version", env = "RETAIL_MODEL_VERSION")]
    model_version: Option<String>,
    /// Shrinkage of every tree.
    #[arg(long, env = "RETAIL_LEARNING_RATE", default_value_t = Params::default().learning_rate)]
    learning_rate: f64,
    /// Most boosting rounds.
    #[arg(long, env = "RETAIL_MAX_ROUNDS", default_value_t = Params::default().max_rounds)]
    max_rounds: usize,
    /// Stop after this many rounds without validation improvement.
    #[arg(long, env = "RETAIL_EARLY_STOPPING_ROUNDS", default_value_t = Params::default().early_stopping_rounds)]
    early_stopping_rounds: usize,
    /// Most leaves per tree.
    #[arg(long, env = "RETAIL_MAX_LEAVES", default_value_t = Params::default().max_leaves)]
    max_leaves: usize,
    /// Most split levels per tree (at most 12).
    #[arg(long, env = "RETAIL_MAX_DEPTH", default_value_t = Params::default().max_depth)]
    max_depth: usize,
    /// Fewest baskets per leaf.
    #[arg(long, env = "RETAIL_MIN_DATA_IN_LEAF", default_value_t = Params::default().min_data_in_leaf)]
    min_data_in_leaf: usize,
    /// L2 regularisation of leaf values.
    #[arg(long, env = "RETAIL_LAMBDA_L2", default_value_t = Params::default().lambda_l2)]
    lambda_l2: f64,
    /// Share of customers held out for early stopping.
    #[arg(long, env = "RETAIL_VALIDATION_SHARE", default_value_t = 0.1)]
    validation_share: f64,
    /// Share of customers held out for the reported metrics.
    #[arg(long, env = "RETAIL_TEST_SHARE", default_value_t = 0.1)]
    test_share: f64,
}

/// `retail-api evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Artifact directory or `.tar.gz`.
    #[arg(long, env = "RETAIL_MODEL")]
    model: PathBuf,
    /// Labelled transaction CSV.
    #[arg(long, env = "RETAIL_DATA")]
    data: PathBuf,
    /// Truth sidecar of the data (adds the Bayes-optimal ceiling).
    #[arg(long, env = "RETAIL_TRUTH")]
    truth: Option<PathBuf>,
    /// Write a model card (Markdown + SVG charts) of this evaluation into this directory.
    #[arg(long, env = "RETAIL_REPORT")]
    report: Option<PathBuf>,
}

/// Progress bars on stderr (hidden when stderr is not a terminal).
pub(crate) struct Bars {
    bar: ProgressBar,
}

impl Bars {
    pub(crate) fn new() -> Self {
        Self { bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()) }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        let template = if name.starts_with("reading") {
            "{prefix:>22} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"
        } else {
            "{prefix:>22} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_prefix(name.to_owned());
        tracing::info!(stage = name, total, "started");
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Prints a JSON document on stdout (the commands' machine-readable result).
#[allow(clippy::print_stdout)]
pub(crate) fn emit(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A file written under a temporary name and renamed into place on success.
struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    writer: BufWriter<fs::File>,
}

impl AtomicFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let name = path.file_name().with_context(|| format!("{}: not a file path", path.display()))?;
        let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let file = fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self { tmp, path: path.to_owned(), writer: BufWriter::with_capacity(1 << 20, file) })
    }

    fn commit(mut self) -> anyhow::Result<()> {
        self.writer.flush().with_context(|| format!("cannot write {}", self.tmp.display()))?;
        fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot rename {} to {}", self.tmp.display(), self.path.display()))?;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Still there only when `commit` did not run: discard the partial file.
        let _ = fs::remove_file(&self.tmp);
    }
}

pub fn gen_data(args: &GenDataArgs) -> anyhow::Result<()> {
    match args.kind {
        DataKind::Baskets => gen_baskets(args),
        DataKind::Sales => gen_sales(args),
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
    let mut data = AtomicFile::create(&args.out)?;
    let mut truth = args.truth.as_deref().map(AtomicFile::create).transpose()?;
    let progress = Bars::new();
    let summary = synth::generate(
        GenConfig { baskets: args.baskets, seed: args.seed },
        &mut data.writer,
        truth.as_mut().map(|t| &mut t.writer as &mut dyn Write),
        &progress,
    )
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
    let mut data = AtomicFile::create(&args.out)?;
    let mut truth = args.truth.as_deref().map(AtomicFile::create).transpose()?;
    let progress = Bars::new();
    let summary =
        sales::generate(config, &mut data.writer, truth.as_mut().map(|t| &mut t.writer as &mut dyn Write), &progress)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
    data.commit()?;
    if let Some(t) = truth {
        t.commit()?;
    }
    drop(progress);
    emit(&summary)
}

pub(crate) fn created_at() -> String {
    // Reproducible builds set SOURCE_DATE_EPOCH; everyone else gets the current time.
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or_else(retail_model::time::now_rfc3339, retail_model::time::rfc3339)
}

pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    if args.max_depth == 0 || args.max_depth > retail_model::engine::MAX_DEPTH {
        bail!("--max-depth must be between 1 and {}", retail_model::engine::MAX_DEPTH);
    }
    if args.max_leaves < 2 || !(args.learning_rate > 0.0 && args.learning_rate <= 1.0) || args.max_rounds == 0 {
        bail!("--max-leaves must be >= 2, --learning-rate in (0, 1] and --max-rounds >= 1");
    }
    let mut config = TrainConfig::new(args.data.clone(), args.out.clone(), created_at());
    config.replace = args.force;
    config.seed = args.seed;
    config.version.clone_from(&args.model_version);
    config.validation_share = args.validation_share;
    config.test_share = args.test_share;
    config.params = Params {
        learning_rate: args.learning_rate,
        max_rounds: args.max_rounds,
        early_stopping_rounds: args.early_stopping_rounds,
        max_leaves: args.max_leaves,
        max_depth: args.max_depth,
        min_data_in_leaf: args.min_data_in_leaf,
        lambda_l2: args.lambda_l2,
        ..Params::default()
    };
    let progress = Bars::new();
    let manifest =
        training::train(&config, &progress).with_context(|| format!("training from {} failed", args.data.display()))?;
    drop(progress);
    written(&args.out, &manifest, "test_metrics")
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
        }),
        ModelMetrics::Regression(r) => serde_json::to_value(r)?,
    };
    emit(&report)
}

pub fn evaluate(args: &EvaluateArgs) -> anyhow::Result<()> {
    let artifact =
        Artifact::load(&args.model).with_context(|| format!("cannot load model {}", args.model.display()))?;
    let progress = Bars::new();
    let evaluation = training::evaluate(&artifact, &args.data, args.truth.as_deref(), &progress)?;
    drop(progress);
    if let Some(dir) = &args.report {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, bytes) in card::render(&CardInput::for_evaluation(&artifact.manifest, &evaluation)) {
            fs::write(dir.join(name), bytes).with_context(|| format!("cannot write {}", dir.join(name).display()))?;
        }
        fs::write(dir.join("metrics.json"), serde_json::to_vec_pretty(&evaluation)?)
            .with_context(|| format!("cannot write {}/metrics.json", dir.display()))?;
    }
    emit(&evaluation)
}
