//! Path-dependent TreeSHAP from precomputed leaf tables (the idea of Fast TreeSHAP v2, Yang 2021,
//! arXiv:2109.09847). A leaf's share of each feature's Shapley value depends on the row only
//! through which of its path's splits the row satisfies: for a leaf whose path splits on `k`
//! distinct features, a `k`-bit pattern (bit j: the row follows the path at every split on the
//! j-th feature). So each leaf's `k` shares are computed once per pattern, with [`treeshap`]'s
//! EXTEND and unwound sums, when the model loads; explaining a row is then one test per split
//! node, one bit operation per (leaf, path split) and one addition per (leaf, path feature),
//! instead of the recursion's O(leaves × depth²) floating-point steps with divisions. Tables
//! cost 2^k × k numbers per leaf, so they are built only within [`TABLE_BUDGET`]; other trees
//! keep the recursion. Everything a row reads is in flat arrays, tree by tree.
//!
//! [`treeshap`]: super::treeshap

use std::ops::Range;

use rayon::prelude::*;

use super::forest::{Forest, NONE, Tree};
use super::treeshap::{PathElement, extend, unwound_sum};

/// Numbers (f64) all of a model's tables may hold: 8 Mi, 64 MiB. The shipped basket model
/// (120 trees of depth 5, 3,440 leaves) needs 228,264 (1.8 MB).
pub(super) const TABLE_BUDGET: usize = 8 << 20;

/// Trees whose shares are computed in parallel before they are appended to the tables.
const TREES_AT_ONCE: usize = 64;

/// Distinct features a leaf's path may split on for its tree to get a table (2^12 patterns).
const MAX_PATH_FEATURES: usize = 12;

/// One split on a leaf's path: the split (its position in its tree's splits), whether the path
/// goes left there, and the bit of the feature it tests in the leaf's pattern.
#[derive(Debug, Clone, Copy)]
struct Condition {
    split: u32,
    left: bool,
    bit: u8,
}

/// A leaf of a tabled tree: its path's conditions and distinct features (ranges in
/// [`Tables`]), and where its `2^k × k` shares start in [`Tables::values`].
#[derive(Debug, Clone)]
struct Leaf {
    conditions: Range<usize>,
    features: Range<usize>,
    offset: usize,
}

/// A tabled tree: its split nodes and its leaves (ranges in [`Tables`]).
#[derive(Debug, Clone)]
struct TreeTable {
    splits: Range<usize>,
    leaves: Range<usize>,
}

/// The tables of the trees that have one (`None`: explained by recursion), in flat arrays.
#[derive(Debug, Clone, Default)]
pub(super) struct Tables {
    trees: Vec<Option<TreeTable>>,
    /// Forest node index of every split of every tabled tree.
    splits: Vec<usize>,
    leaves: Vec<Leaf>,
    conditions: Vec<Condition>,
    features: Vec<usize>,
    values: Vec<f64>,
    /// The most splits of one tabled tree.
    max_splits: usize,
    /// The most leaves of one tabled tree.
    max_leaves: usize,
}

/// Scratch space for [`Tables::add`]: each split's direction for the row, each leaf's entry.
pub(super) struct Scratch {
    went_left: Vec<bool>,
    entries: Vec<usize>,
}

/// A leaf's path while the tables are built: its node, conditions and distinct features.
struct Path {
    leaf: usize,
    conditions: Vec<Condition>,
    features: Vec<usize>,
}

impl Tables {
    /// Tables for the trees of `forest` in order, as long as they fit in `budget` numbers.
    pub(super) fn build(forest: &Forest, budget: usize) -> Self {
        // Which trees fit is decided in order; their shares are then computed in parallel,
        // [`TREES_AT_ONCE`] trees at a time so that at most that many trees' shares wait to be
        // appended.
        let mut planned = Vec::with_capacity(forest.trees.len());
        let mut size = 0;
        for tree in &forest.trees {
            let mut plan = paths(forest, tree);
            let more: usize =
                plan.iter().flat_map(|(_, paths)| paths).map(|p| p.features.len() << p.features.len()).sum();
            if size + more <= budget {
                size += more;
            } else {
                plan = None;
            }
            planned.push(plan);
        }
        let mut tables = Self::default();
        let mut planned = planned.into_iter().peekable();
        while planned.peek().is_some() {
            let batch: Vec<_> = planned.by_ref().take(TREES_AT_ONCE).collect();
            let computed: Vec<_> = batch
                .into_par_iter()
                .map(|plan| plan.map(|(splits, paths)| (tree_shares(forest, &splits, &paths), splits, paths)))
                .collect();
            for tree in computed {
                let table = tree.map(|(shares, splits, paths)| tables.add_tree(splits, paths, shares));
                tables.trees.push(table);
            }
        }
        tables
    }

    /// Numbers the tables hold.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether tree `t` has a table.
    pub(super) fn has(&self, t: usize) -> bool {
        self.trees.get(t).is_some_and(Option::is_some)
    }

    /// Scratch space for [`Tables::add`].
    pub(super) fn scratch(&self) -> Scratch {
        Scratch { went_left: vec![false; self.max_splits], entries: vec![0; self.max_leaves] }
    }

    /// Adds tree `t`'s Shapley values for `row` to `phi`, if it has a table.
    pub(super) fn add(&self, forest: &Forest, t: usize, row: &[f64], phi: &mut [f64], scratch: &mut Scratch) {
        let Some(Some(tree)) = self.trees.get(t) else { return };
        let Scratch { went_left, entries } = scratch;
        for (went, &n) in went_left.iter_mut().zip(&self.splits[tree.splits.clone()]) {
            let node = &forest.nodes[n];
            *went = forest.goes_left(node, row[node.feature]);
        }
        let leaves = &self.leaves[tree.leaves.clone()];
        // Every leaf's entry first, then the reads: with their addresses known the reads of the
        // tables (larger than the core's cache) overlap instead of waiting on each other.
        for (entry, leaf) in entries.iter_mut().zip(leaves) {
            let k = leaf.features.len();
            let mut pattern = (1usize << k) - 1;
            for c in &self.conditions[leaf.conditions.clone()] {
                pattern &= !(usize::from(went_left[c.split as usize] != c.left) << c.bit);
            }
            *entry = leaf.offset + pattern * k;
        }
        for (&entry, leaf) in entries.iter().zip(leaves) {
            let features = &self.features[leaf.features.clone()];
            for (&feature, share) in features.iter().zip(&self.values[entry..entry + features.len()]) {
                phi[feature] += share;
            }
        }
    }

    /// Stores a tree's splits and leaves, with each leaf's shares ([`tree_shares`]).
    fn add_tree(&mut self, splits: Vec<usize>, paths: Vec<Path>, shares: Vec<Vec<f64>>) -> TreeTable {
        self.max_splits = self.max_splits.max(splits.len());
        self.max_leaves = self.max_leaves.max(paths.len());
        let table = TreeTable {
            splits: self.splits.len()..self.splits.len() + splits.len(),
            leaves: self.leaves.len()..self.leaves.len() + paths.len(),
        };
        self.splits.extend(&splits);
        for (path, shares) in paths.into_iter().zip(shares) {
            let offset = self.values.len();
            self.values.extend(shares);
            self.leaves.push(Leaf {
                conditions: self.conditions.len()..self.conditions.len() + path.conditions.len(),
                features: self.features.len()..self.features.len() + path.features.len(),
                offset,
            });
            self.conditions.extend(path.conditions);
            self.features.extend(path.features);
        }
        table
    }
}

/// The shares of each leaf of a tree with these splits and leaf paths.
fn tree_shares(forest: &Forest, splits: &[usize], paths: &[Path]) -> Vec<Vec<f64>> {
    paths
        .iter()
        .map(|path| shares(&zero_fractions(forest, splits, path), &path.features, forest.nodes[path.leaf].value))
        .collect()
}

/// A leaf's shares, pattern by pattern (bit j set: the row follows the path on feature j), each
/// `(one_j − zero_j) × value` times the path's permutation weight with element j unwound.
fn shares(zeros: &[f64], features: &[usize], value: f64) -> Vec<f64> {
    let k = zeros.len();
    let mut out = Vec::with_capacity(k << k);
    let mut path = vec![PathElement::default(); k + 1];
    let one = |pattern: usize, j: usize| f64::from(u8::from(pattern >> j & 1 == 1));
    for pattern in 0..1usize << k {
        extend(&mut path, 0, 1.0, 1.0, NONE);
        for (j, (&zero, &feature)) in zeros.iter().zip(features).enumerate() {
            extend(&mut path, j + 1, zero, one(pattern, j), feature);
        }
        for (j, &zero) in zeros.iter().enumerate() {
            out.push(unwound_sum(&path, k, j + 1) * (one(pattern, j) - zero) * value);
        }
    }
    out
}

/// Each path feature's zero fraction: the product, over the path's splits on it, of the cover
/// share of the child the path takes.
fn zero_fractions(forest: &Forest, splits: &[usize], path: &Path) -> Vec<f64> {
    let mut zeros = vec![1.0; path.features.len()];
    for c in &path.conditions {
        let node = &forest.nodes[splits[c.split as usize]];
        let child = if c.left { node.left } else { node.right };
        zeros[usize::from(c.bit)] *= forest.nodes[child].cover / node.cover;
    }
    zeros
}

/// A tree's split nodes and every leaf's path, or `None` when a path splits on more than
/// [`MAX_PATH_FEATURES`] features (or the tree has more than `u32::MAX` splits).
fn paths(forest: &Forest, tree: &Tree) -> Option<(Vec<usize>, Vec<Path>)> {
    let mut splits = Vec::new();
    let mut paths = Vec::with_capacity(tree.leaves.len());
    let mut stack = vec![(tree.root, Vec::new(), Vec::new())];
    while let Some((node, conditions, mut features)) = stack.pop() {
        let n = &forest.nodes[node];
        if n.is_leaf() {
            paths.push(Path { leaf: node, conditions, features });
            continue;
        }
        let split = u32::try_from(splits.len()).ok()?;
        splits.push(node);
        let bit = match features.iter().position(|&f| f == n.feature) {
            Some(bit) => bit,
            None if features.len() < MAX_PATH_FEATURES => {
                features.push(n.feature);
                features.len() - 1
            }
            None => return None,
        };
        let bit = u8::try_from(bit).ok()?;
        for (child, left) in [(n.left, true), (n.right, false)] {
            let mut conditions: Vec<Condition> = conditions.clone();
            conditions.push(Condition { split, left, bit });
            stack.push((child, conditions, features.clone()));
        }
    }
    Some((splits, paths))
}
