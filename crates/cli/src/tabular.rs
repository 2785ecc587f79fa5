//! `train --label`, `evaluate` and `gen-data --kind tabular` for generic tabular models: any
//! labelled CSV in, an artifact out.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::{Artifact, ModelMetrics};
use retail_model::engine::MAX_DEPTH;
use retail_model::tabular::data::Roles;
use retail_model::tabular::evaluation::{self, score_file};
use retail_model::tabular::split::{Shares, SplitBy};
use retail_model::tabular::training::{self, Overrides, TabularTrainConfig, Task};

use crate::evaluate::Outcome;
use crate::train::{Bars, ObjectiveArg, TrainArgs, created_at, written};

/// `retail-api train` flags of a tabular model (any CSV with a label column).
#[derive(Debug, Args)]
pub struct TabularArgs {
    /// The label column: train a tabular model on any CSV (columns typed automatically).
    #[arg(long, env = "RETAIL_LABEL")]
    pub label: Option<String>,
    /// classification or regression (default: text labels and integers with at most 20 distinct
    /// values are classes, other numbers a regression).
    #[arg(long, env = "RETAIL_TASK", value_enum)]
    pub task: Option<TaskArg>,
    /// Id columns, left out of the features (comma-separated).
    #[arg(long, env = "RETAIL_ID_COLUMNS", value_delimiter = ',')]
    pub id_columns: Vec<String>,
    /// Other columns to leave out (comma-separated).
    #[arg(long, env = "RETAIL_IGNORE", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Columns to treat as categorical whatever they hold (comma-separated).
    #[arg(long, env = "RETAIL_CATEGORICAL", value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Columns that must be numeric (a value that is not a number is an error; comma-separated).
    #[arg(long, env = "RETAIL_NUMERIC", value_delimiter = ',')]
    pub numeric: Vec<String>,
    /// Split by this column's values: rows sharing a value share a split (e.g. a customer id).
    #[arg(long, env = "RETAIL_SPLIT_COLUMN", conflicts_with = "time_column")]
    pub split_column: Option<String>,
    /// Split by time: the rows with the latest values of this column are the test split.
    #[arg(long, env = "RETAIL_TIME_COLUMN")]
    pub time_column: Option<String>,
    /// A separate labelled CSV for the reported metrics (then no test rows come from --data).
    #[arg(long, env = "RETAIL_TEST_DATA")]
    pub test_data: Option<PathBuf>,
    /// Model name (default: the --out directory's name).
    #[arg(long = "name", env = "RETAIL_MODEL_NAME")]
    pub name: Option<String>,
}

/// `--task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    /// Predict a class (binary: logistic; more: softmax).
    Classification,
    /// Predict a number (squared error; Poisson with --objective poisson).
    Regression,
}

/// An environment setting of the seed's ConfigMap (`RANDOM_STATE`, `N_ESTIMATORS`), read when
/// the flag is absent.
fn seed_setting<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| anyhow::anyhow!("{name}={text:?} is not a number")),
        Err(_) => Ok(None),
    }
}

/// Trains a tabular model from `train --label` flags; `replace`: `--out` may be replaced (checked
/// by the caller).
pub fn train(args: &TrainArgs, label: &str, replace: bool) -> anyhow::Result<()> {
    let tabular = &args.tabular;
    let sales_only = [("--validation-days", args.validation_days.is_some()), ("--test-days", args.test_days.is_some())];
    if let Some((flag, _)) = sales_only.iter().find(|(_, given)| *given) {
        bail!("{flag} applies to sales data, not to a tabular model (--label)");
    }
    let mut keep = Vec::new();
    let split = match (&tabular.split_column, &tabular.time_column) {
        (Some(c), _) => {
            keep.push(c.clone());
            SplitBy::Group(c.clone())
        }
        (None, Some(c)) => {
            keep.push(c.clone());
            SplitBy::Time(c.clone())
        }
        (None, None) => SplitBy::Random,
    };
    let shares = Shares { validation: args.validation_share.unwrap_or(0.1), test: args.test_share.unwrap_or(0.2) };
    if !(shares.validation > 0.0 && shares.test > 0.0 && shares.validation + shares.test < 1.0) {
        bail!("--validation-share and --test-share must be positive and sum below 1");
    }
    let seed = match seed_setting::<u64>("RANDOM_STATE")? {
        Some(s) if std::env::var_os("RETAIL_TRAIN_SEED").is_none() && args.seed == 42 => s,
        _ => args.seed,
    };
    let max_rounds = args.max_rounds.or(seed_setting::<usize>("N_ESTIMATORS")?);
    if max_rounds == Some(0) || args.learning_rate.is_some_and(|r| !(r > 0.0 && r <= 1.0)) {
        bail!("--max-rounds must be >= 1 and --learning-rate in (0, 1]");
    }
    if args.max_depth.is_some_and(|d| d == 0 || d > MAX_DEPTH) {
        bail!("--max-depth must be between 1 and {MAX_DEPTH}");
    }
    let config = TabularTrainConfig {
        data: args.data.clone(),
        roles: Roles {
            label: label.to_owned(),
            ignore: [tabular.id_columns.clone(), tabular.ignore.clone()].concat(),
            categorical: tabular.categorical.clone(),
            numeric: tabular.numeric.clone(),
            keep,
            features: None,
        },
        task: tabular.task.map(|t| match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Regression => Task::Regression,
        }),
        poisson: args.objective == Some(ObjectiveArg::Poisson),
        split,
        shares,
        test_data: tabular.test_data.clone(),
        seed,
        overrides: Overrides {
            learning_rate: args.learning_rate,
            max_rounds,
            early_stopping_rounds: args.early_stopping_rounds,
            max_leaves: args.max_leaves,
            max_depth: args.max_depth,
            min_data_in_leaf: args.min_data_in_leaf,
            lambda_l2: args.lambda_l2,
        },
        out: args.out.clone(),
        replace,
        name: tabular.name.clone(),
        version: args.model_version.clone(),
        created_at: created_at(),
    };
    let progress = Bars::new();
    let manifest = training::train_tabular(&config, &progress)
        .with_context(|| format!("training a tabular model from {} failed", args.data.display()))?;
    drop(progress);
    written(&args.out, &manifest, "test_metrics")
}

/// `evaluate` of a tabular model on any labelled CSV with its columns.
pub fn evaluate(artifact: &Artifact, data: &std::path::Path) -> anyhow::Result<Outcome> {
    let Some(schema) = artifact.tabular() else { bail!("not a tabular model") };
    let outputs: Vec<String> = artifact.manifest.classes.iter().map(|c| c.code.clone()).collect();
    let scored = score_file(data, schema, &artifact.manifest.target, &outputs, &artifact.engine)?;
    let metrics = scored.metrics();
    let unseen: serde_json::Map<String, serde_json::Value> = schema
        .columns
        .iter()
        .zip(&scored.unseen)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.name.clone(), (*n).into()))
        .collect();
    let json = serde_json::json!({
        "model": artifact.manifest.name,
        "version": artifact.manifest.version,
        "data": data,
        "metrics": metrics,
        "unseen_values": unseen,
    });
    let summary = match &metrics {
        ModelMetrics::Classification(m) => crate::summary::classification(m, None, false),
        ModelMetrics::Regression(r) => crate::summary::regression(r, None, false),
    };
    let mut manifest = artifact.manifest.clone();
    manifest.metrics = metrics;
    let importance = artifact.importance.as_ref();
    let mut card =
        vec![(retail_model::card::CARD_FILE, evaluation::card(&manifest, schema, &scored, importance).into_bytes())];
    card.extend(retail_model::card::importance::chart(importance));
    Ok(Outcome { json, card, summary })
}
