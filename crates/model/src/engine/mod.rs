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
//! a fifth faster (docs/decisions.md, "The engine, again"). An ensemble whose categorical
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

mod compile;
mod spec;
mod verify;

use rayon::prelude::*;

pub use spec::{EnsembleSpec, NodeSpec, Output, SplitTest, TreeSpec, bounded_exp, softmax};
pub use verify::{EngineError, MAX_COMPILED_BYTES, MAX_EXP_SCORE, MAX_SCORE_MAGNITUDE, compiled_bytes};

/// The `format` tag of ensembles this engine reads.
pub const ENSEMBLE_FORMAT: &str = "retail-gbdt/1";

/// Deepest tree the engine accepts (the heap layout is `2^depth` leaves per tree).
pub const MAX_DEPTH: usize = 12;

/// Rows scored together per tree in batch mode, so their independent walks overlap: eight
/// positions stay in registers (sixteen spill, and were slower).
const BLOCK: usize = 8;

/// Most features a row may have; also the most byte slots its binned form may use (a numeric
/// feature takes one slot per run of 62 or 254 distinct thresholds). [`Node`]'s `u8` slot index holds them all.
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
    Narrow(Box<[[u64; 1]; TABLE_IDS]>),
    Wide(Box<[Table; TABLE_IDS]>),
}

/// Table ids a [`Node`] can name: every table array is this long, so a `u16` id indexes it
/// without a bounds check. Ids past the ensemble's tables are never named, and their zeroed
/// pages are never touched (the array is allocated zeroed).
const TABLE_IDS: usize = 1 << 16;

/// How a feature's byte slots of a binned row are computed from the raw row.
#[derive(Debug, Clone)]
enum Binning {
    /// A numeric feature's distinct thresholds (increasing), in runs of [`Width::run`], one run
    /// per slot of `slots` (the feature's own slot first, extra ones after the features): a
    /// slot's bin is how many of its run's thresholds are below the value, [`Width::missing`]
    /// for NaN.
    Numeric {
        /// The thresholds.
        thresholds: Vec<f64>,
        /// The slots of their runs.
        slots: Vec<u8>,
    },
    /// The feature's own slot holds its category code ([`Width::category`]; negative codes are
    /// 0, NaN is [`Width::missing`]): code 255 goes left only where a split lists it.
    Categorical,
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
    /// One entry per feature; slot `f` is feature `f`'s first, extra slots follow the features.
    binning: Vec<Binning>,
    /// Byte slots a binned row uses.
    slots: usize,
    tree_class: Vec<usize>,
    /// Each tree's internal nodes in heap order, `2^depth` places per tree (the last unused).
    nodes: Vec<Node>,
    /// Each tree's `2^depth` leaves.
    leaves: Vec<f64>,
    tables: Tables,
}

impl Engine {
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

    /// The bins the tables were made for.
    fn width(&self) -> Width {
        match self.tables {
            Tables::Narrow(_) => NARROW,
            Tables::Wide(_) => WIDE,
        }
    }

    fn bin_row(&self, row: &[f64], bins: &mut Bins) {
        let width = self.width();
        let Width { run, missing } = width;
        for (f, (binning, &x)) in self.binning.iter().zip(row).enumerate() {
            match binning {
                Binning::Numeric { thresholds, slots } => {
                    // One search over the feature's thresholds gives every run's count below x.
                    let below = (!x.is_nan()).then(|| thresholds.partition_point(|t| *t < x));
                    for (k, &slot) in slots.iter().enumerate() {
                        bins[usize::from(slot)] = below.map_or(missing, |b| b.saturating_sub(k * run).min(run) as u8);
                    }
                }
                // `as` saturates: negative values become 0.
                Binning::Categorical => bins[f] = if x.is_nan() { missing } else { width.category(x as usize) },
            }
        }
    }

    /// One step down `tree` (its `2^depth` node places) from heap position `pos`. No load is
    /// bounds-checked: `pos` is masked to the places (a no-op, it is below `2^depth - 1`), a `u8`
    /// indexes the 256 slots, a `u16` the [`TABLE_IDS`] tables, and `W` is the words of a table
    /// (1 narrow: its word is read without waiting on the bin; 4 wide).
    #[inline(always)]
    fn step<const W: usize>(tree: &[Node], tables: &[[u64; W]; TABLE_IDS], pos: usize, bins: &Bins) -> usize {
        let node = tree[pos & (tree.len() - 1)];
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

    fn row_scores<const W: usize>(&self, tables: &[[u64; W]; TABLE_IDS], row: &[f64], scores: &mut [f64]) {
        let mut bins = [0u8; MAX_FEATURES];
        self.bin_row(row, &mut bins);
        scores.copy_from_slice(&self.init_scores);
        let (places, internal) = (1 << self.depth, (1 << self.depth) - 1);
        // Walk TREES_AT_ONCE trees in lock-step: their steps are independent, so the CPU overlaps
        // them instead of waiting on one tree's chain of dependent loads. Leaves are still added
        // in tree order.
        const TREES_AT_ONCE: usize = 8;
        let groups = self.nodes.chunks(TREES_AT_ONCE * places).zip(self.leaves.chunks(TREES_AT_ONCE * places));
        for ((nodes, leaves), classes) in groups.zip(self.tree_class.chunks(TREES_AT_ONCE)) {
            let mut pos = [0usize; TREES_AT_ONCE];
            for _ in 0..self.depth {
                for (p, tree) in pos.iter_mut().zip(nodes.chunks(places)) {
                    *p = Self::step(tree, tables, *p, &bins);
                }
            }
            for ((&class, &p), leaves) in classes.iter().zip(&pos).zip(leaves.chunks(places)) {
                scores[class] += leaves[p - internal];
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
        self.slots
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

    /// [`Engine::predict_batch`] with the tables of `W` words: rows binned [`BLOCK`] at a time,
    /// and each tree walked by the block's rows in lock-step.
    fn batch<const W: usize>(&self, tables: &[[u64; W]; TABLE_IDS], rows: &[f64], out: &mut [f64]) {
        let (nf, nc) = (self.n_features, self.n_classes);
        let (places, internal) = (1 << self.depth, (1 << self.depth) - 1);
        let mut bins = [[0u8; MAX_FEATURES]; BLOCK];
        // Each class's scores of the block's rows, summed in tree order as row by row.
        let mut sums = vec![[0.0; BLOCK]; nc];
        for (block, scores) in rows.chunks(BLOCK * nf).zip(out.chunks_mut(BLOCK * nc)) {
            for (row, b) in block.chunks(nf).zip(bins.iter_mut()) {
                self.bin_row(row, b);
            }
            for (sum, init) in sums.iter_mut().zip(&self.init_scores) {
                *sum = [*init; BLOCK];
            }
            let trees = self.nodes.chunks_exact(places).zip(self.leaves.chunks_exact(places));
            for ((tree, leaves), &class) in trees.zip(&self.tree_class) {
                // Every row of the block is walked (past the last block's rows on stale bins, and
                // not written): a fixed count keeps the positions in registers.
                let mut pos = [0usize; BLOCK];
                for _ in 0..self.depth {
                    for (p, b) in pos.iter_mut().zip(&bins) {
                        *p = Self::step(tree, tables, *p, b);
                    }
                }
                for (sum, p) in sums[class].iter_mut().zip(pos) {
                    *sum += leaves[(p - internal) & (places - 1)];
                }
            }
            for (r, s) in scores.chunks_mut(nc).enumerate() {
                for (score, sum) in s.iter_mut().zip(&sums) {
                    *score = sum[r];
                }
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

#[cfg(test)]
mod tests;
