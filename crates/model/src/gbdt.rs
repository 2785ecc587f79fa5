//! Gradient-boosted decision trees for multiclass classification (softmax objective), in the
//! style of LightGBM: features binned into at most 255 histogram bins, one tree per class per
//! round grown leaf-wise (best gain first) with a depth limit, second-order gains with L2
//! regularisation, categorical splits found by sorting categories by gradient ratio, and early
//! stopping on a validation set.
//!
//! Training is deterministic for a given input whatever the number of threads: parallel work is
//! cut into fixed-size chunks and reduced in order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::{ENSEMBLE_FORMAT, EnsembleSpec, NodeSpec, Output, SplitTest, TreeSpec, softmax};
use crate::progress::Progress;

/// Rows per parallel histogram chunk; fixed so results do not depend on the thread count.
const HIST_CHUNK: usize = 32_768;

/// Hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Most boosting rounds (one tree per class each).
    pub max_rounds: usize,
    /// Stop when the validation log loss has not improved for this many rounds.
    pub early_stopping_rounds: usize,
    /// Most leaves per tree.
    pub max_leaves: usize,
    /// Most split levels per tree.
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_data_in_leaf: usize,
    /// Smallest hessian sum in a leaf.
    pub min_sum_hessian: f64,
    /// L2 regularisation of leaf values.
    pub lambda_l2: f64,
    /// Most histogram bins of a numeric feature (at most 255).
    pub max_bins: usize,
    /// Fewest rows a category needs to be placed on its own side of a split.
    pub min_data_per_category: usize,
    /// Smoothing of the gradient ratio categories are sorted by.
    pub cat_smooth: f64,
    /// Most categories on the left side of a categorical split.
    pub max_cat_threshold: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            // A high rate and shallow trees: on the default data this reaches the same held-out
            // accuracy as 0.1 / depth 6 with 120 instead of 306 trees (docs/decisions.md).
            learning_rate: 0.3,
            max_rounds: 500,
            early_stopping_rounds: 20,
            max_leaves: 31,
            max_depth: 5,
            min_data_in_leaf: 50,
            min_sum_hessian: 1e-3,
            lambda_l2: 1.0,
            max_bins: 255,
            min_data_per_category: 20,
            cat_smooth: 10.0,
            max_cat_threshold: 32,
        }
    }
}

/// Kind of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Ordered numbers.
    Numeric,
    /// Integer codes `0..n_codes`.
    Categorical {
        /// Number of codes (at most 256).
        n_codes: usize,
    },
}

/// Rows (row-major feature values) with class labels.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    /// `n × n_features` values.
    pub rows: &'a [f64],
    /// Class index of each row.
    pub labels: &'a [u8],
}

/// Maps raw feature values to histogram bins.
#[derive(Debug, Clone, PartialEq)]
pub enum BinMapper {
    /// Bin `b` holds values `<= upper[b]` (and above the previous bound); the last bin is open.
    Numeric {
        /// Upper bounds of all but the last bin, increasing.
        upper: Vec<f64>,
    },
    /// The bin is the category code.
    Categorical {
        /// Number of codes.
        n_codes: usize,
    },
}

impl BinMapper {
    fn fit(kind: FeatureKind, column: impl Iterator<Item = f64>, max_bins: usize) -> Self {
        match kind {
            FeatureKind::Categorical { n_codes } => Self::Categorical { n_codes },
            FeatureKind::Numeric => {
                let mut values: Vec<f64> = column.collect();
                values.sort_by(f64::total_cmp);
                let mut distinct: Vec<(f64, usize)> = Vec::new();
                for v in values.iter().copied() {
                    match distinct.last_mut() {
                        Some((last, count)) if *last == v => *count += 1,
                        _ => distinct.push((v, 1)),
                    }
                }
                let max_bins = max_bins.clamp(2, 255);
                let target = (values.len() / max_bins).max(1);
                let mut upper = Vec::new();
                let mut acc = 0;
                for pair in distinct.windows(2) {
                    acc += pair[0].1;
                    if distinct.len() <= max_bins || acc >= target {
                        upper.push(pair[0].0 + (pair[1].0 - pair[0].0) / 2.0);
                        acc = 0;
                        if upper.len() == max_bins - 1 {
                            break;
                        }
                    }
                }
                Self::Numeric { upper }
            }
        }
    }

    fn n_bins(&self) -> usize {
        match self {
            Self::Numeric { upper } => upper.len() + 1,
            Self::Categorical { n_codes } => *n_codes,
        }
    }

    fn bin(&self, x: f64) -> u8 {
        match self {
            Self::Numeric { upper } => upper.partition_point(|&u| u < x) as u8,
            // `as` saturates; codes beyond the vocabulary land on 255, which no set contains.
            Self::Categorical { .. } => (x as usize).min(255) as u8,
        }
    }
}

/// A split on bins: left when `bin <= b`, or when the bin is in the set.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BinSplit {
    Le(u8),
    In([u64; 4]),
}

impl BinSplit {
    fn goes_left(&self, bin: u8) -> bool {
        match self {
            Self::Le(b) => bin <= *b,
            Self::In(set) => (set[usize::from(bin >> 6)] >> (bin & 63)) & 1 == 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    feature: usize,
    split: BinSplit,
    left: i32,
    right: i32,
}

/// A trained tree over bins.
#[derive(Debug, Clone)]
struct Tree {
    class: usize,
    nodes: Vec<Node>,
    leaves: Vec<f64>,
}

impl Tree {
    fn leaf(&self, bins: &[u8]) -> usize {
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
}

/// A trained ensemble with its bin mappers.
#[derive(Debug, Clone)]
pub struct Booster {
    mappers: Vec<BinMapper>,
    n_classes: usize,
    init_scores: Vec<f64>,
    trees: Vec<Tree>,
    /// Rounds kept (the best validation log loss).
    pub best_iteration: usize,
    /// Rounds run before stopping.
    pub rounds_run: usize,
    /// Validation log loss after each round.
    pub validation_log_loss: Vec<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

impl std::ops::AddAssign for Bin {
    fn add_assign(&mut self, o: Self) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
}

impl std::ops::SubAssign for Bin {
    fn sub_assign(&mut self, o: Self) {
        self.g -= o.g;
        self.h -= o.h;
        self.n -= o.n;
    }
}

/// Binned training rows (row-major `u8`).
struct Binned {
    n_features: usize,
    bins: Vec<u8>,
}

impl Binned {
    fn new(mappers: &[BinMapper], rows: &[f64]) -> Self {
        let nf = mappers.len();
        let mut bins = vec![0u8; rows.len()];
        bins.par_chunks_mut(nf * 4096).zip(rows.par_chunks(nf * 4096)).for_each(|(out, rows)| {
            for (o, (x, m)) in out.iter_mut().zip(rows.iter().zip(mappers.iter().cycle())) {
                *o = m.bin(*x);
            }
        });
        Self { n_features: nf, bins }
    }

    fn row(&self, r: usize) -> &[u8] {
        &self.bins[r * self.n_features..(r + 1) * self.n_features]
    }
}

struct Layout {
    offsets: Vec<usize>,
    total: usize,
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

struct Grower<'a> {
    params: &'a Params,
    mappers: &'a [BinMapper],
    layout: &'a Layout,
    binned: &'a Binned,
    /// Gradients and hessians, row-major `n × k`; this tree reads column `class`.
    g: &'a [f64],
    h: &'a [f64],
    k: usize,
    class: usize,
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
    fn grow(&self, n_rows: usize) -> Grown {
        let mut index: Vec<u32> = (0..n_rows as u32).collect();
        let mut scratch = vec![0u32; n_rows];
        let hist = self.histogram(&index);
        let sum = hist[..self.mappers[0].n_bins()].iter().fold(Bin::default(), |mut a, b| {
            a += *b;
            a
        });
        let best = self.best_split(&hist, sum, 0);
        let mut leaves = vec![Leaf { start: 0, end: n_rows, depth: 0, sum, hist, best, parent: None }];
        let mut nodes: Vec<Node> = Vec::new();
        while leaves.len() < self.params.max_leaves {
            let Some((id, cand)) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.best.map(|b| (i, b)))
                .reduce(|a, b| if b.1.gain > a.1.gain { b } else { a })
            else {
                break;
            };
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
            let small =
                if left_smaller { self.histogram(&index[start..mid]) } else { self.histogram(&index[mid..end]) };
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
        let tree = Tree { class: self.class, nodes, leaves: leaves.iter().map(|l| self.leaf_value(&l.sum)).collect() };
        let ranges = leaves.iter().map(|l| (l.start, l.end)).collect();
        Grown { tree, index, ranges }
    }
}

/// A grown tree, the training rows in leaf order, and each leaf's `[start, end)` in that order.
struct Grown {
    tree: Tree,
    index: Vec<u32>,
    ranges: Vec<(usize, usize)>,
}

fn log_loss(scores: &[f64], labels: &[u8], k: usize) -> f64 {
    let mut p = vec![0.0; k];
    let total: f64 = scores
        .chunks(k)
        .zip(labels)
        .map(|(s, &y)| {
            p.copy_from_slice(s);
            softmax(&mut p);
            -p[usize::from(y)].max(1e-15).ln()
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// Trains a booster; `valid` drives early stopping.
pub fn train(
    params: &Params,
    kinds: &[FeatureKind],
    n_classes: usize,
    train: Dataset<'_>,
    valid: Dataset<'_>,
    progress: &dyn Progress,
) -> Booster {
    let nf = kinds.len();
    let n = train.labels.len();
    let k = n_classes;
    let mappers: Vec<BinMapper> = kinds
        .par_iter()
        .enumerate()
        .map(|(f, &kind)| BinMapper::fit(kind, train.rows.iter().skip(f).step_by(nf).copied(), params.max_bins))
        .collect();
    let mut offsets = Vec::with_capacity(nf);
    let mut total = 0;
    for m in &mappers {
        offsets.push(total);
        total += m.n_bins();
    }
    let layout = Layout { offsets, total };
    let binned = Binned::new(&mappers, train.rows);
    let valid_binned = Binned::new(&mappers, valid.rows);

    // Start from the class log priors (add-one smoothed).
    let mut counts = vec![1.0; k];
    for &y in train.labels {
        counts[usize::from(y)] += 1.0;
    }
    let total_count: f64 = counts.iter().sum();
    let init_scores: Vec<f64> = counts.iter().map(|c| (c / total_count).ln()).collect();
    let mut scores: Vec<f64> = init_scores.iter().copied().cycle().take(n * k).collect();
    let mut valid_scores: Vec<f64> = init_scores.iter().copied().cycle().take(valid.labels.len() * k).collect();

    let mut booster = Booster {
        mappers: mappers.clone(),
        n_classes: k,
        init_scores,
        trees: Vec::new(),
        best_iteration: 0,
        rounds_run: 0,
        validation_log_loss: Vec::new(),
    };
    let mut best = f64::INFINITY;
    let hess_factor = k as f64 / (k as f64 - 1.0);
    let mut grads = vec![0.0; n * k];
    let mut hess = vec![0.0; n * k];
    progress.stage("boosting rounds", params.max_rounds as u64);
    for round in 0..params.max_rounds {
        // Softmax gradients and hessians, row-major like the scores.
        grads
            .par_chunks_mut(8192 * k)
            .zip(hess.par_chunks_mut(8192 * k))
            .zip(scores.par_chunks(8192 * k))
            .zip(train.labels.par_chunks(8192))
            .for_each(|(((g, h), s), labels)| {
                let mut p = vec![0.0; k];
                for (r, &y) in labels.iter().enumerate() {
                    p.copy_from_slice(&s[r * k..(r + 1) * k]);
                    softmax(&mut p);
                    for class in 0..k {
                        let target = f64::from(u8::from(usize::from(y) == class));
                        g[r * k + class] = p[class] - target;
                        h[r * k + class] = (hess_factor * p[class] * (1.0 - p[class])).max(1e-16);
                    }
                }
            });
        let grown: Vec<Grown> = (0..k)
            .into_par_iter()
            .map(|class| {
                let grower = Grower {
                    params,
                    mappers: &mappers,
                    layout: &layout,
                    binned: &binned,
                    g: &grads,
                    h: &hess,
                    k,
                    class,
                };
                grower.grow(n)
            })
            .collect();
        for Grown { tree, index, ranges } in grown {
            for (leaf, &(start, end)) in ranges.iter().enumerate() {
                for &r in &index[start..end] {
                    scores[r as usize * k + tree.class] += tree.leaves[leaf];
                }
            }
            for r in 0..valid.labels.len() {
                valid_scores[r * k + tree.class] += tree.leaves[tree.leaf(valid_binned.row(r))];
            }
            booster.trees.push(tree);
        }
        let loss = log_loss(&valid_scores, valid.labels, k);
        booster.validation_log_loss.push(loss);
        booster.rounds_run = round + 1;
        progress.advance(1);
        progress.message(&format!("round {} validation log loss {loss:.5}", round + 1));
        if loss < best {
            best = loss;
            booster.best_iteration = round + 1;
        } else if round + 1 - booster.best_iteration >= params.early_stopping_rounds {
            break;
        }
    }
    booster.trees.truncate(booster.best_iteration * k);
    booster
}

impl Booster {
    /// Raw class scores of one row, computed over bins (the trainer's own prediction path).
    pub fn predict_raw(&self, row: &[f64], scores: &mut [f64]) {
        let bins: Vec<u8> = row.iter().zip(&self.mappers).map(|(x, m)| m.bin(*x)).collect();
        scores.copy_from_slice(&self.init_scores);
        for tree in &self.trees {
            scores[tree.class] += tree.leaves[tree.leaf(&bins)];
        }
    }

    /// Class probabilities of one row (the trainer's own prediction path).
    pub fn predict_proba(&self, row: &[f64], probabilities: &mut [f64]) {
        self.predict_raw(row, probabilities);
        softmax(probabilities);
    }

    /// Number of trees kept.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// The ensemble in the engine's serialized form, thresholds in raw feature units.
    pub fn to_spec(&self, classes: &[String]) -> EnsembleSpec {
        assert_eq!(classes.len(), self.n_classes, "one name per class");
        let trees = self
            .trees
            .iter()
            .map(|t| TreeSpec {
                class: t.class,
                nodes: t
                    .nodes
                    .iter()
                    .map(|n| NodeSpec {
                        feature: n.feature,
                        test: match (n.split, &self.mappers[n.feature]) {
                            (BinSplit::Le(b), BinMapper::Numeric { upper }) => {
                                SplitTest::Threshold(upper[usize::from(b)])
                            }
                            (BinSplit::In(set), _) => SplitTest::Categories(
                                (0..256u32).filter(|&c| (set[(c >> 6) as usize] >> (c & 63)) & 1 == 1).collect(),
                            ),
                            (BinSplit::Le(_), BinMapper::Categorical { .. }) => {
                                unreachable!("numeric split on a categorical feature")
                            }
                        },
                        left: n.left,
                        right: n.right,
                    })
                    .collect(),
                leaves: t.leaves.clone(),
            })
            .collect();
        EnsembleSpec {
            format: ENSEMBLE_FORMAT.to_owned(),
            n_features: self.mappers.len(),
            classes: classes.to_vec(),
            init_scores: self.init_scores.clone(),
            trees,
            output: Output::Softmax,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::progress::Silent;
    use crate::rng::Rng;

    /// Two numeric features and one categorical; the class depends on all three.
    fn toy(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
        let mut rng = Rng::new(seed, 0, 0);
        let mut rows = Vec::with_capacity(n * 3);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let x0 = rng.normal();
            let x1 = (rng.uniform() * 100.0).round() / 10.0;
            let c = rng.below(6);
            let s = 1.5 * x0 + 0.3 * (x1 - 5.0) + [1.0, -1.0, 0.5, 0.0, -0.5, 2.0][c] + rng.normal();
            rows.extend([x0, x1, c as f64]);
            labels.push(if s < -1.0 {
                0
            } else if s < 1.0 {
                1
            } else {
                2
            });
        }
        (rows, labels)
    }

    const KINDS: [FeatureKind; 3] =
        [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 6 }];

    fn fit(params: &Params) -> Booster {
        let (tr, ty) = toy(6000, 1);
        let (vr, vy) = toy(2000, 2);
        train(params, &KINDS, 3, Dataset { rows: &tr, labels: &ty }, Dataset { rows: &vr, labels: &vy }, &Silent)
    }

    #[test]
    fn learns_and_stops_early() {
        let booster = fit(&Params { max_rounds: 300, ..Params::default() });
        assert!(
            booster.best_iteration > 5 && booster.best_iteration < booster.rounds_run,
            "{} of {}",
            booster.best_iteration,
            booster.rounds_run
        );
        assert!(booster.rounds_run < 300, "early stopping");
        let (rows, labels) = toy(3000, 3);
        let mut p = [0.0; 3];
        let correct = rows
            .chunks(3)
            .zip(&labels)
            .filter(|(row, y)| {
                booster.predict_proba(row, &mut p);
                crate::metrics::argmax(&p) == usize::from(**y)
            })
            .count();
        let accuracy = correct as f64 / 3000.0;
        assert!(accuracy > 0.7, "{accuracy}");
        let first = booster.validation_log_loss[0];
        assert!(booster.validation_log_loss[booster.best_iteration - 1] < first * 0.8);
    }

    #[test]
    fn deterministic() {
        let params = Params { max_rounds: 30, ..Params::default() };
        let a = fit(&params).to_spec(&["A".into(), "B".into(), "C".into()]);
        let b = fit(&params).to_spec(&["A".into(), "B".into(), "C".into()]);
        assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
    }

    #[test]
    fn compiled_engine_matches_the_trainer() {
        let booster = fit(&Params { max_rounds: 40, ..Params::default() });
        let engine = Engine::compile(&booster.to_spec(&["A".into(), "B".into(), "C".into()])).expect("compile");
        let (rows, _) = toy(5000, 9);
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        for row in rows.chunks(3) {
            booster.predict_proba(row, &mut a);
            engine.predict_proba(row, &mut b);
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-12), "{a:?} {b:?}");
        }
    }

    #[test]
    fn bins_respect_thresholds() {
        let m = BinMapper::fit(FeatureKind::Numeric, [1.0, 2.0, 2.0, 3.0].into_iter(), 255);
        assert_eq!(m, BinMapper::Numeric { upper: vec![1.5, 2.5] });
        assert_eq!([0.0, 1.0, 1.5, 1.6, 2.5, 9.0].map(|x| m.bin(x)), [0, 0, 0, 1, 1, 2]);
        let many = BinMapper::fit(FeatureKind::Numeric, (0..10_000).map(f64::from), 16);
        assert!(many.n_bins() <= 16);
    }
}
