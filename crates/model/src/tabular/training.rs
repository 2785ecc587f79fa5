//! Training a tabular model end to end: any labelled CSV → column types inferred → split
//! (random and stratified, grouped or time-ordered) → schema fitted on the training rows →
//! rows encoded by [`TabularSchema::encode`](super::TabularSchema::encode) (the serving
//! function) → boosted trees with early stopping on the validation rows (small data: refitted
//! on training and validation rows for the rounds early stopping chose) → metrics on the test
//! rows (or a separate test file) → artifact with `model.json`, `tabular.json`, manifest and
//! model card.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::data::{self, Cells, RawTable, Roles, TableError};
use super::evaluation::{self, Scored};
use super::split::{self, Shares, SplitBy, Splits};
use super::{ColumnKind, TABULAR_FILE, TabularSchema, number_text};
use crate::artifact::{self, Artifact, ClassInfo, Manifest, ModelKind, Provenance, SplitRows, TrainingSummary};
use crate::drift::{REFERENCE_FILE, Reference, Role};
use crate::engine::{Engine, EnsembleSpec};
use crate::explain::{Attribution, EXPLAIN_FILE, ExplainFile};
use crate::gbdt::{self, Booster, Dataset, FeatureKind, Labels, Objective, Params};
use crate::progress::Progress;
use crate::training::TrainError;
use crate::training::explain_file;

/// Most classes of a classifier.
pub const MAX_CLASSES: usize = 100;
/// Integer labels with at most this many distinct values are classes, unless `--task` says.
pub const MAX_INFERRED_CLASSES: usize = 20;
/// Below this many training and validation rows, the model is refitted on both for the rounds
/// early stopping chose (as scikit-learn's HistGradientBoosting trains on all rows below 10,000).
pub const REFIT_BELOW_ROWS: usize = 10_000;

/// What a tabular model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One of 2..=[`MAX_CLASSES`] classes.
    Classification,
    /// A number.
    Regression,
}

/// Everything `retail-api train --label` needs.
#[derive(Debug, Clone)]
pub struct TabularTrainConfig {
    /// Labelled CSV.
    pub data: PathBuf,
    /// Which columns are the label, ignored, forced numeric or categorical.
    pub roles: Roles,
    /// Classification or regression (inferred when absent).
    pub task: Option<Task>,
    /// Poisson instead of squared error for a regression of counts.
    pub poisson: bool,
    /// How rows are split.
    pub split: SplitBy,
    /// Held-out shares.
    pub shares: Shares,
    /// A separate labelled test file (then no test rows are taken from `data`).
    pub test_data: Option<PathBuf>,
    /// Seed of the split.
    pub seed: u64,
    /// Hyper-parameters given (the rest: [`default_params`] for the training rows).
    pub overrides: Overrides,
    /// Artifact directory to write.
    pub out: PathBuf,
    /// Replace `out` if it exists.
    pub replace: bool,
    /// Model name (default: the output directory's name).
    pub name: Option<String>,
    /// Model version (default: a prefix of the sha256 of the ensemble and schema).
    pub version: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// Hyper-parameters given on the command line; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// Shrinkage.
    pub learning_rate: Option<f64>,
    /// Most rounds.
    pub max_rounds: Option<usize>,
    /// Rounds without validation gain before stopping.
    pub early_stopping_rounds: Option<usize>,
    /// Most leaves per tree.
    pub max_leaves: Option<usize>,
    /// Most levels per tree.
    pub max_depth: Option<usize>,
    /// Fewest rows per leaf.
    pub min_data_in_leaf: Option<usize>,
    /// L2 regularisation.
    pub lambda_l2: Option<f64>,
}

impl Overrides {
    /// `defaults` with the given values.
    pub fn apply(&self, defaults: Params) -> Params {
        Params {
            learning_rate: self.learning_rate.unwrap_or(defaults.learning_rate),
            max_rounds: self.max_rounds.unwrap_or(defaults.max_rounds),
            early_stopping_rounds: self.early_stopping_rounds.unwrap_or(defaults.early_stopping_rounds),
            max_leaves: self.max_leaves.unwrap_or(defaults.max_leaves),
            max_depth: self.max_depth.unwrap_or(defaults.max_depth),
            min_data_in_leaf: self.min_data_in_leaf.unwrap_or(defaults.min_data_in_leaf),
            lambda_l2: self.lambda_l2.unwrap_or(defaults.lambda_l2),
            ..defaults
        }
    }
}

/// Hyper-parameters for `n` training rows, as scikit-learn's HistGradientBoosting defaults:
/// learning rate 0.1, 31 leaves, 20 rows per leaf, no L2, 255 bins; at most 8 levels (the
/// engine lays trees out complete) and 100 rounds with early stopping after 10 without gain.
pub fn default_params(n: usize) -> Params {
    Params {
        learning_rate: 0.1,
        max_rounds: 100,
        early_stopping_rounds: 10,
        max_leaves: 31,
        max_depth: 8,
        min_data_in_leaf: 20.min((n / 10).max(1)),
        min_sum_hessian: 1e-3,
        lambda_l2: 0.0,
        max_bins: 255,
        min_data_per_category: 10.min((n / 20).max(1)),
        cat_smooth: 10.0,
        max_cat_threshold: 32,
    }
}

/// The label of every row, as the task needs it.
#[derive(Debug, Clone)]
pub enum Target {
    /// Class index per row, and the class names (sorted).
    Classes(Vec<u8>, Vec<String>),
    /// Value per row.
    Values(Vec<f64>),
}

/// The label column as a target: the task (given or inferred), classes sorted (numbers
/// numerically), at least two, at most [`MAX_CLASSES`].
pub fn target(label: &Cells, name: &str, task: Option<Task>) -> Result<Target, TableError> {
    let column_error = |reason: String| TableError::Column { column: name.to_owned(), reason };
    let task = task.unwrap_or(match label {
        Cells::Texts { .. } => Task::Classification,
        Cells::Numbers(xs) => {
            let mut distinct: Vec<f64> = xs.iter().copied().filter(|x| x.fract() == 0.0).collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let integers = xs.iter().all(|x| x.fract() == 0.0);
            if integers && distinct.len() <= MAX_INFERRED_CLASSES { Task::Classification } else { Task::Regression }
        }
    });
    match (task, label) {
        (Task::Regression, Cells::Numbers(xs)) => Ok(Target::Values(xs.clone())),
        (Task::Regression, Cells::Texts { .. }) => {
            Err(column_error("is not numeric, so it cannot be a regression target (--task regression)".to_owned()))
        }
        (Task::Classification, cells) => {
            let texts = label_texts(cells);
            let mut classes: Vec<String> = texts.clone();
            classes.sort();
            classes.dedup();
            if matches!(cells, Cells::Numbers(_)) {
                classes.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
            }
            if classes.len() < 2 {
                return Err(column_error(format!(
                    "has one class ({:?}); a classifier needs at least 2",
                    classes.first().cloned().unwrap_or_default()
                )));
            }
            if classes.len() > MAX_CLASSES {
                return Err(column_error(format!(
                    "has {} classes, at most {MAX_CLASSES} are supported (a regression target? pass --task regression)",
                    classes.len()
                )));
            }
            let index: std::collections::HashMap<&str, u8> =
                classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u8)).collect();
            Ok(Target::Classes(texts.iter().map(|t| index[t.as_str()]).collect(), classes))
        }
    }
}

/// Each row's label as text (numbers formatted as [`number_text`]).
pub fn label_texts(cells: &Cells) -> Vec<String> {
    (0..cells.len())
        .map(|i| match cells.value(i) {
            super::Value::Number(x) => number_text(x),
            super::Value::Text(t) => t.to_owned(),
            super::Value::Missing => String::new(),
        })
        .collect()
}

/// The trainer's feature kinds of a schema.
pub fn feature_kinds(schema: &TabularSchema) -> Vec<FeatureKind> {
    schema
        .columns
        .iter()
        .map(|c| match &c.kind {
            ColumnKind::Numeric { .. } => FeatureKind::Numeric,
            ColumnKind::Categorical { vocabulary } => FeatureKind::Categorical { n_codes: vocabulary.len() + 1 },
        })
        .collect()
}

/// The objective of a target.
fn objective(target: &Target, poisson: bool) -> Result<Objective, TrainError> {
    Ok(match target {
        Target::Classes(_, classes) if classes.len() == 2 => Objective::Logistic,
        Target::Classes(_, classes) => Objective::Softmax { n_classes: classes.len() },
        Target::Values(values) if poisson => {
            if let Some(v) = values.iter().find(|v| **v < 0.0) {
                return Err(TrainError::Config(format!("--objective poisson needs labels >= 0, found {v}")));
            }
            Objective::poisson()
        }
        Target::Values(_) => Objective::SquaredError,
    })
}

/// The rows of each split.
fn splits(table: &RawTable, target: &Target, config: &TabularTrainConfig) -> Result<Splits, TrainError> {
    let shares = Shares { test: if config.test_data.is_some() { 0.0 } else { config.shares.test }, ..config.shares };
    let keys = |name: &str| -> Result<Vec<&str>, TrainError> {
        let Some(Cells::Texts { codes, values }) = table.kept.get(name) else {
            return Err(TrainError::Config(format!("no column {name}")));
        };
        Ok(codes.iter().map(|&c| values.get(c as usize).map_or("", String::as_str)).collect())
    };
    let splits = match &config.split {
        SplitBy::Random => {
            let strata: Option<Vec<u32>> = match target {
                Target::Classes(y, _) => Some(y.iter().map(|&c| u32::from(c)).collect()),
                Target::Values(_) => None,
            };
            split::random(table.rows, strata.as_deref(), shares, config.seed)
        }
        SplitBy::Group(name) => split::grouped(&keys(name)?, shares, config.seed),
        SplitBy::Time(name) => split::by_time(&keys(name)?, shares),
    };
    let needed = [("training", 10), ("validation", 1), ("test", usize::from(config.test_data.is_none()))];
    for ((name, needed), rows) in needed.into_iter().zip(&splits) {
        if rows.len() < needed {
            return Err(TrainError::Config(format!(
                "the {name} split has {} rows of {}; at least {needed} are needed",
                rows.len(),
                table.rows
            )));
        }
    }
    Ok(splits)
}

/// A trained tabular model before it is written.
pub struct TabularFitted {
    /// The schema (as the artifact holds it).
    pub schema: TabularSchema,
    /// The exact `tabular.json` bytes.
    pub schema_json: Vec<u8>,
    /// The trainer's model.
    pub booster: Booster,
    /// Its serialized form.
    pub spec: EnsembleSpec,
    /// Output names: classes, or the label for a regression.
    pub outputs: Vec<String>,
    /// Rows per split.
    pub rows: SplitRows,
    /// Rounds kept by early stopping before a refit (the refit trains that many).
    pub early_stopping_rounds: usize,
    /// Whether the model was refitted on training and validation rows.
    pub refitted: bool,
    /// Hyper-parameters used.
    pub params: Params,
    /// The objective.
    pub objective: Objective,
    /// Training time.
    pub seconds: f64,
    /// Reference distributions of the training rows (drift monitoring).
    pub reference: Reference,
    /// Covers and global importance, from the rows the trees were fitted on.
    pub explain: ExplainFile,
}

/// Splits, fits the schema, encodes and trains on a table already read.
pub fn fit(
    table: &RawTable,
    target: &Target,
    config: &TabularTrainConfig,
    progress: &dyn Progress,
) -> Result<(TabularFitted, Vec<usize>), TrainError> {
    let start = Instant::now();
    let [train_rows, valid_rows, test_rows] = splits(table, target, config)?;
    let schema = data::infer_schema(table, &train_rows);
    let schema_json = serde_json::to_vec_pretty(&schema).map_err(|e| TrainError::Config(e.to_string()))?;
    // Encode with the schema as the artifact will hold it.
    let schema = TabularSchema::from_json(&schema_json).map_err(|e| TrainError::Config(e.to_string()))?;
    let params = config.overrides.apply(default_params(train_rows.len()));
    let objective = objective(target, config.poisson)?;
    let kinds = feature_kinds(&schema);
    progress.stage("encoding rows", 0);
    let (train_x, _) = data::encode_rows(table, &schema, &train_rows);
    let (valid_x, _) = data::encode_rows(table, &schema, &valid_rows);
    let (train_y, valid_y) = (labels_of(target, &train_rows), labels_of(target, &valid_rows));
    let mut booster = gbdt::train(
        &params,
        &kinds,
        objective,
        Dataset { rows: &train_x, labels: train_y.as_labels() },
        Dataset { rows: &valid_x, labels: valid_y.as_labels() },
        progress,
    )?;
    let early_stopping_rounds = booster.best_iteration;
    let refitted = train_rows.len() + valid_rows.len() < REFIT_BELOW_ROWS && booster.best_iteration > 0;
    // The rows the kept trees were fitted on: their covers.
    let mut fit_x = None;
    if refitted {
        // The rows already encoded, training then validation: nothing is read or encoded twice.
        let all_x = fit_x.insert([train_x.as_slice(), &valid_x].concat());
        let all_y = labels_of(target, &[train_rows.as_slice(), &valid_rows].concat());
        let refit = Params { max_rounds: booster.best_iteration, early_stopping_rounds: usize::MAX, ..params.clone() };
        let labels = all_y.as_labels();
        booster = gbdt::train(
            &refit,
            &kinds,
            objective,
            Dataset { rows: all_x, labels },
            Dataset { rows: all_x, labels },
            progress,
        )?;
        booster.best_iteration = booster.rounds_run;
    }
    let outputs = match target {
        Target::Classes(_, classes) => classes.clone(),
        Target::Values(_) => vec![config.roles.label.clone()],
    };
    let spec = booster.to_spec(&outputs);
    let engine =
        Engine::compile(&spec).map_err(|e| TrainError::Config(format!("trained ensemble does not compile: {e}")))?;
    let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    let roles: Vec<Role> = kinds
        .iter()
        .map(|k| if matches!(k, FeatureKind::Categorical { .. }) { Role::Categorical } else { Role::Input })
        .collect();
    // The engine's predictions of the training rows, from the scores boosting kept (a refit's
    // rows are the training rows, then the validation rows).
    let mut predictions = booster.training_predictions();
    predictions.truncate(train_rows.len() * engine.n_classes());
    let mut reference = Reference::fit(&names, &roles, &spec, &train_x, &predictions);
    reference.label_rules(|f, code| match &schema.columns.get(f)?.kind {
        ColumnKind::Categorical { vocabulary } => {
            Some(vocabulary.get(code as usize).map_or_else(|| "(missing or unseen)".to_owned(), Clone::clone))
        }
        _ => None,
    });
    let regression = matches!(target, Target::Values(_));
    let fit_rows = fit_x.as_deref().unwrap_or(&train_x);
    let explain = explain_file(&booster, &spec, fit_rows, Attribution::identity(names.clone()), regression)?;
    let rows = SplitRows { train: train_rows.len(), validation: valid_rows.len(), test: test_rows.len(), dates: None };
    let fitted = TabularFitted {
        schema,
        schema_json,
        booster,
        spec,
        outputs,
        rows,
        early_stopping_rounds,
        refitted,
        params,
        objective,
        seconds: start.elapsed().as_secs_f64(),
        reference,
        explain,
    };
    Ok((fitted, test_rows))
}

/// Labels of some rows, owned.
pub enum OwnedLabels {
    /// Class indices.
    Classes(Vec<u8>),
    /// Values.
    Values(Vec<f64>),
}

impl OwnedLabels {
    /// Borrowed, as the trainer takes them.
    pub fn as_labels(&self) -> Labels<'_> {
        match self {
            Self::Classes(y) => Labels::Classes(y),
            Self::Values(y) => Labels::Values(y),
        }
    }
}

/// The labels of rows `rows`.
pub fn labels_of(target: &Target, rows: &[usize]) -> OwnedLabels {
    match target {
        Target::Classes(y, _) => OwnedLabels::Classes(rows.iter().map(|&i| y[i]).collect()),
        Target::Values(y) => OwnedLabels::Values(rows.iter().map(|&i| y[i]).collect()),
    }
}

/// The manifest's training summary.
fn summary(fitted: &TabularFitted, config: &TabularTrainConfig) -> Result<TrainingSummary, TrainError> {
    let config_error = |e: serde_json::Error| TrainError::Config(e.to_string());
    let mut params = serde_json::to_value(&fitted.params).map_err(config_error)?;
    params["objective"] = serde_json::to_value(fitted.objective).map_err(config_error)?;
    params["split"] = format!("{:?}", config.split).into();
    params["validation_share"] = config.shares.validation.into();
    params["test_share"] = if config.test_data.is_some() { 0.0.into() } else { config.shares.test.into() };
    params["refitted_on_training_and_validation_rows"] = fitted.refitted.into();
    let booster = &fitted.booster;
    let (algorithm, metric) = match fitted.objective {
        Objective::Softmax { .. } => ("multiclass softmax", None),
        Objective::Logistic => ("binary logistic", None),
        Objective::Poisson { .. } => ("Poisson regression on a log link", Some("poisson_deviance")),
        Objective::SquaredError => ("squared-error regression", Some("mean_squared_error")),
    };
    let loss = booster.validation_loss.get(fitted.early_stopping_rounds.saturating_sub(1)).copied();
    Ok(TrainingSummary {
        algorithm: format!("gradient-boosted trees, {algorithm} (retail-model gbdt)"),
        params,
        best_iteration: booster.best_iteration,
        rounds_run: booster.rounds_run,
        validation_log_loss: if metric.is_none() { loss } else { None },
        validation_metric: metric.map(str::to_owned),
        validation_loss: if metric.is_some() { loss } else { None },
        rows: fitted.rows.clone(),
        seconds: fitted.seconds,
    })
}

/// Reads the data, trains, evaluates on the test rows (or the test file) and writes the
/// artifact to `config.out` (atomically). Returns the manifest of the written artifact, which
/// has been loaded back and verified.
pub fn train_tabular(config: &TabularTrainConfig, progress: &dyn Progress) -> Result<Manifest, TrainError> {
    let table_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| TrainError::Table { path, source }
    };
    progress.stage("reading data", 0);
    let table = data::read_table(&config.data, &config.roles).map_err(table_error(&config.data))?;
    let target = target(&table.label, &config.roles.label, config.task).map_err(table_error(&config.data))?;
    let fingerprint = table.fingerprint.clone();
    let (fitted, test_rows) = fit(&table, &target, config, progress)?;
    let engine = Engine::compile(&fitted.spec)
        .map_err(|e| TrainError::Config(format!("trained ensemble does not compile: {e}")))?;
    let scored = match &config.test_data {
        Some(path) => {
            drop(table);
            evaluation::score_file(path, &fitted.schema, &config.roles.label, &fitted.outputs, &engine)
                .map_err(table_error(path))?
        }
        None => {
            let (x, unseen) = data::encode_rows(&table, &fitted.schema, &test_rows);
            Scored::new(&engine, &x, labels_of(&target, &test_rows), &fitted.outputs, unseen)
        }
    };
    let model_json = serde_json::to_vec(&fitted.spec).map_err(|e| TrainError::Config(e.to_string()))?;
    let version = config.version.clone().unwrap_or_else(|| {
        artifact::sha256_hex(&[model_json.as_slice(), &fitted.schema_json].concat())[..12].to_owned()
    });
    let name = config.name.clone().unwrap_or_else(|| {
        config.out.file_name().map_or_else(|| "tabular".to_owned(), |n| n.to_string_lossy().into_owned())
    });
    let regression = matches!(target, Target::Values(_));
    let rows = (fitted.rows.train + fitted.rows.validation + fitted.rows.test) as u64;
    let manifest = Manifest {
        format_version: artifact::FORMAT_VERSION,
        name,
        version,
        model: artifact::ModelFormat::Native,
        created_at: config.created_at.clone(),
        kind: if regression { ModelKind::TabularRegressor } else { ModelKind::TabularClassifier },
        target: config.roles.label.clone(),
        classes: fitted.outputs.iter().map(|c| ClassInfo { code: c.clone(), label: c.clone() }).collect(),
        input_schema: None,
        metrics: scored.metrics(),
        training: summary(&fitted, config)?,
        provenance: Provenance { rows: Some(rows), ..Provenance::of(&config.data, fingerprint, rows, config.seed) },
        files: BTreeMap::new(),
    };
    let mut files = vec![
        (artifact::MODEL_FILE, model_json),
        (TABULAR_FILE, fitted.schema_json.clone()),
        (REFERENCE_FILE, fitted.reference.to_json()),
        (EXPLAIN_FILE, fitted.explain.to_json()),
    ];
    let importance = fitted.explain.importance.as_ref();
    files.push((crate::card::CARD_FILE, evaluation::card(&manifest, &fitted.schema, &scored, importance).into_bytes()));
    files.extend(crate::card::importance::chart(importance));
    artifact::write_dir(&config.out, manifest, &files, config.replace)?;
    Ok(Artifact::load(&config.out)?.manifest)
}
