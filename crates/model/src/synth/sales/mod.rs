//! Synthetic daily sales (the Retail Forecast schema, see [`crate::forecast`]) drawn from a
//! fixed [`world::SalesWorld`]: one row per day × store × product, sorted by date, then store,
//! then product id, with units ~ Poisson(μ) and μ written to the truth sidecar, so the best any
//! model can do (predicting μ) is known exactly.
//!
//! **Prices and promotions** are chain-wide (every store has the same price for a product on a
//! day). Each product's regular price starts at its reference price and changes on ~1 day in 45
//! (40% of changes go back to the reference, the rest to reference × e^N(0, 0.1²) clamped to
//! 0.75–1.3, rounded to a price ending in 9p). Promotions start on ~1.3% of non-promotion days
//! and last 3–14 days (~10% of product-days), with 10–40% off the regular price.
//!
//! Output is a pure function of the [`SalesConfig`]: price paths draw from one random stream per
//! product, units from one stream per row, days are generated in parallel and written in order,
//! so the bytes are the same on any number of threads.

pub mod world;

use std::fmt::Write as _;
use std::io::{self, Write};

use rayon::prelude::*;
use serde::Serialize;

use crate::forecast::calendar::{self, MAX_YEAR};
use crate::forecast::data::MAX_SALES_ROWS;
use crate::forecast::{SALES_HEADER, TRUTH_HEADER};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::time::{civil_from_days, days_from_civil};
use world::{CATEGORIES, Product, SalesWorld, pence, shelf_price};

/// Random stream identifiers of the data.
const STREAM_PRICES: u64 = 11;
const STREAM_UNITS: u64 = 12;

/// Probability that a product's regular price changes on a day.
pub const PRICE_CHANGE: f64 = 1.0 / 45.0;
/// Probability that a promotion starts on a day the product is not on promotion.
pub const PROMOTION_START: f64 = 0.013;
/// Promotion discounts.
pub const DISCOUNTS: [f64; 6] = [0.10, 0.15, 0.20, 0.25, 0.33, 0.40];
/// Most stores.
pub const MAX_STORES: u32 = 1000;
/// Most products.
pub const MAX_PRODUCTS: u32 = 10_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalesConfig {
    /// Seed of prices, promotions and units (the world itself is fixed).
    pub seed: u64,
    /// Stores (ids 1..=stores).
    pub stores: u32,
    /// Products.
    pub products: u32,
    /// First day, days since 1970-01-01.
    pub start: i64,
    /// Number of days.
    pub days: u32,
}

impl Default for SalesConfig {
    /// 20 stores × 300 products × 2023-01-01..=2024-12-31 (731 days), seed 7.
    fn default() -> Self {
        Self { seed: 7, stores: 20, products: 300, start: days_from_civil(2023, 1, 1), days: 731 }
    }
}

impl SalesConfig {
    /// Rows this config generates.
    pub fn rows(&self) -> u64 {
        u64::from(self.stores) * u64::from(self.products) * u64::from(self.days)
    }

    /// Checks the sizes and the date range.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_STORES).contains(&self.stores) {
            return Err(format!("stores must be within 1..={MAX_STORES}, got {}", self.stores));
        }
        if !(1..=MAX_PRODUCTS).contains(&self.products) {
            return Err(format!("products must be within 1..={MAX_PRODUCTS}, got {}", self.products));
        }
        if self.days == 0 {
            return Err("days must be at least 1".to_owned());
        }
        let first = civil_from_days(self.start).0;
        let last = civil_from_days(self.start + i64::from(self.days) - 1).0;
        if first < calendar::MIN_YEAR || last > MAX_YEAR {
            return Err(format!("dates must stay within {}..={MAX_YEAR}", calendar::MIN_YEAR));
        }
        if self.rows() > MAX_SALES_ROWS as u64 {
            return Err(format!("{} rows is more than the {MAX_SALES_ROWS} a sales file may have", self.rows()));
        }
        Ok(())
    }
}

/// Mean error of predicting every row with its true mean μ (the Bayes-optimal prediction).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BayesMetrics {
    /// Mean Poisson deviance.
    pub poisson_deviance: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Weighted absolute percentage error: Σ|units − μ| / Σ units.
    pub wape: f64,
}

/// Totals of a generated sales dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SalesSummary {
    /// Rows written.
    pub rows: u64,
    /// Stores.
    pub stores: u32,
    /// Products.
    pub products: u32,
    /// Days.
    pub days: u32,
    /// First date.
    pub first_date: String,
    /// Last date.
    pub last_date: String,
    /// Units sold in total.
    pub units: u64,
    /// Mean units per row.
    pub mean_units: f64,
    /// Mean of the true means μ.
    pub mean_expected_units: f64,
    /// Share of rows on promotion.
    pub promotion_share: f64,
    /// Share of rows with no units sold.
    pub zero_share: f64,
    /// Errors of the Bayes-optimal prediction.
    pub bayes: BayesMetrics,
}

/// A product's price path: regular price changes and promotions, day by day.
struct PricePath {
    rng: Rng,
    reference: f64,
    regular: f64,
    promotion_left: u32,
    discount: f64,
}

impl PricePath {
    fn new(seed: u64, product: &Product) -> Self {
        let rng = Rng::new(seed, STREAM_PRICES, product.id as u64);
        let reference = product.reference_price;
        Self { rng, reference, regular: reference, promotion_left: 0, discount: 0.0 }
    }

    /// The price and promotion flag of the next day.
    fn next_day(&mut self) -> (f64, bool) {
        let rng = &mut self.rng;
        if rng.chance(PRICE_CHANGE) {
            let multiplier = if rng.chance(0.4) { 1.0 } else { (0.1 * rng.normal()).exp().clamp(0.75, 1.3) };
            self.regular = shelf_price(self.reference * multiplier);
        }
        if self.promotion_left == 0 && rng.chance(PROMOTION_START) {
            self.promotion_left = 3 + rng.below(12) as u32;
            self.discount = DISCOUNTS[rng.below(DISCOUNTS.len())];
        }
        if self.promotion_left > 0 {
            self.promotion_left -= 1;
            (pence(self.regular * (1.0 - self.discount)), true)
        } else {
            (self.regular, false)
        }
    }
}

/// Poisson draw for any mean: Knuth's method in pieces of at most 30.
fn poisson(rng: &mut Rng, mean: f64) -> u32 {
    let mut left = mean.clamp(0.0, 100_000.0);
    let mut total = 0;
    while left > 30.0 {
        total += rng.poisson(30.0);
        left -= 30.0;
    }
    total + rng.poisson(left)
}

/// Generates the dataset of `config`: rows to `data` (with header) and, when given, each row's
/// expected units to `truth`.
pub fn generate(
    config: SalesConfig,
    data: &mut dyn Write,
    mut truth: Option<&mut dyn Write>,
    progress: &dyn Progress,
) -> io::Result<SalesSummary> {
    config.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let world = SalesWorld::new(config.stores as usize, config.products as usize);
    writeln!(data, "{}", SALES_HEADER.join(","))?;
    if let Some(t) = truth.as_deref_mut() {
        writeln!(t, "{}", TRUTH_HEADER.join(","))?;
    }
    progress.stage("generating sales", u64::from(config.days));
    let mut paths: Vec<PricePath> = world.products.iter().map(|p| PricePath::new(config.seed, p)).collect();
    let mut totals = Chunk::default();
    // A window of days: price paths advance over it, then its days are generated in parallel and
    // written in order.
    let window = (rayon::current_num_threads() * 4).max(1) as u32;
    let with_truth = truth.is_some();
    let mut first = 0;
    while first < config.days {
        let n = window.min(config.days - first) as usize;
        let prices: Vec<Vec<(f64, bool)>> =
            paths.par_iter_mut().map(|path| (0..n).map(|_| path.next_day()).collect()).collect();
        let parts: Vec<Chunk> = (0..n)
            .into_par_iter()
            .map(|d| {
                let day = config.start + i64::from(first) + d as i64;
                Chunk::day(&world, config.seed, day, |p| prices[p][d], with_truth)
            })
            .collect();
        for part in parts {
            data.write_all(part.data.as_bytes())?;
            if let Some(t) = truth.as_deref_mut() {
                t.write_all(part.truth.as_bytes())?;
            }
            totals.add(&part);
            progress.advance(1);
        }
        first += n as u32;
    }
    Ok(totals.summary(&config))
}

/// One day of rows and its sums.
#[derive(Default)]
struct Chunk {
    data: String,
    truth: String,
    rows: u64,
    units: u64,
    expected: f64,
    promotions: u64,
    zeros: u64,
    deviance: f64,
    squared: f64,
    absolute: f64,
}

impl Chunk {
    fn day(world: &SalesWorld, seed: u64, day: i64, price: impl Fn(usize) -> (f64, bool), truth: bool) -> Self {
        let date = calendar::format_date(day);
        let day_key = ((day - days_from_civil(calendar::MIN_YEAR, 1, 1)) as u64) << 40;
        let calendar_effect: Vec<f64> = (0..CATEGORIES.len()).map(|c| world.log_calendar(c, day)).collect();
        let mut chunk = Self::default();
        for (s, store) in world.stores.iter().enumerate() {
            for (p, product) in world.products.iter().enumerate() {
                let (price, promotion) = price(p);
                let mu = world.expected_units_with(s, p, calendar_effect[product.category], price, promotion);
                let row_key = day_key | ((store.id as u64) << 20) | product.id as u64;
                let mut rng = Rng::new(seed, STREAM_UNITS, row_key);
                let units = poisson(&mut rng, mu);
                let (id_s, id_p, promo) = (store.id, product.id, u8::from(promotion));
                // Writing to a String cannot fail.
                let _ = writeln!(chunk.data, "{id_s},{id_p},{date},{price:.2},{promo},{units}");
                if truth {
                    let _ = writeln!(chunk.truth, "{id_s},{id_p},{date},{mu}");
                }
                let y = f64::from(units);
                chunk.rows += 1;
                chunk.units += u64::from(units);
                chunk.expected += mu;
                chunk.promotions += u64::from(promotion);
                chunk.zeros += u64::from(units == 0);
                chunk.deviance += 2.0 * (if units > 0 { y * (y / mu).ln() } else { 0.0 } - (y - mu));
                chunk.squared += (y - mu).powi(2);
                chunk.absolute += (y - mu).abs();
            }
        }
        chunk
    }

    fn add(&mut self, other: &Self) {
        self.rows += other.rows;
        self.units += other.units;
        self.expected += other.expected;
        self.promotions += other.promotions;
        self.zeros += other.zeros;
        self.deviance += other.deviance;
        self.squared += other.squared;
        self.absolute += other.absolute;
    }

    fn summary(&self, config: &SalesConfig) -> SalesSummary {
        let n = self.rows.max(1) as f64;
        SalesSummary {
            rows: self.rows,
            stores: config.stores,
            products: config.products,
            days: config.days,
            first_date: calendar::format_date(config.start),
            last_date: calendar::format_date(config.start + i64::from(config.days) - 1),
            units: self.units,
            mean_units: self.units as f64 / n,
            mean_expected_units: self.expected / n,
            promotion_share: self.promotions as f64 / n,
            zero_share: self.zeros as f64 / n,
            bayes: BayesMetrics {
                poisson_deviance: self.deviance / n,
                rmse: (self.squared / n).sqrt(),
                mae: self.absolute / n,
                wape: if self.units > 0 { self.absolute / self.units as f64 } else { 0.0 },
            },
        }
    }
}

#[cfg(test)]
mod tests;
