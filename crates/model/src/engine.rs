//! Native inference engine: a gradient-boosted tree ensemble as stored in `model.json`
//! ([`EnsembleSpec`]) and compiled into flat arrays ([`Engine`]) that predict class
//! probabilities without the training code.
//!
//! Compilation makes every test a byte lookup. Each row is first binned once: a numeric value
//! becomes the number of the model's distinct thresholds on that feature that lie below it
//! (so `x > t_j` exactly when `bin > j`), a category code stays its code. Every internal node
//! then holds a 256-bit table of the bins that go right; numeric and categorical splits are the
//! same three loads and no branch. A feature with more than 255 distinct thresholds is binned
//! into several byte slots, one per run of 255 thresholds: within its run a split is the same
//! exact test (`x > t_j` exactly when the run's bin exceeds `j`'s place in the run). Trees are laid out as complete binary trees of the
//! ensemble's depth (heap order, children of `i` at `2i+1`, `2i+2`), shallower branches padded
//! with "always left" nodes, so a row takes exactly `depth` steps per tree.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The `format` tag of ensembles this engine reads.
pub const ENSEMBLE_FORMAT: &str = "retail-gbdt/1";

/// Deepest tree the engine accepts (the heap layout is `2^depth` leaves per tree).
pub const MAX_DEPTH: usize = 12;

/// Rows scored together per tree in batch mode, so their independent walks overlap.
const BLOCK: usize = 16;

/// A serialized ensemble: per-class sums of tree outputs, turned into probabilities by
/// [`Output`] (softmax unless stated otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSpec {
    /// Always [`ENSEMBLE_FORMAT`].
    pub format: String,
    /// Length of a feature row.
    pub n_features: usize,
    /// Class names, in score order.
    pub classes: Vec<String>,
    /// Starting raw score of each class (log prior).
    pub init_scores: Vec<f64>,
    /// Trees in boosting order; a class's raw score is its init score plus its trees' outputs,
    /// summed in this order.
    pub trees: Vec<TreeSpec>,
    /// How the class sums become probabilities.
    #[serde(default, skip_serializing_if = "Output::is_softmax")]
    pub output: Output,
}

/// How raw class scores become probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Softmax of the raw scores (boosting with a multiclass log loss).
    #[default]
    Softmax,
    /// The raw scores are the probabilities (e.g. a random forest's averaged leaf distributions).
    Identity,
}

impl Output {
    /// Whether this is the default, [`Output::Softmax`].
    pub fn is_softmax(&self) -> bool {
        *self == Self::Softmax
    }

    /// Turns raw scores into probabilities in place.
    fn apply(self, scores: &mut [f64]) {
        match self {
            Self::Softmax => softmax(scores),
            Self::Identity => {}
        }
    }
}

/// One regression tree. Children `>= 0` index `nodes`, `< 0` are leaves `!child`.
/// A tree without nodes is the single leaf `leaves[0]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSpec {
    /// Class whose raw score this tree adds to.
    pub class: usize,
    /// Internal nodes; `nodes[0]` is the root.
    pub nodes: Vec<NodeSpec>,
    /// Leaf outputs.
    pub leaves: Vec<f64>,
}

/// An internal node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Feature index tested.
    pub feature: usize,
    /// The test; a row that passes goes left.
    #[serde(flatten)]
    pub test: SplitTest,
    /// Left child.
    pub left: i32,
    /// Right child.
    pub right: i32,
}

/// What an internal node tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitTest {
    /// Left when `x <= threshold`.
    Threshold(f64),
    /// Left when the category code is in this set.
    Categories(Vec<u32>),
}

/// Why an ensemble cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The ensemble has another format tag.
    #[error("ensemble format {found:?} is not supported (expected {ENSEMBLE_FORMAT:?})")]
    Format {
        /// Tag found.
        found: String,
    },
    /// The ensemble-level fields disagree.
    #[error("ensemble is inconsistent: {0}")]
    Ensemble(String),
    /// One tree is malformed.
    #[error("tree {tree}: {reason}")]
    Tree {
        /// Index of the tree.
        tree: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Most features a row may have; also the most byte slots its binned form may use (a numeric
/// feature takes one slot per 255 distinct thresholds).
pub const MAX_FEATURES: usize = 64;

/// Distinct thresholds one byte slot holds (bins `0..=255`).
const SLOT_THRESHOLDS: usize = 255;

/// A compiled internal node: the feature whose bin is looked up and the table to look it up in.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    table: u16,
    feature: u8,
}

/// Bins `0..=255` that go right, as a 256-bit set.
type Table = [u64; 4];

/// How one byte slot of a binned row is computed from the raw row.
#[derive(Debug, Clone)]
enum Binning {
    /// Distinct thresholds (at most 255, increasing) of the numeric feature `source`; bin = how
    /// many are below the value.
    Numeric {
        /// Feature read.
        source: usize,
        /// The thresholds of this slot.
        thresholds: Vec<f64>,
    },
    /// Bin = category code of feature `source` (values above 255 saturate to 255, which no
    /// split sends left).
    Categorical {
        /// Feature read.
        source: usize,
    },
}

/// A row's bins, one byte per slot.
type Bins = [u8; MAX_FEATURES];

/// A compiled ensemble.
#[derive(Debug, Clone)]
pub struct Engine {
    n_features: usize,
    n_classes: usize,
    depth: usize,
    init_scores: Vec<f64>,
    output: Output,
    /// One entry per slot; slot `f` is feature `f`'s first, extra slots follow the features.
    binning: Vec<Binning>,
    /// The slots of each feature (compile time: where a threshold's table looks).
    feature_slots: Vec<Vec<usize>>,
    tree_class: Vec<usize>,
    nodes: Vec<Node>,
    leaves: Vec<f64>,
    tables: Vec<Table>,
}

impl Engine {
    /// Validates and compiles an ensemble.
    pub fn compile(spec: &EnsembleSpec) -> Result<Self, EngineError> {
        if spec.format != ENSEMBLE_FORMAT {
            return Err(EngineError::Format { found: spec.format.clone() });
        }
        let n_classes = spec.classes.len();
        if n_classes < 2 || spec.init_scores.len() != n_classes {
            return Err(EngineError::Ensemble(format!(
                "{} classes and {} init scores",
                n_classes,
                spec.init_scores.len()
            )));
        }
        if spec.init_scores.iter().any(|s| !s.is_finite()) {
            return Err(EngineError::Ensemble("init scores must be finite".to_owned()));
        }
        if spec.n_features == 0 || spec.n_features > MAX_FEATURES {
            return Err(EngineError::Ensemble(format!(
                "n_features must be 1..={MAX_FEATURES}, got {}",
                spec.n_features
            )));
        }
        let mut depth = 0;
        for (t, tree) in spec.trees.iter().enumerate() {
            depth = depth.max(check_tree(spec, tree).map_err(|reason| EngineError::Tree { tree: t, reason })?);
        }
        let (binning, feature_slots) = binning(spec)?;
        let internal = (1usize << depth) - 1;
        let mut engine = Self {
            n_features: spec.n_features,
            n_classes,
            depth,
            init_scores: spec.init_scores.clone(),
            output: spec.output,
            binning,
            feature_slots,
            tree_class: Vec::with_capacity(spec.trees.len()),
            nodes: Vec::with_capacity(spec.trees.len() * internal),
            leaves: Vec::with_capacity(spec.trees.len() << depth),
            tables: vec![[0; 4]],
        };
        let mut table_ids: std::collections::HashMap<Table, u16> = std::collections::HashMap::from([([0; 4], 0)]);
        for tree in &spec.trees {
            engine.tree_class.push(tree.class);
            let node_base = engine.nodes.len();
            let leaf_base = engine.leaves.len();
            engine.nodes.resize(node_base + internal, Node::default());
            engine.leaves.resize(leaf_base + (1 << depth), 0.0);
            let root = if tree.nodes.is_empty() { -1 } else { 0 };
            engine.place(tree, root, 0, 0, (node_base, leaf_base), &mut table_ids)?;
        }
        Ok(engine)
    }

    /// The slot a node looks up and the 256-bit table of its bins that go right.
    fn table(&self, spec: &NodeSpec) -> (usize, Table) {
        let mut right: Table = [0; 4];
        match &spec.test {
            SplitTest::Threshold(t) => {
                // The slot whose run holds t: x > t  <=>  more than j of the run's thresholds lie
                // below x, where t is the run's j-th threshold.
                let found = self.feature_slots[spec.feature].iter().find_map(|&slot| match &self.binning[slot] {
                    Binning::Numeric { thresholds, .. } => {
                        thresholds.binary_search_by(|u| u.total_cmp(t)).ok().map(|j| (slot, j))
                    }
                    Binning::Categorical { .. } => None,
                });
                let Some((slot, j)) = found else {
                    unreachable!("binning() gives every threshold of a numeric feature a slot")
                };
                for bin in j + 1..256 {
                    right[bin >> 6] |= 1 << (bin & 63);
                }
                (slot, right)
            }
            SplitTest::Categories(left) => {
                right = [u64::MAX; 4];
                for &code in left {
                    right[(code >> 6) as usize] &= !(1u64 << (code & 63));
                }
                (spec.feature, right)
            }
        }
    }

    /// Writes the subtree `child` of `tree` at heap position `pos` (on level `level`).
    fn place(
        &mut self,
        tree: &TreeSpec,
        child: i32,
        pos: usize,
        level: usize,
        (node_base, leaf_base): (usize, usize),
        table_ids: &mut std::collections::HashMap<Table, u16>,
    ) -> Result<(), EngineError> {
        if level == self.depth {
            let leaf = usize::try_from(!child).unwrap_or_default();
            self.leaves[leaf_base + pos - ((1 << self.depth) - 1)] = tree.leaves[leaf];
            return Ok(());
        }
        let (left, right) = match usize::try_from(child) {
            Ok(n) => {
                let spec = &tree.nodes[n];
                let (slot, table) = self.table(spec);
                let next = table_ids.len();
                let id = *table_ids.entry(table).or_insert_with(|| next as u16);
                if usize::from(id) == next {
                    if next > usize::from(u16::MAX) {
                        return Err(EngineError::Ensemble("more than 65535 distinct split tables".to_owned()));
                    }
                    self.tables.push(table);
                }
                // Slots are < MAX_FEATURES = 64, so the byte holds them.
                self.nodes[node_base + pos] = Node { table: id, feature: slot as u8 };
                (spec.left, spec.right)
            }
            // A leaf above the bottom level: padding nodes use table 0 (always left), and every
            // leaf slot below gets its value.
            Err(_) => (child, child),
        };
        self.place(tree, left, 2 * pos + 1, level + 1, (node_base, leaf_base), table_ids)?;
        self.place(tree, right, 2 * pos + 2, level + 1, (node_base, leaf_base), table_ids)
    }

    /// Length of a feature row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of classes (length of a probability row).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.tree_class.len()
    }

    /// Depth every tree is laid out at.
    pub fn depth(&self) -> usize {
        self.depth
    }

    fn bin_row(&self, row: &[f64], bins: &mut Bins) {
        for (bin, binning) in bins.iter_mut().zip(&self.binning) {
            *bin = match *binning {
                Binning::Numeric { source, ref thresholds } => {
                    let x = row[source];
                    thresholds.partition_point(|t| *t < x) as u8
                }
                // `as` saturates: negative and NaN become 0, large values 255.
                Binning::Categorical { source } => (row[source] as usize).min(255) as u8,
            };
        }
    }

    #[inline(always)]
    fn step(&self, node_base: usize, pos: usize, bins: &Bins) -> usize {
        let node = self.nodes[node_base + pos];
        let bin = bins[usize::from(node.feature) & (MAX_FEATURES - 1)];
        let word = self.tables[usize::from(node.table)][usize::from(bin >> 6)];
        2 * pos + 1 + ((word >> (bin & 63)) & 1) as usize
    }

    /// Raw (pre-softmax) class scores of one row.
    pub fn raw_scores(&self, row: &[f64], scores: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "feature row length");
        assert_eq!(scores.len(), self.n_classes, "score row length");
        let mut bins = [0u8; MAX_FEATURES];
        self.bin_row(row, &mut bins);
        scores.copy_from_slice(&self.init_scores);
        let internal = (1 << self.depth) - 1;
        // Walk TREES_AT_ONCE trees in lock-step: their steps are independent, so the CPU overlaps
        // them instead of waiting on one tree's chain of dependent loads. Leaves are still added
        // in tree order.
        const TREES_AT_ONCE: usize = 8;
        for (group, classes) in self.tree_class.chunks(TREES_AT_ONCE).enumerate() {
            let first = group * TREES_AT_ONCE;
            let mut pos = [0usize; TREES_AT_ONCE];
            for _ in 0..self.depth {
                for (j, p) in pos[..classes.len()].iter_mut().enumerate() {
                    *p = self.step((first + j) * internal, *p, &bins);
                }
            }
            for (j, (&class, &p)) in classes.iter().zip(&pos).enumerate() {
                scores[class] += self.leaves[((first + j) << self.depth) + p - internal];
            }
        }
    }

    /// Class probabilities of one row.
    pub fn predict_proba(&self, row: &[f64], probabilities: &mut [f64]) {
        self.raw_scores(row, probabilities);
        self.output.apply(probabilities);
    }

    /// How raw scores become probabilities.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Byte slots a binned row uses (the features, plus one per extra 255 thresholds).
    pub fn n_slots(&self) -> usize {
        self.binning.len()
    }

    /// Class probabilities of many rows (`rows` row-major, `n_features` wide; `out` row-major,
    /// `n_classes` wide), on the calling thread.
    pub fn predict_batch(&self, rows: &[f64], out: &mut [f64]) {
        let (nf, nc) = (self.n_features, self.n_classes);
        assert_eq!(rows.len() % nf, 0, "rows length is a multiple of n_features");
        assert_eq!(out.len() / nc, rows.len() / nf, "one output row per input row");
        let internal = (1 << self.depth) - 1;
        let mut bins = [[0u8; MAX_FEATURES]; BLOCK];
        for (block, scores) in rows.chunks(BLOCK * nf).zip(out.chunks_mut(BLOCK * nc)) {
            let n = block.len() / nf;
            for (row, b) in block.chunks(nf).zip(bins.iter_mut()) {
                self.bin_row(row, b);
            }
            for s in scores.chunks_mut(nc) {
                s.copy_from_slice(&self.init_scores);
            }
            let mut pos = [0usize; BLOCK];
            for (t, &class) in self.tree_class.iter().enumerate() {
                pos[..n].fill(0);
                for _ in 0..self.depth {
                    for (p, b) in pos[..n].iter_mut().zip(&bins) {
                        *p = self.step(t * internal, *p, b);
                    }
                }
                let leaves = &self.leaves[(t << self.depth)..((t + 1) << self.depth)];
                for (r, &p) in pos[..n].iter().enumerate() {
                    scores[r * nc + class] += leaves[p - internal];
                }
            }
            for s in scores.chunks_mut(nc) {
                self.output.apply(s);
            }
        }
    }

    /// [`Engine::predict_batch`] spread over the rayon thread pool.
    pub fn predict_batch_parallel(&self, rows: &[f64], out: &mut [f64]) {
        const CHUNK: usize = 1024;
        rows.par_chunks(CHUNK * self.n_features)
            .zip(out.par_chunks_mut(CHUNK * self.n_classes))
            .for_each(|(rows, out)| self.predict_batch(rows, out));
    }
}

/// The byte slots of a binned row and each feature's slots. A feature split by threshold is
/// numeric: its distinct thresholds, in runs of 255, fill its own slot and, past the first run,
/// extra slots after the features. Any other feature is categorical.
fn binning(spec: &EnsembleSpec) -> Result<(Vec<Binning>, Vec<Vec<usize>>), EngineError> {
    let mut thresholds: Vec<Option<Vec<f64>>> = vec![None; spec.n_features];
    let mut categorical = vec![false; spec.n_features];
    for node in spec.trees.iter().flat_map(|t| &t.nodes) {
        match &node.test {
            SplitTest::Threshold(t) => thresholds[node.feature].get_or_insert_with(Vec::new).push(*t),
            SplitTest::Categories(_) => categorical[node.feature] = true,
        }
    }
    let mut slots: Vec<Binning> = Vec::with_capacity(spec.n_features);
    let mut extra: Vec<Binning> = Vec::new();
    let mut feature_slots = Vec::with_capacity(spec.n_features);
    for (source, (numeric, categorical)) in thresholds.into_iter().zip(categorical).enumerate() {
        match (numeric, categorical) {
            (Some(_), true) => {
                return Err(EngineError::Ensemble(format!(
                    "feature {source} is split both by threshold and by category"
                )));
            }
            (Some(mut t), false) => {
                t.sort_by(f64::total_cmp);
                t.dedup();
                let mut runs =
                    t.chunks(SLOT_THRESHOLDS).map(|run| Binning::Numeric { source, thresholds: run.to_vec() });
                slots.extend(runs.next());
                let mut own = vec![source];
                for run in runs {
                    own.push(spec.n_features + extra.len());
                    extra.push(run);
                }
                feature_slots.push(own);
            }
            (None, _) => {
                slots.push(Binning::Categorical { source });
                feature_slots.push(vec![source]);
            }
        }
    }
    if slots.len() + extra.len() > MAX_FEATURES {
        return Err(EngineError::Ensemble(format!(
            "the features' distinct thresholds need {} byte slots (one per feature, plus one per \
             further {SLOT_THRESHOLDS} thresholds on a feature), at most {MAX_FEATURES} are supported",
            slots.len() + extra.len()
        )));
    }
    slots.extend(extra);
    Ok((slots, feature_slots))
}

/// Checks one tree and returns its depth (internal levels on its longest path).
fn check_tree(spec: &EnsembleSpec, tree: &TreeSpec) -> Result<usize, String> {
    if tree.class >= spec.classes.len() {
        return Err(format!("class {} out of range", tree.class));
    }
    if tree.leaves.iter().any(|v| !v.is_finite()) {
        return Err("leaf values must be finite".to_owned());
    }
    if tree.nodes.is_empty() {
        return if tree.leaves.len() == 1 { Ok(0) } else { Err("a tree without nodes has one leaf".to_owned()) };
    }
    if tree.leaves.len() != tree.nodes.len() + 1 {
        return Err(format!(
            "{} nodes need {} leaves, found {}",
            tree.nodes.len(),
            tree.nodes.len() + 1,
            tree.leaves.len()
        ));
    }
    for (i, node) in tree.nodes.iter().enumerate() {
        if node.feature >= spec.n_features {
            return Err(format!("node {i} tests feature {} of {}", node.feature, spec.n_features));
        }
        match &node.test {
            SplitTest::Threshold(t) if t.is_nan() => {
                return Err(format!("node {i} has a NaN threshold"));
            }
            SplitTest::Categories(codes) if codes.iter().any(|&c| c > 255) => {
                return Err(format!("node {i} has a category code above 255"));
            }
            _ => {}
        }
    }
    // Walk from the root: every node and leaf must be reached exactly once.
    let mut seen_nodes = vec![false; tree.nodes.len()];
    let mut seen_leaves = vec![false; tree.leaves.len()];
    let mut depth = 0;
    let mut stack = vec![(0i32, 0usize)];
    while let Some((child, level)) = stack.pop() {
        if child < 0 {
            let leaf = usize::try_from(!child).map_err(|_| "bad leaf index".to_owned())?;
            match seen_leaves.get_mut(leaf) {
                Some(seen @ false) => *seen = true,
                Some(true) => return Err(format!("leaf {leaf} is reached twice")),
                None => return Err(format!("leaf {leaf} out of range")),
            }
            depth = depth.max(level);
            continue;
        }
        let n = child as usize;
        match seen_nodes.get_mut(n) {
            Some(seen @ false) => *seen = true,
            Some(true) => return Err(format!("node {n} is reached twice")),
            None => return Err(format!("node {n} out of range")),
        }
        if level >= MAX_DEPTH {
            return Err(format!("deeper than {MAX_DEPTH} levels"));
        }
        stack.push((tree.nodes[n].left, level + 1));
        stack.push((tree.nodes[n].right, level + 1));
    }
    Ok(depth)
}

/// In-place softmax of raw scores.
pub fn softmax(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trees: Vec<TreeSpec>) -> EnsembleSpec {
        EnsembleSpec {
            format: ENSEMBLE_FORMAT.to_owned(),
            n_features: 2,
            classes: vec!["A".into(), "B".into()],
            init_scores: vec![0.0, 0.0],
            trees,
            output: Output::Softmax,
        }
    }

    /// x0 <= 1 → leaf 0; else (code of x1 in {2,3} → leaf 1, else leaf 2).
    fn mixed_tree() -> TreeSpec {
        TreeSpec {
            class: 1,
            nodes: vec![
                NodeSpec { feature: 0, test: SplitTest::Threshold(1.0), left: -1, right: 1 },
                NodeSpec { feature: 1, test: SplitTest::Categories(vec![2, 3]), left: !1, right: !2 },
            ],
            leaves: vec![10.0, 20.0, 30.0],
        }
    }

    fn raw(engine: &Engine, row: [f64; 2]) -> f64 {
        let mut s = [0.0; 2];
        engine.raw_scores(&row, &mut s);
        s[1]
    }

    #[test]
    fn numeric_and_categorical_splits_and_padding() {
        let engine = Engine::compile(&spec(vec![mixed_tree()])).expect("compiles");
        assert_eq!(engine.depth(), 2);
        assert_eq!(raw(&engine, [1.0, 2.0]), 10.0, "x <= threshold goes left (padded leaf)");
        assert_eq!(raw(&engine, [-5.0, 9.0]), 10.0);
        assert_eq!(raw(&engine, [1.5, 2.0]), 20.0);
        assert_eq!(raw(&engine, [1.5, 3.0]), 20.0);
        assert_eq!(raw(&engine, [1.5, 0.0]), 30.0, "unseen code 0 not in the set goes right");
        assert_eq!(raw(&engine, [1.5, 255.0]), 30.0);
    }

    #[test]
    fn batch_equals_single_rows() {
        let engine =
            Engine::compile(&spec(vec![mixed_tree(), TreeSpec { class: 0, nodes: vec![], leaves: vec![0.5] }]))
                .expect("compiles");
        let rows: Vec<f64> = (0..100).flat_map(|i| [f64::from(i % 3), f64::from(i % 5)]).collect();
        let mut batch = vec![0.0; 200];
        engine.predict_batch(&rows, &mut batch);
        let mut parallel = vec![0.0; 200];
        engine.predict_batch_parallel(&rows, &mut parallel);
        for (r, row) in rows.chunks(2).enumerate() {
            let mut p = [0.0; 2];
            engine.predict_proba(row, &mut p);
            assert_eq!(&batch[2 * r..2 * r + 2], &p);
            assert_eq!(&parallel[2 * r..2 * r + 2], &p);
            assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
        }
    }

    /// Walks a tree spec directly (the reference for the compiled engine).
    fn walk(tree: &TreeSpec, row: &[f64]) -> f64 {
        let mut child = if tree.nodes.is_empty() { -1 } else { 0 };
        while child >= 0 {
            let node = &tree.nodes[child as usize];
            let left = match &node.test {
                SplitTest::Threshold(t) => row[node.feature] <= *t,
                SplitTest::Categories(codes) => codes.contains(&(row[node.feature] as u32)),
            };
            child = if left { node.left } else { node.right };
        }
        tree.leaves[usize::try_from(!child).expect("leaf")]
    }

    #[test]
    fn features_with_more_than_255_thresholds_take_extra_slots_and_stay_exact() {
        // 300 stumps on feature 0 and 300 on feature 1 (1,000 and 600 distinct thresholds
        // between them), so both need extra slots; leaves are distinct powers so any wrong
        // branch changes the sum.
        let mut trees = Vec::new();
        for i in 0..300 {
            for (feature, t) in [(0, f64::from(i) * 0.37 - 7.0), (1, f64::from(i % 150) * 1.5)] {
                trees.push(TreeSpec {
                    class: i as usize % 2,
                    nodes: vec![NodeSpec { feature, test: SplitTest::Threshold(t), left: -1, right: !1 }],
                    leaves: vec![f64::from(i), -f64::from(i) * 0.5],
                });
            }
        }
        for i in 0..400 {
            let t = f64::from(i) * 0.1 + 0.05;
            trees.push(TreeSpec {
                class: 0,
                nodes: vec![NodeSpec { feature: 0, test: SplitTest::Threshold(t), left: -1, right: !1 }],
                leaves: vec![0.25, -0.125],
            });
        }
        let spec = spec(trees);
        let engine = Engine::compile(&spec).expect("compiles");
        assert_eq!(engine.n_slots(), 4, "feature 0: 700 thresholds in 3 slots, feature 1: 150 in 1");
        let mut thresholds: Vec<f64> = spec
            .trees
            .iter()
            .flat_map(|t| &t.nodes)
            .filter_map(|n| match n.test {
                SplitTest::Threshold(t) => Some(t),
                SplitTest::Categories(_) => None,
            })
            .collect();
        thresholds.extend([-100.0, 1e9]);
        for (k, &t) in thresholds.iter().enumerate() {
            for x in [t, t.next_up(), t.next_down()] {
                let row = [x, thresholds[(k * 7) % thresholds.len()]];
                let mut expected = [0.0; 2];
                for tree in &spec.trees {
                    expected[tree.class] += walk(tree, &row);
                }
                let mut got = [0.0; 2];
                engine.raw_scores(&row, &mut got);
                assert!((got[0] - expected[0]).abs() < 1e-9 && (got[1] - expected[1]).abs() < 1e-9, "{row:?}");
            }
        }
    }

    #[test]
    fn too_many_slots_are_refused_clearly() {
        let trees = (0..64 * 255)
            .map(|i| TreeSpec {
                class: 0,
                nodes: vec![NodeSpec { feature: 0, test: SplitTest::Threshold(f64::from(i)), left: -1, right: !1 }],
                leaves: vec![0.0, 1.0],
            })
            .collect();
        let err = Engine::compile(&spec(trees)).expect_err("too many thresholds");
        assert!(err.to_string().contains("byte slots"), "{err}");
    }

    #[test]
    fn identity_output_returns_the_raw_sums() {
        let mut spec = spec(vec![
            TreeSpec { class: 0, nodes: vec![], leaves: vec![0.25] },
            TreeSpec { class: 1, nodes: vec![], leaves: vec![0.75] },
        ]);
        spec.output = Output::Identity;
        let engine = Engine::compile(&spec).expect("compiles");
        let mut p = [0.0; 2];
        engine.predict_proba(&[0.0, 0.0], &mut p);
        assert_eq!(p, [0.25, 0.75]);
        let mut batch = [0.0; 2];
        engine.predict_batch(&[0.0, 0.0], &mut batch);
        assert_eq!(batch, p);
        assert!(!serde_json::to_string(&spec).expect("json").contains("softmax"), "default stays implicit");
    }

    #[test]
    fn malformed_trees_are_refused_with_the_tree_index() {
        let mut cycle = mixed_tree();
        cycle.nodes[1].left = 0;
        let err = Engine::compile(&spec(vec![mixed_tree(), cycle])).expect_err("cycle");
        assert!(matches!(err, EngineError::Tree { tree: 1, .. }), "{err}");
        let mut bad_feature = mixed_tree();
        bad_feature.nodes[0].feature = 7;
        assert!(Engine::compile(&spec(vec![bad_feature])).is_err());
        let mut bad_leaves = mixed_tree();
        bad_leaves.leaves.pop();
        assert!(Engine::compile(&spec(vec![bad_leaves])).is_err());
        let mut bad_format = spec(vec![]);
        bad_format.format = "lightgbm".into();
        assert!(matches!(Engine::compile(&bad_format), Err(EngineError::Format { .. })));
    }

    #[test]
    fn serialized_form_is_readable() {
        let json = serde_json::to_string(&mixed_tree().nodes[0]).expect("json");
        assert_eq!(json, r#"{"feature":0,"threshold":1.0,"left":-1,"right":1}"#);
        let back: NodeSpec = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, mixed_tree().nodes[0]);
    }
}
