//! Compiling an ensemble spec into the engine's arrays: the byte slots of a binned row
//! ([`binning`]), every tree laid out complete in heap order, and the distinct split tables.

use std::collections::HashMap;

use super::{
    Binning, Engine, EngineError, EnsembleSpec, MAX_FEATURES, NARROW, Node, NodeSpec, SplitTest, TABLE_IDS, Table,
    Tables, TreeSpec, WIDE, Width, verify,
};

impl Engine {
    /// Validates and compiles an ensemble, with narrow bins when its splits allow them. Its
    /// compiled size is computed and capped ([`super::MAX_COMPILED_BYTES`]) before anything is
    /// allocated.
    pub fn compile(spec: &EnsembleSpec) -> Result<Self, EngineError> {
        let depth = verify::check(spec)?;
        match binning(spec, NARROW) {
            Ok(slots) if holds(NARROW, spec) => compile_as(spec, depth, NARROW, slots),
            _ => compile_as(spec, depth, WIDE, binning(spec, WIDE)?),
        }
    }
}

/// Compiles a verified ensemble of depth `depth` with the bins of `width` and the byte slots
/// [`binning`] gave for them.
pub(super) fn compile_as(
    spec: &EnsembleSpec,
    depth: usize,
    width: Width,
    (binning, slots): (Vec<Binning>, usize),
) -> Result<Engine, EngineError> {
    let trees = spec.trees.len();
    let mut layout = Layout {
        depth,
        width,
        binning: &binning,
        nodes: filled(trees << depth, Node::default())?,
        leaves: filled(trees << depth, 0.0)?,
        tables: vec![[0; 4]],
        table_ids: HashMap::from([([0; 4], 0)]),
    };
    for (t, tree) in spec.trees.iter().enumerate() {
        let root = if tree.nodes.is_empty() { -1 } else { 0 };
        layout.place(tree, root, (0, 0), t << depth)?;
    }
    let Layout { nodes, leaves, tables, .. } = layout;
    Ok(Engine {
        n_features: spec.n_features,
        n_classes: spec.classes.len(),
        depth,
        init_scores: spec.init_scores.clone(),
        output: spec.output,
        binning,
        slots,
        tree_class: spec.trees.iter().map(|t| t.class).collect(),
        nodes,
        leaves,
        tables: match width {
            NARROW => Tables::Narrow(fixed(tables.iter().map(|t| [t[0]]))),
            _ => Tables::Wide(fixed(tables.into_iter())),
        },
    })
}

/// Whether every split of `spec` keeps its meaning in the bins of `width`: no categorical split
/// lists a code of a shared bin (narrow, codes 62 to 254 are one bin: a split listing one of
/// them would send all of them its way).
pub(super) fn holds(width: Width, spec: &EnsembleSpec) -> bool {
    let shared = u32::from(width.missing) - 1..255;
    shared.len() == 1
        || spec.trees.iter().flat_map(|t| &t.nodes).all(|node| match &node.test {
            SplitTest::Categories(codes) => !codes.iter().any(|c| shared.contains(c)),
            SplitTest::Threshold(_) => true,
        })
}

/// The arrays being filled: each tree's `2^depth` node and leaf places, and the distinct tables.
struct Layout<'a> {
    depth: usize,
    width: Width,
    binning: &'a [Binning],
    nodes: Vec<Node>,
    leaves: Vec<f64>,
    tables: Vec<Table>,
    table_ids: HashMap<Table, u16>,
}

impl Layout<'_> {
    /// The slot a node looks up and the table of its bins that go right.
    fn table(&self, spec: &NodeSpec) -> (usize, Table) {
        let mut right: Table = [0; 4];
        let missing = usize::from(self.width.missing);
        match &spec.test {
            SplitTest::Threshold(t) => {
                // The slot whose run holds t: x > t  <=>  more than j of the run's thresholds lie
                // below x, where t is the run's j-th threshold.
                let found = match &self.binning[spec.feature] {
                    Binning::Numeric { thresholds, slots } => thresholds
                        .binary_search_by(|u| u.total_cmp(t))
                        .ok()
                        .and_then(|i| Some((usize::from(*slots.get(i / self.width.run)?), i % self.width.run))),
                    Binning::Categorical => None,
                };
                let Some((slot, j)) = found else {
                    unreachable!("binning() gives every threshold of a numeric feature a slot")
                };
                for bin in j + 1..missing {
                    right[bin >> 6] |= 1 << (bin & 63);
                }
                if !spec.missing_left {
                    right[missing >> 6] |= 1 << (missing & 63);
                }
                (slot, right)
            }
            SplitTest::Categories(left) => {
                for bin in 0..=missing {
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

    /// Writes the subtree `child` of `tree` at heap position `pos` on level `level`, in the
    /// places from `base` (the tree's first node and first leaf).
    fn place(
        &mut self,
        tree: &TreeSpec,
        child: i32,
        (pos, level): (usize, usize),
        base: usize,
    ) -> Result<(), EngineError> {
        if level == self.depth {
            let leaf = usize::try_from(!child).unwrap_or_default();
            self.leaves[base + pos - ((1 << self.depth) - 1)] = tree.leaves[leaf];
            return Ok(());
        }
        let (left, right) = match usize::try_from(child) {
            Ok(n) => {
                let spec = &tree.nodes[n];
                let (slot, table) = self.table(spec);
                let next = self.table_ids.len();
                let id = *self.table_ids.entry(table).or_insert_with(|| next as u16);
                if usize::from(id) == next {
                    if next >= TABLE_IDS {
                        return Err(EngineError::Ensemble(format!("more than {TABLE_IDS} distinct split tables")));
                    }
                    self.tables.push(table);
                }
                // Slots are < MAX_FEATURES = 256, so the byte holds them.
                self.nodes[base + pos] = Node { table: id, feature: slot as u8 };
                (spec.left, spec.right)
            }
            // A leaf above the bottom level: padding nodes use table 0 (always left), and every
            // leaf slot below gets its value.
            Err(_) => (child, child),
        };
        self.place(tree, left, (2 * pos + 1, level + 1), base)?;
        self.place(tree, right, (2 * pos + 2, level + 1), base)
    }
}

/// The tables at their ids, in an array of [`TABLE_IDS`] allocated zeroed: the pages past the
/// ensemble's tables are never touched, so they take no memory.
fn fixed<const W: usize>(tables: impl Iterator<Item = [u64; W]>) -> Box<[[u64; W]; TABLE_IDS]> {
    let mut all = vec![[0; W]; TABLE_IDS];
    for (slot, table) in all.iter_mut().zip(tables) {
        *slot = table;
    }
    match all.into_boxed_slice().try_into() {
        Ok(all) => all,
        Err(_) => unreachable!("the vector holds TABLE_IDS tables"),
    }
}

/// The byte slots of a binned row and each feature's slots, with the bins of `width`. A feature
/// split by threshold is numeric: its distinct thresholds, in runs of [`Width::run`], fill its
/// own slot and, past the first run, extra slots after the features. Any other feature is
/// categorical.
pub(super) fn binning(spec: &EnsembleSpec, width: Width) -> Result<(Vec<Binning>, usize), EngineError> {
    let mut thresholds: Vec<Option<Vec<f64>>> = vec![None; spec.n_features];
    let mut categorical = vec![false; spec.n_features];
    for node in spec.trees.iter().flat_map(|t| &t.nodes) {
        match &node.test {
            SplitTest::Threshold(t) => thresholds[node.feature].get_or_insert_with(Vec::new).push(*t),
            SplitTest::Categories(_) => categorical[node.feature] = true,
        }
    }
    let mut slots = spec.n_features;
    let mut features = Vec::with_capacity(spec.n_features);
    for (source, (numeric, categorical)) in thresholds.into_iter().zip(categorical).enumerate() {
        features.push(match (numeric, categorical) {
            (Some(_), true) => {
                return Err(EngineError::Ensemble(format!(
                    "feature {source} is split both by threshold and by category"
                )));
            }
            (Some(mut thresholds), false) => {
                thresholds.sort_by(f64::total_cmp);
                thresholds.dedup();
                let extra = thresholds.len().div_ceil(width.run) - 1;
                // Checked below: every slot is < MAX_FEATURES = 256 before any is used.
                let own = std::iter::once(source).chain(slots..slots + extra);
                slots += extra;
                Binning::Numeric { slots: own.map(|slot| slot as u8).collect(), thresholds }
            }
            (None, _) => Binning::Categorical,
        });
    }
    if slots > MAX_FEATURES {
        return Err(EngineError::Ensemble(format!(
            "the features' distinct thresholds need {slots} byte slots (one per feature, plus one per \
             further {} thresholds on a feature), at most {MAX_FEATURES} are supported",
            width.run
        )));
    }
    Ok((features, slots))
}

/// A vector of `len` copies of `value`, or [`EngineError::OutOfMemory`] instead of aborting the
/// process when the memory cannot be had (e.g. under a `ulimit -v`).
fn filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, EngineError> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(len).map_err(|_| EngineError::OutOfMemory { bytes: (len * size_of::<T>()) as u64 })?;
    vec.resize(len, value);
    Ok(vec)
}
