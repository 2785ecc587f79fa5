//! The forecast feature vector: one function, [`encode_parsed`], computes it for training rows
//! and for requests ([`encode`] validates a request first). Every feature is numeric: store and
//! product ids enter through their training statistics ([`SalesStats`]), not as categories.

use super::stats::SalesStats;
use super::{ParsedSales, SalesRecord, calendar, unseen};
use crate::features::{InvalidInput, Unseen};

/// Number of forecast features.
pub const N_FEATURES: usize = 14;

/// Names of the forecast features, in vector order.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "day_of_week",
    "month",
    "day_of_year",
    "holiday",
    "promotion",
    "price",
    "relative_price",
    "price_effect",
    "product_base_rate",
    "store_base_rate",
    "promotion_effect",
    "season_effect",
    "calendar_effect",
    "baseline",
];

/// Index of each feature in the vector.
pub mod index {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub const DAY_OF_WEEK: usize = 0;
    /// Month, 1..=12.
    pub const MONTH: usize = 1;
    /// Day of the year, 1..=366.
    pub const DAY_OF_YEAR: usize = 2;
    /// Which holiday of the stats' calendar the day is: its rule's position + 1 (1 = the first
    /// rule, New Year's Day in the built-in calendar), 0 on other days. A category: holidays
    /// differ in effect and fall on other weekdays and days of the year from year to year.
    pub const HOLIDAY: usize = 3;
    /// 1 on promotion, else 0.
    pub const PROMOTION: usize = 4;
    /// The price, pounds.
    pub const PRICE: usize = 5;
    /// Price / the product's reference price.
    pub const RELATIVE_PRICE: usize = 6;
    /// `ln(relative price) × elasticity`: the expected log change of units due to price.
    pub const PRICE_EFFECT: usize = 7;
    /// The product's log base rate.
    pub const PRODUCT_BASE_RATE: usize = 8;
    /// The store's log base rate.
    pub const STORE_BASE_RATE: usize = 9;
    /// `promotion × promotion lift`: the expected log change of units due to the promotion itself.
    pub const PROMOTION_EFFECT: usize = 10;
    /// The product's seasonal log effect on the day ([`SalesStats::season_effect`](crate::forecast::SalesStats::season_effect)).
    pub const SEASON_EFFECT: usize = 11;
    /// The log effect of the day's weekday and holiday ([`SalesStats::calendar_effect`](crate::forecast::SalesStats::calendar_effect)).
    pub const CALENDAR_EFFECT: usize = 12;
    /// The statistics' own log-linear forecast of log units: the product's and the store's base
    /// rates (the store's relative to the global rate) plus the price, promotion, season and
    /// calendar effects. The trees refine it.
    pub const BASELINE: usize = 13;
}

/// A sales record turned into forecast features.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesEncoded {
    /// Feature vector in [`FEATURE_NAMES`] order.
    pub features: [f64; N_FEATURES],
    /// Ids without training statistics (scored with the global defaults), as warnings:
    /// field `store_id` or `product_id`, value the id.
    pub unseen: Vec<Unseen>,
}

/// Validates a request and encodes it.
pub fn encode<S: AsRef<str>>(record: &SalesRecord<S>, stats: &SalesStats) -> Result<SalesEncoded, InvalidInput> {
    Ok(encode_parsed(&record.validate()?, stats))
}

/// Encodes a validated record: the one feature computation of training and serving.
pub fn encode_parsed(record: &ParsedSales, stats: &SalesStats) -> SalesEncoded {
    let mut unseen_ids = Vec::new();
    let product = stats.product(record.product_id);
    if product.is_none() {
        unseen_ids.push(unseen("product_id", record.product_id));
    }
    let store = stats.store(record.store_id);
    if store.is_none() {
        unseen_ids.push(unseen("store_id", record.store_id));
    }
    let reference_price = product.map_or(record.price, |p| p.reference_price);
    let elasticity = product.map_or(stats.elasticity, |p| p.elasticity);
    let promo_lift = product.map_or(stats.promo_lift, |p| p.promo_lift);
    let relative_price = record.price / reference_price;
    let (_, month, _) = crate::time::civil_from_days(record.day);
    let promotion = f64::from(u8::from(record.promotion));

    let mut features = [0.0; N_FEATURES];
    features[index::DAY_OF_WEEK] = f64::from(calendar::weekday(record.day));
    features[index::MONTH] = f64::from(month);
    features[index::DAY_OF_YEAR] = f64::from(calendar::day_of_year(record.day));
    features[index::HOLIDAY] = stats.holidays.holiday_index(record.day).map_or(0.0, |h| (h + 1) as f64);
    features[index::PROMOTION] = promotion;
    features[index::PRICE] = record.price;
    features[index::RELATIVE_PRICE] = relative_price;
    features[index::PRICE_EFFECT] = relative_price.ln() * elasticity;
    features[index::PRODUCT_BASE_RATE] = product.map_or(stats.global_log_rate, |p| p.log_rate);
    features[index::STORE_BASE_RATE] = store.map_or(stats.global_log_rate, |s| s.log_rate);
    features[index::PROMOTION_EFFECT] = promotion * promo_lift;
    features[index::SEASON_EFFECT] = stats.season_effect(product, record.day);
    features[index::CALENDAR_EFFECT] = stats.calendar_effect(record.day);
    features[index::BASELINE] = features[index::PRODUCT_BASE_RATE] + features[index::STORE_BASE_RATE]
        - stats.global_log_rate
        + features[index::PRICE_EFFECT]
        + features[index::PROMOTION_EFFECT]
        + features[index::SEASON_EFFECT]
        + features[index::CALENDAR_EFFECT];
    SalesEncoded { features, unseen: unseen_ids }
}

#[cfg(test)]
mod tests {
    use super::index::*;
    use super::*;
    use crate::forecast::HolidayCalendar;
    use crate::forecast::stats::{ProductStats, STATS_VERSION, StoreStats};

    fn stats() -> SalesStats {
        SalesStats {
            version: STATS_VERSION,
            rows: 1000,
            global_log_rate: 1.0,
            prior_rows: 50.0,
            elasticity: -1.2,
            promo_lift: 0.3,
            season_cos: 0.1,
            season_sin: 0.0,
            weekday_effects: vec![0.0, -0.1, 0.0, 0.0, 0.1, 0.2, 0.05],
            holiday_effects: vec![-0.5, 0.1, 0.2, -1.0, 0.3],
            holidays: HolidayCalendar::uk_retail(),
            products: vec![ProductStats {
                id: 123,
                rows: 500,
                reference_price: 31.99,
                log_rate: 2.0,
                elasticity: -2.0,
                promo_lift: 0.5,
                season_cos: -0.2,
                season_sin: 0.1,
            }],
            stores: vec![StoreStats { id: 1, rows: 500, log_rate: 0.5 }],
        }
    }

    #[test]
    fn feature_names_are_unique() {
        let mut names = FEATURE_NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES);
        assert_eq!(FEATURE_NAMES[PROMOTION_EFFECT], "promotion_effect");
    }

    #[test]
    fn the_seed_example_encodes_with_calendar_features() {
        let record = SalesRecord { store_id: 1, product_id: 123, date: "2024-01-01", price: 29.99, promotion: 0 };
        let e = encode(&record, &stats()).expect("valid");
        assert!(e.unseen.is_empty(), "{:?}", e.unseen);
        let f = e.features;
        assert_eq!((f[DAY_OF_WEEK], f[MONTH], f[DAY_OF_YEAR]), (1.0, 1.0, 1.0), "a Monday, day 1");
        assert_eq!(f[HOLIDAY], 1.0, "New Year's Day");
        assert_eq!((f[PROMOTION], f[PRICE]), (0.0, 29.99));
        assert!((f[RELATIVE_PRICE] - 29.99 / 31.99).abs() < 1e-12);
        assert!((f[PRICE_EFFECT] - (29.99f64 / 31.99).ln() * -2.0).abs() < 1e-12);
        assert!(f[PRICE_EFFECT] > 0.0, "below the reference price sells more");
        assert_eq!((f[PRODUCT_BASE_RATE], f[STORE_BASE_RATE], f[PROMOTION_EFFECT]), (2.0, 0.5, 0.0));
        let angle = std::f64::consts::TAU / 365.25;
        assert!((f[SEASON_EFFECT] - (-0.2 * angle.cos() + 0.1 * angle.sin())).abs() < 1e-12);
        assert_eq!(f[CALENDAR_EFFECT], -0.5, "a Monday (0) and New Year's Day (-0.5)");
        let baseline = 2.0 + 0.5 - 1.0 + f[PRICE_EFFECT] + f[SEASON_EFFECT] - 0.5;
        assert!((f[BASELINE] - baseline).abs() < 1e-12, "{} vs {baseline}", f[BASELINE]);
        let on_promo = SalesRecord { date: "2024-03-14", promotion: 1, ..record };
        let f = encode(&on_promo, &stats()).expect("valid").features;
        assert_eq!((f[DAY_OF_WEEK], f[MONTH], f[DAY_OF_YEAR], f[HOLIDAY]), (4.0, 3.0, 74.0, 0.0));
        assert_eq!((f[PROMOTION_EFFECT], f[CALENDAR_EFFECT]), (0.5, 0.0));
        // Each holiday is its own code, whatever its weekday or day of the year.
        let holiday = |date| encode(&SalesRecord { date, ..record }, &stats()).expect("valid").features[HOLIDAY];
        assert_eq!([holiday("2023-12-25"), holiday("2024-12-25"), holiday("2024-12-26")], [4.0, 4.0, 5.0]);
        assert_eq!([holiday("2024-03-29"), holiday("2024-04-01"), holiday("2024-12-24")], [2.0, 3.0, 0.0]);
    }

    #[test]
    fn unseen_ids_warn_and_use_the_global_defaults() {
        let record = SalesRecord { store_id: 99, product_id: 5, date: "2024-06-01", price: 4.5, promotion: 1 };
        let e = encode(&record, &stats()).expect("valid");
        let warned: Vec<(&str, &str)> = e.unseen.iter().map(|u| (u.field, u.value.as_str())).collect();
        assert_eq!(warned, [("product_id", "5"), ("store_id", "99")]);
        let f = e.features;
        assert_eq!((f[RELATIVE_PRICE], f[PRICE_EFFECT]), (1.0, 0.0), "own price is the reference");
        assert_eq!((f[PRODUCT_BASE_RATE], f[STORE_BASE_RATE]), (1.0, 1.0));
        assert_eq!(f[PROMOTION_EFFECT], 0.3, "the mean lift");
        let angle = std::f64::consts::TAU * 153.0 / 365.25;
        assert!((f[SEASON_EFFECT] - 0.1 * angle.cos()).abs() < 1e-12, "the mean season");
    }

    #[test]
    fn invalid_requests_are_refused_with_every_field() {
        let record = SalesRecord { store_id: -1, product_id: 1, date: "2023-02-30", price: f64::NAN, promotion: 0 };
        let err = encode(&record, &stats()).expect_err("invalid");
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["store_id", "date", "price"]);
    }
}
