//! Verification of an ensemble before it is compiled: tree structure, and the limits that keep
//! the compiled engine and its scores bounded.

use super::{
    ENSEMBLE_FORMAT, EnsembleSpec, MAX_DEPTH, MAX_FEATURES, Node, Output, SplitTest, TABLE_IDS, Table, TreeSpec,
};

/// Most memory a compiled ensemble may take: 256 MiB. Trees are laid out complete to the
/// ensemble's depth, so one deep tree makes every tree cost `12 × 2^depth` bytes: 100,000
/// single leaves plus one chain of depth 12 (3.8 MB of JSON) would take 4.9 GB. The size is
/// computed from the spec ([`compiled_bytes`]) and checked before anything is allocated; the
/// default model's bound is 2.2 MB, 2 MiB of it the table array whose untouched pages take no
/// memory.
pub const MAX_COMPILED_BYTES: u64 = 256 << 20;

/// Largest raw score a class may reach in magnitude: its init score plus, for each of its trees,
/// that tree's largest |leaf|. It keeps every sum finite (a double overflows past 1.8e308, and
/// two leaves of 1e308 already do), and is far beyond any trained model: a softmax saturates
/// once scores differ by ~745, trained leaves are a few units, forests' leaves are fractions.
pub const MAX_SCORE_MAGNITUDE: f64 = 1e6;

/// Largest raw score an [`Output::Exp`] ensemble may reach: its init score plus, for each of its
/// trees, that tree's largest leaf (signed: only the upper end matters, a very negative score
/// predicts 0). `e^690 ≈ 4.6e299`, so a prediction stays below 1e300 and a sum of up to 3.9e8
/// predictions stays finite; a trained count model's raw scores are a few units (`e^20 ≈ 4.9e8`).
pub const MAX_EXP_SCORE: f64 = 690.0;

/// Why an ensemble cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// Compiled, the ensemble would take more than [`MAX_COMPILED_BYTES`].
    #[error(
        "compiled, the ensemble would take {bytes} bytes ({trees} trees laid out complete at depth {depth}), \
         more than the cap of {MAX_COMPILED_BYTES} bytes (256 MiB)"
    )]
    TooLarge {
        /// Bytes the compiled ensemble would take.
        bytes: u64,
        /// Trees.
        trees: usize,
        /// Depth every tree would be laid out at.
        depth: usize,
    },
    /// A class's raw score could exceed [`MAX_SCORE_MAGNITUDE`] (or overflow).
    #[error(
        "class {class}: its init score plus the largest |leaf| of each of its trees reaches {bound:e}, \
         more than the score bound {MAX_SCORE_MAGNITUDE:e} that keeps scores and probabilities finite"
    )]
    ScoreBound {
        /// Class code.
        class: String,
        /// The bound reached (`inf` when the sum overflows).
        bound: f64,
    },
    /// The raw score of an [`Output::Exp`] ensemble could exceed [`MAX_EXP_SCORE`], so its
    /// exponential could overflow.
    #[error(
        "output {class}: its init score plus the largest leaf of each of its trees reaches {bound:e}, \
         more than {MAX_EXP_SCORE} whose exponential (about 4.6e299) bounds the predictions of an `exp` output"
    )]
    ExpBound {
        /// Output name.
        class: String,
        /// The bound reached (`inf` when the sum overflows).
        bound: f64,
    },
    /// The compiled arrays could not be allocated.
    #[error("cannot allocate {bytes} bytes for the compiled ensemble")]
    OutOfMemory {
        /// Bytes requested.
        bytes: u64,
    },
}

/// Checks the ensemble-level fields, every tree, the score bound and the compiled size; returns
/// the depth every tree is laid out at.
pub(super) fn check(spec: &EnsembleSpec) -> Result<usize, EngineError> {
    if spec.format != ENSEMBLE_FORMAT {
        return Err(EngineError::Format { found: spec.format.clone() });
    }
    let n_classes = spec.classes.len();
    // A softmax needs two classes; a regression (or a one-class identity) has one output.
    let fewest = if spec.output == Output::Softmax { 2 } else { 1 };
    if n_classes < fewest || spec.init_scores.len() != n_classes {
        return Err(EngineError::Ensemble(format!(
            "{} classes and {} init scores (a {:?} output needs at least {fewest} classes, one init score each)",
            n_classes,
            spec.init_scores.len(),
            spec.output
        )));
    }
    if spec.init_scores.iter().any(|s| !s.is_finite()) {
        return Err(EngineError::Ensemble("init scores must be finite".to_owned()));
    }
    if spec.n_features == 0 || spec.n_features > MAX_FEATURES {
        return Err(EngineError::Ensemble(format!("n_features must be 1..={MAX_FEATURES}, got {}", spec.n_features)));
    }
    let mut depth = 0;
    for (t, tree) in spec.trees.iter().enumerate() {
        depth = depth.max(check_tree(spec, tree).map_err(|reason| EngineError::Tree { tree: t, reason })?);
    }
    check_scores(spec)?;
    let bytes = compiled_bytes(spec, depth);
    if bytes > MAX_COMPILED_BYTES {
        return Err(EngineError::TooLarge { bytes, trees: spec.trees.len(), depth });
    }
    Ok(depth)
}

/// Bytes the compiled form of `spec` takes with its trees laid out at `depth`: each tree's
/// `2^depth` node and leaf places and its class, the array of split tables (allocated zeroed at
/// its full length, of which only the ensemble's tables are touched) and the thresholds (at most
/// one per internal node of the spec).
pub fn compiled_bytes(spec: &EnsembleSpec, depth: usize) -> u64 {
    let size = |bytes: usize| bytes as u64;
    let places = 1u64 << depth.min(63);
    let per_tree = places * size(size_of::<Node>() + size_of::<f64>()) + size(size_of::<usize>());
    let spec_nodes: u64 = spec.trees.iter().map(|t| size(t.nodes.len())).sum();
    let tables = size(TABLE_IDS * size_of::<Table>());
    size(spec.trees.len()).saturating_mul(per_tree).saturating_add(tables).saturating_add(spec_nodes * 8)
}

/// Refuses an ensemble in which some class's raw score could leave ±[`MAX_SCORE_MAGNITUDE`]:
/// past it a sum of finite leaves may overflow to infinity and a softmax to NaN. An
/// [`Output::Exp`] ensemble's raw scores must also stay below [`MAX_EXP_SCORE`].
fn check_scores(spec: &EnsembleSpec) -> Result<(), EngineError> {
    let mut bound: Vec<f64> = spec.init_scores.iter().map(|s| s.abs()).collect();
    let mut upper: Vec<f64> = spec.init_scores.clone();
    for tree in &spec.trees {
        bound[tree.class] += tree.leaves.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
        upper[tree.class] += tree.leaves.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    if let Some(class) = bound.iter().position(|b| b.is_nan() || *b > MAX_SCORE_MAGNITUDE) {
        return Err(EngineError::ScoreBound { class: spec.classes[class].clone(), bound: bound[class] });
    }
    match upper.iter().position(|u| spec.output == Output::Exp && (u.is_nan() || *u > MAX_EXP_SCORE)) {
        Some(class) => Err(EngineError::ExpBound { class: spec.classes[class].clone(), bound: upper[class] }),
        None => Ok(()),
    }
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
