//! Forecast statistics and features over generated data.

use super::data::parse_sales;
use super::*;
use crate::progress::Silent;
use crate::synth::sales::world::{CATEGORIES, SEED_PRODUCT, SalesWorld, WEEKDAY_EFFECT, holiday_effect};
use crate::synth::sales::{SalesConfig, generate};
use crate::time::days_from_civil;

fn generated(stores: u32, products: u32, days: u32) -> (SalesColumns, SalesWorld) {
    let config = SalesConfig { seed: 3, stores, products, start: days_from_civil(2023, 1, 1), days };
    let mut data = Vec::new();
    generate(config, &mut data, None, &Silent).expect("generate");
    let rows = parse_sales(&data, &Silent).expect("parse");
    (rows, SalesWorld::new(stores as usize, products as usize))
}

fn correlation(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    let (mx, my) = pairs.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn stats_recover_the_worlds_elasticities_base_rates_and_calendar() {
    let (rows, world) = generated(8, 80, 731);
    let stats = SalesStats::fit(&rows, HolidayCalendar::uk_retail()).expect("fit");
    assert!(stats.check().is_ok());
    assert_eq!((stats.stores.len(), stats.products.len()), (8, 80));
    let products: Vec<_> = world.products.iter().map(|p| (p, stats.product(p.id).expect("seen"))).collect();
    let elasticity: Vec<(f64, f64)> = products.iter().map(|(p, s)| (p.elasticity, s.elasticity)).collect();
    let base: Vec<(f64, f64)> = products.iter().map(|(p, s)| (p.log_rate, s.log_rate)).collect();
    let lift: Vec<(f64, f64)> = products.iter().map(|(p, s)| (p.promo_lift, s.promo_lift)).collect();
    let stores: Vec<(f64, f64)> =
        world.stores.iter().map(|w| (w.log_rate, stats.store(w.id).expect("seen").log_rate)).collect();
    let (ce, cb, cs, cl) = (correlation(&elasticity), correlation(&base), correlation(&stores), correlation(&lift));
    assert!(ce > 0.9, "elasticity correlation {ce}");
    assert!(cb > 0.9, "product base rate correlation {cb}");
    assert!(cs > 0.9, "store base rate correlation {cs}");
    assert!(cl > 0.8, "promotion lift correlation {cl}");
    // Elasticities are recovered on their own scale, not just ranked.
    let bias = elasticity.iter().map(|(t, e)| e - t).sum::<f64>() / elasticity.len() as f64;
    assert!(bias.abs() < 0.1, "mean elasticity error {bias}");
    let true_mean = elasticity.iter().map(|e| e.0).sum::<f64>() / elasticity.len() as f64;
    assert!((stats.elasticity - true_mean).abs() < 0.15, "{} vs {true_mean}", stats.elasticity);
    // The calendar: weekday effects relative to Monday, each holiday's effect, and each
    // product's season (the world's category season, a cosine with its own peak).
    for (w, fitted) in stats.weekday_effects.iter().enumerate() {
        let truth = WEEKDAY_EFFECT[w] - WEEKDAY_EFFECT[0];
        assert!((fitted - truth).abs() < 0.03, "weekday {w}: {fitted} vs {truth}");
    }
    for (rule, fitted) in stats.holidays.rules.iter().zip(&stats.holiday_effects) {
        let truth = holiday_effect(rule.name());
        assert!((fitted - truth).abs() < 0.1, "{}: {fitted} vs {truth}", rule.name());
    }
    let fitted = &stats;
    let seasons: Vec<(f64, f64)> = products
        .iter()
        .flat_map(|(p, s)| {
            let c = &CATEGORIES[p.category];
            (0..12).map(move |m| {
                let day = days_from_civil(2023, m + 1, 15);
                let doy = f64::from(calendar::day_of_year(day));
                (c.season * (std::f64::consts::TAU * (doy - c.peak) / 365.25).cos(), fitted.season_effect(Some(s), day))
            })
        })
        .collect();
    let cs = correlation(&seasons);
    assert!(cs > 0.9, "season correlation {cs}");
    // Reference prices are the worlds' regular prices.
    for (p, s) in &products {
        assert!(
            (s.reference_price / p.reference_price - 1.0).abs() < 0.2,
            "{} vs {}",
            s.reference_price,
            p.reference_price
        );
    }
}

#[test]
fn the_seed_example_is_in_distribution_and_encodes_like_training_rows() {
    let (rows, _) = generated(3, 30, 400);
    let stats = SalesStats::fit(&rows, HolidayCalendar::uk_retail()).expect("fit");
    let product = stats.product(SEED_PRODUCT).expect("product 123 in the data");
    assert!((product.reference_price / 29.99 - 1.0).abs() < 0.2, "{}", product.reference_price);
    let seed = SalesRecord { store_id: 1, product_id: 123, date: "2024-01-01", price: 29.99, promotion: 0 };
    let encoded = encode(&seed, &stats).expect("valid");
    assert!(encoded.unseen.is_empty());
    // A training row, encoded from its columns and as a request, gives the same features.
    for i in (0..rows.len()).step_by(997) {
        let row = rows.row(i);
        let request = SalesRecord {
            store_id: row.store_id,
            product_id: row.product_id,
            date: calendar::format_date(row.day),
            price: row.price,
            promotion: i64::from(row.promotion),
        };
        assert_eq!(encode(&request, &stats).expect("valid"), encode_parsed(&row, &stats));
    }
}
