//! The ensemble's trees as explanation walks them: every node (internal or leaf) with its
//! cover, routing a raw row exactly as the compiled engine does (a threshold node sends `x <= t`
//! left and NaN where `missing_left` says; a category node sends the code, NaN as 255 and larger
//! codes saturated to 255, left when its set lists it).

use crate::engine::{EnsembleSpec, NodeSpec, SplitTest};

/// The feature of a leaf, and of the path's root element.
pub(super) const NONE: usize = usize::MAX;

/// One node of a tree: a split (children, test) or a leaf (value).
#[derive(Debug, Clone)]
pub(super) struct XNode {
    /// Feature tested ([`NONE`] for a leaf).
    pub(super) feature: usize,
    /// Threshold of a numeric split (left when `x <= threshold`).
    threshold: f64,
    /// Left set of a category split, as a 256-bit set; `None` for a numeric split.
    set: Option<[u64; 4]>,
    /// Where NaN goes at a numeric split.
    missing_left: bool,
    pub(super) left: usize,
    pub(super) right: usize,
    /// Training rows (or weight) reaching the node.
    pub(super) cover: f64,
    /// A leaf's output.
    pub(super) value: f64,
}

impl XNode {
    pub(super) fn is_leaf(&self) -> bool {
        self.feature == NONE
    }
}

/// One tree: its root in [`Forest::nodes`], the class it adds to, its leaves' node indices.
#[derive(Debug, Clone)]
pub(super) struct Tree {
    pub(super) root: usize,
    pub(super) class: usize,
    pub(super) leaves: Vec<usize>,
    /// Longest root-to-leaf path (splits).
    pub(super) depth: usize,
}

/// All trees' nodes in one vector.
#[derive(Debug, Clone)]
pub(super) struct Forest {
    pub(super) nodes: Vec<XNode>,
    pub(super) trees: Vec<Tree>,
}

impl Forest {
    /// The trees of a spec the engine compiled (so its structure is verified), covers zero.
    pub(super) fn of(spec: &EnsembleSpec) -> Self {
        let mut forest = Self { nodes: Vec::new(), trees: Vec::with_capacity(spec.trees.len()) };
        for tree in &spec.trees {
            let base = forest.nodes.len();
            let n_internal = tree.nodes.len();
            let index = |child: i32| match usize::try_from(child) {
                Ok(n) => base + n,
                Err(_) => base + n_internal + (!child) as usize,
            };
            forest.nodes.extend(tree.nodes.iter().map(|n| split_node(n, index(n.left), index(n.right))));
            let leaves: Vec<usize> = (0..tree.leaves.len()).map(|l| forest.nodes.len() + l).collect();
            forest.nodes.extend(tree.leaves.iter().map(|&value| leaf_node(value)));
            let root = base;
            let depth = forest.depth_below(root);
            forest.trees.push(Tree { root, class: tree.class, leaves, depth });
        }
        forest
    }

    fn depth_below(&self, node: usize) -> usize {
        let n = &self.nodes[node];
        if n.is_leaf() { 0 } else { 1 + self.depth_below(n.left).max(self.depth_below(n.right)) }
    }

    /// Whether a raw value goes left at `node`, as the engine routes it.
    #[inline]
    pub(super) fn goes_left(&self, node: &XNode, x: f64) -> bool {
        match &node.set {
            None if x.is_nan() => node.missing_left,
            None => x <= node.threshold,
            Some(set) => {
                // `as` saturates: negative values become 0, large ones 255 (the engine's bin).
                let code = if x.is_nan() { 255 } else { (x as usize).min(255) };
                (set[code >> 6] >> (code & 63)) & 1 == 1
            }
        }
    }

    /// The position (in the tree's leaf order) of the leaf `row` reaches in tree `t`.
    pub(super) fn leaf_of(&self, t: usize, row: &[f64]) -> usize {
        let tree = &self.trees[t];
        let mut node = tree.root;
        while !self.nodes[node].is_leaf() {
            let n = &self.nodes[node];
            node = if self.goes_left(n, row[n.feature]) { n.left } else { n.right };
        }
        node - tree.leaves[0]
    }

    /// Sets every node's cover from its tree's leaf covers (an internal node's is the sum of its
    /// leaves', so a parent's cover is exactly its children's sum).
    pub(super) fn set_covers(&mut self, leaf_covers: &[Vec<f64>]) {
        for (t, covers) in leaf_covers.iter().enumerate() {
            for (&leaf, &cover) in self.trees[t].leaves.iter().zip(covers) {
                self.nodes[leaf].cover = cover;
            }
            self.sum_covers(self.trees[t].root);
        }
    }

    fn sum_covers(&mut self, node: usize) -> f64 {
        if self.nodes[node].is_leaf() {
            return self.nodes[node].cover;
        }
        let (left, right) = (self.nodes[node].left, self.nodes[node].right);
        let cover = self.sum_covers(left) + self.sum_covers(right);
        self.nodes[node].cover = cover;
        cover
    }

    /// A tree's expected output over its covers: Σ cover × value / root cover.
    pub(super) fn expected(&self, tree: &Tree) -> f64 {
        let total: f64 = tree.leaves.iter().map(|&l| self.nodes[l].cover * self.nodes[l].value).sum();
        total / self.nodes[tree.root].cover
    }
}

fn split_node(spec: &NodeSpec, left: usize, right: usize) -> XNode {
    let (threshold, set) = match &spec.test {
        SplitTest::Threshold(t) => (*t, None),
        SplitTest::Categories(codes) => {
            let mut set = [0u64; 4];
            for &code in codes.iter().filter(|&&c| c < 256) {
                set[(code >> 6) as usize] |= 1 << (code & 63);
            }
            (f64::NAN, Some(set))
        }
    };
    XNode {
        feature: spec.feature,
        threshold,
        set,
        missing_left: spec.missing_left,
        left,
        right,
        cover: 0.0,
        value: 0.0,
    }
}

fn leaf_node(value: f64) -> XNode {
    XNode {
        feature: NONE,
        threshold: f64::NAN,
        set: None,
        missing_left: true,
        left: NONE,
        right: NONE,
        cover: 0.0,
        value,
    }
}
