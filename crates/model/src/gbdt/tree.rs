//! One tree: grown leaf-wise (best gain first) over histograms of gradient statistics, with a
//! depth limit, second-order gains with L2 regularisation, and categorical splits found by
//! sorting categories by gradient ratio.

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use super::Params;
use super::bins::{Bin, BinMapper, BinSplit, Binned, Columns, Layout, missing_bin};
use crate::engine::{NodeSpec, SplitTest, TreeSpec};

/// Rows per parallel histogram chunk; fixed so results do not depend on the thread count.
const HIST_CHUNK: usize = 32_768;

/// Fewer rows than this are histogrammed, or partitioned, on one thread.
const PARALLEL_ROWS: usize = 4_096;

/// Rows whose loads a histogram starts together, before adding them.
const GATHER: usize = 16;

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
    /// How many training rows each leaf holds (TreeSHAP's covers).
    pub(super) covers: Vec<f64>,
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

    /// The leaf a row of raw values falls in: a missing value (NaN) goes where the node's
    /// [`NodeSpec::missing_left`] sends it (left at a categorical node), others by their bin.
    pub(super) fn leaf_of_row(&self, row: &[f64], mappers: &[BinMapper]) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut child = 0i32;
        while child >= 0 {
            let node = &self.nodes[child as usize];
            let x = row[node.feature];
            let left = match node.split {
                BinSplit::Le { missing_left, .. } if x.is_nan() => missing_left,
                BinSplit::In(_) if x.is_nan() => true,
                split => split.goes_left(mappers[node.feature].bin(x)),
            };
            child = if left { node.left } else { node.right };
        }
        (!child) as usize
    }

    /// The tree in the engine's serialized form, thresholds in raw feature units. A numeric
    /// split sending every value left (and the missing ones right) has threshold `f64::MAX`.
    pub(super) fn to_spec(&self, mappers: &[BinMapper]) -> TreeSpec {
        let node = |n: &Node| {
            let (test, missing_left) = match (n.split, &mappers[n.feature]) {
                (BinSplit::Le { max, missing_left, .. }, BinMapper::Numeric { upper }) => {
                    (SplitTest::Threshold(upper.get(usize::from(max)).copied().unwrap_or(f64::MAX)), missing_left)
                }
                (BinSplit::In(set), _) => (
                    SplitTest::Categories(
                        (0..256u32).filter(|&c| (set[(c >> 6) as usize] >> (c & 63)) & 1 == 1).collect(),
                    ),
                    true,
                ),
                (BinSplit::Le { .. }, BinMapper::Categorical { .. }) => {
                    unreachable!("numeric split on a categorical feature")
                }
            };
            NodeSpec { feature: n.feature, test, left: n.left, right: n.right, missing_left }
        };
        TreeSpec { class: self.class, nodes: self.nodes.iter().map(node).collect(), leaves: self.leaves.clone() }
    }
}

/// The training rows of a grown tree's leaves: leaf `l` holds `index[ranges[l]]`.
pub(super) struct LeafRows {
    index: Vec<u32>,
    ranges: Vec<Range<usize>>,
}

impl LeafRows {
    /// Adds `tree`'s leaf values to the raw scores (`k` per row) of the rows it was grown on,
    /// without walking the tree: each leaf's value to each of its rows.
    pub(super) fn add_scores(&self, tree: &Tree, scores: &mut [f64], k: usize) {
        for (range, &value) in self.ranges.iter().zip(&tree.leaves) {
            for &r in &self.index[range.clone()] {
                scores[r as usize * k + tree.class] += value;
            }
        }
    }
}

/// The best split of a node found so far.
struct Best<'a> {
    grower: &'a Grower<'a>,
    /// Statistics and score of the node.
    sum: Bin,
    parent: f64,
    best: Option<Candidate>,
}

impl Best<'_> {
    /// Keeps the split sending `left` left if both children are valid and it gains more than
    /// every split before it.
    fn consider(&mut self, feature: usize, split: BinSplit, left: Bin) {
        let mut right = self.sum;
        right -= left;
        let g = self.grower;
        if !g.valid(&left) || !g.valid(&right) {
            return;
        }
        let gain = g.score(&left) + g.score(&right) - self.parent;
        if gain > 1e-10 && self.best.is_none_or(|b| gain > b.gain) {
            self.best = Some(Candidate { gain, feature, split, left });
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
    /// The same rows column-major.
    pub(super) columns: &'a Columns,
    /// Gradients and hessians, row-major `n × k`; this tree reads column `class`.
    pub(super) g: &'a [f64],
    pub(super) h: &'a [f64],
    pub(super) k: usize,
    pub(super) class: usize,
    /// Histogram buffers of the trees grown before.
    pub(super) buffers: &'a Buffers,
}

/// Histogram buffers handed back when a tree is done and reused by the next ones. Allocating
/// each afresh (hundreds of KiB) cost page faults: a fifth of a small table's training time.
/// At most as many are kept as were in use at once (a tree's leaves and row chunks, for the
/// classes grown at the same time).
#[derive(Default)]
pub(super) struct Buffers(Mutex<Vec<Vec<Bin>>>);

impl Buffers {
    /// A histogram of `len` empty bins.
    fn take(&self, len: usize) -> Vec<Bin> {
        match self.0.lock().ok().and_then(|mut spare| spare.pop()) {
            Some(mut hist) => {
                hist.clear();
                hist.resize(len, Bin::default());
                hist
            }
            None => vec![Bin::default(); len],
        }
    }

    fn give(&self, hist: Vec<Bin>) {
        if let Ok(mut spare) = self.0.lock() {
            spare.push(hist);
        }
    }
}

impl Grower<'_> {
    /// The histogram of `rows`. Above [`HIST_CHUNK`] rows, one per fixed-size chunk of rows,
    /// added in chunk order; below, one pass over the rows per block of features, the blocks
    /// in parallel: every bin still adds its rows in row order, so the histogram is the same
    /// whatever the number of blocks.
    pub(super) fn histogram(&self, rows: &[u32]) -> Vec<Bin> {
        let features = self.mappers.len();
        if rows.len() > HIST_CHUNK {
            let build = |rows: &[u32]| {
                let mut hist = self.buffers.take(self.layout.total);
                self.accumulate(rows, 0..features, &mut hist);
                hist
            };
            let parts: Vec<Vec<Bin>> = rows.par_chunks(HIST_CHUNK).map(build).collect();
            let mut parts = parts.into_iter();
            let mut hist = parts.next().unwrap_or_default();
            for part in parts {
                for (a, b) in hist.iter_mut().zip(&part) {
                    *a += *b;
                }
                self.buffers.give(part);
            }
            return hist;
        }
        let mut hist = self.buffers.take(self.layout.total);
        let blocks = if rows.len() < PARALLEL_ROWS { 1 } else { rayon::current_num_threads().clamp(1, features) };
        let mut parts = Vec::with_capacity(blocks);
        let mut rest = hist.as_mut_slice();
        for block in 0..blocks {
            let range = features * block / blocks..features * (block + 1) / blocks;
            let end = self.layout.offsets.get(range.end).copied().unwrap_or(self.layout.total);
            let (part, tail) = rest.split_at_mut(end - self.layout.offsets[range.start]);
            parts.push((range, part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(range, part)| self.accumulate(rows, range, part));
        hist
    }

    /// Adds `rows` to `hist`, the bins of `features` (which start at the first one's offset).
    /// The rows are touched [`GATHER`] at a time (first and last bin, so every cache line of
    /// the row) before they are added: their loads do not wait on each other or on the
    /// additions, so their cache misses overlap.
    fn accumulate(&self, rows: &[u32], features: Range<usize>, hist: &mut [Bin]) {
        let offsets = &self.layout.offsets[features.clone()];
        let base = offsets.first().copied().unwrap_or(0);
        let mut stats = [Bin::default(); GATHER];
        let mut touched = 0u8;
        for group in rows.chunks(GATHER) {
            for (&r, e) in group.iter().zip(&mut stats) {
                let r = r as usize;
                let row = self.binned.row(r);
                touched ^= row[features.start] ^ row[features.end - 1];
                *e = Bin { g: self.g[r * self.k + self.class], h: self.h[r * self.k + self.class], n: 1 };
            }
            for (&r, &e) in group.iter().zip(&stats) {
                for (offset, &b) in offsets.iter().zip(&self.binned.row(r as usize)[features.clone()]) {
                    hist[offset - base + usize::from(b)] += e;
                }
            }
        }
        std::hint::black_box(touched);
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
        let mut best = Best { grower: self, sum, parent: self.score(&sum), best: None };
        for (f, mapper) in self.mappers.iter().enumerate() {
            let bins = &hist[self.layout.offsets[f]..self.layout.offsets[f] + mapper.n_bins()];
            match mapper {
                BinMapper::Numeric { upper } => self.numeric_splits(&mut best, f, bins, missing_bin(upper)),
                BinMapper::Categorical { .. } => self.categorical_splits(&mut best, f, bins),
            }
        }
        best.best
    }

    /// Thresholds between value bins with the missing values right (when the node has none,
    /// that is all, and they are sent left); when it has some, the same thresholds with them
    /// left, and every value left with them right.
    fn numeric_splits(&self, best: &mut Best<'_>, f: usize, bins: &[Bin], missing: u8) {
        let (values, missing_stats) = bins.split_at(usize::from(missing));
        let last = values.len().saturating_sub(1);
        // Without missing values at this node the direction is not learned: left, the
        // engine's default.
        let no_missing = missing_stats[0].n == 0;
        let mut left = Bin::default();
        for (b, bin) in values.iter().enumerate().take(last) {
            left += *bin;
            best.consider(f, BinSplit::Le { max: b as u8, missing, missing_left: no_missing }, left);
        }
        if no_missing {
            return;
        }
        let mut left = missing_stats[0];
        for (b, bin) in values.iter().enumerate().take(last) {
            left += *bin;
            best.consider(f, BinSplit::Le { max: b as u8, missing, missing_left: true }, left);
        }
        let mut all_values = Bin::default();
        for bin in values {
            all_values += *bin;
        }
        best.consider(f, BinSplit::Le { max: last as u8, missing, missing_left: false }, all_values);
    }

    /// Sets of categories, sorted by gradient ratio, taken from either end.
    fn categorical_splits(&self, best: &mut Best<'_>, f: usize, bins: &[Bin]) {
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
                best.consider(f, BinSplit::In(set), left);
            }
        }
    }

    fn leaf_value(&self, sum: &Bin) -> f64 {
        -sum.g / (sum.h + self.params.lambda_l2) * self.params.learning_rate
    }

    /// Grows one tree over all training rows; also returns the rows each leaf holds.
    pub(super) fn grow(&self, n_rows: usize) -> (Tree, LeafRows) {
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
        let Growing { mut leaves, nodes, index, .. } = growing;
        for leaf in &mut leaves {
            self.buffers.give(std::mem::take(&mut leaf.hist));
        }
        let tree = Tree {
            class: self.class,
            nodes,
            leaves: leaves.iter().map(|l| self.leaf_value(&l.sum)).collect(),
            covers: leaves.iter().map(|l| f64::from(l.sum.n)).collect(),
        };
        (tree, LeafRows { index, ranges: leaves.iter().map(|l| l.start..l.end).collect() })
    }

    /// Stable partition of `rows` by `split` of `feature`, left rows first, in chunks of
    /// [`PARALLEL_ROWS`] in parallel (`scratch` is as long as `rows`); the number of left rows.
    pub(super) fn partition(&self, rows: &mut [u32], scratch: &mut [u32], split: &BinSplit, feature: usize) -> usize {
        let column = self.columns.column(feature);
        let counts: Vec<(usize, usize)> = rows
            .par_chunks_mut(PARALLEL_ROWS)
            .zip(scratch.par_chunks_mut(PARALLEL_ROWS))
            .map(|(rows, right)| {
                let (mut l, mut r) = (0, 0);
                for i in 0..rows.len() {
                    let row = rows[i];
                    if split.goes_left(column[row as usize]) {
                        rows[l] = row;
                        l += 1;
                    } else {
                        right[r] = row;
                        r += 1;
                    }
                }
                (l, r)
            })
            .collect();
        // Each chunk's left rows move down to follow the previous chunks' (never past their
        // own place), then the right rows follow all of them.
        let mut left = 0;
        for (chunk, &(l, _)) in counts.iter().enumerate() {
            let from = chunk * PARALLEL_ROWS;
            rows.copy_within(from..from + l, left);
            left += l;
        }
        let mut at = left;
        for (chunk, &(_, r)) in counts.iter().enumerate() {
            let from = chunk * PARALLEL_ROWS;
            rows[at..at + r].copy_from_slice(&scratch[from..from + r]);
            at += r;
        }
        left
    }

    /// Splits leaf `id` by `cand`: the left child keeps its place, the right one is appended.
    fn split(&self, growing: &mut Growing, id: usize, cand: Candidate) {
        let Growing { leaves, nodes, index, scratch } = growing;
        let (start, end) = (leaves[id].start, leaves[id].end);
        let mid = start + self.partition(&mut index[start..end], &mut scratch[start..end], &cand.split, cand.feature);
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
