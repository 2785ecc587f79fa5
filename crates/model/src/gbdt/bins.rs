//! Histogram bins: the mapping of raw feature values to at most 255 bins, binned rows, split
//! tests on bins, and the gradient statistics a histogram bin accumulates.

use rayon::prelude::*;

use super::FeatureKind;

/// Maps raw feature values to histogram bins.
#[derive(Debug, Clone, PartialEq)]
pub enum BinMapper {
    /// Value bin `b` holds values `<= upper[b]` (and above the previous bound); the last value
    /// bin, `upper.len()`, is open. One more bin after it, `upper.len() + 1` (at most 255),
    /// holds the missing values (NaN).
    Numeric {
        /// Upper bounds of all but the last value bin, increasing (at most 254).
        upper: Vec<f64>,
    },
    /// The bin is the category code. Codes must be integers in `0..n_codes`: a missing or
    /// unseen category needs a code of its own, and [`train`](super::train) refuses NaN.
    Categorical {
        /// Number of codes.
        n_codes: usize,
    },
}

impl BinMapper {
    pub(super) fn fit(kind: FeatureKind, column: impl Iterator<Item = f64>, max_bins: usize) -> Self {
        match kind {
            FeatureKind::Categorical { n_codes } => Self::Categorical { n_codes },
            FeatureKind::Numeric => {
                // Bounds between the values present; the missing ones have their own bin.
                let values = sorted(column.filter(|x| !x.is_nan()));
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

    /// Histogram bins: the value bins and the missing bin of a numeric feature, the codes of a
    /// categorical one.
    pub(super) fn n_bins(&self) -> usize {
        match self {
            Self::Numeric { upper } => upper.len() + 2,
            Self::Categorical { n_codes } => *n_codes,
        }
    }

    pub(super) fn bin(&self, x: f64) -> u8 {
        match self {
            Self::Numeric { upper } if x.is_nan() => missing_bin(upper),
            Self::Numeric { upper } => upper.partition_point(|&u| u < x) as u8,
            // `as` saturates; codes beyond the vocabulary land on 255, which no set contains.
            Self::Categorical { .. } => (x as usize).min(255) as u8,
        }
    }
}

/// `values` in `f64::total_cmp` order. They are sorted as integers that order the same way
/// (the sign bit flips the rest for negatives, as `total_cmp` does), which is about twice as
/// fast as comparing floats; values equal under `total_cmp` have the same bits, so an unstable
/// sort gives the same result.
pub(super) fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    // Flipping a negative's other bits is its own inverse: the same function maps back.
    let flip = |bits: i64| bits ^ ((((bits >> 63) as u64) >> 1) as i64);
    let mut keys: Vec<i64> = values.map(|x| flip(x.to_bits() as i64)).collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| f64::from_bits(flip(k) as u64)).collect()
}

/// The missing-value bin of a numeric feature with these upper bounds: the one after its value
/// bins (`fit` keeps at most 254 bounds, so it fits a `u8`).
pub(super) fn missing_bin(upper: &[f64]) -> u8 {
    (upper.len() + 1) as u8
}

/// A split on bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BinSplit {
    /// Numeric: left when the value bin is `<= max`; the missing bin, `missing`, goes left when
    /// `missing_left` (it is above every value bin, so otherwise right).
    Le { max: u8, missing: u8, missing_left: bool },
    /// Categorical: left when the code is in the set.
    In([u64; 4]),
}

impl BinSplit {
    pub(super) fn goes_left(&self, bin: u8) -> bool {
        match *self {
            Self::Le { max, missing, missing_left } => bin <= max || (missing_left && bin == missing),
            Self::In(set) => (set[usize::from(bin >> 6)] >> (bin & 63)) & 1 == 1,
        }
    }
}

/// Gradient and hessian sums and row count of a histogram bin (or of a leaf).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bin {
    pub(super) g: f64,
    pub(super) h: f64,
    pub(super) n: u32,
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

/// Binned rows (row-major `u8`: each row's bins together, as histograms read them).
pub(super) struct Binned {
    n_features: usize,
    bins: Vec<u8>,
}

impl Binned {
    pub(super) fn new(mappers: &[BinMapper], rows: &[f64]) -> Self {
        let nf = mappers.len();
        let mut bins = vec![0u8; rows.len()];
        bins.par_chunks_mut(nf * 4096).zip(rows.par_chunks(nf * 4096)).for_each(|(out, rows)| {
            for (o, (x, m)) in out.iter_mut().zip(rows.iter().zip(mappers.iter().cycle())) {
                *o = m.bin(*x);
            }
        });
        Self { n_features: nf, bins }
    }

    pub(super) fn row(&self, r: usize) -> &[u8] {
        &self.bins[r * self.n_features..(r + 1) * self.n_features]
    }
}

/// The training rows' bins column-major (each feature's bins together), as partitions read
/// them: one byte per row of the split feature instead of a whole row.
pub(super) struct Columns {
    rows: usize,
    bins: Vec<u8>,
}

impl Columns {
    /// The column-major copy of `binned`, in blocks of rows in parallel, so that each block's
    /// rows are read from cache once per feature.
    pub(super) fn of(binned: &Binned) -> Self {
        const BLOCK: usize = 4096;
        let nf = binned.n_features;
        let n = binned.bins.len() / nf.max(1);
        let mut columns = vec![0u8; binned.bins.len()];
        let mut blocks: Vec<Vec<&mut [u8]>> = (0..n.div_ceil(BLOCK)).map(|_| Vec::with_capacity(nf)).collect();
        for column in columns.chunks_mut(n.max(1)) {
            for (block, part) in blocks.iter_mut().zip(column.chunks_mut(BLOCK)) {
                block.push(part);
            }
        }
        blocks.into_par_iter().enumerate().for_each(|(b, parts)| {
            let rows = &binned.bins[b * BLOCK * nf..];
            for (f, part) in parts.into_iter().enumerate() {
                for (c, row) in part.iter_mut().zip(rows.chunks_exact(nf)) {
                    *c = row[f];
                }
            }
        });
        Self { rows: n, bins: columns }
    }

    /// Feature `f`'s bins, one per row.
    pub(super) fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.rows..(f + 1) * self.rows]
    }
}

/// Where each feature's bins start in a histogram, and the histogram's length.
pub(super) struct Layout {
    pub(super) offsets: Vec<usize>,
    pub(super) total: usize,
}

impl Layout {
    pub(super) fn new(mappers: &[BinMapper]) -> Self {
        let mut offsets = Vec::with_capacity(mappers.len());
        let mut total = 0;
        for m in mappers {
            offsets.push(total);
            total += m.n_bins();
        }
        Self { offsets, total }
    }
}
