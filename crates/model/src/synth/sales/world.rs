//! The fixed sales world: stores, products and the demand model. Every parameter is drawn from
//! [`SALES_WORLD_SEED`] (never the data seed), store `i` and product slot `k` from their own
//! random streams, so a world with more stores or products extends a smaller one.
//!
//! ```text
//! ln μ = store + product + weekday + season(category, day of year) + holiday
//!        + elasticity(product) · ln(price / reference price) + promotion · lift(product)
//! units ~ Poisson(μ)
//! ```

use std::f64::consts::TAU;

use crate::catalogue::REGIONS;
use crate::forecast::calendar::{self, HolidayCalendar};
use crate::rng::Rng;

/// Seed of the sales world; fixed forever.
pub const SALES_WORLD_SEED: u64 = 0x5A1E_5EED_2023_0101;

/// The product id the seed's example request uses; always in the world, priced at 29.99.
pub const SEED_PRODUCT: i64 = 123;
/// The seed example's price.
pub const SEED_PRICE: f64 = 29.99;

/// A product category: typical price, sales rate, price elasticity and yearly season.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    /// Name.
    pub name: &'static str,
    /// Typical reference price, pounds.
    pub price: f64,
    /// Mean log units per store-day at the reference price.
    pub log_rate: f64,
    /// Mean price elasticity of its products.
    pub elasticity: f64,
    /// Amplitude of the yearly season on the log scale.
    pub season: f64,
    /// Day of the year of the seasonal peak.
    pub peak: f64,
    /// Share of the catalogue.
    pub share: f64,
}

const fn cat(
    name: &'static str,
    price: f64,
    log_rate: f64,
    elasticity: f64,
    season: f64,
    peak: f64,
    share: f64,
) -> Category {
    Category { name, price, log_rate, elasticity, season, peak, share }
}

/// The categories.
pub const CATEGORIES: [Category; 8] = [
    cat("GROCERY", 2.80, 1.6, -1.3, 0.05, 20.0, 0.20),
    cat("FRESH", 3.50, 1.7, -0.8, 0.12, 190.0, 0.15),
    cat("DAIRY", 2.20, 1.8, -0.7, 0.05, 120.0, 0.12),
    cat("BEVERAGES", 4.50, 1.3, -1.8, 0.30, 200.0, 0.13),
    cat("SNACKS", 2.50, 1.4, -1.5, 0.12, 350.0, 0.12),
    cat("HOUSEHOLD", 7.50, 0.6, -1.2, 0.08, 90.0, 0.10),
    cat("PERSONAL_CARE", 9.00, 0.4, -1.4, 0.06, 330.0, 0.08),
    cat("HOME", 24.00, -0.3, -2.2, 0.35, 345.0, 0.10),
];

/// Category of [`SEED_PRODUCT`] (index into [`CATEGORIES`]: `HOME`).
const SEED_CATEGORY: usize = 7;

/// Store sizes with their log effect and share of stores.
pub const STORE_SIZES: [(&str, f64, f64); 4] =
    [("S", -0.5, 0.30), ("M", 0.0, 0.35), ("L", 0.35, 0.25), ("XL", 0.7, 0.10)];

/// Log effect of each ISO weekday, Monday first.
pub const WEEKDAY_EFFECT: [f64; 7] = [-0.08, -0.12, -0.08, -0.02, 0.10, 0.25, 0.0];

/// Log effect of each holiday of [`HolidayCalendar::uk_retail`], by rule name.
pub fn holiday_effect(name: &str) -> f64 {
    match name {
        "new_year" => -0.6,
        "good_friday" => 0.15,
        "easter_monday" => 0.2,
        "christmas" => -1.2,
        "boxing_day" => 0.35,
        _ => 0.0,
    }
}

/// A store.
#[derive(Debug, Clone)]
pub struct Store {
    /// Store id (1..=stores).
    pub id: i64,
    /// Index into [`REGIONS`].
    pub region: usize,
    /// Index into [`STORE_SIZES`].
    pub size: usize,
    /// Log effect on units.
    pub log_rate: f64,
}

/// A product.
#[derive(Debug, Clone)]
pub struct Product {
    /// Product id (not contiguous).
    pub id: i64,
    /// Index into [`CATEGORIES`].
    pub category: usize,
    /// Regular shelf price daily prices vary around.
    pub reference_price: f64,
    /// Log units per store-day at the reference price, before store and calendar effects.
    pub log_rate: f64,
    /// Price elasticity (negative).
    pub elasticity: f64,
    /// Log lift of a promotion beyond its price cut.
    pub promo_lift: f64,
}

/// The world of a given size.
#[derive(Debug, Clone)]
pub struct SalesWorld {
    /// Stores by id.
    pub stores: Vec<Store>,
    /// Products sorted by id.
    pub products: Vec<Product>,
    /// The holidays.
    pub holidays: HolidayCalendar,
    /// Log effect of each holiday rule, in calendar order.
    holiday_effects: Vec<f64>,
}

/// Random stream identifiers of the world.
const STREAM_STORE: u64 = 1;
const STREAM_PRODUCT: u64 = 2;
const STREAM_IDS: u64 = 3;

/// Rounds to a shelf price ending in 9 pence (x.x9), at least 0.19.
pub fn shelf_price(price: f64) -> f64 {
    (((price * 10.0).round() - 0.1) / 10.0 * 100.0).round().max(19.0) / 100.0
}

/// Rounds to whole pence, at least 0.01.
pub fn pence(price: f64) -> f64 {
    (price * 100.0).round().max(1.0) / 100.0
}

/// Largest product id of a catalogue of `products`: ids are spread over `1..=id_space`.
pub fn id_space(products: usize) -> usize {
    (products * 3).max(999)
}

impl SalesWorld {
    /// The world with `stores` stores (ids 1..=stores) and `products` products.
    pub fn new(stores: usize, products: usize) -> Self {
        let stores = (0..stores).map(store).collect();
        let ids = product_ids(products);
        let mut products: Vec<Product> = ids.iter().enumerate().map(|(slot, &id)| product(slot, id)).collect();
        products.sort_by_key(|p| p.id);
        let holidays = HolidayCalendar::uk_retail();
        let holiday_effects = holidays.rules.iter().map(|r| holiday_effect(r.name())).collect();
        Self { stores, products, holidays, holiday_effects }
    }

    /// Log of the calendar effect of a category on a day: weekday, season and holiday.
    pub fn log_calendar(&self, category: usize, day: i64) -> f64 {
        let c = &CATEGORIES[category];
        let doy = f64::from(calendar::day_of_year(day));
        let season = c.season * (TAU * (doy - c.peak) / 365.25).cos();
        let holiday = self.holidays.holiday_index(day).map_or(0.0, |h| self.holiday_effects[h]);
        WEEKDAY_EFFECT[calendar::weekday(day) as usize - 1] + season + holiday
    }

    /// Expected units of store `s` and product `p` (indices) on a day at a price.
    pub fn expected_units(&self, s: usize, p: usize, day: i64, price: f64, promotion: bool) -> f64 {
        let log_calendar = self.log_calendar(self.products[p].category, day);
        self.expected_units_with(s, p, log_calendar, price, promotion)
    }

    /// [`SalesWorld::expected_units`] given the day's [`SalesWorld::log_calendar`] of the
    /// product's category.
    pub fn expected_units_with(&self, s: usize, p: usize, log_calendar: f64, price: f64, promotion: bool) -> f64 {
        let (store, product) = (&self.stores[s], &self.products[p]);
        let log_mu = store.log_rate
            + product.log_rate
            + log_calendar
            + product.elasticity * (price / product.reference_price).ln()
            + if promotion { product.promo_lift } else { 0.0 };
        log_mu.exp()
    }
}

fn store(i: usize) -> Store {
    let mut rng = Rng::new(SALES_WORLD_SEED, STREAM_STORE, i as u64);
    let size = rng.weighted(&STORE_SIZES.map(|s| s.2));
    let region = rng.below(REGIONS.len());
    let log_rate = STORE_SIZES[size].1 + 0.15 * rng.normal();
    Store { id: i as i64 + 1, region, size, log_rate }
}

/// The first `products` ids of a fixed shuffle of `1..=id_space`, [`SEED_PRODUCT`] first.
fn product_ids(products: usize) -> Vec<i64> {
    let space = id_space(products);
    let mut ids: Vec<i64> = (1..=space as i64).collect();
    let seed_at = ids.iter().position(|&id| id == SEED_PRODUCT).unwrap_or_default();
    ids.swap(0, seed_at);
    let mut rng = Rng::new(SALES_WORLD_SEED, STREAM_IDS, 0);
    for i in 1..products.min(space) {
        let j = i + rng.below(space - i);
        ids.swap(i, j);
    }
    ids.truncate(products);
    ids
}

/// Product in catalogue slot `slot` (slot 0 is the seed's product 123).
fn product(slot: usize, id: i64) -> Product {
    let mut rng = Rng::new(SALES_WORLD_SEED, STREAM_PRODUCT, slot as u64);
    let drawn = rng.weighted(&CATEGORIES.map(|c| c.share));
    let category = if slot == 0 { SEED_CATEGORY } else { drawn };
    let c = &CATEGORIES[category];
    let price = shelf_price(c.price * (0.35 * rng.normal()).exp());
    let reference_price = if slot == 0 { SEED_PRICE } else { price };
    let log_rate = c.log_rate + 0.6 * rng.normal();
    let elasticity = (c.elasticity + 0.3 * rng.normal()).clamp(-4.0, -0.2);
    let promo_lift = (0.35 + 0.12 * rng.normal()).clamp(0.05, 0.9);
    Product { id, category, reference_price, log_rate, elasticity, promo_lift }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_is_fixed_and_contains_the_seed_example() {
        let a = SalesWorld::new(20, 300);
        let b = SalesWorld::new(20, 300);
        assert!(a.products.iter().zip(&b.products).all(|(x, y)| x.id == y.id && x.elasticity == y.elasticity));
        assert_eq!(a.stores[0].id, 1);
        let ids: Vec<i64> = a.products.iter().map(|p| p.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(ids[0] >= 1 && ids[ids.len() - 1] <= 999);
        assert!(ids.windows(2).any(|w| w[1] - w[0] > 1), "not contiguous");
        let p = a.products.iter().find(|p| p.id == SEED_PRODUCT).expect("product 123");
        assert_eq!((p.reference_price, CATEGORIES[p.category].name), (29.99, "HOME"));
        // A larger world extends a smaller one.
        let small = SalesWorld::new(5, 40);
        for p in &small.products {
            let q = a.products.iter().find(|q| q.id == p.id).expect("same ids");
            assert_eq!((p.log_rate, p.elasticity), (q.log_rate, q.elasticity));
        }
        assert!(a.products.iter().all(|p| p.reference_price >= 0.19 && p.elasticity < 0.0));
    }

    #[test]
    fn prices_are_rounded_to_shelf_prices() {
        assert_eq!(shelf_price(30.02), 29.99);
        assert_eq!(shelf_price(2.8), 2.79);
        assert_eq!(shelf_price(0.01), 0.19);
        assert_eq!(pence(23.9925), 23.99);
        assert_eq!(pence(0.0), 0.01);
    }
}
