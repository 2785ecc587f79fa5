//! The grower's parallel parts give what a plain pass over the rows gives: partitions keep the
//! rows' order across chunks, and histograms built in feature blocks add each bin's rows in row
//! order, whatever the number of threads.

use rayon::ThreadPoolBuilder;

use super::super::bins::{Bin, BinMapper, BinSplit, Binned, Columns, Layout};
use super::super::tree::{Buffers, Grower};
use super::super::*;
use crate::rng::Rng;

const N: usize = 20_000;

/// Five features (four numeric with some missing values, one categorical of 7 codes), binned,
/// and a gradient and hessian per row.
struct Data {
    mappers: Vec<BinMapper>,
    layout: Layout,
    binned: Binned,
    columns: Columns,
    g: Vec<f64>,
    h: Vec<f64>,
    params: Params,
    buffers: Buffers,
}

impl Data {
    fn new() -> Self {
        let mut rng = Rng::new(11, 0, 0);
        let mut rows = Vec::with_capacity(N * 5);
        for _ in 0..N {
            for _ in 0..4 {
                rows.push(if rng.uniform() < 0.1 { f64::NAN } else { rng.normal() });
            }
            rows.push(rng.below(7) as f64);
        }
        let kinds = [[FeatureKind::Numeric; 4].as_slice(), &[FeatureKind::Categorical { n_codes: 7 }]].concat();
        let mappers: Vec<BinMapper> = kinds
            .iter()
            .enumerate()
            .map(|(f, &kind)| BinMapper::fit(kind, rows.iter().skip(f).step_by(5).copied(), 255))
            .collect();
        let (layout, binned) = (Layout::new(&mappers), Binned::new(&mappers, &rows));
        let columns = Columns::of(&binned);
        let g = (0..N).map(|_| rng.normal()).collect();
        let h = (0..N).map(|_| rng.uniform() + 0.1).collect();
        Self { mappers, layout, binned, columns, g, h, params: Params::default(), buffers: Buffers::default() }
    }

    fn grower(&self) -> Grower<'_> {
        let Self { mappers, layout, binned, columns, g, h, params, buffers } = self;
        Grower { params, mappers, layout, binned, columns, g, h, k: 1, class: 0, buffers }
    }
}

/// Every third row, and more rows than one partition chunk or the serial histogram limit.
fn subset() -> Vec<u32> {
    (0..N as u32).filter(|r| r % 3 != 1).collect()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    ThreadPoolBuilder::new().num_threads(threads).build().expect("pool").install(f)
}

#[test]
fn partitions_are_stable_across_chunks_whatever_the_threads() {
    let data = Data::new();
    let (grower, binned) = (data.grower(), &data.binned);
    let splits = [
        (0, BinSplit::Le { max: 100, missing: 255, missing_left: false }),
        (1, BinSplit::Le { max: 30, missing: 255, missing_left: true }),
        (4, BinSplit::In([0b1_0100, 0, 0, 0])),
    ];
    for (feature, split) in splits {
        let rows = subset();
        let (left, right): (Vec<u32>, Vec<u32>) =
            rows.iter().partition(|&&r| split.goes_left(binned.row(r as usize)[feature]));
        assert!(!left.is_empty() && !right.is_empty(), "feature {feature} splits the rows");
        for threads in [1, 2, 3] {
            let mut got = rows.clone();
            let mut scratch = vec![0; got.len()];
            let mid = in_pool(threads, || grower.partition(&mut got, &mut scratch, &split, feature));
            assert_eq!(mid, left.len(), "feature {feature}, {threads} threads");
            assert!(got[..mid] == left[..] && got[mid..] == right[..], "feature {feature}, {threads} threads");
        }
    }
}

#[test]
fn histograms_add_each_bin_in_row_order_whatever_the_threads() {
    let data = Data::new();
    let (grower, Data { layout, binned, g, h, .. }) = (data.grower(), &data);
    let rows = subset();
    let mut plain = vec![Bin::default(); layout.total];
    for &r in &rows {
        for (f, &b) in binned.row(r as usize).iter().enumerate() {
            plain[layout.offsets[f] + usize::from(b)] += Bin { g: g[r as usize], h: h[r as usize], n: 1 };
        }
    }
    let bits = |hist: &[Bin]| hist.iter().map(|b| (b.g.to_bits(), b.h.to_bits(), b.n)).collect::<Vec<_>>();
    for threads in [1, 2, 3, 8] {
        let hist = in_pool(threads, || grower.histogram(&rows));
        assert!(bits(&hist) == bits(&plain), "{threads} threads");
    }
}
