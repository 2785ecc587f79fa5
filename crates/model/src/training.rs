//! Training and evaluation end to end: transaction CSV → baskets → customer-level split →
//! schema and features (the shared pipeline) → boosted trees → compiled engine → metrics →
//! artifact directory with manifest and model card.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::artifact::{self, Artifact, ArtifactError, ClassInfo, Manifest, Provenance, SplitRows, TrainingSummary};
use crate::catalogue;
use crate::data::{self, Baskets, DataError};
use crate::drift::{REFERENCE_FILE, Reference, Role};
use crate::engine::{Engine, EnsembleSpec};
use crate::explain::{Attribution, EXPLAIN_FILE, ExplainFile};
use crate::features::{
    FEATURE_NAMES, FIRST_CATEGORICAL, FeaturePipeline, FeatureSpec, InputSchema, MAX_QUANTITY, MAX_SPEND,
    MAX_VOCABULARY, N_FEATURES, UNSEEN_CODE,
};
use crate::gbdt::{self, Booster, Dataset, FeatureKind, InputError, Labels, Objective, Params};
use crate::metrics::{self, Metrics};
use crate::progress::Progress;
use crate::rng::{Rng, fnv1a, splitmix64};
use crate::{CLASSES, MODEL_NAME, TARGET, card};

/// Random stream of the unseen-category augmentation.
const STREAM_AUGMENT: u64 = 3;

/// Everything `retail-api train` needs.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Transaction CSV.
    pub data: PathBuf,
    /// Artifact directory to write.
    pub out: PathBuf,
    /// Replace `out` if it exists.
    pub replace: bool,
    /// Seed of the split, augmentation and training.
    pub seed: u64,
    /// Booster hyper-parameters.
    pub params: Params,
    /// Share of customers held out for early stopping.
    pub validation_share: f64,
    /// Share of customers held out for the manifest metrics.
    pub test_share: f64,
    /// Share of training values of each category feature replaced by "unseen", so the model
    /// learns a sensible answer for categories it has never seen.
    pub unseen_rate: f64,
    /// Model version; defaults to a prefix of the ensemble's sha256.
    pub version: Option<String>,
    /// RFC 3339 creation time written to the manifest.
    pub created_at: String,
}

impl TrainConfig {
    /// A configuration with the documented defaults.
    pub fn new(data: PathBuf, out: PathBuf, created_at: String) -> Self {
        Self {
            data,
            out,
            replace: false,
            seed: 42,
            params: Params::default(),
            validation_share: 0.1,
            test_share: 0.1,
            unseen_rate: 0.01,
            version: None,
            created_at,
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data could not be read.
    #[error("{path}: {source}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// The cause.
        source: DataError,
    },
    /// The sales data could not be read.
    #[error("{path}: {source}")]
    SalesData {
        /// The data file.
        path: PathBuf,
        /// The cause.
        source: crate::forecast::data::SalesDataError,
    },
    /// A tabular CSV could not be read.
    #[error("{path}: {source}")]
    Table {
        /// The data file.
        path: PathBuf,
        /// The cause.
        source: crate::tabular::data::TableError,
    },
    /// A split of sales rows has too few rows to train or evaluate.
    #[error("the {split} split ({first} to {last}) has {rows} rows; at least {needed} are needed")]
    TooFewRows {
        /// Split name.
        split: &'static str,
        /// Its first day.
        first: String,
        /// Its last day.
        last: String,
        /// Rows in it.
        rows: usize,
        /// Rows needed.
        needed: usize,
    },
    /// A split has too few baskets to train or evaluate.
    #[error(
        "the {split} split has {baskets} labelled baskets; at least {needed} are needed (the data has {total} labelled baskets)"
    )]
    TooFew {
        /// Split name.
        split: &'static str,
        /// Baskets in it.
        baskets: usize,
        /// Baskets needed.
        needed: usize,
        /// Labelled baskets in the data.
        total: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The encoded data cannot be trained on.
    #[error("cannot train: {0}")]
    Input(#[from] InputError),
    /// The artifact could not be written or does not load back.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Which split a basket belongs to: a pure function of the seed and its group (customer).
fn split_of(seed: u64, key: &str, validation: f64, test: f64) -> usize {
    let u = (splitmix64(seed ^ fnv1a(key)) >> 11) as f64 / (1u64 << 53) as f64;
    if u < test {
        2
    } else if u < test + validation {
        1
    } else {
        0
    }
}

/// Builds the input schema from training baskets: sorted vocabularies (the most frequent
/// [`MAX_VOCABULARY`] values), observed numeric ranges and the catalogue hierarchy.
fn schema(baskets: &Baskets, rows: &[usize]) -> InputSchema {
    let mut features = Vec::with_capacity(N_FEATURES);
    let numeric = |name: &str, value: &dyn Fn(usize) -> f64, valid_min: f64, valid_max: f64| {
        let (min, max) = rows
            .iter()
            .map(|&i| value(i))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        FeatureSpec::Numeric { name: name.to_owned(), min, max, valid_min, valid_max }
    };
    features.push(numeric("SPEND", &|i| baskets.spend[i], 0.0, MAX_SPEND));
    features.push(numeric("QUANTITY", &|i| baskets.quantity[i], 1.0, MAX_QUANTITY));
    features.push(numeric("UNIT_PRICE", &|i| baskets.spend[i] / baskets.quantity[i], 0.0, MAX_SPEND));
    for (c, name) in FEATURE_NAMES[FIRST_CATEGORICAL..].iter().enumerate() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in rows {
            *counts.entry(&baskets.values[baskets.categories[i][c] as usize]).or_default() += 1;
        }
        let mut by_count: Vec<(&str, usize)> = counts.into_iter().filter(|(v, _)| !v.is_empty()).collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut vocabulary: Vec<String> =
            by_count.into_iter().take(MAX_VOCABULARY).map(|(v, _)| v.to_owned()).collect();
        vocabulary.sort();
        features.push(FeatureSpec::Categorical { name: (*name).to_owned(), vocabulary });
    }
    InputSchema { features, hierarchy: catalogue::builtin_hierarchy() }
}

/// Feature rows and labels of some baskets, plus how many category values were unseen.
struct Encoded {
    rows: Vec<f64>,
    labels: Vec<u8>,
    unseen: u64,
}

fn encode(pipeline: &FeaturePipeline, baskets: &Baskets, rows: &[usize]) -> Encoded {
    let mut out = Encoded {
        rows: Vec::with_capacity(rows.len() * N_FEATURES),
        labels: Vec::with_capacity(rows.len()),
        unseen: 0,
    };
    for &i in rows {
        // Reading validated every basket; a record that still fails is skipped, not scored.
        let Ok(encoded) = pipeline.encode(&baskets.record(i)) else {
            continue;
        };
        out.rows.extend_from_slice(&encoded.features);
        out.labels.push(baskets.labels[i].unwrap_or_default());
        out.unseen += encoded.unseen.len() as u64;
    }
    out
}

/// A trained model before it is written.
pub struct Fitted {
    /// The trainer's model.
    pub booster: Booster,
    /// Its serialized form.
    pub spec: EnsembleSpec,
    /// The input schema.
    pub schema: InputSchema,
    /// Metrics on the test split.
    pub test_metrics: Metrics,
    /// Basket counts per split.
    pub rows: SplitRows,
    /// Training time.
    pub seconds: f64,
    /// Reference distributions of the training baskets (drift monitoring).
    pub reference: Reference,
    /// Covers and global importance, from the training rows.
    pub explain: ExplainFile,
}

/// The drift roles of the basket features: `SPEND` and `QUANTITY` are inputs, `UNIT_PRICE` is
/// computed from them, the rest are categories.
pub fn basket_roles() -> Vec<Role> {
    (0..N_FEATURES)
        .map(|f| match f {
            0 | 1 => Role::Input,
            f if f < FIRST_CATEGORICAL => Role::Derived,
            _ => Role::Categorical,
        })
        .collect()
}

/// Labelled baskets by split (train, validation, test), grouped by customer: every basket of a
/// customer lands in the same split.
pub fn assign_splits(baskets: &Baskets, config: &TrainConfig) -> [Vec<usize>; 3] {
    let mut splits: [Vec<usize>; 3] = Default::default();
    for i in (0..baskets.len()).filter(|&i| baskets.labels[i].is_some()) {
        splits[split_of(config.seed, baskets.group_key(i), config.validation_share, config.test_share)].push(i);
    }
    splits
}

/// Splits, encodes and trains on baskets already read.
pub fn fit(baskets: &Baskets, config: &TrainConfig, progress: &dyn Progress) -> Result<Fitted, TrainError> {
    let shares = config.validation_share + config.test_share;
    if !(config.validation_share > 0.0 && config.test_share > 0.0 && shares < 1.0) {
        return Err(TrainError::Config(format!(
            "validation ({}) and test ({}) shares must be positive and sum below 1",
            config.validation_share, config.test_share
        )));
    }
    if !(0.0..0.5).contains(&config.unseen_rate) {
        return Err(TrainError::Config(format!("unseen rate {} must be in [0, 0.5)", config.unseen_rate)));
    }
    let start = Instant::now();
    let splits = assign_splits(baskets, config);
    let total = splits.iter().map(Vec::len).sum();
    for (split, name, needed) in
        [(0, "train", 2 * config.params.min_data_in_leaf.max(50)), (1, "validation", 10), (2, "test", 10)]
    {
        if splits[split].len() < needed {
            return Err(TrainError::TooFew { split: name, baskets: splits[split].len(), needed, total });
        }
    }
    let schema = schema(baskets, &splits[0]);
    let pipeline = FeaturePipeline::new(schema.clone()).map_err(|e| TrainError::Config(e.to_string()))?;
    let mut train = encode(&pipeline, baskets, &splits[0]);
    let valid = encode(&pipeline, baskets, &splits[1]);
    let test = encode(&pipeline, baskets, &splits[2]);
    // The reference is of the training rows as read, before augmentation.
    let reference_rows = train.rows.clone();
    // Augment: a few training values become "unseen".
    for (r, row) in train.rows.chunks_mut(N_FEATURES).enumerate() {
        let mut rng = Rng::new(config.seed, STREAM_AUGMENT, r as u64);
        for code in &mut row[FIRST_CATEGORICAL..] {
            if rng.chance(config.unseen_rate) {
                *code = f64::from(UNSEEN_CODE);
            }
        }
    }
    let kinds: Vec<FeatureKind> = schema
        .features
        .iter()
        .map(|f| match f {
            FeatureSpec::Numeric { .. } => FeatureKind::Numeric,
            FeatureSpec::Categorical { vocabulary, .. } => FeatureKind::Categorical { n_codes: vocabulary.len() + 1 },
        })
        .collect();
    let booster = gbdt::train(
        &config.params,
        &kinds,
        Objective::Softmax { n_classes: CLASSES.len() },
        Dataset { rows: &train.rows, labels: Labels::Classes(&train.labels) },
        Dataset { rows: &valid.rows, labels: Labels::Classes(&valid.labels) },
        progress,
    )?;
    let classes: Vec<String> = CLASSES.iter().map(|c| (*c).to_owned()).collect();
    let spec = booster.to_spec(&classes);
    let engine =
        Engine::compile(&spec).map_err(|e| TrainError::Config(format!("trained ensemble does not compile: {e}")))?;
    let names: Vec<String> = crate::features::FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let mut reference = Reference::of_rows(&names, &basket_roles(), &spec, &engine, &reference_rows);
    reference.label_rules(|feature, code| schema.category(feature, code));
    let explain = explain_file(&booster, &spec, &train.rows, Attribution::basket(), false)?;
    drop(reference_rows);
    let mut probabilities = vec![0.0; test.labels.len() * CLASSES.len()];
    engine.predict_batch_parallel(&test.rows, &mut probabilities);
    let labels: Vec<usize> = test.labels.iter().map(|&y| usize::from(y)).collect();
    let test_metrics = metrics::evaluate(&classes, &probabilities, &labels);
    let rows =
        SplitRows { train: train.labels.len(), validation: valid.labels.len(), test: test.labels.len(), dates: None };
    Ok(Fitted { booster, spec, schema, test_metrics, rows, seconds: start.elapsed().as_secs_f64(), reference, explain })
}

/// The covers and importance of a trained ensemble: the covers as `booster` counted the rows
/// it was trained on, `rows`, and the importance over them.
pub(crate) fn explain_file(
    booster: &Booster,
    spec: &EnsembleSpec,
    rows: &[f64],
    attribution: Attribution,
    regression: bool,
) -> Result<ExplainFile, TrainError> {
    ExplainFile::of_covers(spec, booster.leaf_covers(), rows, attribution, regression)
        .map_err(|e| TrainError::Config(format!("trained ensemble cannot be explained: {e}")))
}

/// Reads the data, trains, and writes the artifact to `config.out` (atomically). Returns the
/// manifest of the written artifact, which has been loaded back and verified.
pub fn train(config: &TrainConfig, progress: &dyn Progress) -> Result<Manifest, TrainError> {
    let data_error = |source| TrainError::Data { path: config.data.clone(), source };
    let (baskets, bytes) = data::read_baskets(&config.data, progress).map_err(data_error)?;
    let fingerprint = format!("sha256:{}", artifact::sha256_hex(&bytes));
    drop(bytes);
    let fitted = fit(&baskets, config, progress)?;
    let model_json = serde_json::to_vec(&fitted.spec).map_err(|e| TrainError::Config(e.to_string()))?;
    let version = config.version.clone().unwrap_or_else(|| artifact::sha256_hex(&model_json)[..12].to_owned());
    let training = TrainingSummary {
        algorithm: "gradient-boosted trees, multiclass softmax (retail-model gbdt)".to_owned(),
        params: serde_json::to_value(&config.params).map_err(|e| TrainError::Config(e.to_string()))?,
        best_iteration: fitted.booster.best_iteration,
        rounds_run: fitted.booster.rounds_run,
        validation_log_loss: fitted
            .booster
            .validation_loss
            .get(fitted.booster.best_iteration.saturating_sub(1))
            .copied(),
        validation_metric: None,
        validation_loss: None,
        rows: fitted.rows.clone(),
        seconds: fitted.seconds,
    };
    let provenance = Provenance {
        baskets: (fitted.rows.train + fitted.rows.validation + fitted.rows.test) as u64,
        ..Provenance::of(&config.data, fingerprint, baskets.lines, config.seed)
    };
    let manifest = Manifest {
        format_version: artifact::FORMAT_VERSION,
        name: MODEL_NAME.to_owned(),
        version,
        model: artifact::ModelFormat::Native,
        created_at: config.created_at.clone(),
        target: TARGET.to_owned(),
        classes: ClassInfo::all(),
        kind: artifact::ModelKind::BasketClassifier,
        input_schema: Some(fitted.schema),
        metrics: artifact::ModelMetrics::Classification(fitted.test_metrics.clone()),
        training,
        provenance,
        files: BTreeMap::new(),
    };
    let mut files = vec![
        (artifact::MODEL_FILE, model_json),
        (REFERENCE_FILE, fitted.reference.to_json()),
        (EXPLAIN_FILE, fitted.explain.to_json()),
    ];
    let importance = fitted.explain.importance.as_ref();
    files.extend(card::render(&card::CardInput::for_training(&manifest, &fitted.test_metrics, importance)));
    artifact::write_dir(&config.out, manifest, &files, config.replace)?;
    Ok(Artifact::load(&config.out)?.manifest)
}

/// Result of `retail-api evaluate`.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Model evaluated.
    pub model: ModelRef,
    /// Data evaluated on.
    pub data: DataSummary,
    /// The model's metrics.
    pub metrics: Metrics,
    /// Metrics of the true class probabilities on the same rows (the Bayes-optimal ceiling).
    pub bayes: Option<Metrics>,
    /// Model minus Bayes-optimal, in points of accuracy and macro-F1 (negative is below).
    pub gap_to_bayes: Option<Gap>,
    /// Category values scored as unseen, per feature.
    pub unseen: BTreeMap<String, u64>,
}

/// Name and version of a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// What was evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct DataSummary {
    /// The data file.
    pub file: String,
    /// Transaction lines.
    pub lines: u64,
    /// Baskets.
    pub baskets: usize,
    /// Baskets scored (labelled LA/MM/UM).
    pub labelled: usize,
    /// Baskets skipped because their label is `XX`.
    pub unlabelled: usize,
}

/// Distance to the Bayes-optimal ceiling in percentage points.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Accuracy points.
    pub accuracy: f64,
    /// Macro-F1 points.
    pub macro_f1: f64,
}

/// Why evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// Data or truth file unreadable.
    #[error("{path}: {source}")]
    Data {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: DataError,
    },
    /// The truth sidecar lacks a basket of the data.
    #[error("{path}: no row for basket {basket} (is it the sidecar of this data file?)")]
    MissingTruth {
        /// The sidecar.
        path: PathBuf,
        /// The basket.
        basket: String,
    },
    /// Sales data or truth file unreadable, or a truth sidecar not of the data.
    #[error("{path}: {source}")]
    SalesData {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: crate::forecast::data::SalesDataError,
    },
    /// Nothing to evaluate.
    #[error("{0}: no labelled baskets to evaluate")]
    NoLabelled(PathBuf),
    /// The model is not of the kind the data is for (a basket classifier for transactions, a
    /// sales forecast for sales rows).
    #[error("the model is a {}, not a {}", .0.as_str(), .1.as_str())]
    WrongKind(artifact::ModelKind, artifact::ModelKind),
}

/// Scores an artifact on a labelled transaction file, optionally against its truth sidecar.
pub fn evaluate(
    artifact: &Artifact,
    data_path: &Path,
    truth_path: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Evaluation, EvaluateError> {
    let (baskets, _) = data::read_baskets(data_path, progress)
        .map_err(|source| EvaluateError::Data { path: data_path.to_owned(), source })?;
    let truth = truth_path
        .map(|p| data::read_truth(p).map_err(|source| EvaluateError::Data { path: p.to_owned(), source }))
        .transpose()?;
    let pipeline =
        artifact.pipeline().ok_or(EvaluateError::WrongKind(artifact.kind(), artifact::ModelKind::BasketClassifier))?;
    let k = artifact.engine.n_classes();
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    let mut true_probabilities = Vec::new();
    let mut unseen: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..baskets.len() {
        let Some(label) = baskets.labels[i] else {
            continue;
        };
        let Ok(encoded) = pipeline.encode(&baskets.record(i)) else {
            continue;
        };
        for u in &encoded.unseen {
            *unseen.entry(u.field.to_owned()).or_default() += 1;
        }
        rows.extend_from_slice(&encoded.features);
        labels.push(usize::from(label));
        if let (Some(truth), Some(path)) = (&truth, truth_path) {
            let p = truth.get(&*baskets.ids[i]).ok_or_else(|| EvaluateError::MissingTruth {
                path: path.to_owned(),
                basket: baskets.ids[i].to_string(),
            })?;
            true_probabilities.extend_from_slice(p);
        }
    }
    if labels.is_empty() {
        return Err(EvaluateError::NoLabelled(data_path.to_owned()));
    }
    let mut probabilities = vec![0.0; labels.len() * k];
    artifact.engine.predict_batch_parallel(&rows, &mut probabilities);
    let classes: Vec<String> = artifact.manifest.classes.iter().map(|c| c.code.clone()).collect();
    let model_metrics = metrics::evaluate(&classes, &probabilities, &labels);
    let bayes = truth.is_some().then(|| metrics::evaluate(&classes, &true_probabilities, &labels));
    let gap_to_bayes = bayes.as_ref().map(|b| Gap {
        accuracy: 100.0 * (model_metrics.accuracy - b.accuracy),
        macro_f1: 100.0 * (model_metrics.macro_f1 - b.macro_f1),
    });
    Ok(Evaluation {
        model: ModelRef { name: artifact.manifest.name.clone(), version: artifact.manifest.version.clone() },
        data: DataSummary {
            file: data_path.display().to_string(),
            lines: baskets.lines,
            baskets: baskets.len(),
            labelled: labels.len(),
            unlabelled: baskets.labels.iter().filter(|l| l.is_none()).count(),
        },
        metrics: model_metrics,
        bayes,
        gap_to_bayes,
        unseen,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::data::parse_baskets;
    use crate::progress::Silent;
    use crate::synth::{GenConfig, generate};

    #[test]
    fn splits_are_by_customer_without_leakage() {
        let mut data = Vec::new();
        generate(GenConfig { baskets: 20_000, seed: 2 }, &mut data, None, &Silent).expect("generate");
        let baskets = parse_baskets(&data, &Silent).expect("parse");
        let config = TrainConfig::new("d".into(), "m".into(), String::new());
        let splits = assign_splits(&baskets, &config);
        let groups: Vec<HashSet<&str>> =
            splits.iter().map(|s| s.iter().map(|&i| baskets.group_key(i)).collect()).collect();
        assert!(
            groups[0].is_disjoint(&groups[1]) && groups[0].is_disjoint(&groups[2]) && groups[1].is_disjoint(&groups[2])
        );
        let labelled = baskets.labels.iter().filter(|l| l.is_some()).count();
        assert_eq!(splits.iter().map(Vec::len).sum::<usize>(), labelled, "every labelled basket, XX left out");
        let share = |s: usize| splits[s].len() as f64 / labelled as f64;
        assert!((share(0) - 0.8).abs() < 0.03 && (share(1) - 0.1).abs() < 0.02 && (share(2) - 0.1).abs() < 0.02);
        // Another seed gives another split.
        let other = assign_splits(&baskets, &TrainConfig { seed: 43, ..config });
        assert_ne!(other[2], splits[2]);
    }
}
