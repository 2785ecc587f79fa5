//! The graph around the tree ensemble: one `TreeEnsembleClassifier` (or, for raw imports,
//! `TreeEnsembleRegressor`) on one 2-D float/double input, with only value-preserving operators
//! around it.

use std::collections::{BTreeSet, HashMap};

use super::proto::{self, GraphProto, NodeProto, TensorProto, ValueInfoProto};
use super::{ML_DOMAIN, OnnxError};

/// Which ensemble operator a graph holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `TreeEnsembleClassifier`: outputs (labels, probabilities).
    Classifier,
    /// `TreeEnsembleRegressor`: output (values).
    Regressor,
}

impl Kind {
    fn op(self) -> &'static str {
        match self {
            Self::Classifier => "TreeEnsembleClassifier",
            Self::Regressor => "TreeEnsembleRegressor",
        }
    }
}

/// What [`check_graph`] found.
pub(super) struct GraphShape<'g> {
    /// The ensemble node.
    pub trees: &'g NodeProto,
    /// Its operator.
    pub kind: Kind,
    /// Graph input feeding it.
    pub input: String,
    /// Its column count, when the graph declares it.
    pub columns: Option<usize>,
    /// Whether values are rounded to `float32` before the trees compare them.
    pub f32: bool,
}

fn refuse<T>(m: String) -> Result<T, OnnxError> {
    Err(OnnxError::Graph(m))
}

/// Accepts a graph whose only compute is one ensemble of the `kinds` on one 2-D float/double
/// input, possibly through `Cast`/`Identity` (and a `Mul` by the constant 1, as onnxmltools'
/// LightGBM converter appends), with its probabilities (values) as a graph output. `expected`
/// is the input name the caller expects, if any.
pub(super) fn check_graph<'g>(
    graph: &'g GraphProto,
    expected: Option<&str>,
    kinds: &[Kind],
) -> Result<GraphShape<'g>, OnnxError> {
    let (trees, kind) = find_ensemble(graph, kinds)?;
    let (input, mut f32) = graph_input(graph, trees)?;
    if let Some(expected) = expected
        && expected != input.name
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
    // The probabilities (a classifier's second output, a regressor's only one) must leave the
    // graph, possibly through Identity/Cast.
    let outputs: BTreeSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let scores = if kind == Kind::Classifier { 1 } else { 0 };
    let mut name = trees.output.get(scores).map(String::as_str).unwrap_or_default();
    for _ in 0..graph.node.len() {
        if outputs.contains(name) {
            break;
        }
        let next = graph.node.iter().find(|n| n.input.first().is_some_and(|i| i == name));
        name = next.and_then(|n| n.output.first()).map(String::as_str).unwrap_or_default();
    }
    if !outputs.contains(name) {
        let what = if kind == Kind::Classifier { "probabilities" } else { "values" };
        return refuse(format!("the tree ensemble's {what} are not a graph output"));
    }
    Ok(GraphShape { trees, kind, input: input.name.clone(), columns, f32 })
}

/// The one ensemble node of the graph (of one of `kinds`); refuses any other compute.
fn find_ensemble<'g>(graph: &'g GraphProto, kinds: &[Kind]) -> Result<(&'g NodeProto, Kind), OnnxError> {
    let mut trees = None;
    let accepted: Vec<&str> = kinds.iter().map(|k| k.op()).collect();
    for node in &graph.node {
        let kind = kinds.iter().copied().find(|k| node.domain == ML_DOMAIN && node.op_type == k.op());
        match (node.domain.as_str(), node.op_type.as_str(), kind) {
            (_, _, Some(kind)) if trees.is_none() => trees = Some((node, kind)),
            (_, _, Some(_)) => return refuse("more than one tree ensemble".to_owned()),
            ("", "Identity" | "Cast", _) => {}
            ("", "Mul", _) if multiplies_by_one(graph, node) => {}
            (ML_DOMAIN, "ZipMap", _) => {
                return refuse(
                    "it ends in a ZipMap (probabilities as a list of maps); export without it, e.g. \
                     skl2onnx `to_onnx(model, X, options={'zipmap': False})`"
                        .to_owned(),
                );
            }
            (ML_DOMAIN, "TreeEnsembleRegressor" | "TreeEnsemble", _) => {
                return refuse(format!(
                    "operator {}.{} (a regressor or the opset-5 TreeEnsemble) is not supported here; export \
                     {} with ai.onnx.ml opset <= 3 (skl2onnx target_opset={{'ai.onnx.ml': 3}})",
                    node.domain,
                    node.op_type,
                    accepted.join(" or ")
                ));
            }
            (domain, op, _) => {
                let op = if domain.is_empty() { op.to_owned() } else { format!("{domain}.{op}") };
                return refuse(format!(
                    "operator {op} (node {:?}) is not supported: only a tree ensemble \
                     (ai.onnx.ml.{}, optionally behind Cast/Identity, or a Mul by 1) can be imported",
                    node.name,
                    accepted.join(" / ai.onnx.ml.")
                ));
            }
        }
    }
    trees.ok_or_else(|| OnnxError::Graph(format!("no ai.onnx.ml.{} node", accepted.join(" or "))))
}

/// The graph input the ensemble reads, walking back through Cast/Identity, and whether a Cast
/// on the way rounds to `float32`.
fn graph_input<'g>(graph: &'g GraphProto, trees: &NodeProto) -> Result<(&'g ValueInfoProto, bool), OnnxError> {
    let producers: HashMap<&str, &NodeProto> =
        graph.node.iter().flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n))).collect();
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
    Ok((input, f32))
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
pub(super) fn tensor_values(t: &TensorProto) -> Option<Vec<f64>> {
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
