//! Import of a tree ensemble over a raw numeric vector ([`import_raw`]): input column `i` is
//! engine feature `i`, NaN a missing value. Classifiers keep their labels; regressors predict
//! one value.

use super::ensemble::{Attributes, Ensemble, Mode};
use super::graph::{Kind, check_graph};
use super::mapping::Column;
use super::translate::Translate;
use super::{OnnxError, OnnxSummary, decode, summary};
use crate::engine::{ENSEMBLE_FORMAT, EnsembleSpec, MAX_FEATURES, Output, TreeSpec};

/// What a raw import predicts.
#[derive(Debug, Clone, PartialEq)]
pub enum RawTask {
    /// Probabilities of these classes (the model's labels, integer labels as decimal strings),
    /// in the engine's output order, which is ONNX's.
    Classification {
        /// Class labels.
        classes: Vec<String>,
    },
    /// One value (`Engine::predict_value`).
    Regression,
}

/// The result of [`import_raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawImport {
    /// The ensemble over the input vector (feature `i` is column `i`).
    pub spec: EnsembleSpec,
    /// Classification or regression.
    pub task: RawTask,
    /// Columns of the input vector.
    pub n_features: usize,
    /// Name of the graph input.
    pub input_name: String,
    /// Facts about the ONNX file.
    pub summary: OnnxSummary,
}

/// Name of a regression's one output.
const REGRESSION_OUTPUT: &str = "value";

/// Imports an ONNX `TreeEnsembleClassifier` or `TreeEnsembleRegressor` over a raw numeric
/// vector. `n_features_hint` is the expected number of columns: it must agree with the graph's
/// declared width and stands in for it when the graph leaves the width open (else the widest
/// column a split reads is used).
pub fn import_raw(bytes: &[u8], n_features_hint: Option<usize>) -> Result<RawImport, OnnxError> {
    let model = decode(bytes)?;
    let graph = model.graph.as_ref().ok_or_else(|| OnnxError::Decode("the model has no graph".to_owned()))?;
    let shape = check_graph(graph, None, &[Kind::Classifier, Kind::Regressor])?;
    let attrs = Attributes::of(shape.trees);
    let (ensemble, task) = match shape.kind {
        Kind::Classifier => {
            let classes = class_labels(&attrs)?;
            (Ensemble::read(&attrs, "class", classes.len())?, RawTask::Classification { classes })
        }
        Kind::Regressor => {
            if let Some(n) = attrs.int("n_targets").filter(|&n| n != 1) {
                return Err(OnnxError::Trees(format!("n_targets = {n}: only one-target regressors are supported")));
            }
            (Ensemble::read(&attrs, "target", 1)?, RawTask::Regression)
        }
    };
    let n_features = width(&ensemble, shape.columns, n_features_hint)?;
    let columns: Vec<Column> = (0..n_features).map(|feature| Column::Numeric { feature }).collect();
    let vocabularies = vec![&[][..]; n_features];
    let trees = Translate { columns: &columns, vocabularies: &vocabularies, f32: shape.f32 }.trees(&ensemble)?;
    let (classes, layout) = match &task {
        RawTask::Classification { classes } => (classes.clone(), classifier_layout(&ensemble, classes.len())?),
        RawTask::Regression => {
            let aggregate = attrs.string("aggregate_function").unwrap_or_else(|| "SUM".to_owned());
            (vec![REGRESSION_OUTPUT.to_owned()], regressor_layout(&ensemble, &aggregate)?)
        }
    };
    let (trees, init_scores, output) = layout.apply(trees, classes.len());
    let spec = EnsembleSpec { format: ENSEMBLE_FORMAT.to_owned(), n_features, classes, init_scores, trees, output };
    let summary = summary(&model, &shape, &ensemble, n_features);
    Ok(RawImport { spec, task, n_features, input_name: shape.input.clone(), summary })
}

/// The class labels: `classlabels_strings`, or `classlabels_int64s` as decimal strings.
fn class_labels(a: &Attributes<'_>) -> Result<Vec<String>, OnnxError> {
    let labels = match a.ints("classlabels_int64s") {
        [] => a.strings("classlabels_strings"),
        ints => ints.iter().map(i64::to_string).collect(),
    };
    if labels.len() < 2 {
        return Err(OnnxError::Trees(format!("{} class labels; a classifier needs at least 2", labels.len())));
    }
    Ok(labels)
}

/// The input width: declared by the graph, else `hint`, else the widest column a split reads.
fn width(ensemble: &Ensemble, declared: Option<usize>, hint: Option<usize>) -> Result<usize, OnnxError> {
    let splits = ensemble.trees.values().flat_map(|t| t.values()).filter(|n| n.mode != Mode::Leaf);
    let used = splits.map(|n| n.feature.saturating_add(1)).max().unwrap_or(0);
    let n = match (declared, hint) {
        (Some(d), Some(h)) if d != h => {
            return Err(OnnxError::Graph(format!("the graph input has {d} columns, {h} were expected")));
        }
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => used.max(1),
    };
    if used > n {
        return Err(OnnxError::Trees(format!("a split reads column {}, the input has {n} columns", used - 1)));
    }
    if n > MAX_FEATURES {
        return Err(OnnxError::Graph(format!("the input has {n} columns; the engine takes at most {MAX_FEATURES}")));
    }
    Ok(n)
}

/// How the translated trees (one per ONNX tree and weighted output) become the engine's scores,
/// following onnxruntime's `TreeEnsembleClassifier` / `TreeEnsembleRegressor` kernels.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// Scores are the trees' sums plus `init` per output, then `output`.
    Plain { init: Vec<f64>, output: Output },
    /// Trees scale by `scale` (an AVERAGE regressor: 1 / trees), then as [`Layout::Plain`].
    Scaled { scale: f64, init: f64 },
    /// A binary classifier weighting class 0 only, whose sum `s` (plus base `b`) gives the
    /// probabilities `(1 - s, s)` when every weight is non-negative.
    Complement { base: f64 },
    /// ... `(-s, s)` when some weight is negative and the transform is not LOGISTIC.
    Signed { base: f64 },
    /// ... `(sigmoid(-s), sigmoid(s))`, the softmax of `(0, s)`, under LOGISTIC.
    Logistic { base: f64 },
}

impl Layout {
    /// The engine's trees, init scores and output.
    fn apply(self, trees: Vec<TreeSpec>, outputs: usize) -> (Vec<TreeSpec>, Vec<f64>, Output) {
        let mirrored = |trees: Vec<TreeSpec>| -> Vec<TreeSpec> {
            trees
                .into_iter()
                .flat_map(|t| {
                    let negated =
                        TreeSpec { class: 0, nodes: t.nodes.clone(), leaves: t.leaves.iter().map(|v| -v).collect() };
                    [negated, TreeSpec { class: 1, ..t }]
                })
                .collect()
        };
        match self {
            Self::Plain { init, output } => (trees, init, output),
            Self::Scaled { scale, init } => {
                let scaled = trees
                    .into_iter()
                    .map(|t| TreeSpec { leaves: t.leaves.iter().map(|v| v * scale).collect(), ..t })
                    .collect();
                (scaled, vec![init; outputs], Output::Identity)
            }
            Self::Complement { base } => (mirrored(trees), vec![1.0 - base, base], Output::Identity),
            Self::Signed { base } => (mirrored(trees), vec![-base, base], Output::Identity),
            Self::Logistic { base } => {
                let moved = trees.into_iter().map(|t| TreeSpec { class: 1, ..t }).collect();
                (moved, vec![0.0, base], Output::Softmax)
            }
        }
    }
}

/// How onnxruntime turns a classifier's sums into probabilities.
fn classifier_layout(ensemble: &Ensemble, classes: usize) -> Result<Layout, OnnxError> {
    let bad = |m: String| Err(OnnxError::Trees(m));
    let weighted = ensemble.weighted_outputs();
    let base = &ensemble.base_values;
    let post = ensemble.post_transform.as_str();
    let binary_one_class = classes == 2 && weighted.len() == 1;
    if binary_one_class && !weighted.contains(&0) {
        return bad("a binary classifier whose leaves weight only class 1 is not supported".to_owned());
    }
    if binary_one_class && base.len() <= 1 {
        let base = base.first().copied().unwrap_or(0.0);
        return match post {
            "PROBIT" => bad("post_transform PROBIT is not supported".to_owned()),
            _ if ensemble.weights_nonnegative() => Ok(Layout::Complement { base }),
            "LOGISTIC" => Ok(Layout::Logistic { base }),
            _ => Ok(Layout::Signed { base }),
        };
    }
    if classes == 2 && weighted.len() == 2 && base.len() == 2 {
        // onnxruntime then adds base_values[1] to class 0's sum (its binary rule): ambiguous.
        return bad("a binary classifier weighting both classes with two base_values is not supported".to_owned());
    }
    let init = match base.len() {
        0 => vec![0.0; classes],
        1 if classes == 2 => vec![base[0], 0.0],
        n if n == classes => base.clone(),
        n => return bad(format!("{n} base_values for {classes} classes")),
    };
    let note = "; LOGISTIC only for binary classifiers weighting one class";
    Ok(Layout::Plain { init, output: ensemble.class_output(note)? })
}

/// How onnxruntime turns a one-target regressor's sum into its value.
fn regressor_layout(ensemble: &Ensemble, aggregate: &str) -> Result<Layout, OnnxError> {
    let bad = |m: String| Err(OnnxError::Trees(m));
    if ensemble.post_transform != "NONE" {
        return bad(format!("post_transform {} is not supported for a regressor (only NONE)", ensemble.post_transform));
    }
    let init = match ensemble.base_values[..] {
        [] => 0.0,
        [b] => b,
        ref more => return bad(format!("{} base_values for one target", more.len())),
    };
    match aggregate {
        "SUM" => Ok(Layout::Plain { init: vec![init], output: Output::Identity }),
        "AVERAGE" => Ok(Layout::Scaled { scale: 1.0 / ensemble.trees.len().max(1) as f64, init }),
        other => bad(format!(
            "aggregate_function {other} is not supported (SUM or AVERAGE; MIN and MAX have no sum of trees)"
        )),
    }
}
