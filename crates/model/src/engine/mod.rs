//! Native inference engine: a gradient-boosted tree ensemble as stored in `model.json`
//! ([`EnsembleSpec`]) and compiled into flat arrays ([`Engine`]) that predict class
//! probabilities, or a regression's value ([`Engine::predict_value`]), without the training code.
//!
//! Compilation makes every test a byte lookup. Each row is first binned once: a numeric value
//! becomes the number of the model's distinct thresholds on that feature that lie below it
//! (so `x > t_j` exactly when `bin > j`), a category code stays its code. Every internal node
//! then holds a table of the bins that go right; numeric and categorical splits are the same
//! three loads and no branch. A feature with many distinct thresholds is binned into several
//! byte slots, one per run of thresholds: within its run a split is the same exact test
//! (`x > t_j` exactly when the run's bin exceeds `j`'s place in the run).
//!
//! Bins are narrow when the ensemble allows it: runs of 62 thresholds, bins `0..=63` and a
//! table of one 64-bit word per split, looked up without first reading the bin. The default
//! model's 1,639 distinct tables then take 13 KB instead of 52 KB, and a batch is scored about
//! a fifth faster (docs/decisions.md, "Offline scoring speed"). An ensemble whose categorical
//! splits list a code from 62 to 254, or whose runs would need more than [`MAX_FEATURES`] slots,
//! is compiled wide: runs of 254 thresholds, bins `0..=255`, 256-bit tables.
//!
//! Missing values: the last bin ([`Width::missing`]: 63 narrow, 255 wide) of every numeric slot
//! is reserved for NaN, and a threshold node's table sends it right exactly when the node's
//! [`NodeSpec::missing_left`] is false, so NaN costs nothing extra at prediction time. A NaN
//! category code, or one of 255 and above, also takes the last bin, the code 255 of "missing or
//! out of range": it goes left exactly when 255 is in the node's category set (a categorical
//! node ignores `missing_left`; a trainer sends missing values left by listing 255). Narrow, the
//! codes 62 to 254, which no split lists, share bin 62 and go right everywhere, as each of them
//! would. Old artifacts (no `missing_left`, i.e. left) predict every non-NaN row exactly as
//! before. Trees are
//! laid out as complete binary trees of the ensemble's depth (heap order, children of `i` at
//! `2i+1`, `2i+2`), shallower branches padded with "always left" nodes, so a row takes exactly
//! `depth` steps per tree.
//!
//! Verification ([`verify`]) bounds what a hostile or broken `model.json` can cost: the
//! compiled size is computed from the spec and capped before allocation
//! ([`MAX_COMPILED_BYTES`]), and every class's score is bounded ([`MAX_SCORE_MAGNITUDE`]) so
//! no sum of finite leaves overflows, and below [`MAX_EXP_SCORE`] where it is exponentiated;
//! probabilities and predictions are always finite.

mod spec;
mod verify;

use rayon::prelude::*;

pub use spec::{EnsembleSpec, NodeSpec, Output, SplitTest, TreeSpec, bounded_exp, softmax};
pub use verify::{EngineError, MAX_COMPILED_BYTES, MAX_EXP_SCORE, MAX_SCORE_MAGNITUDE, compiled_bytes};

/// The `format` tag of ensembles this engine reads.
pub const ENSEMBLE_FORMAT: &str = "retail-gbdt/1";

/// Deepest tree the engine accepts (the heap layout is `2^depth` leaves per tree).
pub const MAX_DEPTH: usize = 12;

/// Rows scored together per tree in batch mode, so their independent walks overlap.
const BLOCK: usize = 16;

/// Most features a row may have; also the most byte slots its binned form may use (a numeric
/// feature takes one slot per 254 distinct thresholds). [`Node`]'s `u8` slot index holds them all.
pub const MAX_FEATURES: usize = 256;

/// How many bins a slot has: a run of distinct thresholds per slot (bins `0..=run` count the
/// thresholds below a value) and the bin `missing` of NaN, the last.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Width {
    run: usize,
    missing: u8,
}

/// Bins `0..=63`: split tables of one word.
const NARROW: Width = Width { run: 62, missing: 63 };

/// Bins `0..=255`: split tables of four words.
const WIDE: Width = Width { run: 254, missing: 255 };

impl Width {
    /// The bin of category code `code` (255 and above: "missing or out of range"). Narrow, the
    /// codes from 62 to 254 share bin 62.
    fn category(self, code: usize) -> u8 {
        if code >= 255 { self.missing } else { code.min(usize::from(self.missing) - 1) as u8 }
    }

    /// Whether every split of `spec` keeps its meaning in these bins: no categorical split lists
    /// a code of the shared bin (narrow, codes 62 to 254 are one bin: a split listing one of
    /// them would send all of them its way).
    fn holds(self, spec: &EnsembleSpec) -> bool {
        let shared = u32::from(self.missing) - 1..255;
        shared.len() == 1
            || spec.trees.iter().flat_map(|t| &t.nodes).all(|node| match &node.test {
                SplitTest::Categories(codes) => !codes.iter().any(|c| shared.contains(c)),
                SplitTest::Threshold(_) => true,
            })
    }
}

/// A compiled internal node: the feature whose bin is looked up and the table to look it up in.
#[derive(Debug, Clone, Copy, Default)]
struct Node {
    table: u16,
    feature: u8,
}

/// Bins `0..=255` that go right, as a 256-bit set (narrow bins use the first word only).
type Table = [u64; 4];

/// The distinct split tables, by [`Node::table`]: their first words when the bins are narrow.
#[derive(Debug, Clone)]
enum Tables {
    Narrow(Vec<[u64; 1]>),
    Wide(Vec<Table>),
}

/// How one byte slot of a binned row is computed from the raw row.
#[derive(Debug, Clone)]
enum Binning {
    /// Distinct thresholds (at most [`Width::run`], increasing) of the numeric feature
    /// `source`; bin = how many are below the value, [`Width::missing`] for NaN.
    Numeric {
        /// Feature read.
        source: usize,
        /// The thresholds of this slot.
        thresholds: Vec<f64>,
    },
    /// Bin = category code of feature `source` ([`Width::category`]; negative codes are 0, NaN
    /// is [`Width::missing`]): code 255 goes left only where a split lists it.
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
    width: Width,
    /// One entry per slot; slot `f` is feature `f`'s first, extra slots follow the features.
    binning: Vec<Binning>,
    /// The slots of each feature (compile time: where a threshold's table looks).
    feature_slots: Vec<Vec<usize>>,
    tree_class: Vec<usize>,
    nodes: Vec<Node>,
    leaves: Vec<f64>,
    tables: Tables,
}

impl Engine {
    /// Validates and compiles an ensemble. Its compiled size is computed and capped
    /// ([`MAX_COMPILED_BYTES`]) before anything is allocated.
    pub fn compile(spec: &EnsembleSpec) -> Result<Self, EngineError> {
        let depth = verify::check(spec)?;
        match binning(spec, NARROW) {
            Ok(narrow) if NARROW.holds(spec) => Self::compile_as(spec, depth, NARROW, narrow),
            _ => Self::compile_as(spec, depth, WIDE, binning(spec, WIDE)?),
        }
    }

    /// Compiles a verified ensemble of depth `depth` with the bins of `width`.
    fn compile_as(
        spec: &EnsembleSpec,
        depth: usize,
        width: Width,
        (binning, feature_slots): (Vec<Binning>, Vec<Vec<usize>>),
    ) -> Result<Self, EngineError> {
        let internal = (1usize << depth) - 1;
        let trees = spec.trees.len();
        let mut engine = Self {
            n_features: spec.n_features,
            n_classes: spec.classes.len(),
            depth,
            init_scores: spec.init_scores.clone(),
            output: spec.output,
            width,
            binning,
            feature_slots,
            tree_class: spec.trees.iter().map(|t| t.class).collect(),
            nodes: filled(trees * internal, Node::default())?,
            leaves: filled(trees << depth, 0.0)?,
            tables: Tables::Wide(Vec::new()),
        };
        let mut tables = vec![[0; 4]];
        let mut table_ids: std::collections::HashMap<Table, u16> = std::collections::HashMap::from([([0; 4], 0)]);
        for (t, tree) in spec.trees.iter().enumerate() {
            let root = if tree.nodes.is_empty() { -1 } else { 0 };
            engine.place(tree, root, 0, 0, (t * internal, t << depth), (&mut tables, &mut table_ids))?;
        }
        engine.tables = match width {
            NARROW => Tables::Narrow(tables.iter().map(|t| [t[0]]).collect()),
            _ => Tables::Wide(tables),
        };
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
                let missing = usize::from(self.width.missing);
                for bin in j + 1..missing {
                    right[bin >> 6] |= 1 << (bin & 63);
                }
                if !spec.missing_left {
                    right[missing >> 6] |= 1 << (missing & 63);
                }
                (slot, right)
            }
            SplitTest::Categories(left) => {
                for bin in 0..=usize::from(self.width.missing) {
                    right[bin >> 6] |= 1 << (bin & 63);
                }
                for &code in left {
                    let bin = self.width.category(code as usize);
                    right[usize::from(bin >> 6)] &= !(1u64 << (bin & 63));
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
        (tables, table_ids): (&mut Vec<Table>, &mut std::collections::HashMap<Table, u16>),
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
                    tables.push(table);
                }
                // Slots are < MAX_FEATURES = 256, so the byte holds them.
                self.nodes[node_base + pos] = Node { table: id, feature: slot as u8 };
                (spec.left, spec.right)
            }
            // A leaf above the bottom level: padding nodes use table 0 (always left), and every
            // leaf slot below gets its value.
            Err(_) => (child, child),
        };
        self.place(tree, left, 2 * pos + 1, level + 1, (node_base, leaf_base), (&mut *tables, &mut *table_ids))?;
        self.place(tree, right, 2 * pos + 2, level + 1, (node_base, leaf_base), (tables, table_ids))
    }

    /// Length of a feature row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of classes (length of a probability row); 1 for a regression.
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
                // At most `run` (254) thresholds lie below a value.
                Binning::Numeric { source, ref thresholds } => {
                    let x = row[source];
                    if x.is_nan() { self.width.missing } else { thresholds.partition_point(|t| *t < x) as u8 }
                }
                // `as` saturates: negative values become 0.
                Binning::Categorical { source } => {
                    let x = row[source];
                    if x.is_nan() { self.width.missing } else { self.width.category(x as usize) }
                }
            };
        }
    }

    /// One step down a tree: `W` is the words of a table (1 narrow, 4 wide), so the word of a
    /// bin is known without a bounds check, and narrow without reading the bin first.
    #[inline(always)]
    fn step<const W: usize>(&self, tables: &[[u64; W]], node_base: usize, pos: usize, bins: &Bins) -> usize {
        let node = self.nodes[node_base + pos];
        // A u8 indexes the 256 slots: no bounds check.
        let bin = bins[usize::from(node.feature)];
        let word = tables[usize::from(node.table)][usize::from(bin >> 6) % W];
        2 * pos + 1 + ((word >> (bin & 63)) & 1) as usize
    }

    /// Raw (pre-softmax) class scores of one row.
    pub fn raw_scores(&self, row: &[f64], scores: &mut [f64]) {
        assert_eq!(row.len(), self.n_features, "feature row length");
        assert_eq!(scores.len(), self.n_classes, "score row length");
        match &self.tables {
            Tables::Narrow(tables) => self.row_scores(tables, row, scores),
            Tables::Wide(tables) => self.row_scores(tables, row, scores),
        }
    }

    fn row_scores<const W: usize>(&self, tables: &[[u64; W]], row: &[f64], scores: &mut [f64]) {
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
                    *p = self.step(tables, (first + j) * internal, *p, &bins);
                }
            }
            for (j, (&class, &p)) in classes.iter().zip(&pos).enumerate() {
                scores[class] += self.leaves[((first + j) << self.depth) + p - internal];
            }
        }
    }

    /// Class probabilities of one row (of a regression: its one prediction, as
    /// [`Engine::predict_value`]).
    pub fn predict_proba(&self, row: &[f64], probabilities: &mut [f64]) {
        self.raw_scores(row, probabilities);
        self.output.apply(probabilities);
    }

    /// The prediction of a regression ensemble (one output: [`Output::Exp`] for counts,
    /// [`Output::Identity`] for squared error) for one row; always finite.
    ///
    /// # Panics
    ///
    /// If the ensemble has more than one output or `row` is not `n_features` long.
    pub fn predict_value(&self, row: &[f64]) -> f64 {
        assert_eq!(self.n_classes, 1, "predict_value needs a one-output (regression) ensemble");
        let mut value = [0.0];
        self.predict_proba(row, &mut value);
        value[0]
    }

    /// [`Engine::predict_value`] of many rows (`rows` row-major, `n_features` wide; one value per
    /// row in `out`), on the calling thread; [`Engine::predict_batch_parallel`] writes the same
    /// values over the rayon thread pool.
    ///
    /// # Panics
    ///
    /// If the ensemble has more than one output or the lengths disagree.
    pub fn predict_values(&self, rows: &[f64], out: &mut [f64]) {
        assert_eq!(self.n_classes, 1, "predict_values needs a one-output (regression) ensemble");
        self.predict_batch(rows, out);
    }

    /// How raw scores become probabilities (or a regression's prediction).
    pub fn output(&self) -> Output {
        self.output
    }

    /// Byte slots a binned row uses (the features, plus one per extra 254 thresholds).
    pub fn n_slots(&self) -> usize {
        self.binning.len()
    }

    /// Class probabilities of many rows (`rows` row-major, `n_features` wide; `out` row-major,
    /// `n_classes` wide), on the calling thread.
    pub fn predict_batch(&self, rows: &[f64], out: &mut [f64]) {
        let (nf, nc) = (self.n_features, self.n_classes);
        assert_eq!(rows.len() % nf, 0, "rows length is a multiple of n_features");
        assert_eq!(out.len() / nc, rows.len() / nf, "one output row per input row");
        match &self.tables {
            Tables::Narrow(tables) => self.batch(tables, rows, out),
            Tables::Wide(tables) => self.batch(tables, rows, out),
        }
    }

    fn batch<const W: usize>(&self, tables: &[[u64; W]], rows: &[f64], out: &mut [f64]) {
        let (nf, nc) = (self.n_features, self.n_classes);
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
                        *p = self.step(tables, t * internal, *p, b);
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

/// The byte slots of a binned row and each feature's slots, with the bins of `width`. A feature
/// split by threshold is numeric: its distinct thresholds, in runs of [`Width::run`], fill its
/// own slot and, past the first run, extra slots after the features. Any other feature is
/// categorical.
fn binning(spec: &EnsembleSpec, width: Width) -> Result<(Vec<Binning>, Vec<Vec<usize>>), EngineError> {
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
                let mut runs = t.chunks(width.run).map(|run| Binning::Numeric { source, thresholds: run.to_vec() });
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
             further {} thresholds on a feature), at most {MAX_FEATURES} are supported",
            slots.len() + extra.len(),
            width.run
        )));
    }
    slots.extend(extra);
    Ok((slots, feature_slots))
}

/// A vector of `len` copies of `value`, or [`EngineError::OutOfMemory`] instead of aborting the
/// process when the memory cannot be had (e.g. under a `ulimit -v`).
fn filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, EngineError> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(len).map_err(|_| EngineError::OutOfMemory { bytes: (len * size_of::<T>()) as u64 })?;
    vec.resize(len, value);
    Ok(vec)
}

#[cfg(test)]
mod tests;
