use super::*;
use crate::forecast::data::{parse_sales, parse_sales_truth};
use crate::progress::Silent;

fn config(stores: u32, products: u32, start: (i64, u32, u32), days: u32) -> SalesConfig {
    SalesConfig { seed: 7, stores, products, start: days_from_civil(start.0, start.1, start.2), days }
}

fn run(config: SalesConfig) -> (String, String, SalesSummary) {
    let (mut data, mut truth) = (Vec::new(), Vec::new());
    let summary = generate(config, &mut data, Some(&mut truth), &Silent).expect("generate");
    (String::from_utf8(data).expect("utf8"), String::from_utf8(truth).expect("utf8"), summary)
}

fn on_threads(threads: usize, config: SalesConfig) -> (String, String, SalesSummary) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    pool.install(|| run(config))
}

#[test]
fn deterministic_on_any_thread_count_and_different_across_seeds() {
    let c = config(3, 25, (2023, 12, 20), 40);
    let one = on_threads(1, c);
    let two = on_threads(2, c);
    assert_eq!(one.0, two.0, "same data bytes on 1 and 2 threads");
    assert_eq!(one.1, two.1, "same truth bytes on 1 and 2 threads");
    assert_eq!(one.2, two.2);
    assert_eq!(run(c).0, one.0, "same bytes twice");
    let other = run(SalesConfig { seed: 8, ..c });
    assert_ne!(other.0, one.0);
    assert_eq!(one.2.rows, 3 * 25 * 40);
}

#[test]
fn rows_follow_the_schema_in_date_store_product_order() {
    let (data, truth, summary) = run(config(3, 12, (2023, 12, 30), 5));
    let mut lines = data.lines();
    assert_eq!(lines.next(), Some("store_id,product_id,date,price,promotion,units"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len() as u64, summary.rows);
    let keys: Vec<(&str, i64, i64)> =
        rows.iter().map(|r| (r[2], r[0].parse().expect("store"), r[1].parse().expect("product"))).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted by date, store, product");
    for r in &rows {
        assert_eq!(r.len(), 6);
        let decimals = r[3].split_once('.').map(|(_, d)| d.len());
        assert_eq!(decimals, Some(2), "price with 2 decimals: {}", r[3]);
        assert!(r[4] == "0" || r[4] == "1");
        r[5].parse::<u32>().expect("integer units");
    }
    let mut truth_lines = truth.lines();
    assert_eq!(truth_lines.next(), Some("store_id,product_id,date,expected_units"));
    for (t, r) in truth_lines.zip(&rows) {
        let t: Vec<&str> = t.split(',').collect();
        assert_eq!(t[..3], r[..3], "truth rows in the data's order");
        assert!(t[3].parse::<f64>().expect("mu") > 0.0);
    }
    assert_eq!((summary.first_date.as_str(), summary.last_date.as_str()), ("2023-12-30", "2024-01-03"));
}

#[test]
fn generated_files_read_back_with_their_truth() {
    let (data, truth, summary) = run(config(2, 10, (2024, 3, 1), 20));
    let rows = parse_sales(data.as_bytes(), &Silent).expect("parse");
    assert_eq!(rows.len() as u64, summary.rows);
    let truth = parse_sales_truth(truth.as_bytes()).expect("truth");
    let mu = truth.aligned(&rows).expect("aligned");
    // The truth is exact: recomputing μ from the world with the read prices gives the same bits.
    let world = SalesWorld::new(2, 10);
    for (i, &m) in mu.iter().enumerate().step_by(7) {
        let s = world.stores.iter().position(|s| s.id == rows.store_id[i]).expect("store");
        let p = world.products.iter().position(|p| p.id == rows.product_id[i]).expect("product");
        assert_eq!(world.expected_units(s, p, rows.day[i], rows.price[i], rows.promotion[i]), m);
    }
}

#[test]
fn truth_means_match_the_units_and_promotions_are_about_a_tenth() {
    let (data, truth, summary) = run(config(4, 60, (2023, 1, 1), 365));
    let rows = parse_sales(data.as_bytes(), &Silent).expect("parse");
    let mu = parse_sales_truth(truth.as_bytes()).expect("truth").aligned(&rows).expect("aligned");
    let ratio = |pick: &dyn Fn(usize) -> bool| {
        let (mut units, mut expected) = (0.0, 0.0);
        for i in (0..rows.len()).filter(|&i| pick(i)) {
            units += f64::from(rows.units[i]);
            expected += mu[i];
        }
        units / expected
    };
    let all = ratio(&|_| true);
    assert!((all - 1.0).abs() < 0.01, "units / expected = {all}");
    let promoted = ratio(&|i| rows.promotion[i]);
    assert!((promoted - 1.0).abs() < 0.03, "on promotion: {promoted}");
    let saturdays = ratio(&|i| calendar::weekday(rows.day[i]) == 6);
    assert!((saturdays - 1.0).abs() < 0.03, "saturdays: {saturdays}");
    assert!((summary.mean_units / summary.mean_expected_units - 1.0).abs() < 0.01);
    assert!((0.07..0.13).contains(&summary.promotion_share), "{}", summary.promotion_share);
    let b = &summary.bayes;
    assert!(b.poisson_deviance > 0.0 && b.rmse > 0.0 && b.wape > 0.0 && b.wape < 1.0, "{b:?}");
    // Regular prices change, and promotions cut them.
    let product = world::SEED_PRODUCT;
    let prices: std::collections::BTreeSet<u64> = (0..rows.len())
        .filter(|&i| rows.product_id[i] == product && !rows.promotion[i])
        .map(|i| (rows.price[i] * 100.0).round() as u64)
        .collect();
    assert!(prices.len() > 1, "{prices:?}");
}

#[test]
fn the_seed_example_is_in_distribution() {
    let (data, _, _) = run(config(3, 8, (2023, 12, 18), 21));
    let rows = parse_sales(data.as_bytes(), &Silent).expect("parse");
    let day = days_from_civil(2024, 1, 1);
    let i = (0..rows.len())
        .find(|&i| rows.store_id[i] == 1 && rows.product_id[i] == 123 && rows.day[i] == day)
        .expect("store 1, product 123 on 2024-01-01");
    let regular: Vec<f64> =
        (0..rows.len()).filter(|&i| rows.product_id[i] == 123 && !rows.promotion[i]).map(|i| rows.price[i]).collect();
    assert!(regular.iter().all(|p| (p / 29.99 - 1.0).abs() <= 0.31), "{regular:?}");
    assert!(rows.price[i] > 29.99 * 0.4 && rows.price[i] < 29.99 * 1.31);
    assert_eq!(SalesConfig::default().check(), Ok(()));
    let d = SalesConfig::default();
    assert_eq!((d.stores, d.products, d.days, d.rows()), (20, 300, 731, 4_386_000));
    assert_eq!(calendar::format_date(d.start + i64::from(d.days) - 1), "2024-12-31");
}

#[test]
fn configs_out_of_range_are_refused() {
    let ok = SalesConfig::default();
    for bad in [
        SalesConfig { stores: 0, ..ok },
        SalesConfig { products: MAX_PRODUCTS + 1, ..ok },
        SalesConfig { days: 0, ..ok },
        SalesConfig { start: days_from_civil(2200, 12, 1), days: 60, ..ok },
        SalesConfig { stores: MAX_STORES, products: MAX_PRODUCTS, days: 365, ..ok },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
        let mut sink = Vec::new();
        assert!(generate(bad, &mut sink, None, &Silent).is_err());
    }
}
