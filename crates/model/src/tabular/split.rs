//! Training, validation and test rows of a tabular dataset: random (stratified by class for a
//! classifier), grouped (every row of a group in one split, `--split-column`) or time-ordered
//! (the latest rows last, `--time-column`). Deterministic for a given seed.

use crate::rng::{Rng, fnv1a, splitmix64};

/// How rows are assigned to splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitBy {
    /// At random; stratified by class for a classifier.
    Random,
    /// By the value of a column: rows sharing it share a split (e.g. a customer id).
    Group(String),
    /// By the order of a column's values (numbers, or text such as ISO dates, compared as
    /// numbers when every value is one): the earliest for training, then validation, the latest
    /// for test.
    Time(String),
}

/// Shares of the held-out parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Share of all rows for validation (early stopping).
    pub validation: f64,
    /// Share of all rows for the test split (0 when a separate test file is given).
    pub test: f64,
}

/// Row indices of the training, validation and test splits, each in row order.
pub type Splits = [Vec<usize>; 3];

/// Random split, stratified when `strata` (a class per row) is given: within each stratum a
/// seeded shuffle, the first `test` share to test, the next `validation` share to validation.
pub fn random(n: usize, strata: Option<&[u32]>, shares: Shares, seed: u64) -> Splits {
    let mut groups: std::collections::BTreeMap<u32, Vec<usize>> = std::collections::BTreeMap::new();
    for i in 0..n {
        groups.entry(strata.map_or(0, |s| s[i])).or_default().push(i);
    }
    let mut splits: Splits = Default::default();
    for (stratum, mut rows) in groups {
        let mut rng = Rng::new(seed, 0x7ab1e, u64::from(stratum));
        for i in (1..rows.len()).rev() {
            rows.swap(i, rng.below(i + 1));
        }
        let m = rows.len() as f64;
        let n_test = (m * shares.test).round() as usize;
        let n_valid = ((m * shares.validation).round() as usize).min(rows.len() - n_test);
        splits[2].extend_from_slice(&rows[..n_test]);
        splits[1].extend_from_slice(&rows[n_test..n_test + n_valid]);
        splits[0].extend_from_slice(&rows[n_test + n_valid..]);
    }
    splits.iter_mut().for_each(|s| s.sort_unstable());
    splits
}

/// Grouped split: each group (its key) lands in one split, by a seeded hash of the key.
pub fn grouped(keys: &[&str], shares: Shares, seed: u64) -> Splits {
    let mut splits: Splits = Default::default();
    for (i, key) in keys.iter().enumerate() {
        let u = (splitmix64(seed ^ fnv1a(key)) >> 11) as f64 / (1u64 << 53) as f64;
        let split = if u < shares.test {
            2
        } else if u < shares.test + shares.validation {
            1
        } else {
            0
        };
        splits[split].push(i);
    }
    splits
}

/// Time-ordered split: rows sorted by their time value (ties keep file order); the latest
/// `test` share is the test split, the `validation` share before it validation. Rows of one
/// time value never straddle two splits.
pub fn by_time(times: &[&str], shares: Shares) -> Splits {
    let numbers: Option<Vec<f64>> = times.iter().map(|t| t.trim().parse::<f64>().ok()).collect();
    let mut order: Vec<usize> = (0..times.len()).collect();
    match &numbers {
        Some(x) => order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b))),
        None => order.sort_by(|&a, &b| times[a].cmp(times[b]).then(a.cmp(&b))),
    }
    let n = times.len() as f64;
    let test_start = times.len() - (n * shares.test).round() as usize;
    let valid_start = test_start.saturating_sub((n * shares.validation).round() as usize);
    let same = |a: usize, b: usize| match &numbers {
        Some(x) => x[a] == x[b],
        None => times[a] == times[b],
    };
    // Move each boundary forward past rows sharing the time value just before it.
    let settle = |mut k: usize| {
        while k > 0 && k < order.len() && same(order[k - 1], order[k]) {
            k += 1;
        }
        k
    };
    let valid_start = settle(valid_start);
    let test_start = settle(test_start.max(valid_start));
    let mut splits: Splits =
        [order[..valid_start].to_vec(), order[valid_start..test_start].to_vec(), order[test_start..].to_vec()];
    splits.iter_mut().for_each(|s| s.sort_unstable());
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARES: Shares = Shares { validation: 0.1, test: 0.2 };

    #[test]
    fn a_random_split_is_stratified_deterministic_and_complete() {
        let strata: Vec<u32> = (0..1000).map(|i| u32::from(i % 10 == 0)).collect();
        let a = random(1000, Some(&strata), SHARES, 7);
        assert_eq!(a, random(1000, Some(&strata), SHARES, 7));
        assert_ne!(a, random(1000, Some(&strata), SHARES, 8));
        assert_eq!(a.iter().map(Vec::len).sum::<usize>(), 1000);
        let positives = |rows: &[usize]| rows.iter().filter(|&&i| strata[i] == 1).count();
        assert_eq!((a[2].len(), positives(&a[2])), (200, 20));
        assert_eq!((a[1].len(), positives(&a[1])), (100, 10));
    }

    #[test]
    fn a_grouped_split_keeps_each_group_together() {
        let keys: Vec<String> = (0..3000).map(|i| format!("c{}", i % 300)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let splits = grouped(&keys, SHARES, 1);
        let mut split_of = std::collections::HashMap::new();
        for (s, rows) in splits.iter().enumerate() {
            for &i in rows {
                assert_eq!(*split_of.entry(keys[i]).or_insert(s), s, "group {} split", keys[i]);
            }
        }
        assert!(splits.iter().all(|s| !s.is_empty()));
    }

    #[test]
    fn a_time_split_puts_the_latest_rows_last_and_never_splits_a_day() {
        let days: Vec<String> = (0..100).map(|i| format!("2024-01-{:02}", 1 + (i * 7 % 100) / 4)).collect();
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        let [train, valid, test] = by_time(&days, SHARES);
        let max = |rows: &[usize]| rows.iter().map(|&i| days[i]).max().unwrap_or_default();
        let min = |rows: &[usize]| rows.iter().map(|&i| days[i]).min().unwrap_or_default();
        assert!(max(&train) < min(&valid) && max(&valid) < min(&test), "{train:?} {valid:?} {test:?}");
        assert_eq!(train.len() + valid.len() + test.len(), 100);
        let numeric = by_time(&["10", "9", "100", "1"], Shares { validation: 0.25, test: 0.25 });
        assert_eq!(numeric, [vec![1, 3], vec![0], vec![2]]);
    }
}
