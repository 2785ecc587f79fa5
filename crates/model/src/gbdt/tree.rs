//! One tree: grown leaf-wise (best gain first) over histograms of gradient statistics, with a
//! depth limit, second-order gains with L2 regularisation, and categorical splits found by
//! sorting categories by gradient ratio.

use rayon::prelude::*;

use super::Params;
use super::bins::{Bin, BinMapper, BinSplit, Binned, Layout};
use crate::engine::{NodeSpec, SplitTest, TreeSpec};

/// Rows per parallel histogram chunk; fixed so results do not depend on the thread count.
const HIST_CHUNK: usize = 32_768;

#[derive(Debug, Clone)]
struct Node {
    feature: usize,
    split: BinSplit,
    left: i32,
    right: i32,
}

/// A trained tree over bins.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    /// Output (class) whose raw score the tree adds to.
    pub(super) class: usize,
    nodes: Vec<Node>,
    pub(super) leaves: Vec<f64>,
}

impl Tree {
    /// The leaf a binned row falls in.
    pub(super) fn leaf(&self, bins: &[u8]) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut child = 0i32;
        while child >= 0 {
            let node = &self.nodes[child as usize];
            child = if node.split.goes_left(bins[node.feature]) { node.left } else { node.right };
        }
        (!child) as usize
    }

    /// The tree in the engine's serialized form, thresholds in raw feature units.
    pub(super) fn to_spec(&self, mappers: &[BinMapper]) -> TreeSpec {
        TreeSpec {
            class: self.class,
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeSpec {
                    feature: n.feature,
                    test: match (n.split, &mappers[n.feature]) {
                        (BinSplit::Le(b), BinMapper::Numeric { upper }) => SplitTest::Threshold(upper[usize::from(b)]),
                        (BinSplit::In(set), _) => SplitTest::Categories(
                            (0..256u32).filter(|&c| (set[(c >> 6) as usize] >> (c & 63)) & 1 == 1).collect(),
                        ),
                        (BinSplit::Le(_), BinMapper::Categorical { .. }) => {
                            unreachable!("numeric split on a categorical feature")
                        }
                    },
                    left: n.left,
                    right: n.right,
                    missing_left: true,
                })
                .collect(),
            leaves: self.leaves.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    gain: f64,
    feature: usize,
    split: BinSplit,
    left: Bin,
}

struct Leaf {
    start: usize,
    end: usize,
    depth: usize,
    sum: Bin,
    hist: Vec<Bin>,
    best: Option<Candidate>,
    /// Internal node pointing at this leaf, and whether as its left child.
    parent: Option<(usize, bool)>,
}

/// A tree being grown: its leaves and nodes, and the training rows in leaf order.
struct Growing {
    leaves: Vec<Leaf>,
    nodes: Vec<Node>,
    index: Vec<u32>,
    scratch: Vec<u32>,
}

/// Grows one tree of one output from the rows' gradients and hessians.
pub(super) struct Grower<'a> {
    pub(super) params: &'a Params,
    pub(super) mappers: &'a [BinMapper],
    pub(super) layout: &'a Layout,
    pub(super) binned: &'a Binned,
    /// Gradients and hessians, row-major `n × k`; this tree reads column `class`.
    pub(super) g: &'a [f64],
    pub(super) h: &'a [f64],
    pub(super) k: usize,
    pub(super) class: usize,
}

/// A grown tree, the training rows in leaf order, and each leaf's `[start, end)` in that order.
pub(super) struct Grown {
    pub(super) tree: Tree,
    pub(super) index: Vec<u32>,
    pub(super) ranges: Vec<(usize, usize)>,
}

impl Grower<'_> {
    fn histogram(&self, rows: &[u32]) -> Vec<Bin> {
        let build = |rows: &[u32]| {
            let mut hist = vec![Bin::default(); self.layout.total];
            for &r in rows {
                let r = r as usize;
                let e = Bin { g: self.g[r * self.k + self.class], h: self.h[r * self.k + self.class], n: 1 };
                for (offset, &b) in self.layout.offsets.iter().zip(self.binned.row(r)) {
                    hist[offset + usize::from(b)] += e;
                }
            }
            hist
        };
        if rows.len() <= HIST_CHUNK {
            return build(rows);
        }
        let parts: Vec<Vec<Bin>> = rows.par_chunks(HIST_CHUNK).map(build).collect();
        let mut parts = parts.into_iter();
        let mut hist = parts.next().unwrap_or_default();
        for part in parts {
            for (a, b) in hist.iter_mut().zip(part) {
                *a += b;
            }
        }
        hist
    }

    fn score(&self, b: &Bin) -> f64 {
        b.g * b.g / (b.h + self.params.lambda_l2)
    }

    fn valid(&self, b: &Bin) -> bool {
        b.n as usize >= self.params.min_data_in_leaf && b.h >= self.params.min_sum_hessian
    }

    fn best_split(&self, hist: &[Bin], sum: Bin, depth: usize) -> Option<Candidate> {
        if depth >= self.params.max_depth || (sum.n as usize) < 2 * self.params.min_data_in_leaf {
            return None;
        }
        let parent = self.score(&sum);
        let mut best: Option<Candidate> = None;
        let mut consider = |feature: usize, split: BinSplit, left: Bin| {
            let mut right = sum;
            right -= left;
            if !self.valid(&left) || !self.valid(&right) {
                return;
            }
            let gain = self.score(&left) + self.score(&right) - parent;
            if gain > 1e-10 && best.is_none_or(|b| gain > b.gain) {
                best = Some(Candidate { gain, feature, split, left });
            }
        };
        for (f, mapper) in self.mappers.iter().enumerate() {
            let bins = &hist[self.layout.offsets[f]..self.layout.offsets[f] + mapper.n_bins()];
            match mapper {
                BinMapper::Numeric { .. } => {
                    let mut left = Bin::default();
                    for (b, bin) in bins.iter().enumerate().take(bins.len().saturating_sub(1)) {
                        left += *bin;
                        consider(f, BinSplit::Le(b as u8), left);
                    }
                }
                BinMapper::Categorical { .. } => {
                    let smooth = self.params.cat_smooth;
                    let mut order: Vec<usize> =
                        (0..bins.len()).filter(|&b| bins[b].n as usize >= self.params.min_data_per_category).collect();
                    order.sort_by(|&a, &b| {
                        let ra = bins[a].g / (bins[a].h + smooth);
                        let rb = bins[b].g / (bins[b].h + smooth);
                        ra.total_cmp(&rb).then(a.cmp(&b))
                    });
                    let max_set = self.params.max_cat_threshold.min(order.len().saturating_sub(1));
                    for direction in [false, true] {
                        let mut set = [0u64; 4];
                        let mut left = Bin::default();
                        for i in 0..max_set {
                            let b = if direction { order[order.len() - 1 - i] } else { order[i] };
                            set[b >> 6] |= 1 << (b & 63);
                            left += bins[b];
                            consider(f, BinSplit::In(set), left);
                        }
                    }
                }
            }
        }
        best
    }

    fn leaf_value(&self, sum: &Bin) -> f64 {
        -sum.g / (sum.h + self.params.lambda_l2) * self.params.learning_rate
    }

    /// Grows one tree over all training rows.
    pub(super) fn grow(&self, n_rows: usize) -> Grown {
        let index: Vec<u32> = (0..n_rows as u32).collect();
        let hist = self.histogram(&index);
        let sum = hist[..self.mappers[0].n_bins()].iter().fold(Bin::default(), |mut a, b| {
            a += *b;
            a
        });
        let best = self.best_split(&hist, sum, 0);
        let mut growing = Growing {
            leaves: vec![Leaf { start: 0, end: n_rows, depth: 0, sum, hist, best, parent: None }],
            nodes: Vec::new(),
            index,
            scratch: vec![0u32; n_rows],
        };
        while growing.leaves.len() < self.params.max_leaves {
            let Some((id, cand)) = growing
                .leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.best.map(|b| (i, b)))
                .reduce(|a, b| if b.1.gain > a.1.gain { b } else { a })
            else {
                break;
            };
            self.split(&mut growing, id, cand);
        }
        let Growing { leaves, nodes, index, .. } = growing;
        let tree = Tree { class: self.class, nodes, leaves: leaves.iter().map(|l| self.leaf_value(&l.sum)).collect() };
        let ranges = leaves.iter().map(|l| (l.start, l.end)).collect();
        Grown { tree, index, ranges }
    }

    /// Splits leaf `id` by `cand`: the left child keeps its place, the right one is appended.
    fn split(&self, growing: &mut Growing, id: usize, cand: Candidate) {
        let Growing { leaves, nodes, index, scratch } = growing;
        let (start, end) = (leaves[id].start, leaves[id].end);
        // Stable partition of the leaf's rows: left rows first.
        let (mut l, mut r) = (start, 0);
        for i in start..end {
            let row = index[i];
            if cand.split.goes_left(self.binned.row(row as usize)[cand.feature]) {
                index[l] = row;
                l += 1;
            } else {
                scratch[r] = row;
                r += 1;
            }
        }
        index[l..end].copy_from_slice(&scratch[..r]);
        let mid = l;
        let node = nodes.len();
        let new_id = leaves.len() as i32;
        nodes.push(Node { feature: cand.feature, split: cand.split, left: !(id as i32), right: !new_id });
        if let Some((p, is_left)) = leaves[id].parent {
            if is_left {
                nodes[p].left = node as i32;
            } else {
                nodes[p].right = node as i32;
            }
        }
        let depth = leaves[id].depth + 1;
        let left_sum = cand.left;
        let mut right_sum = leaves[id].sum;
        right_sum -= left_sum;
        // Build the smaller child's histogram; the larger one is parent minus smaller.
        let left_smaller = mid - start <= end - mid;
        let small = if left_smaller { self.histogram(&index[start..mid]) } else { self.histogram(&index[mid..end]) };
        let mut large = std::mem::take(&mut leaves[id].hist);
        for (a, b) in large.iter_mut().zip(&small) {
            *a -= *b;
        }
        let (left_hist, right_hist) = if left_smaller { (small, large) } else { (large, small) };
        let left_best = self.best_split(&left_hist, left_sum, depth);
        let right_best = self.best_split(&right_hist, right_sum, depth);
        leaves[id] = Leaf {
            start,
            end: mid,
            depth,
            sum: left_sum,
            hist: left_hist,
            best: left_best,
            parent: Some((node, true)),
        };
        leaves.push(Leaf {
            start: mid,
            end,
            depth,
            sum: right_sum,
            hist: right_hist,
            best: right_best,
            parent: Some((node, false)),
        });
    }
}
