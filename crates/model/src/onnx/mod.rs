//! "Bring your own model": imports a tree-ensemble classifier exported to ONNX (skl2onnx,
//! onnxmltools; `ai.onnx.ml` `TreeEnsembleClassifier`) into the native engine's
//! [`EnsembleSpec`] over the pipeline's own feature row, so an imported model is served by the
//! same pipeline and engine as a trained one. No ONNX runtime is involved.
//!
//! The [`InputMapping`] says what each column of the ONNX input is: a numeric pipeline feature,
//! the one-hot indicator of a category, or an ordinal code. A threshold split on a one-hot or
//! ordinal column becomes a category-set split on the pipeline's categorical feature (unseen
//! code 0 sets every indicator to 0, like `OneHotEncoder(handle_unknown="ignore")`). ONNX compares
//! in the input's precision (`float32` for skl2onnx), so a numeric threshold `t` becomes the
//! largest `f64` bound `b` with `x <= b` exactly when `(x as f32) <= t`.
//!
//! Graphs with other compute (linear models, neural networks, in-graph preprocessing) and
//! ZipMap outputs are refused with a message naming the operator. What decoding a file costs
//! is bounded from its wire format before it is decoded ([`MAX_DECODED_BYTES`]).

mod bound;
mod proto;

pub use bound::MAX_DECODED_BYTES;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::catalogue;
use crate::engine::{ENSEMBLE_FORMAT, EnsembleSpec, MAX_DEPTH, NodeSpec, Output, SplitTest, TreeSpec};
use crate::features::{
    FEATURE_NAMES, FIRST_CATEGORICAL, FeatureSpec, InputSchema, MAX_QUANTITY, MAX_SPEND, N_FEATURES, UNSEEN_CODE,
};
use proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// Domain of the ONNX-ML operators.
const ML_DOMAIN: &str = "ai.onnx.ml";

/// What the columns of the ONNX model's input tensor are, in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMapping {
    /// Name of the graph input (optional when the graph has one input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// One entry per column of the input tensor.
    pub columns: Vec<InputColumn>,
    /// Names of integer class labels (`classlabels_int64s`, as XGBoost and LightGBM exports
    /// carry): label `i` is the API class `classes[i]`. Only for models with integer labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// One column of the ONNX input: `{"feature":"SPEND"}`,
/// `{"feature":"STORE_REGION","one_hot":"LONDON"}` or
/// `{"feature":"BASKET_SIZE","ordinal":["S","M","L"],"unseen":-1}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputColumn {
    /// Pipeline feature the column is computed from (one of [`FEATURE_NAMES`]).
    pub feature: String,
    /// The column is 1 when the categorical feature has this value, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<String>,
    /// The column is the position of the categorical feature's value in this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<Vec<String>>,
    /// Column value of a category missing from `ordinal` (e.g. -1, as sklearn's
    /// `OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<f64>,
}

/// What an ONNX column is, resolved against the pipeline.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// The value of numeric feature `feature`.
    Numeric { feature: usize },
    /// 1 when categorical feature `feature` has value `value`.
    OneHot { feature: usize, value: String },
    /// Position of the value in `order`, else `unseen`.
    Ordinal { feature: usize, order: Vec<String>, unseen: f64 },
}

impl Column {
    fn feature(&self) -> usize {
        match self {
            Self::Numeric { feature } | Self::OneHot { feature, .. } | Self::Ordinal { feature, .. } => *feature,
        }
    }

    /// The column's value for a row whose categorical feature is `value` (`None`: unseen).
    fn categorical_value(&self, value: Option<&str>) -> f64 {
        match self {
            Self::Numeric { .. } => unreachable!("numeric columns have no category"),
            Self::OneHot { value: hot, .. } => f64::from(u8::from(value == Some(hot.as_str()))),
            Self::Ordinal { order, unseen, .. } => {
                value.and_then(|v| order.iter().position(|o| o == v)).map_or(*unseen, |i| i as f64)
            }
        }
    }
}

/// Why an ONNX model or its input mapping cannot be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX model.
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// The graph computes something other than a tree ensemble.
    #[error("unsupported ONNX graph: {0}")]
    Graph(String),
    /// The `TreeEnsembleClassifier` is malformed or uses a feature the importer does not support.
    #[error("TreeEnsembleClassifier: {0}")]
    Trees(String),
    /// The model's class labels are not the API's.
    #[error(
        "the model's class labels {found:?} are not this API's classes {expected:?} (train on the labels LA/MM/UM)"
    )]
    Classes {
        /// Labels in the ONNX model.
        found: Vec<String>,
        /// Classes the API serves.
        expected: Vec<String>,
    },
    /// The input mapping is invalid or does not fit the graph.
    #[error("input mapping: {0}")]
    Mapping(String),
    /// Decoding the file would take more memory than allowed (found before decoding it).
    #[error("decoding it could take {bytes} bytes, more than the {MAX_DECODED_BYTES} allowed (MAX_DECODED_BYTES)")]
    TooLarge {
        /// The upper bound computed from the file.
        bytes: u64,
    },
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The ensemble over the pipeline's feature row.
    pub spec: EnsembleSpec,
    /// Facts about the ONNX file, for the manifest and `/model/info`.
    pub summary: OnnxSummary,
}

/// Facts about an imported ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnnxSummary {
    /// Producer and version recorded in the file, e.g. `skl2onnx 1.20.0`.
    pub producer: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Operator sets imported (`""` is the default domain).
    pub opsets: BTreeMap<String, i64>,
    /// Name of the graph input.
    pub input: String,
    /// Columns of the input tensor.
    pub columns: usize,
    /// Precision ONNX compares in (`float` or `double`).
    pub precision: String,
    /// Trees in the ONNX ensemble.
    pub trees: usize,
    /// Nodes (splits and leaves) in the ONNX ensemble.
    pub nodes: usize,
    /// `post_transform` of the ensemble (`SOFTMAX` or `NONE`).
    pub post_transform: String,
}

/// The input schema an imported model is served with: the numeric features with their accepted
/// ranges, and each categorical feature's vocabulary as the categories the mapping names (sorted,
/// canonical spelling). A categorical feature the mapping does not use has an empty vocabulary,
/// so its values are reported as unseen: the model never looks at them.
pub fn input_schema(mapping: &InputMapping) -> Result<InputSchema, OnnxError> {
    let columns = resolve_columns(mapping)?;
    let mut vocabularies: Vec<BTreeSet<String>> = vec![BTreeSet::new(); N_FEATURES];
    for column in &columns {
        match column {
            Column::Numeric { .. } => {}
            Column::OneHot { feature, value } => {
                vocabularies[*feature].insert(value.clone());
            }
            Column::Ordinal { feature, order, .. } => vocabularies[*feature].extend(order.iter().cloned()),
        }
    }
    let features = FEATURE_NAMES
        .iter()
        .zip(vocabularies)
        .enumerate()
        .map(|(i, (name, vocabulary))| {
            let name = (*name).to_owned();
            if i >= FIRST_CATEGORICAL {
                return FeatureSpec::Categorical { name, vocabulary: vocabulary.into_iter().collect() };
            }
            let (valid_min, valid_max) = if name == "QUANTITY" { (1.0, MAX_QUANTITY) } else { (0.0, MAX_SPEND) };
            // The ONNX file does not record the training range; the accepted range stands in.
            FeatureSpec::Numeric { name, min: valid_min, max: valid_max, valid_min, valid_max }
        })
        .collect();
    Ok(InputSchema { features, hierarchy: catalogue::builtin_hierarchy() })
}

/// Checks the mapping's columns against the pipeline's features; category values are
/// canonicalised as requests are.
fn resolve_columns(mapping: &InputMapping) -> Result<Vec<Column>, OnnxError> {
    if mapping.columns.is_empty() {
        return Err(OnnxError::Mapping("lists no columns".to_owned()));
    }
    mapping
        .columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let fail = |reason: String| OnnxError::Mapping(format!("column {j} ({}): {reason}", c.feature));
            let feature = FEATURE_NAMES
                .iter()
                .position(|n| *n == c.feature)
                .ok_or_else(|| fail(format!("unknown feature; the features are {}", FEATURE_NAMES.join(", "))))?;
            let categorical = feature >= FIRST_CATEGORICAL;
            if c.unseen.is_some() && c.ordinal.is_none() {
                return Err(fail("`unseen` belongs to an `ordinal` column".to_owned()));
            }
            match (&c.one_hot, &c.ordinal) {
                (None, None) if !categorical => Ok(Column::Numeric { feature }),
                (None, None) => Err(fail("a categorical feature needs `one_hot` or `ordinal`".to_owned())),
                (Some(_), _) | (_, Some(_)) if !categorical => {
                    Err(fail("a numeric feature takes no `one_hot` or `ordinal`".to_owned()))
                }
                (Some(_), Some(_)) => Err(fail("give either `one_hot` or `ordinal`, not both".to_owned())),
                (Some(value), None) => {
                    let value = catalogue::canonical(value);
                    if value.is_empty() {
                        return Err(fail("`one_hot` value is empty".to_owned()));
                    }
                    Ok(Column::OneHot { feature, value })
                }
                (None, Some(order)) => {
                    let order: Vec<String> = order.iter().map(|v| catalogue::canonical(v)).collect();
                    let distinct: BTreeSet<&String> = order.iter().collect();
                    if order.is_empty() || distinct.len() != order.len() || order.iter().any(String::is_empty) {
                        return Err(fail("`ordinal` must list distinct, non-empty values".to_owned()));
                    }
                    let unseen = c.unseen.ok_or_else(|| {
                        fail(
                            "an `ordinal` column needs `unseen`: the value of categories not listed (e.g. -1)"
                                .to_owned(),
                        )
                    })?;
                    if !unseen.is_finite() {
                        return Err(fail("`unseen` must be a finite number".to_owned()));
                    }
                    Ok(Column::Ordinal { feature, order, unseen })
                }
            }
        })
        .collect()
}

/// Imports an ONNX tree-ensemble classifier. `schema` gives the vocabularies (category codes) the
/// pipeline encodes with; `classes` the API's classes in output order.
pub fn import(
    bytes: &[u8],
    mapping: &InputMapping,
    schema: &InputSchema,
    classes: &[&str],
) -> Result<Imported, OnnxError> {
    let columns = resolve_columns(mapping)?;
    let decoded = bound::decoded_bytes(bytes)?;
    if decoded > MAX_DECODED_BYTES {
        return Err(OnnxError::TooLarge { bytes: decoded });
    }
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let graph = model.graph.as_ref().ok_or_else(|| OnnxError::Decode("the model has no graph".to_owned()))?;
    let shape = check_graph(graph, mapping)?;
    if columns.len() != shape.columns.unwrap_or(columns.len()) {
        return Err(OnnxError::Mapping(format!(
            "lists {} columns, the graph input {:?} has {}",
            columns.len(),
            shape.input,
            shape.columns.unwrap_or_default()
        )));
    }
    let vocabularies: Vec<&[String]> = schema
        .features
        .iter()
        .map(|f| match f {
            FeatureSpec::Categorical { vocabulary, .. } => vocabulary.as_slice(),
            FeatureSpec::Numeric { .. } => &[],
        })
        .collect();
    let attrs = Attributes::of(shape.trees);
    let ensemble = Ensemble::read(&attrs, classes, mapping.classes.as_deref())?;
    let translate = Translate { columns: &columns, vocabularies: &vocabularies, f32: shape.f32 };
    let mut trees = Vec::new();
    for (&id, tree) in &ensemble.trees {
        trees.extend(translate.tree(&ensemble, id, tree)?);
    }
    let spec = EnsembleSpec {
        format: ENSEMBLE_FORMAT.to_owned(),
        n_features: N_FEATURES,
        classes: classes.iter().map(|c| (*c).to_owned()).collect(),
        init_scores: ensemble.base_values,
        trees,
        output: ensemble.output,
    };
    let producer = format!("{} {}", model.producer_name, model.producer_version).trim().to_owned();
    let summary = OnnxSummary {
        producer,
        ir_version: model.ir_version,
        opsets: model.opset_import.iter().map(|o| (o.domain.clone(), o.version)).collect(),
        input: shape.input.clone(),
        columns: columns.len(),
        precision: if shape.f32 { "float" } else { "double" }.to_owned(),
        trees: ensemble.trees.len(),
        nodes: ensemble.nodes,
        post_transform: ensemble.post_transform,
    };
    Ok(Imported { spec, summary })
}

/// What [`check_graph`] found.
struct GraphShape<'g> {
    /// The ensemble node.
    trees: &'g NodeProto,
    /// Graph input feeding it.
    input: String,
    /// Its column count, when the graph declares it.
    columns: Option<usize>,
    /// Whether values are rounded to `float32` before the trees compare them.
    f32: bool,
}

/// Accepts a graph whose only compute is one `TreeEnsembleClassifier` on one 2-D float/double
/// input, possibly through `Cast`/`Identity` (and a `Mul` by the constant 1, as onnxmltools'
/// LightGBM converter appends), with its probabilities as a graph output.
fn check_graph<'g>(graph: &'g GraphProto, mapping: &InputMapping) -> Result<GraphShape<'g>, OnnxError> {
    let refuse = |m: String| Err(OnnxError::Graph(m));
    let mut trees = None;
    for node in &graph.node {
        match (node.domain.as_str(), node.op_type.as_str()) {
            (ML_DOMAIN, "TreeEnsembleClassifier") if trees.is_none() => trees = Some(node),
            (ML_DOMAIN, "TreeEnsembleClassifier") => return refuse("more than one TreeEnsembleClassifier".to_owned()),
            ("", "Identity" | "Cast") => {}
            ("", "Mul") if multiplies_by_one(graph, node) => {}
            (ML_DOMAIN, "ZipMap") => {
                return refuse(
                    "it ends in a ZipMap (probabilities as a list of maps); export without it, e.g. \
                     skl2onnx `to_onnx(model, X, options={'zipmap': False})`"
                        .to_owned(),
                );
            }
            (ML_DOMAIN, "TreeEnsembleRegressor" | "TreeEnsemble") => {
                return refuse(format!(
                    "operator {}.{} (a regressor or the opset-5 TreeEnsemble) is not supported; export \
                     a classifier with ai.onnx.ml opset <= 3 (skl2onnx target_opset={{'ai.onnx.ml': 3}})",
                    node.domain, node.op_type
                ));
            }
            (domain, op) => {
                let op = if domain.is_empty() { op.to_owned() } else { format!("{domain}.{op}") };
                return refuse(format!(
                    "operator {op} (node {:?}) is not supported: only a tree-ensemble classifier \
                     (ai.onnx.ml.TreeEnsembleClassifier, optionally behind Cast/Identity, or a Mul by 1) \
                     can be imported",
                    node.name
                ));
            }
        }
    }
    let Some(trees) = trees else {
        return refuse("no ai.onnx.ml.TreeEnsembleClassifier node".to_owned());
    };
    let producers: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
    // Walk back from the ensemble's input to a graph input through Cast/Identity.
    let mut name = trees.input.first().map(String::as_str).unwrap_or_default();
    let mut f32 = false;
    // Bounded by the node count, so a (malformed) cyclic graph cannot loop forever.
    for _ in 0..graph.node.len() {
        let Some(node) = producers.get(name) else {
            break;
        };
        if node.op_type == "Cast" {
            match node.attribute.iter().find(|a| a.name == "to").map(|a| a.i as i32) {
                Some(proto::FLOAT) => f32 = true,
                Some(proto::DOUBLE) => {}
                to => return refuse(format!("Cast to element type {to:?} before the trees; only float or double")),
            }
        }
        name = node.input.first().map(String::as_str).unwrap_or_default();
    }
    let inputs: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !graph.initializer.iter().any(|t| t.name == *n))
        .collect();
    let Some(input) = graph.input.iter().find(|i| i.name == name) else {
        return refuse(format!("the trees read {name:?}, which is not a graph input"));
    };
    if inputs.len() != 1 {
        return refuse(format!(
            "graph inputs {inputs:?}: only one 2-D input tensor is supported (encode categories as the input \
             mapping declares, outside the graph)"
        ));
    }
    if let Some(expected) = &mapping.input
        && *expected != input.name
    {
        return Err(OnnxError::Mapping(format!("names input {expected:?}, the graph's input is {:?}", input.name)));
    }
    let tensor = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    match tensor.map(|t| t.elem_type) {
        Some(proto::FLOAT) => f32 = true,
        Some(proto::DOUBLE) => {}
        other => return refuse(format!("input {:?} has element type {other:?}; only float or double", input.name)),
    }
    let dims = tensor.and_then(|t| t.shape.as_ref()).map(|s| s.dim.as_slice()).unwrap_or_default();
    if dims.len() != 2 {
        return refuse(format!(
            "input {:?} has {} dimensions; a [rows, columns] matrix is expected",
            input.name,
            dims.len()
        ));
    }
    let columns = usize::try_from(dims[1].dim_value).ok().filter(|&c| c > 0);
    // The probabilities (second output) must leave the graph, possibly through Identity/Cast.
    let outputs: BTreeSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut name = trees.output.get(1).map(String::as_str).unwrap_or_default();
    for _ in 0..graph.node.len() {
        if outputs.contains(name) {
            break;
        }
        let next = graph.node.iter().find(|n| n.input.first().is_some_and(|i| i == name));
        name = next.and_then(|n| n.output.first()).map(String::as_str).unwrap_or_default();
    }
    if !outputs.contains(name) {
        return refuse("the tree ensemble's probabilities are not a graph output".to_owned());
    }
    Ok(GraphShape { trees, input: input.name.clone(), columns, f32 })
}

/// Whether a `Mul` node multiplies its first input by a constant (initializer) whose every
/// element is 1, i.e. changes nothing.
fn multiplies_by_one(graph: &GraphProto, node: &NodeProto) -> bool {
    let [_, constant] = node.input.as_slice() else {
        return false;
    };
    let Some(t) = graph.initializer.iter().find(|t| t.name == *constant) else {
        return false;
    };
    tensor_values(t).is_some_and(|v| !v.is_empty() && v.iter().all(|&x| x == 1.0))
}

/// The elements of a float or double tensor (`None` for other element types).
fn tensor_values(t: &TensorProto) -> Option<Vec<f64>> {
    match t.data_type {
        proto::DOUBLE if !t.double_data.is_empty() => Some(t.double_data.clone()),
        proto::DOUBLE => {
            Some(t.raw_data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default())).collect())
        }
        proto::FLOAT if !t.float_data.is_empty() => Some(t.float_data.iter().map(|&f| f64::from(f)).collect()),
        proto::FLOAT => Some(
            t.raw_data
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap_or_default())))
                .collect(),
        ),
        _ => None,
    }
}

/// The attributes of a node by name.
struct Attributes<'n>(HashMap<&'n str, &'n AttributeProto>);

impl<'n> Attributes<'n> {
    fn of(node: &'n NodeProto) -> Self {
        Self(node.attribute.iter().map(|a| (a.name.as_str(), a)).collect())
    }

    fn ints(&self, name: &str) -> &'n [i64] {
        self.0.get(name).map_or(&[], |a| a.ints.as_slice())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            .unwrap_or_default()
    }

    fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A float list, or its `<name>_as_tensor` (double) form.
    fn reals(&self, name: &str) -> Result<Vec<f64>, OnnxError> {
        if let Some(a) = self.0.get(name) {
            return Ok(a.floats.iter().map(|&f| f64::from(f)).collect());
        }
        let Some(t) = self.0.get(format!("{name}_as_tensor").as_str()).and_then(|a| a.t.as_ref()) else {
            return Ok(Vec::new());
        };
        tensor_values(t).ok_or_else(|| OnnxError::Trees(format!("{name}_as_tensor has element type {}", t.data_type)))
    }
}

/// One ONNX node of a tree.
#[derive(Debug, Clone)]
struct OnnxNode {
    feature: usize,
    mode: Mode,
    value: f64,
    yes: i64,
    no: i64,
}

/// `nodes_modes`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

/// The ensemble's attributes, grouped by tree.
struct Ensemble {
    /// Tree id → node id → node.
    trees: BTreeMap<i64, BTreeMap<i64, OnnxNode>>,
    /// (tree, node) → (API class index, weight) of each leaf.
    weights: HashMap<(i64, i64), Vec<(usize, f64)>>,
    base_values: Vec<f64>,
    output: Output,
    post_transform: String,
    nodes: usize,
}

impl Ensemble {
    /// `names` are the mapping's names of integer class labels.
    fn read(a: &Attributes<'_>, classes: &[&str], names: Option<&[String]>) -> Result<Self, OnnxError> {
        let bad = |m: String| Err(OnnxError::Trees(m));
        let labels = match (a.ints("classlabels_int64s"), names) {
            ([], None) => a.strings("classlabels_strings"),
            ([], Some(_)) => {
                return Err(OnnxError::Mapping(
                    "`classes` names integer class labels, and this model's labels are strings; drop it".to_owned(),
                ));
            }
            (_, None) => {
                return bad(format!(
                    "the class labels are integers; name them in the input mapping, label i being the i-th \
                     name: \"classes\": [\"{}\"] (or train on the string labels)",
                    classes.join("\", \"")
                ));
            }
            (ints, Some(names)) if names.len() != ints.len() => {
                return Err(OnnxError::Mapping(format!(
                    "`classes` names {} labels, the model has {} integer labels",
                    names.len(),
                    ints.len()
                )));
            }
            (ints, Some(names)) => ints
                .iter()
                .map(|&i| usize::try_from(i).ok().and_then(|i| names.get(i)).cloned())
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| {
                    OnnxError::Mapping(format!("the model's integer labels {ints:?} are not 0..{}", names.len()))
                })?,
        };
        let mut sorted_labels = labels.clone();
        sorted_labels.sort();
        let mut sorted_classes: Vec<String> = classes.iter().map(|c| (*c).to_owned()).collect();
        sorted_classes.sort();
        if sorted_labels != sorted_classes {
            return Err(OnnxError::Classes {
                found: labels,
                expected: classes.iter().map(|c| (*c).to_owned()).collect(),
            });
        }
        // ONNX class index → API class index, by name.
        let class_of: Vec<usize> =
            labels.iter().map(|l| classes.iter().position(|c| c == l).unwrap_or_default()).collect();
        let post_transform = a.string("post_transform").unwrap_or_else(|| "NONE".to_owned());
        let output = match post_transform.as_str() {
            "NONE" => Output::Identity,
            "SOFTMAX" => Output::Softmax,
            other => {
                return bad(format!(
                    "post_transform {other} is not supported (SOFTMAX for boosting, NONE for forests; \
                     LOGISTIC is for binary models, and this API has {} classes)",
                    classes.len()
                ));
            }
        };
        let base = a.reals("base_values")?;
        let base_values = match base.len() {
            0 => vec![0.0; classes.len()],
            n if n == classes.len() => {
                let mut v = vec![0.0; n];
                for (k, b) in base.iter().enumerate() {
                    v[class_of[k]] = *b;
                }
                v
            }
            n => return bad(format!("{n} base_values for {} classes", classes.len())),
        };
        let (tree_ids, node_ids, features) =
            (a.ints("nodes_treeids"), a.ints("nodes_nodeids"), a.ints("nodes_featureids"));
        let (yes, no) = (a.ints("nodes_truenodeids"), a.ints("nodes_falsenodeids"));
        let modes = a.strings("nodes_modes");
        // `nodes_missing_value_tracks_true` (XGBoost, LightGBM) only routes NaN inputs, and the
        // pipeline never feeds NaN (validated numbers, indicator and ordinal codes): it is ignored.
        let values = a.reals("nodes_values")?;
        let n = tree_ids.len();
        if n == 0 {
            return bad("has no nodes".to_owned());
        }
        if [node_ids.len(), features.len(), yes.len(), no.len(), modes.len(), values.len()].iter().any(|&l| l != n) {
            return bad("the nodes_* attributes differ in length".to_owned());
        }
        let mut trees: BTreeMap<i64, BTreeMap<i64, OnnxNode>> = BTreeMap::new();
        for i in 0..n {
            let mode = match modes[i].as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "BRANCH_EQ" => Mode::Eq,
                "BRANCH_NEQ" => Mode::Neq,
                "LEAF" => Mode::Leaf,
                other => return bad(format!("node mode {other:?} is not supported")),
            };
            let feature = usize::try_from(features[i])
                .map_err(|_| OnnxError::Trees(format!("negative feature id {}", features[i])))?;
            if mode != Mode::Leaf && values[i].is_nan() {
                return bad(format!("tree {} node {} has a NaN threshold", tree_ids[i], node_ids[i]));
            }
            let node = OnnxNode { feature, mode, value: values[i], yes: yes[i], no: no[i] };
            if trees.entry(tree_ids[i]).or_default().insert(node_ids[i], node).is_some() {
                return bad(format!("tree {} lists node {} twice", tree_ids[i], node_ids[i]));
            }
        }
        let (c_trees, c_nodes, c_ids) = (a.ints("class_treeids"), a.ints("class_nodeids"), a.ints("class_ids"));
        let c_weights = a.reals("class_weights")?;
        if [c_nodes.len(), c_ids.len(), c_weights.len()].iter().any(|&l| l != c_trees.len()) {
            return bad("the class_* attributes differ in length".to_owned());
        }
        let mut weights: HashMap<(i64, i64), Vec<(usize, f64)>> = HashMap::new();
        for i in 0..c_trees.len() {
            let class = usize::try_from(c_ids[i])
                .ok()
                .and_then(|c| class_of.get(c).copied())
                .ok_or_else(|| OnnxError::Trees(format!("class id {} out of range", c_ids[i])))?;
            if !c_weights[i].is_finite() {
                return bad(format!("tree {} leaf {} has a non-finite weight", c_trees[i], c_nodes[i]));
            }
            let leaf = trees.get(&c_trees[i]).and_then(|t| t.get(&c_nodes[i]));
            if leaf.is_none_or(|l| l.mode != Mode::Leaf) {
                return bad(format!("class weight on tree {} node {}, which is not a leaf", c_trees[i], c_nodes[i]));
            }
            weights.entry((c_trees[i], c_nodes[i])).or_default().push((class, c_weights[i]));
        }
        Ok(Self { trees, weights, base_values, output, post_transform, nodes: n })
    }
}

/// Translates ONNX trees to engine trees over the pipeline row.
struct Translate<'a> {
    columns: &'a [Column],
    vocabularies: &'a [&'a [String]],
    f32: bool,
}

impl Translate<'_> {
    /// One engine tree per class the ONNX tree has leaf weights for (same structure, that class's
    /// weights).
    fn tree(
        &self,
        ensemble: &Ensemble,
        tree_id: i64,
        tree: &BTreeMap<i64, OnnxNode>,
    ) -> Result<Vec<TreeSpec>, OnnxError> {
        let children: BTreeSet<i64> =
            tree.values().filter(|n| n.mode != Mode::Leaf).flat_map(|n| [n.yes, n.no]).collect();
        let roots: Vec<i64> = tree.keys().copied().filter(|id| !children.contains(id)).collect();
        let [root] = roots[..] else {
            return Err(OnnxError::Trees(format!("tree {tree_id} has {} roots", roots.len())));
        };
        let mut nodes = Vec::new();
        let mut leaves: Vec<i64> = Vec::new();
        let mut seen = BTreeSet::new();
        self.place(tree, tree_id, (root, 0), &mut nodes, &mut leaves, &mut seen)?;
        let classes: BTreeSet<usize> = leaves
            .iter()
            .flat_map(|l| ensemble.weights.get(&(tree_id, *l)).into_iter().flatten().map(|(c, _)| *c))
            .collect();
        Ok(classes
            .into_iter()
            .map(|class| TreeSpec {
                class,
                nodes: nodes.clone(),
                leaves: leaves
                    .iter()
                    .map(|l| {
                        let w = ensemble.weights.get(&(tree_id, *l)).map(Vec::as_slice).unwrap_or_default();
                        w.iter().filter(|(c, _)| *c == class).map(|(_, w)| w).sum()
                    })
                    .collect(),
            })
            .collect())
    }

    /// Appends the subtree at ONNX node `id` (on level `level`); returns its engine child reference.
    fn place(
        &self,
        tree: &BTreeMap<i64, OnnxNode>,
        tree_id: i64,
        (id, level): (i64, usize),
        nodes: &mut Vec<NodeSpec>,
        leaves: &mut Vec<i64>,
        seen: &mut BTreeSet<i64>,
    ) -> Result<i32, OnnxError> {
        let fail = |m: String| OnnxError::Trees(format!("tree {tree_id} node {id}: {m}"));
        let node = tree.get(&id).ok_or_else(|| fail("is missing".to_owned()))?;
        if !seen.insert(id) {
            return Err(fail("is reached twice".to_owned()));
        }
        if node.mode == Mode::Leaf {
            leaves.push(id);
            return Ok(!i32::try_from(leaves.len() - 1).map_err(|_| fail("too many leaves".to_owned()))?);
        }
        // Checked here, before recursing further, so a hostile chain of nodes cannot exhaust the stack.
        if level >= MAX_DEPTH {
            return Err(fail(format!(
                "the tree is deeper than {MAX_DEPTH} levels, the most the engine lays out (export with max_depth <= {MAX_DEPTH})"
            )));
        }
        let column = self.columns.get(node.feature).ok_or_else(|| {
            fail(format!("reads column {}, the input mapping lists {}", node.feature, self.columns.len()))
        })?;
        let (test, swap) = self.split(column, node).map_err(fail)?;
        let index = nodes.len();
        nodes.push(NodeSpec { feature: column.feature(), test, left: 0, right: 0, missing_left: true });
        let (yes, no) = if swap { (node.no, node.yes) } else { (node.yes, node.no) };
        let left = self.place(tree, tree_id, (yes, level + 1), nodes, leaves, seen)?;
        let right = self.place(tree, tree_id, (no, level + 1), nodes, leaves, seen)?;
        nodes[index].left = left;
        nodes[index].right = right;
        i32::try_from(index).map_err(|_| fail("too many nodes".to_owned()))
    }

    /// The engine test of an ONNX split and whether its branches swap (the engine's test sends
    /// a row left when it passes; ONNX sends it to `yes`).
    fn split(&self, column: &Column, node: &OnnxNode) -> Result<(SplitTest, bool), String> {
        if let Column::Numeric { .. } = column {
            // x > t is not (x <= t); x >= t is not (x < t); x < t is x <= the value just below t.
            let (t, swap) = match node.mode {
                Mode::Leq => (node.value, false),
                Mode::Gt => (node.value, true),
                Mode::Lt => (self.below(node.value), false),
                Mode::Gte => (self.below(node.value), true),
                Mode::Eq | Mode::Neq | Mode::Leaf => {
                    return Err("BRANCH_EQ / BRANCH_NEQ on a numeric column is not supported".to_owned());
                }
            };
            return Ok((SplitTest::Threshold(self.leq_bound(t)), swap));
        }
        // A categorical column: evaluate the test on the column value of every code.
        let vocabulary = self.vocabularies[column.feature()];
        let t = self.round(node.value);
        let mut left = Vec::new();
        for code in UNSEEN_CODE..=vocabulary.len() as u32 {
            let value = (code != UNSEEN_CODE).then(|| vocabulary[code as usize - 1].as_str());
            let x = self.round(column.categorical_value(value));
            let yes = match node.mode {
                Mode::Leq => x <= t,
                Mode::Lt => x < t,
                Mode::Gte => x >= t,
                Mode::Gt => x > t,
                Mode::Eq => x == t,
                Mode::Neq => x != t,
                Mode::Leaf => unreachable!("leaves are not splits"),
            };
            if yes {
                left.push(code);
            }
        }
        Ok((SplitTest::Categories(left), false))
    }

    /// A value as ONNX holds it (rounded to `float32` when the input is float).
    fn round(&self, x: f64) -> f64 {
        if self.f32 { f64::from(x as f32) } else { x }
    }

    /// The largest value below `t` in ONNX's precision.
    fn below(&self, t: f64) -> f64 {
        if self.f32 { f64::from((t as f32).next_down()) } else { t.next_down() }
    }

    /// The largest `f64` `b` with `x <= b` exactly when ONNX finds `x <= t`.
    fn leq_bound(&self, t: f64) -> f64 {
        if self.f32 { f32_leq_bound(t as f32) } else { t }
    }
}

/// The largest `f64` `b` such that `x <= b` exactly when `(x as f32) <= t`.
///
/// `as f32` rounds to nearest, ties to even, and is monotone, so the values that round to at most
/// `t` end at the midpoint between `t` and the next `f32` above it; the midpoint itself rounds to
/// `t` only when `t`'s last significand bit is 0.
fn f32_leq_bound(t: f32) -> f64 {
    if !t.is_finite() {
        return f64::from(t);
    }
    // Above f32::MAX the next step is 2^128 (where rounding overflows to infinity).
    let up = if t == f32::MAX { 2f64.powi(128) } else { f64::from(t.next_up()) };
    let mid = (f64::from(t) + up) / 2.0; // exact: 25 significant bits fit an f64
    if t.to_bits() & 1 == 0 { mid } else { mid.next_down() }
}

#[cfg(test)]
mod tests;
