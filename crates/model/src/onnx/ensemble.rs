//! The ensemble operator's attributes, read and checked: nodes grouped by tree, leaf weights by
//! output, base values and post transform.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::OnnxError;
use super::graph::tensor_values;
use super::proto::{AttributeProto, NodeProto};
use crate::engine::Output;

/// The attributes of a node by name.
pub(super) struct Attributes<'n>(HashMap<&'n str, &'n AttributeProto>);

impl<'n> Attributes<'n> {
    pub(super) fn of(node: &'n NodeProto) -> Self {
        Self(node.attribute.iter().map(|a| (a.name.as_str(), a)).collect())
    }

    pub(super) fn ints(&self, name: &str) -> &'n [i64] {
        self.0.get(name).map_or(&[], |a| a.ints.as_slice())
    }

    pub(super) fn strings(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|a| a.strings.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            .unwrap_or_default()
    }

    pub(super) fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).map(|a| a.i)
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// A float list, or its `<name>_as_tensor` (double) form.
    pub(super) fn reals(&self, name: &str) -> Result<Vec<f64>, OnnxError> {
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
pub(super) struct OnnxNode {
    pub feature: usize,
    pub mode: Mode,
    pub value: f64,
    pub yes: i64,
    pub no: i64,
    /// `nodes_missing_value_tracks_true`: a missing value goes to `yes`.
    pub missing_yes: bool,
}

impl OnnxNode {
    /// Whether onnxruntime sends a NaN input to `yes`: when the node tracks missing values to
    /// true, or when the comparison itself holds for NaN (only `NaN != t` does).
    pub fn nan_goes_yes(&self) -> bool {
        self.missing_yes || self.mode == Mode::Neq
    }
}

/// `nodes_modes`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

/// The ensemble's attributes, grouped by tree, with leaf weights by output index (ONNX's class
/// or target index, until [`Ensemble::remap`]).
pub(super) struct Ensemble {
    /// Tree id → node id → node.
    pub trees: BTreeMap<i64, BTreeMap<i64, OnnxNode>>,
    /// (tree, node) → (output index, weight) of each leaf.
    pub weights: HashMap<(i64, i64), Vec<(usize, f64)>>,
    /// `base_values`, in ONNX's output order.
    pub base_values: Vec<f64>,
    pub post_transform: String,
    pub nodes: usize,
}

impl Ensemble {
    /// Reads the nodes and the leaf weights (`class_*` for `prefix` "class", `target_*` for
    /// "target") of an ensemble with `outputs` outputs (classes or targets).
    pub fn read(a: &Attributes<'_>, prefix: &str, outputs: usize) -> Result<Self, OnnxError> {
        let trees = read_nodes(a)?;
        let nodes = trees.values().map(BTreeMap::len).sum();
        let bad = |m: String| Err(OnnxError::Trees(m));
        let (l_trees, l_nodes) = (a.ints(&format!("{prefix}_treeids")), a.ints(&format!("{prefix}_nodeids")));
        let (l_ids, l_weights) = (a.ints(&format!("{prefix}_ids")), a.reals(&format!("{prefix}_weights"))?);
        if [l_nodes.len(), l_ids.len(), l_weights.len()].iter().any(|&l| l != l_trees.len()) {
            return bad(format!("the {prefix}_* attributes differ in length"));
        }
        let mut weights: HashMap<(i64, i64), Vec<(usize, f64)>> = HashMap::new();
        for i in 0..l_trees.len() {
            let output = usize::try_from(l_ids[i])
                .ok()
                .filter(|&o| o < outputs)
                .ok_or_else(|| OnnxError::Trees(format!("{prefix} id {} out of range", l_ids[i])))?;
            if !l_weights[i].is_finite() {
                return bad(format!("tree {} leaf {} has a non-finite weight", l_trees[i], l_nodes[i]));
            }
            let leaf = trees.get(&l_trees[i]).and_then(|t| t.get(&l_nodes[i]));
            if leaf.is_none_or(|l| l.mode != Mode::Leaf) {
                return bad(format!("{prefix} weight on tree {} node {}, which is not a leaf", l_trees[i], l_nodes[i]));
            }
            weights.entry((l_trees[i], l_nodes[i])).or_default().push((output, l_weights[i]));
        }
        let post_transform = a.string("post_transform").unwrap_or_else(|| "NONE".to_owned());
        Ok(Self { trees, weights, base_values: a.reals("base_values")?, post_transform, nodes })
    }

    /// Output indices with at least one leaf weight.
    pub fn weighted_outputs(&self) -> BTreeSet<usize> {
        self.weights.values().flatten().map(|(o, _)| *o).collect()
    }

    /// Whether no leaf weight is negative.
    pub fn weights_nonnegative(&self) -> bool {
        self.weights.values().flatten().all(|(_, w)| *w >= 0.0)
    }

    /// Renumbers the outputs of the leaf weights (`to[o]` is the new index of output `o`).
    pub fn remap(&mut self, to: &[usize]) {
        for (o, _) in self.weights.values_mut().flatten() {
            *o = to[*o];
        }
    }

    /// The engine output of a classifier whose scores are its probabilities after
    /// `post_transform` (NONE or SOFTMAX).
    pub fn class_output(&self, note: &str) -> Result<Output, OnnxError> {
        match self.post_transform.as_str() {
            "NONE" => Ok(Output::Identity),
            "SOFTMAX" => Ok(Output::Softmax),
            other => Err(OnnxError::Trees(format!(
                "post_transform {other} is not supported (SOFTMAX for boosting, NONE for forests{note})"
            ))),
        }
    }
}

/// The `nodes_*` attributes grouped by tree.
fn read_nodes(a: &Attributes<'_>) -> Result<BTreeMap<i64, BTreeMap<i64, OnnxNode>>, OnnxError> {
    let bad = |m: String| Err(OnnxError::Trees(m));
    let (tree_ids, node_ids, features) = (a.ints("nodes_treeids"), a.ints("nodes_nodeids"), a.ints("nodes_featureids"));
    let (yes, no) = (a.ints("nodes_truenodeids"), a.ints("nodes_falsenodeids"));
    let modes = a.strings("nodes_modes");
    let values = a.reals("nodes_values")?;
    // Absent: no node tracks missing values to true (NaN follows its comparison, to `no`).
    let tracks = a.ints("nodes_missing_value_tracks_true");
    let n = tree_ids.len();
    if n == 0 {
        return bad("has no nodes".to_owned());
    }
    if [node_ids.len(), features.len(), yes.len(), no.len(), modes.len(), values.len()].iter().any(|&l| l != n)
        || !(tracks.is_empty() || tracks.len() == n)
    {
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
        let missing_yes = tracks.get(i).is_some_and(|&t| t == 1);
        let node = OnnxNode { feature, mode, value: values[i], yes: yes[i], no: no[i], missing_yes };
        if trees.entry(tree_ids[i]).or_default().insert(node_ids[i], node).is_some() {
            return bad(format!("tree {} lists node {} twice", tree_ids[i], node_ids[i]));
        }
    }
    Ok(trees)
}
