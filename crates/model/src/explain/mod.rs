//! Exact per-prediction explanations: path-dependent TreeSHAP ([`treeshap`]) over the engine's
//! trees, per class in the raw margin space (the scores softmax takes, "log-odds") of a
//! classifier, or in the link space of a regression (the log of a Poisson forecast's value).
//! Contributions are reported per input field ([`Attribution`]), with a base value such that
//! `base + Σ contributions = margin` for every row.
//!
//! TreeSHAP needs each node's cover (the training rows reaching it). They live in the artifact's
//! optional [`EXPLAIN_FILE`] as each tree's leaf covers (an internal node's cover is the sum of
//! its leaves', exactly), beside global importance (mean |contribution| per field over the
//! training rows). The trainer writes it from its training rows and `import-onnx` from the
//! import's `--data` rows; it is a separate file rather than part of `model.json` because an
//! imported ONNX model is translated again on every load. An artifact without it loads and
//! predicts as before, and answers explanations with [`ExplainError::NoCovers`].

mod attribution;
mod file;
mod forest;
mod table;
mod treeshap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use attribution::Attribution;
pub use file::{EXPLAIN_FILE, ExplainFile, FieldImportance, IMPORTANCE_ROWS, Importance, leaf_covers};

use crate::engine::{EnsembleSpec, Output};
use forest::Forest;
use table::{TABLE_BUDGET, Tables};
use treeshap::PathElement;

/// Rows [`Explainer::explain_batch`] explains together, tree by tree (a tree's table stays in
/// the core's cache for the block).
const BLOCK_ROWS: usize = 64;

/// Why a model cannot explain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExplainError {
    /// The artifact carries no node covers (made before explanations existed, or imported
    /// without `--data` rows reaching every leaf).
    #[error("model has no node covers ({EXPLAIN_FILE}), so it cannot explain predictions: {reason}")]
    NoCovers {
        /// Why they are missing.
        reason: String,
    },
    /// The covers do not fit the trees.
    #[error("{EXPLAIN_FILE} does not fit the model: {0}")]
    Covers(String),
}

/// The space contributions are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// A softmax classifier's raw class scores (log-odds up to a per-row constant).
    LogOdds,
    /// A classifier whose raw scores are its probabilities (e.g. a forest).
    Probability,
    /// A regression on squared error: the predicted value itself.
    Value,
    /// A regression on a log link (Poisson): the log of the prediction; `exp(base)` times
    /// `exp(contribution)` of each field is the prediction.
    Log,
}

impl Space {
    fn of(output: Output) -> Self {
        match output {
            Output::Softmax => Self::LogOdds,
            Output::Identity => Self::Probability,
            Output::Exp => Self::Log,
        }
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LogOdds => "log_odds",
            Self::Probability => "probability",
            Self::Value => "value",
            Self::Log => "log",
        }
    }
}

/// One row's explanation: per output (class, or the regression's one), the base value and each
/// input field's contribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Base value per output: its init score plus each tree's expected output.
    pub base: Vec<f64>,
    /// Contributions, output-major: `contributions[c * n_fields + f]`.
    pub contributions: Vec<f64>,
}

impl Explanation {
    /// The contributions of output `c`, one per field.
    pub fn of_output(&self, c: usize) -> &[f64] {
        let n = self.contributions.len() / self.base.len();
        &self.contributions[c * n..(c + 1) * n]
    }

    /// `base + Σ contributions` of output `c`: the margin.
    pub fn margin(&self, c: usize) -> f64 {
        self.base[c] + self.of_output(c).iter().sum::<f64>()
    }
}

/// A model's trees with covers, ready to explain rows.
#[derive(Debug, Clone)]
pub struct Explainer {
    forest: Forest,
    n_features: usize,
    base: Vec<f64>,
    attribution: Attribution,
    space: Space,
    scratch_len: usize,
    /// Precomputed leaf tables of the trees within budget; the others recurse.
    tables: Tables,
    /// [`Explainer::row_steps`], counted once with the tables.
    row_steps: Option<usize>,
}

impl Explainer {
    /// An explainer of `spec` (which the engine compiled, so its trees are well formed) with one
    /// leaf-cover list per tree; every leaf needs a finite positive cover.
    pub fn new(
        spec: &EnsembleSpec,
        leaf_covers: &[Vec<f64>],
        attribution: Attribution,
        regression: bool,
    ) -> Result<Self, ExplainError> {
        check_covers(spec, leaf_covers)?;
        if attribution.parts.len() != spec.n_features {
            let reason = format!("{} features attributed, the model has {}", attribution.parts.len(), spec.n_features);
            return Err(ExplainError::Covers(reason));
        }
        let mut forest = Forest::of(spec);
        forest.set_covers(leaf_covers);
        let mut base = spec.init_scores.clone();
        for tree in &forest.trees {
            base[tree.class] += forest.expected(tree);
        }
        let depth = forest.trees.iter().map(|t| t.depth).max().unwrap_or(0);
        let space = match Space::of(spec.output) {
            Space::Probability if regression => Space::Value,
            space => space,
        };
        let tables = Tables::build(&forest, TABLE_BUDGET);
        Ok(Self {
            n_features: spec.n_features,
            base,
            attribution,
            space,
            scratch_len: treeshap::scratch_len(depth),
            row_steps: row_steps(&forest, &tables),
            tables,
            forest,
        })
    }

    /// The work of explaining one row when every tree is tabled: its (leaf, path split) steps,
    /// about 3 ns each (the shipped model: 17,200 steps, 44 µs at the median). `None` when some tree is
    /// explained by recursion, which costs several times more per tree.
    pub fn row_steps(&self) -> Option<usize> {
        self.row_steps
    }

    /// The input fields contributions are reported for.
    pub fn fields(&self) -> &[String] {
        &self.attribution.fields
    }

    /// The space of the contributions.
    pub fn space(&self) -> Space {
        self.space
    }

    /// Explains one feature row (engine features, `n_features` long).
    ///
    /// # Panics
    ///
    /// If `row` is not `n_features` long.
    pub fn explain(&self, row: &[f64]) -> Explanation {
        self.attribute(&self.feature_contributions(row))
    }

    /// Engine-feature contributions of one row (before attribution to fields), output-major.
    ///
    /// # Panics
    ///
    /// If `row` is not `n_features` long.
    pub fn feature_contributions(&self, row: &[f64]) -> Vec<f64> {
        assert_eq!(row.len(), self.n_features, "feature row length");
        self.block_contributions(row)
    }

    /// [`Explainer::feature_contributions`] of a block of rows (row-major), one after the other,
    /// computed tree by tree so that each tree's table is read once for the whole block.
    fn block_contributions(&self, rows: &[f64]) -> Vec<f64> {
        let (nf, n_out) = (self.n_features, self.base.len());
        assert_eq!(rows.len() % nf.max(1), 0, "feature row length");
        let mut phi = vec![0.0; rows.len() / nf.max(1) * n_out * nf];
        let mut scratch = vec![PathElement::default(); self.scratch_len];
        let mut table_scratch = self.tables.scratch();
        for (t, tree) in self.forest.trees.iter().enumerate() {
            let tabled = self.tables.has(t);
            for (row, phi) in rows.chunks(nf.max(1)).zip(phi.chunks_mut(n_out * nf)) {
                let class_phi = &mut phi[tree.class * nf..(tree.class + 1) * nf];
                if tabled {
                    self.tables.add(&self.forest, t, row, class_phi, &mut table_scratch);
                } else {
                    treeshap::tree_shap(&self.forest, tree, row, class_phi, &mut scratch);
                }
            }
        }
        phi
    }

    /// One row's engine-feature contributions (output-major) attributed to input fields.
    fn attribute(&self, phi: &[f64]) -> Explanation {
        let n_fields = self.attribution.fields.len();
        let mut contributions = vec![0.0; self.base.len() * n_fields];
        for (p, c) in phi.chunks(self.n_features).zip(contributions.chunks_mut(n_fields)) {
            self.attribution.add(p, c);
        }
        Explanation { base: self.base.clone(), contributions }
    }

    /// The same explainer with the trees of at most `budget` table numbers tabled (tests
    /// compare both ways of explaining).
    #[cfg(test)]
    fn with_table_budget(mut self, budget: usize) -> Self {
        self.tables = Tables::build(&self.forest, budget);
        self.row_steps = row_steps(&self.forest, &self.tables);
        self
    }

    /// [`Explainer::explain`] of many rows (row-major), over the rayon thread pool.
    pub fn explain_batch(&self, rows: &[f64]) -> Vec<Explanation> {
        let per_row = self.n_features * self.base.len();
        rows.par_chunks(BLOCK_ROWS * self.n_features.max(1))
            .flat_map_iter(|block| {
                let phi = self.block_contributions(block);
                phi.chunks(per_row.max(1)).map(|p| self.attribute(p)).collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Each tree's leaf covers: one finite positive value per leaf.
fn check_covers(spec: &EnsembleSpec, leaf_covers: &[Vec<f64>]) -> Result<(), ExplainError> {
    if leaf_covers.len() != spec.trees.len() {
        let reason = format!("{} trees of covers, the model has {} trees", leaf_covers.len(), spec.trees.len());
        return Err(ExplainError::Covers(reason));
    }
    for (t, (tree, covers)) in spec.trees.iter().zip(leaf_covers).enumerate() {
        if covers.len() != tree.leaves.len() {
            let reason = format!("tree {t}: {} covers for {} leaves", covers.len(), tree.leaves.len());
            return Err(ExplainError::Covers(reason));
        }
        if let Some(l) = covers.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
            let reason = format!("tree {t} leaf {l}: cover {} is not finite and positive", covers[l]);
            return Err(ExplainError::Covers(reason));
        }
    }
    Ok(())
}

/// The (leaf, path split) steps of explaining one row when every tree of `forest` is tabled.
fn row_steps(forest: &Forest, tables: &Tables) -> Option<usize> {
    let tree_steps = |(t, tree): (usize, &forest::Tree)| tables.has(t).then(|| tree.leaves.len() * tree.depth);
    forest.trees.iter().enumerate().map(tree_steps).sum()
}

#[cfg(test)]
mod tests;
