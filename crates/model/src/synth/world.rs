//! The fixed simulated world: stores, products (with premium / standard / value tiers), the
//! shopping calendar and the behaviour tables. It depends only on [`WORLD_SEED`], never on the
//! data seed, so every dataset shares one world and another `--seed` is a fair held-out set.

use crate::catalogue::{COMMODITIES, REGIONS, STORE_FORMATS};
use crate::rng::Rng;
pub use crate::time::{civil_from_days, days_from_civil};

/// Seed of the world (stores, products); fixed forever.
pub const WORLD_SEED: u64 = 0x5EED_2006_0403;

/// Customer lifestages (dunnhumby codes) with their population shares; `XX` is unknown.
pub const LIFESTAGES: &[(&str, f64)] = &[
    ("YA", 0.14), // young adults
    ("OA", 0.16), // older adults
    ("YF", 0.18), // young families
    ("OF", 0.17), // older families
    ("PE", 0.20), // pensioners
    ("OT", 0.13), // other
    ("XX", 0.02),
];

/// Shopping missions (`BASKET_DOMINANT_MISSION`).
pub const MISSIONS: [&str; 3] = ["TOP_UP", "SMALL_SHOP", "FULL_SHOP"];

/// Price tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Premium range.
    Premium = 0,
    /// Standard range.
    Standard = 1,
    /// Value range.
    Value = 2,
}

/// Price multiplier of a tier relative to standard.
pub const TIER_PRICE: [f64; 3] = [1.9, 1.0, 0.55];

/// Mean affluence of each region's population (index as [`REGIONS`]).
pub const REGION_AFFLUENCE: [f64; 10] = [0.7, 0.45, 0.15, 0.2, -0.15, -0.25, -0.45, -0.25, 0.0, -0.35];

/// First shopping day (a Monday) and the number of weeks simulated.
pub const FIRST_DAY: (i64, u32, u32) = (2006, 4, 3);
/// Weeks in the simulated calendar.
pub const WEEKS: u32 = 117;

/// A store.
#[derive(Debug, Clone)]
pub struct Store {
    /// `STORE_CODE`.
    pub code: String,
    /// Index into [`REGIONS`].
    pub region: usize,
    /// Index into [`STORE_FORMATS`].
    pub format: usize,
}

/// A product.
#[derive(Debug, Clone)]
pub struct Product {
    /// `PROD_CODE`.
    pub code: String,
    /// `PROD_CODE_10` (sub-commodity class).
    pub class_code: String,
    /// Index into [`COMMODITIES`].
    pub commodity: usize,
    /// Shelf price, pounds.
    pub price: f64,
}

/// The world.
#[derive(Debug)]
pub struct World {
    /// All stores.
    pub stores: Vec<Store>,
    /// All products.
    pub products: Vec<Product>,
    /// `shelves[commodity][class][tier]` = product indices.
    pub shelves: Vec<Vec<[Vec<usize>; 3]>>,
    /// `line_weights[mission][lifestage][commodity]`: how likely a line comes from a group.
    pub line_weights: Vec<Vec<Vec<f64>>>,
}

/// Stores per region by format: one XLS, two LS, two MS, three SS.
const STORES_PER_FORMAT: [(usize, usize); 4] = [(3, 1), (0, 2), (1, 2), (2, 3)];

impl World {
    /// Builds the fixed world.
    pub fn new() -> Self {
        let mut stores = Vec::new();
        for region in 0..REGIONS.len() {
            for &(format, count) in &STORES_PER_FORMAT {
                for _ in 0..count {
                    stores.push(Store { code: format!("STORE{:05}", stores.len() + 1), region, format });
                }
            }
        }
        debug_assert_eq!(STORE_FORMATS.len(), 4);
        let mut rng = Rng::new(WORLD_SEED, 0, 0);
        let mut products = Vec::new();
        let mut shelves = Vec::new();
        let mut class_no = 0;
        for (ci, commodity) in COMMODITIES.iter().enumerate() {
            let n_classes = 3 + rng.below(4);
            let mut classes = Vec::with_capacity(n_classes);
            for _ in 0..n_classes {
                class_no += 1;
                let class_code = format!("CL{class_no:05}");
                let class_price = commodity.standard_price * (0.25 * rng.normal()).exp();
                let mut tiers: [Vec<usize>; 3] = Default::default();
                // 3 premium, 6 standard and 3 value products per class.
                for (tier, count) in [(Tier::Premium, 3), (Tier::Standard, 6), (Tier::Value, 3)] {
                    for _ in 0..count {
                        let raw = class_price * TIER_PRICE[tier as usize] * (0.2 * rng.normal()).exp();
                        let price = ((raw * 100.0).round() / 100.0).max(0.10);
                        tiers[tier as usize].push(products.len());
                        products.push(Product {
                            code: format!("PRD{:07}", products.len() + 1),
                            class_code: class_code.clone(),
                            commodity: ci,
                            price,
                        });
                    }
                }
                classes.push(tiers);
            }
            shelves.push(classes);
        }
        let line_weights = (0..MISSIONS.len())
            .map(|m| {
                (0..LIFESTAGES.len())
                    .map(|l| {
                        COMMODITIES
                            .iter()
                            .map(|c| c.weight * mission_factor(m, c.code) * lifestage_factor(l, c.code))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self { stores, products, shelves, line_weights }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// How a mission shifts what goes in the basket.
fn mission_factor(mission: usize, commodity: &str) -> f64 {
    match (MISSIONS[mission], commodity) {
        ("TOP_UP", "FRESH" | "DAIRY" | "BAKERY") => 1.6,
        ("TOP_UP", "NEWS_MAGAZINES") => 3.0,
        ("TOP_UP", "CONFECTIONERY" | "SOFT_DRINKS") => 1.8,
        ("TOP_UP", "ELECTRONICS" | "HOME" | "CLOTHING" | "SEASONAL" | "LAUNDRY" | "PAPER") => 0.3,
        ("FULL_SHOP", "CLEANING" | "PAPER" | "LAUNDRY" | "FROZEN" | "PET_FOOD") => 1.5,
        ("FULL_SHOP", "NEWS_MAGAZINES") => 0.5,
        _ => 1.0,
    }
}

/// How a lifestage shifts what goes in the basket.
fn lifestage_factor(lifestage: usize, commodity: &str) -> f64 {
    match (LIFESTAGES[lifestage].0, commodity) {
        ("YF", "BABY_FOOD" | "NAPPIES") => 8.0,
        ("YF" | "OF", "CONFECTIONERY" | "SOFT_DRINKS") => 1.5,
        ("PE", "HEALTHCARE" | "NEWS_MAGAZINES") => 2.0,
        ("PE", "BEER_CIDER" | "WINE_SPIRITS") => 0.6,
        ("YA", "BEER_CIDER") => 1.8,
        ("YA" | "OA", "WINE_SPIRITS") => 1.5,
        ("YA", "FROZEN") => 1.3,
        ("OA", "PET_FOOD" | "PET_CARE") => 1.6,
        (_, "BABY_FOOD" | "NAPPIES") => 0.15,
        _ => 1.0,
    }
}

/// ISO-8601 week of a day as `yyyyww` (the dunnhumby `SHOP_WEEK` shape).
pub fn iso_week(days: i64) -> u32 {
    // 1970-01-01 was a Thursday; weekday 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year * 100 + week) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_functions() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        let d = days_from_civil(2006, 4, 3);
        assert_eq!(civil_from_days(d), (2006, 4, 3));
        assert_eq!((d + 3).rem_euclid(7), 0, "2006-04-03 is a Monday");
        assert_eq!(iso_week(d), 200614);
        assert_eq!(iso_week(days_from_civil(2008, 12, 29)), 200901);
        assert_eq!(iso_week(days_from_civil(2010, 1, 3)), 200953);
        for day in d..d + 1000 {
            let (y, m, dd) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, dd), day);
        }
    }

    #[test]
    fn world_is_fixed_and_covers_the_seed_values() {
        let a = World::new();
        let b = World::new();
        assert_eq!(a.products.len(), b.products.len());
        assert!(a.products.iter().zip(&b.products).all(|(x, y)| x.price == y.price && x.code == y.code));
        assert_eq!(a.stores.len(), 80);
        assert!(a.stores.iter().any(|s| REGIONS[s.region] == "LONDON" && STORE_FORMATS[s.format] == "LS"));
        assert!(a.products.iter().all(|p| p.price >= 0.10));
    }
}
