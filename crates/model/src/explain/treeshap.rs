//! Path-dependent TreeSHAP (Lundberg et al., "From local explanations to global understanding
//! with explainable AI for trees", Nature Machine Intelligence 2020, Algorithm 2): the exact
//! Shapley values of one tree's output for one row, where a feature "absent" from a coalition
//! follows both children of its splits, weighted by the children's covers. The EXTEND / UNWIND
//! bookkeeping follows shap's `tree_shap.h`; cost O(leaves × depth²) per tree and row.

use super::forest::{Forest, NONE, Tree};

/// One element of the unique path: a feature split on along the path, the share of the cover
/// that follows the path when it is absent (`zero`), whether the row follows the path when it is
/// present (`one`, 0 or 1), and the permutation weight of path subsets.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PathElement {
    feature: usize,
    zero: f64,
    one: f64,
    weight: f64,
}

/// Path elements the recursion of a tree of depth `depth` needs at most: one path per level,
/// each one longer than its parent's.
pub(super) fn scratch_len(depth: usize) -> usize {
    (depth + 2) * (depth + 3) / 2
}

/// Adds a split on `feature` to the path (whose first `depth` elements are set).
pub(super) fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement { feature, zero, one, weight: if depth == 0 { 1.0 } else { 0.0 } };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / d1;
        path[i].weight = zero * path[i].weight * (depth - i) as f64 / d1;
    }
}

/// Removes element `index` from the path (whose last element is at `depth`), undoing its
/// [`extend`].
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let PathElement { zero, one, .. } = path[index];
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let kept = path[i].weight;
            path[i].weight = next * d1 / ((i + 1) as f64 * one);
            next = kept - path[i].weight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].weight = path[i].weight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total permutation weight the path would have with element `index` unwound, without
/// changing it.
pub(super) fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let PathElement { zero, one, .. } = path[index];
    let d1 = (depth + 1) as f64;
    let mut next = path[depth].weight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let w = next * d1 / ((i + 1) as f64 * one);
            total += w;
            next = path[i].weight - w * zero * ((depth - i) as f64 / d1);
        } else if zero != 0.0 {
            total += (path[i].weight / zero) / ((depth - i) as f64 / d1);
        }
    }
    total
}

/// Where the recursion is: the node, the length of the parent's path, and the split that led
/// here (its feature, and the zero and one fractions of the child taken).
#[derive(Clone, Copy)]
struct Step {
    node: usize,
    depth: usize,
    zero: f64,
    one: f64,
    feature: usize,
}

/// Adds the Shapley values of `tree`'s output for `row` to `phi` (one per engine feature).
/// `scratch` holds at least [`scratch_len`] of the tree's depth.
pub(super) fn tree_shap(forest: &Forest, tree: &Tree, row: &[f64], phi: &mut [f64], scratch: &mut [PathElement]) {
    let step = Step { node: tree.root, depth: 0, zero: 1.0, one: 1.0, feature: NONE };
    recurse(forest, row, phi, scratch, step);
}

fn recurse(forest: &Forest, row: &[f64], phi: &mut [f64], buf: &mut [PathElement], step: Step) {
    let (parent, path) = buf.split_at_mut(step.depth);
    path[..step.depth].copy_from_slice(parent);
    let mut depth = step.depth;
    extend(path, depth, step.zero, step.one, step.feature);
    let node = &forest.nodes[step.node];
    if node.is_leaf() {
        for i in 1..=depth {
            let w = unwound_sum(path, depth, i);
            let el = path[i];
            phi[el.feature] += w * (el.one - el.zero) * node.value;
        }
        return;
    }
    let (hot, cold) =
        if forest.goes_left(node, row[node.feature]) { (node.left, node.right) } else { (node.right, node.left) };
    let hot_zero = forest.nodes[hot].cover / node.cover;
    let cold_zero = forest.nodes[cold].cover / node.cover;
    let (mut zero, mut one) = (1.0, 1.0);
    // A feature already split on above: its element is replaced, so each feature appears once.
    if let Some(k) = (1..=depth).find(|&k| path[k].feature == node.feature) {
        zero = path[k].zero;
        one = path[k].one;
        unwind(path, depth, k);
        depth -= 1;
    }
    let feature = node.feature;
    recurse(forest, row, phi, path, Step { node: hot, depth: depth + 1, zero: hot_zero * zero, one, feature });
    recurse(forest, row, phi, path, Step { node: cold, depth: depth + 1, zero: cold_zero * zero, one: 0.0, feature });
}
