//! Consistency rules learned from the training rows: a categorical feature that the rows fix by
//! intervals of a numeric input — each code's values fill one interval and no two codes'
//! intervals overlap, as the generator's `BASKET_SIZE` follows `SPEND` (S below 15, M below 130,
//! L above). A scored row whose category and number fall in different intervals contradicts
//! everything the model was trained on, and its answer says so.
//!
//! Nothing is declared per model kind: any categorical × numeric-input pair the training rows
//! obey is kept, and only those (a pair needs [`MIN_ROWS_PER_CODE`] rows of every code, so a
//! chance pattern among a few rows is not a rule).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Role;

/// Fewest training rows every code of a rule needs.
pub const MIN_ROWS_PER_CODE: u64 = 30;
/// Most (pair × row) visits the search makes; above it, it looks at an even sample of the rows
/// and then checks each rule found against every row.
const MAX_VISITS: usize = 200_000_000;

/// Categorical feature `category` follows numeric feature `number` by intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The categorical feature (index into the row).
    pub category: usize,
    /// The numeric feature.
    pub number: usize,
    /// The codes, by increasing interval.
    pub codes: Vec<u32>,
    /// The boundaries between consecutive intervals, increasing (one fewer than the codes):
    /// midway between a code's largest training value and the next code's smallest.
    pub bounds: Vec<f64>,
    /// The codes' category names, when the trainer knows them (for warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

impl Rule {
    /// `(code index the row has, code index its number calls for)` when `row` contradicts the
    /// rule; `None` when it agrees, its number is missing or its code is not one of the rule's.
    pub fn check(&self, row: &[f64]) -> Option<(usize, usize)> {
        let x = *row.get(self.number)?;
        let code = *row.get(self.category)?;
        if x.is_nan() {
            return None;
        }
        let have = self.codes.iter().position(|&c| f64::from(c) == code)?;
        let want = self.bounds.partition_point(|&b| b <= x);
        (have != want).then_some((have, want))
    }

    /// The name of code index `i` (its label, else the code).
    pub fn label(&self, i: usize) -> String {
        self.labels.get(i).cloned().unwrap_or_else(|| format!("code {}", self.codes[i]))
    }

    /// The interval of code index `i`, as text: `below 15`, `15 to 130`, `130 or more`.
    pub fn interval(&self, i: usize, short: impl Fn(f64) -> String) -> String {
        match (i.checked_sub(1).map(|j| self.bounds[j]), self.bounds.get(i)) {
            (None, Some(&hi)) => format!("below {}", short(hi)),
            (Some(lo), Some(&hi)) => format!("{} to {}", short(lo), short(hi)),
            (Some(lo), None) => format!("{} or more", short(lo)),
            (None, None) => "any value".to_owned(),
        }
    }
}

/// Per code: rows, smallest and largest value.
type Spans = BTreeMap<u64, (u64, f64, f64)>;

/// The rules `rows` (row-major, `roles.len()` features) obey.
pub(super) fn learn(roles: &[Role], rows: &[f64]) -> Vec<Rule> {
    search(roles, rows, MAX_VISITS)
}

/// [`learn`], sampling the rows when the pairs × rows exceed `max_visits`.
fn search(roles: &[Role], rows: &[f64], max_visits: usize) -> Vec<Rule> {
    let nf = roles.len();
    let n = rows.len() / nf.max(1);
    let of = |role| (0..nf).filter(move |&f| roles[f] == role);
    let pairs: Vec<(usize, usize)> = of(Role::Categorical).flat_map(|c| of(Role::Input).map(move |x| (c, x))).collect();
    if pairs.is_empty() || n == 0 {
        return Vec::new();
    }
    let stride = (pairs.len() * n).div_ceil(max_visits).max(1);
    let min_rows = (MIN_ROWS_PER_CODE as usize).div_ceil(stride) as u64;
    pairs
        .into_iter()
        .filter_map(|(c, x)| {
            let candidate = rule(c, x, &spans(c, x, rows.chunks_exact(nf).step_by(stride)), min_rows)?;
            if stride == 1 {
                return Some(candidate);
            }
            // A pair the sample obeys, measured again on every row (few: most pairs fail above).
            rule(c, x, &spans(c, x, rows.chunks_exact(nf)), MIN_ROWS_PER_CODE)
        })
        .collect()
}

fn spans<'r>(c: usize, x: usize, rows: impl Iterator<Item = &'r [f64]>) -> Spans {
    let mut spans = Spans::new();
    for row in rows {
        let (code, value) = (row[c], row[x]);
        if code.is_nan() || value.is_nan() {
            continue;
        }
        let span = spans.entry(code.to_bits()).or_insert((0, value, value));
        *span = (span.0 + 1, span.1.min(value), span.2.max(value));
    }
    spans
}

/// The rule the spans make: two codes or more, each with `min_rows`, in disjoint intervals.
fn rule(category: usize, number: usize, spans: &Spans, min_rows: u64) -> Option<Rule> {
    if spans.len() < 2 || spans.values().any(|&(rows, ..)| rows < min_rows) {
        return None;
    }
    let mut ordered: Vec<(f64, f64, f64)> =
        spans.iter().map(|(&bits, &(_, lo, hi))| (f64::from_bits(bits), lo, hi)).collect();
    ordered.sort_by(|a, b| a.1.total_cmp(&b.1));
    if ordered.windows(2).any(|w| w[0].2 >= w[1].1)
        || ordered.iter().any(|&(code, ..)| code.fract() != 0.0 || code < 0.0)
    {
        return None;
    }
    Some(Rule {
        category,
        number,
        codes: ordered.iter().map(|&(code, ..)| code as u32).collect(),
        bounds: ordered.windows(2).map(|w| (w[0].2 + w[1].1) / 2.0).collect(),
        labels: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of (size code, spend, region code): size follows spend, region does not.
    fn baskets(n: usize) -> Vec<f64> {
        (0..n)
            .flat_map(|i| {
                let spend = (i * 7919 % 4000) as f64 / 10.0 + 0.5;
                let size = if spend < 15.0 {
                    1.0
                } else if spend < 130.0 {
                    2.0
                } else {
                    3.0
                };
                [size, spend, (i % 4) as f64 + 1.0]
            })
            .collect()
    }

    const ROLES: [Role; 3] = [Role::Categorical, Role::Input, Role::Categorical];

    #[test]
    fn a_category_fixed_by_intervals_is_learned_and_others_are_not() {
        let rules = learn(&ROLES, &baskets(3000));
        assert_eq!(rules.len(), 1, "{rules:?}");
        let rule = &rules[0];
        assert_eq!((rule.category, rule.number, rule.codes.clone()), (0, 1, vec![1, 2, 3]));
        assert!((14.5..=15.0).contains(&rule.bounds[0]) && (129.5..=130.0).contains(&rule.bounds[1]), "{rule:?}");
        assert_eq!(rule.check(&[3.0, 3.0, 1.0]), Some((2, 0)), "L with a spend of 3");
        assert_eq!(rule.check(&[1.0, 3.0, 1.0]), None);
        assert_eq!(rule.check(&[3.0, f64::NAN, 1.0]), None, "a missing number contradicts nothing");
        assert_eq!(rule.check(&[0.0, 3.0, 1.0]), None, "a code the rule does not know");
        assert_eq!(rule.interval(2, |x| format!("{x:.0}")), "130 or more");
        assert_eq!(rule.interval(0, |x| format!("{x:.0}")), "below 15");
    }

    #[test]
    fn overlapping_or_thin_codes_make_no_rule() {
        let mut rows = baskets(3000);
        rows[0] = 3.0; // one L basket with a small spend: the intervals overlap
        rows[1] = 3.0;
        assert!(learn(&ROLES, &rows).is_empty());
        assert!(learn(&ROLES, &baskets(60)).is_empty(), "too few rows of each code");
    }

    #[test]
    fn a_sampled_search_keeps_only_rules_every_row_obeys() {
        // More pairs x rows than the search visits, so it samples every second row; one row
        // outside the sample breaks feature 0's rules.
        let nf = 8;
        let mut roles = vec![Role::Input; nf];
        roles[..4].fill(Role::Categorical);
        let n = 2000;
        let mut rows: Vec<f64> = (0..n)
            .flat_map(|i| {
                let x = (i % 1000) as f64;
                (0..nf).map(move |f| if f < 4 { if x < 500.0 { 1.0 } else { 2.0 } } else { x })
            })
            .collect();
        let visits = 16 * n / 2;
        assert_eq!(search(&roles, &rows, visits).len(), 16);
        rows[nf] = 2.0; // row 1 (x = 1, not in the sample) of feature 0: code 2
        assert_eq!(search(&roles, &rows, visits).len(), 12, "feature 0's rules are refused");
    }
}
