//! [`SalesStats`]: what the forecast features know about stores and products, learned from the
//! training rows and stored with the model (serialised as JSON).
//!
//! * **Base rates** (stores and products): `ln((Σ units + w·ḡ) / (rows + w))`, the log of the
//!   mean units per row shrunk toward the global mean `ḡ` with a prior weight of
//!   `w = `[`PRIOR_ROWS`] rows. An id with a handful of rows sits near the global rate; one with
//!   thousands keeps its own.
//! * **Reference price** (products): the lower median of the product's non-promotion prices (of
//!   all its prices when it is always on promotion), so it is always a price that occurred.
//! * **Elasticity and promotion lift** (products): a Poisson regression per product of units on
//!   `ln(price / reference)` and the promotion flag, with the store base rates as an offset and the
//!   calendar as controls (yearly cos/sin, weekday, one indicator per holiday), fitted by Newton's
//!   method on the product's rows summed per (day, price, promotion). Without the calendar
//!   controls, a seasonal product's few price changes pick up its season as "elasticity".
//!   Estimates are then shrunk toward the across-product mean by empirical Bayes (normal prior
//!   whose variance is the spread of the estimates minus their mean sampling variance; sampling
//!   variance from the inverse Hessian × the Pearson dispersion). Products with fewer than
//!   [`MIN_GROUPS`] groups get the mean.
//! * **Season** (products): the same regression's yearly cosine and sine coefficients, shrunk
//!   the same way: the product's own seasonal log effect on a day of the year
//!   ([`SalesStats::season_effect`]). Products of different categories peak in different months,
//!   which trees could only learn product by product.
//! * **Calendar** (global): the weekday and holiday coefficients of the same regressions,
//!   averaged over products (precision-weighted, as the shrinkage's mean): the log effect of each
//!   weekday relative to Monday and of each holiday ([`SalesStats::calendar_effect`]). A holiday
//!   is seen once a year, on a different weekday each time; learnt once from every product it
//!   transfers to next year's date, where a tree split learnt on last year's weekday would not.
//!
//! **Unseen ids** get the global defaults: base rate `ln ḡ`, elasticity and lift the
//! across-product means, and the request's own price as the reference (relative price 1).

use std::f64::consts::TAU;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::SalesColumns;
use super::calendar::{self, HolidayCalendar};

/// Version of the stats format.
pub const STATS_VERSION: u32 = 1;
/// Prior weight (in rows) of the global mean in the shrunk base rates.
pub const PRIOR_ROWS: f64 = 50.0;
/// Fewest (day, price, promotion) groups a product needs for its own elasticity estimate.
pub const MIN_GROUPS: usize = 30;
/// Most holidays of a calendar: the holiday feature is a category code `0..=MAX_HOLIDAYS`, and
/// categories have at most 256 codes.
pub const MAX_HOLIDAYS: usize = 255;
/// Smallest mean units used for a logarithm (keeps all-zero data finite).
const MIN_MEAN: f64 = 1e-6;
/// Ridge on the regression coefficients (numerical stability only).
const RIDGE: f64 = 1e-3;

/// What the features know about one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductStats {
    /// Product id.
    pub id: i64,
    /// Training rows.
    pub rows: u64,
    /// Lower median non-promotion price.
    pub reference_price: f64,
    /// Shrunk log mean units per row.
    pub log_rate: f64,
    /// Shrunk price elasticity (d ln units / d ln price).
    pub elasticity: f64,
    /// Shrunk log lift of a promotion beyond its price cut.
    pub promo_lift: f64,
    /// Shrunk coefficient of the yearly cosine of the product's season (0 when absent).
    #[serde(default)]
    pub season_cos: f64,
    /// Shrunk coefficient of the yearly sine of the product's season (0 when absent).
    #[serde(default)]
    pub season_sin: f64,
}

/// What the features know about one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Store id.
    pub id: i64,
    /// Training rows.
    pub rows: u64,
    /// Shrunk log mean units per row.
    pub log_rate: f64,
}

/// Training statistics of the forecast features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesStats {
    /// Format version ([`STATS_VERSION`]).
    pub version: u32,
    /// Training rows.
    pub rows: u64,
    /// Log of the mean units per row: the base rate of unseen stores and products.
    pub global_log_rate: f64,
    /// Prior weight used for the base rates.
    pub prior_rows: f64,
    /// Mean elasticity across products: the elasticity of unseen products.
    pub elasticity: f64,
    /// Mean promotion lift across products: the lift of unseen products.
    pub promo_lift: f64,
    /// Mean yearly cosine coefficient across products: the season of unseen products.
    #[serde(default)]
    pub season_cos: f64,
    /// Mean yearly sine coefficient across products: the season of unseen products.
    #[serde(default)]
    pub season_sin: f64,
    /// Log effect of each ISO weekday relative to Monday, Monday first (7 values; empty in
    /// stats without a calendar, which then has no effect).
    #[serde(default)]
    pub weekday_effects: Vec<f64>,
    /// Log effect of each holiday of [`SalesStats::holidays`], in rule order (empty: none).
    #[serde(default)]
    pub holiday_effects: Vec<f64>,
    /// The holiday calendar of the holiday feature.
    pub holidays: HolidayCalendar,
    /// Products, sorted by id.
    pub products: Vec<ProductStats>,
    /// Stores, sorted by id.
    pub stores: Vec<StoreStats>,
}

/// Why stats cannot be fitted or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// No training rows.
    #[error("no sales rows to learn statistics from")]
    Empty,
    /// Stored stats are malformed.
    #[error("sales stats: {0}")]
    Invalid(String),
}

impl SalesStats {
    /// Statistics of a product, if it was seen in training.
    pub fn product(&self, id: i64) -> Option<&ProductStats> {
        self.products.binary_search_by_key(&id, |p| p.id).ok().map(|i| &self.products[i])
    }

    /// Statistics of a store, if it was seen in training.
    pub fn store(&self, id: i64) -> Option<&StoreStats> {
        self.stores.binary_search_by_key(&id, |s| s.id).ok().map(|i| &self.stores[i])
    }

    /// The seasonal log effect of a product (the across-product mean for an unseen one) on a day:
    /// `season_cos · cos(2π·d/365.25) + season_sin · sin(2π·d/365.25)`, `d` the day of the year.
    pub fn season_effect(&self, product: Option<&ProductStats>, day: i64) -> f64 {
        let (c, s) = product.map_or((self.season_cos, self.season_sin), |p| (p.season_cos, p.season_sin));
        let angle = year_angle(day);
        c * angle.cos() + s * angle.sin()
    }

    /// The log effect of the day's weekday and holiday ([`SalesStats::weekday_effects`],
    /// [`SalesStats::holiday_effects`]); 0 for an effect the stats do not have.
    pub fn calendar_effect(&self, day: i64) -> f64 {
        let weekday = self.weekday_effects.get(calendar::weekday(day) as usize - 1).copied().unwrap_or(0.0);
        let holiday = self.holidays.holiday_index(day).and_then(|h| self.holiday_effects.get(h)).copied();
        weekday + holiday.unwrap_or(0.0)
    }

    /// Checks stats read from an artifact: version, ids sorted and unique, finite values.
    pub fn check(&self) -> Result<(), StatsError> {
        let fail = |m: String| Err(StatsError::Invalid(m));
        if self.version != STATS_VERSION {
            return fail(format!("version {} (this build reads {STATS_VERSION})", self.version));
        }
        let globals = [self.global_log_rate, self.elasticity, self.promo_lift, self.season_cos, self.season_sin];
        let calendar = self.weekday_effects.iter().chain(&self.holiday_effects);
        if !globals.iter().chain(calendar).all(|v| v.is_finite()) {
            return fail("global values must be finite".to_owned());
        }
        if !self.products.windows(2).all(|w| w[0].id < w[1].id) || !self.stores.windows(2).all(|w| w[0].id < w[1].id) {
            return fail("store and product ids must be sorted and unique".to_owned());
        }
        for p in &self.products {
            let finite =
                [p.log_rate, p.elasticity, p.promo_lift, p.season_cos, p.season_sin].iter().all(|v| v.is_finite());
            let priced = (super::MIN_PRICE..=super::MAX_PRICE).contains(&p.reference_price);
            if !finite || !priced {
                return fail(format!("product {}: values out of range", p.id));
            }
        }
        if let Some(s) = self.stores.iter().find(|s| !s.log_rate.is_finite()) {
            return fail(format!("store {}: log_rate is not finite", s.id));
        }
        if !matches!(self.weekday_effects.len(), 0 | 7) {
            return fail(format!("{} weekday effects, not 7", self.weekday_effects.len()));
        }
        if !self.holiday_effects.is_empty() && self.holiday_effects.len() != self.holidays.rules.len() {
            let (effects, rules) = (self.holiday_effects.len(), self.holidays.rules.len());
            return fail(format!("{effects} holiday effects for {rules} holidays"));
        }
        if self.holidays.rules.len() > MAX_HOLIDAYS {
            return fail(format!("{} holidays, at most {MAX_HOLIDAYS}", self.holidays.rules.len()));
        }
        self.holidays.check().map_err(StatsError::Invalid)
    }

    /// Parses and checks stats stored as JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StatsError> {
        let stats: Self = serde_json::from_slice(bytes).map_err(|e| StatsError::Invalid(e.to_string()))?;
        stats.check()?;
        Ok(stats)
    }

    /// Learns the statistics of training rows (deterministic: the same on any thread count).
    pub fn fit(rows: &SalesColumns, holidays: HolidayCalendar) -> Result<Self, StatsError> {
        if rows.is_empty() {
            return Err(StatsError::Empty);
        }
        let n = rows.len();
        let total: f64 = rows.units.iter().map(|&u| f64::from(u)).sum();
        let global_mean = (total / n as f64).max(MIN_MEAN);
        let shrunk = |sum: f64, count: u64| ((sum + PRIOR_ROWS * global_mean) / (count as f64 + PRIOR_ROWS)).ln();

        let (store_ids, store_of) = dense(&rows.store_id);
        let mut store_sums = vec![(0.0, 0u64); store_ids.len()];
        for (&s, &u) in store_of.iter().zip(&rows.units) {
            store_sums[s as usize].0 += f64::from(u);
            store_sums[s as usize].1 += 1;
        }
        let stores: Vec<StoreStats> = store_ids
            .iter()
            .zip(&store_sums)
            .map(|(&id, &(sum, count))| StoreStats { id, rows: count, log_rate: shrunk(sum, count) })
            .collect();
        // Offset of a row: how much its store sells relative to the average row.
        let store_factor: Vec<f64> = stores.iter().map(|s| (s.log_rate - global_mean.ln()).exp()).collect();

        let (product_ids, product_of) = dense(&rows.product_id);
        let by_product = bucket(&product_of, product_ids.len());
        let fits: Vec<ProductFit> = by_product
            .par_iter()
            .map(|indices| fit_product(rows, indices, &store_of, &store_factor, &holidays))
            .collect();
        let elasticity = EmpiricalBayes::new(fits.iter().filter_map(|f| f.elasticity));
        let promo_lift = EmpiricalBayes::new(fits.iter().filter_map(|f| f.promo_lift));
        let season_cos = EmpiricalBayes::new(fits.iter().filter_map(|f| f.season.map(|s| s[0])));
        let season_sin = EmpiricalBayes::new(fits.iter().filter_map(|f| f.season.map(|s| s[1])));
        // Column k of the calendar: Tuesday..Sunday, then each holiday.
        let calendar_mean =
            |k: usize| EmpiricalBayes::new(fits.iter().filter_map(|f| Some(f.calendar.as_ref()?[k]))).mean;
        let weekday_effects = std::iter::once(0.0).chain((0..6).map(calendar_mean)).collect();
        let holiday_effects = (0..holidays.rules.len()).map(|h| calendar_mean(6 + h)).collect();
        let products = product_ids
            .iter()
            .zip(&fits)
            .map(|(&id, f)| ProductStats {
                id,
                rows: f.rows,
                reference_price: f.reference_price,
                log_rate: shrunk(f.units, f.rows),
                elasticity: elasticity.shrink(f.elasticity),
                promo_lift: promo_lift.shrink(f.promo_lift),
                season_cos: season_cos.shrink(f.season.map(|s| s[0])),
                season_sin: season_sin.shrink(f.season.map(|s| s[1])),
            })
            .collect();
        Ok(Self {
            version: STATS_VERSION,
            rows: n as u64,
            global_log_rate: global_mean.ln(),
            prior_rows: PRIOR_ROWS,
            elasticity: elasticity.mean,
            promo_lift: promo_lift.mean,
            season_cos: season_cos.mean,
            season_sin: season_sin.mean,
            weekday_effects,
            holiday_effects,
            holidays,
            products,
            stores,
        })
    }
}

/// Sorted unique ids and each value's index among them.
fn dense(values: &[i64]) -> (Vec<i64>, Vec<u32>) {
    let mut ids = values.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let index = values.iter().map(|v| ids.binary_search(v).unwrap_or_default() as u32).collect();
    (ids, index)
}

/// Row indices per dense key, each list in row order.
fn bucket(keys: &[u32], n: usize) -> Vec<Vec<u32>> {
    let mut counts = vec![0usize; n];
    for &k in keys {
        counts[k as usize] += 1;
    }
    let mut out: Vec<Vec<u32>> = counts.into_iter().map(Vec::with_capacity).collect();
    for (i, &k) in keys.iter().enumerate() {
        out[k as usize].push(i as u32);
    }
    out
}

/// An estimate and its sampling variance.
type Estimate = (f64, f64);

struct ProductFit {
    rows: u64,
    units: f64,
    reference_price: f64,
    elasticity: Option<Estimate>,
    promo_lift: Option<Estimate>,
    /// Yearly cosine and sine coefficients.
    season: Option<[Estimate; 2]>,
    /// Tuesday..Sunday coefficients, then one per holiday.
    calendar: Option<Vec<Estimate>>,
}

fn fit_product(
    rows: &SalesColumns,
    indices: &[u32],
    store_of: &[u32],
    store_factor: &[f64],
    holidays: &HolidayCalendar,
) -> ProductFit {
    let units: f64 = indices.iter().map(|&i| f64::from(rows.units[i as usize])).sum();
    let mut regular: Vec<f64> =
        indices.iter().filter(|&&i| !rows.promotion[i as usize]).map(|&i| rows.price[i as usize]).collect();
    if regular.is_empty() {
        regular = indices.iter().map(|&i| rows.price[i as usize]).collect();
    }
    let mid = (regular.len() - 1) / 2;
    let reference_price = *regular.select_nth_unstable_by(mid, f64::total_cmp).1;

    // Rows summed per (day, price, promotion): the stores' sales and offsets add up.
    let mut sorted = indices.to_vec();
    let key = |i: u32| (rows.day[i as usize], rows.price[i as usize].to_bits(), rows.promotion[i as usize]);
    sorted.sort_unstable_by_key(|&i| key(i));
    let mut groups: Vec<Group> = Vec::new();
    for chunk in sorted.chunk_by(|&a, &b| key(a) == key(b)) {
        let first = chunk[0] as usize;
        let y = chunk.iter().map(|&i| f64::from(rows.units[i as usize])).sum();
        let exposure: f64 = chunk.iter().map(|&i| store_factor[store_of[i as usize] as usize]).sum();
        let x = design(rows.day[first], (rows.price[first] / reference_price).ln(), rows.promotion[first], holidays);
        groups.push(Group { y, offset: exposure.ln(), x });
    }
    let fit = if groups.len() >= MIN_GROUPS { poisson_regression(&groups) } else { None };
    let elasticity = fit.as_ref().map(|f| f.estimate(1));
    let promo_lift = fit.as_ref().map(|f| f.estimate(2));
    let season = fit.as_ref().map(|f| [f.estimate(3), f.estimate(4)]);
    let calendar = fit.as_ref().map(|f| (5..f.beta.len()).map(|j| f.estimate(j)).collect());
    // A product never on (or always on) promotion says nothing about the lift.
    let promoted = groups.iter().filter(|g| g.x[2] > 0.0).count();
    let promo_lift = promo_lift.filter(|_| promoted > 0 && promoted < groups.len());
    ProductFit { rows: indices.len() as u64, units, reference_price, elasticity, promo_lift, season, calendar }
}

/// The day of the year as an angle, `2π·d/365.25` (the season's cosine and sine argument).
fn year_angle(day: i64) -> f64 {
    TAU * f64::from(calendar::day_of_year(day)) / 365.25
}

/// Regression columns: intercept, log relative price, promotion, yearly cos/sin, Tuesday..Sunday
/// indicators, one indicator per holiday.
fn design(day: i64, log_relative_price: f64, promotion: bool, holidays: &HolidayCalendar) -> Vec<f64> {
    let angle = year_angle(day);
    let mut x = vec![1.0, log_relative_price, f64::from(u8::from(promotion)), angle.cos(), angle.sin()];
    let weekday = calendar::weekday(day);
    x.extend((2..=7).map(|w| f64::from(u8::from(weekday == w))));
    let holiday = holidays.holiday_index(day);
    x.extend((0..holidays.rules.len()).map(|h| f64::from(u8::from(holiday == Some(h)))));
    x
}

struct Group {
    y: f64,
    offset: f64,
    x: Vec<f64>,
}

struct RegressionFit {
    beta: Vec<f64>,
    /// Sampling variances of the coefficients (diagonal of the inverse Hessian × dispersion).
    variance: Vec<f64>,
}

impl RegressionFit {
    fn estimate(&self, j: usize) -> Estimate {
        (self.beta[j], self.variance[j])
    }
}

/// Poisson log-link regression with offsets by Newton's method (with step halving); `None` when
/// it does not converge.
fn poisson_regression(groups: &[Group]) -> Option<RegressionFit> {
    let p = groups.first()?.x.len();
    let (sy, se): (f64, f64) = groups.iter().fold((0.0, 0.0), |(a, b), g| (a + g.y, b + g.offset.exp()));
    if sy <= 0.0 {
        return None;
    }
    let mut beta = vec![0.0; p];
    beta[0] = (sy / se).ln();
    let objective = |beta: &[f64]| -> f64 {
        let ll: f64 = groups.iter().map(|g| g.y * eta(g, beta) - eta(g, beta).exp()).sum();
        ll - 0.5 * RIDGE * beta[1..].iter().map(|b| b * b).sum::<f64>()
    };
    let mut current = objective(&beta);
    let mut hessian = vec![0.0; p * p];
    for _ in 0..50 {
        let (gradient, h) = gradient_hessian(groups, &beta);
        hessian = h;
        let step = cholesky_solve(&hessian, p, &gradient)?;
        let mut scale = 1.0;
        let (next, value) = loop {
            let next: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let value = objective(&next);
            if value >= current - 1e-12 * current.abs() || scale < 1e-6 {
                break (next, value);
            }
            scale *= 0.5;
        };
        let moved = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
        beta = next;
        current = value;
        if moved < 1e-9 {
            break;
        }
    }
    let pearson: f64 = groups
        .iter()
        .map(|g| {
            let mu = eta(g, &beta).exp();
            (g.y - mu).powi(2) / mu.max(1e-12)
        })
        .sum();
    let dispersion = (pearson / (groups.len().saturating_sub(p)).max(1) as f64).max(1.0);
    let variance = (0..p)
        .map(|j| {
            let mut unit = vec![0.0; p];
            unit[j] = 1.0;
            cholesky_solve(&hessian, p, &unit).map(|col| col[j] * dispersion)
        })
        .collect::<Option<Vec<f64>>>()?;
    beta.iter().all(|b| b.is_finite()).then_some(RegressionFit { beta, variance })
}

fn eta(g: &Group, beta: &[f64]) -> f64 {
    (g.offset + g.x.iter().zip(beta).map(|(x, b)| x * b).sum::<f64>()).min(50.0)
}

/// Gradient and (negated) Hessian of the penalised log-likelihood; the Hessian is row-major.
fn gradient_hessian(groups: &[Group], beta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let p = beta.len();
    let mut gradient = vec![0.0; p];
    let mut hessian = vec![0.0; p * p];
    for g in groups {
        let mu = eta(g, beta).exp();
        let r = g.y - mu;
        for j in 0..p {
            gradient[j] += r * g.x[j];
            if g.x[j] == 0.0 {
                continue;
            }
            let w = mu * g.x[j];
            for k in 0..=j {
                hessian[j * p + k] += w * g.x[k];
            }
        }
    }
    for j in 0..p {
        for k in 0..j {
            hessian[k * p + j] = hessian[j * p + k];
        }
        if j > 0 {
            gradient[j] -= RIDGE * beta[j];
            hessian[j * p + j] += RIDGE;
        }
    }
    (gradient, hessian)
}

/// Solves `a x = b` for a symmetric positive definite row-major `a`; `None` when it is not.
fn cholesky_solve(a: &[f64], n: usize, b: &[f64]) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s = a[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

/// Normal-normal shrinkage of per-product estimates toward their precision-weighted mean.
struct EmpiricalBayes {
    mean: f64,
    /// Prior variance of the true values around the mean.
    prior: f64,
}

impl EmpiricalBayes {
    /// Smallest prior variance (keeps a little of each product's own estimate).
    const MIN_PRIOR: f64 = 1e-4;

    fn new(estimates: impl Iterator<Item = Estimate>) -> Self {
        let estimates: Vec<Estimate> = estimates.filter(|(b, v)| b.is_finite() && v.is_finite() && *v > 0.0).collect();
        if estimates.is_empty() {
            return Self { mean: 0.0, prior: Self::MIN_PRIOR };
        }
        let k = estimates.len() as f64;
        let plain = estimates.iter().map(|e| e.0).sum::<f64>() / k;
        let spread = estimates.iter().map(|e| (e.0 - plain).powi(2)).sum::<f64>() / (k - 1.0).max(1.0);
        let noise = estimates.iter().map(|e| e.1).sum::<f64>() / k;
        let prior = (spread - noise).max(Self::MIN_PRIOR);
        let weights: Vec<f64> = estimates.iter().map(|e| 1.0 / (e.1 + prior)).collect();
        let mean = estimates.iter().zip(&weights).map(|(e, w)| e.0 * w).sum::<f64>() / weights.iter().sum::<f64>();
        Self { mean, prior }
    }

    fn shrink(&self, estimate: Option<Estimate>) -> f64 {
        match estimate {
            Some((b, v)) if b.is_finite() && v.is_finite() && v > 0.0 => {
                (b / v + self.mean / self.prior) / (1.0 / v + 1.0 / self.prior)
            }
            _ => self.mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, 2, &[6.0, 5.0]).expect("spd");
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12, "{x:?}");
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], 2, &[1.0, 1.0]).is_none());
    }

    #[test]
    fn empirical_bayes_shrinks_noisy_estimates_more() {
        let eb = EmpiricalBayes::new([(-1.0, 0.01), (-2.0, 0.01), (-1.5, 0.01), (-1.5, 0.01)].into_iter());
        assert!((eb.mean + 1.5).abs() < 1e-9);
        let precise = eb.shrink(Some((-3.0, 0.0001)));
        let noisy = eb.shrink(Some((-3.0, 10.0)));
        assert!((precise + 3.0).abs() < 0.05, "{precise}");
        assert!((noisy + 1.5).abs() < 0.05, "{noisy}");
        assert_eq!(eb.shrink(None), eb.mean);
    }

    #[test]
    fn fit_recovers_a_noiseless_log_linear_product() {
        // One store, one product, units exactly exp(2 - 1.5 ln(price/10) + 0.3 promo): expected
        // values, not draws, so the fit must be near exact.
        let mut rows = SalesColumns::default();
        let start = crate::time::days_from_civil(2023, 1, 1);
        for d in 0..400 {
            let price = [10.0, 9.0, 11.0, 10.0, 8.0][(d / 30) % 5];
            let promotion = d % 11 == 0;
            let mu = (2.0 - 1.5 * (price / 10.0f64).ln() + if promotion { 0.3 } else { 0.0 }).exp() * 100.0;
            let row = super::super::ParsedSales { store_id: 1, product_id: 7, day: start + d as i64, price, promotion };
            rows.push(&row, mu.round() as u32);
        }
        let stats = SalesStats::fit(&rows, HolidayCalendar::uk_retail()).expect("fit");
        let p = stats.product(7).expect("product");
        assert_eq!(p.reference_price, 10.0);
        assert!((p.elasticity + 1.5).abs() < 0.02, "{p:?}");
        assert!((p.promo_lift - 0.3).abs() < 0.02, "{p:?}");
        assert!(stats.check().is_ok());
        assert!(stats.product(8).is_none() && stats.store(1).is_some());
        // serde_json (without `float_roundtrip`) may parse a float 1 ulp off: close, not equal.
        let back = SalesStats::from_json(&serde_json::to_vec(&stats).expect("json")).expect("parse");
        assert_eq!(back.products[0].reference_price, 10.0);
        assert!((back.products[0].elasticity - p.elasticity).abs() < 1e-12);
        assert!(SalesStats::from_json(b"{}").is_err());
        assert!(SalesStats::fit(&SalesColumns::default(), HolidayCalendar::uk_retail()).is_err());
    }
}
