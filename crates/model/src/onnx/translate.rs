//! Translation of ONNX trees into engine trees: branch modes into `x <= t` tests in ONNX's
//! precision, one-hot and ordinal columns into category sets, missing-value routing into
//! `missing_left`.

use std::collections::{BTreeMap, BTreeSet};

use super::OnnxError;
use super::ensemble::{Ensemble, Mode, OnnxNode};
use super::mapping::Column;
use crate::engine::{MAX_DEPTH, NodeSpec, SplitTest, TreeSpec};
use crate::features::UNSEEN_CODE;

/// Translates ONNX trees to engine trees over the engine's feature row.
pub(super) struct Translate<'a> {
    /// What each ONNX input column is (for a raw import: numeric feature `i` for column `i`).
    pub columns: &'a [Column],
    /// Category vocabularies of the engine's features (empty for numeric ones).
    pub vocabularies: &'a [&'a [String]],
    /// Whether ONNX compares in `float32`.
    pub f32: bool,
}

impl Translate<'_> {
    /// The engine trees of every ONNX tree, in tree id order.
    pub fn trees(&self, ensemble: &Ensemble) -> Result<Vec<TreeSpec>, OnnxError> {
        let mut trees = Vec::new();
        for (&id, tree) in &ensemble.trees {
            trees.extend(self.tree(ensemble, id, tree)?);
        }
        Ok(trees)
    }

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
            fail(format!("reads column {}, the input has {} columns", node.feature, self.columns.len()))
        })?;
        let (test, swap) = self.split(column, node).map_err(fail)?;
        let index = nodes.len();
        // Where onnxruntime sends NaN, seen from the engine's (possibly swapped) branches. Category
        // splits (one-hot, ordinal columns) never see NaN: the pipeline encodes every value.
        let missing_left = !matches!(test, SplitTest::Threshold(_)) || node.nan_goes_yes() != swap;
        nodes.push(NodeSpec { feature: column.feature(), test, left: 0, right: 0, missing_left });
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
pub(super) fn f32_leq_bound(t: f32) -> f64 {
    if !t.is_finite() {
        return f64::from(t);
    }
    // Above f32::MAX the next step is 2^128 (where rounding overflows to infinity).
    let up = if t == f32::MAX { 2f64.powi(128) } else { f64::from(t.next_up()) };
    let mid = (f64::from(t) + up) / 2.0; // exact: 25 significant bits fit an f64
    if t.to_bits() & 1 == 0 { mid } else { mid.next_down() }
}
