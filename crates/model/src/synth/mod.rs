//! Synthetic transaction data in the dunnhumby schema, drawn from a fixed [`world::World`]:
//! customers (lifestage, price sensitivity, a latent affluence, a home store) make shopping
//! trips (top-up, small or full shop, depending on the store format), pick commodity groups by
//! mission and lifestage, and price tiers by affluence. Each basket's label is drawn from the
//! explicit [`label`] model, whose probabilities can be written to a truth sidecar.
//!
//! Output is a pure function of `(seed, baskets)`: basket `i` draws from its own random stream,
//! so chunks are generated in parallel and written in order.
//!
//! [`sales`] generates the Retail Forecast data (daily units per store × product) the same way.

pub mod label;
pub mod sales;
pub mod tabular;
pub mod world;

use std::io::{self, Write};

use rayon::prelude::*;
use serde::Serialize;

use crate::CLASSES;
use crate::catalogue::{self, COMMODITIES, REGIONS, STORE_FORMATS, UNCLASSIFIED};
use crate::features::{BasketRecord, dominant_by_spend};
use crate::progress::Progress;
use crate::rng::Rng;
use world::{LIFESTAGES, MISSIONS, REGION_AFFLUENCE, World};

/// The dunnhumby transaction header, in column order.
pub const HEADER: [&str; 22] = [
    "SHOP_WEEK",
    "SHOP_DATE",
    "SHOP_WEEKDAY",
    "SHOP_HOUR",
    "QUANTITY",
    "SPEND",
    "PROD_CODE",
    "PROD_CODE_10",
    "PROD_CODE_20",
    "PROD_CODE_30",
    "PROD_CODE_40",
    "CUST_CODE",
    "CUST_PRICE_SENSITIVITY",
    "CUST_LIFESTAGE",
    "BASKET_ID",
    "BASKET_SIZE",
    "BASKET_PRICE_SENSITIVITY",
    "BASKET_TYPE",
    "BASKET_DOMINANT_MISSION",
    "STORE_CODE",
    "STORE_FORMAT",
    "STORE_REGION",
];

/// Header of the truth sidecar.
pub const TRUTH_HEADER: &str = "BASKET_ID,P_LA,P_MM,P_UM,BASKET_PRICE_SENSITIVITY";

/// Share of baskets without a loyalty card (no customer).
const ANONYMOUS_SHARE: f64 = 0.03;
/// Share of baskets whose label is withheld (`XX`), as in the real data.
const UNLABELLED_SHARE: f64 = 0.01;
/// Share of baskets with an unclassified `BASKET_TYPE` or mission.
const UNCLASSIFIED_SHARE: f64 = 0.01;
/// Share of trips to the customer's home store.
const HOME_STORE_SHARE: f64 = 0.85;
/// Baskets per customer, on average.
const BASKETS_PER_CUSTOMER: u64 = 8;
/// Baskets generated per parallel work unit.
const CHUNK: u64 = 2048;

/// Random stream identifiers.
const STREAM_CUSTOMERS: u64 = 1;
const STREAM_BASKETS: u64 = 2;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenConfig {
    /// Number of baskets.
    pub baskets: u64,
    /// Seed of customers and baskets.
    pub seed: u64,
}

/// Totals of a generated dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenSummary {
    /// Baskets written.
    pub baskets: u64,
    /// Transaction lines written.
    pub lines: u64,
    /// Customers in the population.
    pub customers: u64,
    /// Baskets per label (`LA`, `MM`, `UM`, `XX`); written as an object keyed by label.
    #[serde(serialize_with = "labelled_counts")]
    pub labels: [u64; 4],
    /// Mean of the largest true class probability over labelled baskets (expected Bayes accuracy).
    pub expected_bayes_accuracy: f64,
}

/// Serialises per-label counts as `{"LA": …, "MM": …, "UM": …, "XX": …}`.
fn labelled_counts<S: serde::Serializer>(counts: &[u64; 4], serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(counts.len()))?;
    for (label, count) in ["LA", "MM", "UM", "XX"].iter().zip(counts) {
        map.serialize_entry(label, count)?;
    }
    map.end()
}

struct Customer {
    code: String,
    store: usize,
    affluence: f64,
    lifestage: usize,
    sensitivity: &'static str,
}

fn customer(world: &World, seed: u64, index: u64) -> Customer {
    let mut rng = Rng::new(seed, STREAM_CUSTOMERS, index);
    let store = rng.below(world.stores.len());
    let affluence = REGION_AFFLUENCE[world.stores[store].region] + 0.9 * rng.normal();
    let weights: Vec<f64> = LIFESTAGES.iter().map(|l| l.1).collect();
    let lifestage = rng.weighted(&weights);
    let noisy = affluence + 0.5 * rng.normal();
    let sensitivity = if rng.chance(0.03) {
        UNCLASSIFIED
    } else if noisy < -0.45 {
        "LA"
    } else if noisy > 0.55 {
        "UM"
    } else {
        "MM"
    };
    Customer { code: format!("CUST{:010}", index + 1), store, affluence, lifestage, sensitivity }
}

/// Mission probabilities by store format (index as [`STORE_FORMATS`]: LS, MS, SS, XLS).
const MISSION_BY_FORMAT: [[f64; 3]; 4] =
    [[0.30, 0.40, 0.30], [0.40, 0.40, 0.20], [0.62, 0.33, 0.05], [0.20, 0.35, 0.45]];
/// Weekday weights Monday..Sunday for top-ups / small shops, and for full shops.
const WEEKDAYS: [[f64; 7]; 2] =
    [[0.12, 0.12, 0.13, 0.14, 0.17, 0.19, 0.13], [0.09, 0.09, 0.10, 0.12, 0.18, 0.25, 0.17]];
/// Hour weights 08:00..21:00 for top-ups, small shops and full shops.
const HOURS: [[f64; 14]; 3] = [
    [6.0, 7.0, 6.0, 6.0, 7.0, 8.0, 7.0, 6.0, 7.0, 9.0, 10.0, 9.0, 6.0, 4.0],
    [4.0, 6.0, 8.0, 9.0, 9.0, 8.0, 7.0, 7.0, 7.0, 7.0, 7.0, 6.0, 4.0, 3.0],
    [3.0, 6.0, 9.0, 11.0, 10.0, 9.0, 8.0, 8.0, 7.0, 6.0, 6.0, 5.0, 3.0, 2.0],
];

/// One generated line before formatting.
struct Line {
    product: usize,
    quantity: u32,
    spend: f64,
}

/// Generates `config.baskets` baskets: transaction lines to `data` (with header) and, when
/// given, each basket's true class probabilities to `truth`.
pub fn generate(
    config: GenConfig,
    data: &mut dyn Write,
    mut truth: Option<&mut dyn Write>,
    progress: &dyn Progress,
) -> io::Result<GenSummary> {
    let world = World::new();
    let n_customers = config.baskets.div_ceil(BASKETS_PER_CUSTOMER).max(20);
    let customers: Vec<Customer> = (0..n_customers).into_par_iter().map(|i| customer(&world, config.seed, i)).collect();
    writeln!(data, "{}", HEADER.join(","))?;
    if let Some(t) = truth.as_deref_mut() {
        writeln!(t, "{TRUTH_HEADER}")?;
    }
    progress.stage("generating baskets", config.baskets);
    let mut summary = GenSummary { customers: n_customers, ..GenSummary::default() };
    let mut bayes_sum = 0.0;
    let chunks = config.baskets.div_ceil(CHUNK);
    // A window of chunks is generated in parallel, then written in order.
    let window = (rayon::current_num_threads() as u64 * 4).max(1);
    let mut start = 0;
    while start < chunks {
        let end = (start + window).min(chunks);
        let parts: Vec<Chunk> = (start..end)
            .into_par_iter()
            .map(|c| {
                let first = c * CHUNK;
                let last = ((c + 1) * CHUNK).min(config.baskets);
                let mut chunk = Chunk::default();
                for index in first..last {
                    chunk.basket(&world, &customers, config.seed, index);
                }
                chunk
            })
            .collect();
        for part in parts {
            data.write_all(&part.data)?;
            if let Some(t) = truth.as_deref_mut() {
                t.write_all(&part.truth)?;
            }
            summary.baskets += part.baskets;
            summary.lines += part.lines;
            for (total, n) in summary.labels.iter_mut().zip(part.labels) {
                *total += n;
            }
            bayes_sum += part.bayes_sum;
            progress.advance(part.baskets);
        }
        start = end;
    }
    let labelled: u64 = summary.labels[..3].iter().sum();
    summary.expected_bayes_accuracy = if labelled > 0 { bayes_sum / labelled as f64 } else { 0.0 };
    Ok(summary)
}

#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    truth: Vec<u8>,
    baskets: u64,
    lines: u64,
    labels: [u64; 4],
    bayes_sum: f64,
}

impl Chunk {
    fn basket(&mut self, world: &World, customers: &[Customer], seed: u64, index: u64) {
        let mut rng = Rng::new(seed, STREAM_BASKETS, index);
        let anonymous = rng.chance(ANONYMOUS_SHARE);
        let who = (!anonymous).then(|| &customers[rng.below(customers.len())]);
        let store = match who {
            Some(c) if rng.chance(HOME_STORE_SHARE) => c.store,
            _ => rng.below(world.stores.len()),
        };
        let store = &world.stores[store];
        let (affluence, lifestage) = match who {
            Some(c) => (c.affluence, c.lifestage),
            None => (REGION_AFFLUENCE[store.region] + 0.9 * rng.normal(), LIFESTAGES.len() - 1),
        };
        let mission = rng.weighted(&MISSION_BY_FORMAT[store.format]);
        let n_lines = match mission {
            0 => 1 + rng.poisson(1.6),
            1 => 3 + rng.poisson(5.0),
            _ => 10 + rng.poisson(16.0),
        }
        .min(80);
        let format = STORE_FORMATS[store.format];
        let premium = 1.3 * affluence - 0.7
            + if format == "SS" {
                0.2
            } else if format == "XLS" {
                -0.2
            } else {
                0.0
            };
        let value = -1.3 * affluence - 0.7
            + if format == "XLS" {
                0.25
            } else if format == "SS" {
                -0.1
            } else {
                0.0
            };
        let tier_weights = [premium.exp(), 1.0, value.exp()];
        let extra_units = if mission == 2 { 0.6 } else { 0.35 };
        let weights = &world.line_weights[mission][lifestage];

        let mut lines = Vec::with_capacity(n_lines as usize);
        let mut commodity_spend: Vec<(usize, f64)> = Vec::new();
        let mut department_spend: Vec<(&str, f64)> = Vec::new();
        let mut class_spend = [0.0; 3];
        let (mut spend, mut quantity) = (0.0, 0u32);
        for _ in 0..n_lines {
            let commodity = rng.weighted(weights);
            let classes = &world.shelves[commodity];
            let class = &classes[rng.below(classes.len())];
            let tier = &class[rng.weighted(&tier_weights)];
            let product = tier[rng.below(tier.len())];
            let units = (1 + rng.poisson(extra_units)).min(24);
            let promo = if rng.chance(0.08) { 0.8 } else { 1.0 };
            let line_spend = (f64::from(units) * world.products[product].price * promo * 100.0).round() / 100.0;
            spend += line_spend;
            quantity += units;
            add_spend(&mut commodity_spend, commodity, line_spend);
            add_spend(&mut department_spend, COMMODITIES[commodity].department, line_spend);
            class_spend[COMMODITIES[commodity].class as usize] += line_spend;
            lines.push(Line { product, quantity: units, spend: line_spend });
        }
        let commodity =
            dominant_by_spend(&commodity_spend, |&c| COMMODITIES[c].code).map_or("", |&c| COMMODITIES[c].code);
        let department = dominant_by_spend(&department_spend, |d| d).copied().unwrap_or("");
        let basket_type = if rng.chance(UNCLASSIFIED_SHARE) {
            UNCLASSIFIED
        } else {
            catalogue::basket_type(class_spend[0], class_spend[1], class_spend[2])
        };
        let mission_code = if rng.chance(UNCLASSIFIED_SHARE) { UNCLASSIFIED } else { MISSIONS[mission] };
        let record = BasketRecord {
            spend,
            quantity: f64::from(quantity),
            prod_code_20: department,
            prod_code_30: commodity,
            basket_size: catalogue::basket_size(spend),
            basket_type,
            store_region: REGIONS[store.region],
            store_format: format,
        };
        let probabilities = label::class_probabilities(&record);
        let drawn = rng.weighted(&probabilities);
        let withheld = rng.chance(UNLABELLED_SHARE);
        let label = if withheld { UNCLASSIFIED } else { CLASSES[drawn] };
        self.labels[if withheld { 3 } else { drawn }] += 1;
        if !withheld {
            self.bayes_sum += probabilities.iter().copied().fold(0.0, f64::max);
        }

        let day = world::days_from_civil(world::FIRST_DAY.0, world::FIRST_DAY.1, world::FIRST_DAY.2)
            + 7 * i64::from(rng.below(world::WEEKS as usize) as u32)
            + rng.weighted(&WEEKDAYS[usize::from(mission == 2)]) as i64;
        let (year, month, dom) = world::civil_from_days(day);
        // dunnhumby numbers weekdays from Sunday = 1.
        let weekday = (day + 4).rem_euclid(7) + 1;
        let hour = 8 + rng.weighted(&HOURS[mission]);
        let basket_id = 994_100_000_000 + index;
        let (cust_code, cust_sensitivity) = who.map_or(("", UNCLASSIFIED), |c| (c.code.as_str(), c.sensitivity));
        let lifestage_code = LIFESTAGES[lifestage].0;
        for line in &lines {
            let product = &world.products[line.product];
            let c = &COMMODITIES[product.commodity];
            // Writing to a Vec cannot fail.
            let _ = writeln!(
                self.data,
                "{},{year}{month:02}{dom:02},{weekday},{hour},{},{:.2},{},{},{},{},{},{cust_code},{cust_sensitivity},{lifestage_code},{basket_id},{},{label},{basket_type},{mission_code},{},{format},{}",
                world::iso_week(day),
                line.quantity,
                line.spend,
                product.code,
                product.class_code,
                c.department,
                c.code,
                c.division,
                record.basket_size,
                store.code,
                record.store_region,
            );
        }
        let _ =
            writeln!(self.truth, "{basket_id},{},{},{},{label}", probabilities[0], probabilities[1], probabilities[2]);
        self.baskets += 1;
        self.lines += lines.len() as u64;
    }
}

fn add_spend<K: PartialEq>(totals: &mut Vec<(K, f64)>, key: K, spend: f64) {
    match totals.iter_mut().find(|(k, _)| *k == key) {
        Some((_, total)) => *total += spend,
        None => totals.push((key, spend)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    fn run(seed: u64, baskets: u64) -> (String, String, GenSummary) {
        let (mut data, mut truth) = (Vec::new(), Vec::new());
        let summary = generate(GenConfig { baskets, seed }, &mut data, Some(&mut truth), &Silent).expect("generate");
        (String::from_utf8(data).expect("utf8"), String::from_utf8(truth).expect("utf8"), summary)
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let a = run(7, 3000);
        let b = run(7, 3000);
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        let c = run(8, 3000);
        assert_ne!(a.0, c.0);
        // A prefix of a larger dataset is the smaller dataset: baskets do not depend on the total
        // except through the customer population size.
        assert_eq!(a.2.baskets, 3000);
        assert_eq!(a.1.lines().count(), 3001);
    }

    #[test]
    fn lines_follow_the_header_and_conventions() {
        let (data, truth, summary) = run(3, 2000);
        let mut lines = data.lines();
        assert_eq!(lines.next(), Some(HEADER.join(",").as_str()));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len() as u64, summary.lines);
        assert!(rows.iter().all(|r| r.len() == HEADER.len()));
        let col = |name: &str| HEADER.iter().position(|h| *h == name).expect("column");
        // Basket-level columns agree with the lines: BASKET_SIZE from the summed spend.
        let mut spend: std::collections::BTreeMap<&str, (f64, &str)> = Default::default();
        for r in &rows {
            let e = spend.entry(r[col("BASKET_ID")]).or_insert((0.0, r[col("BASKET_SIZE")]));
            e.0 += r[col("SPEND")].parse::<f64>().expect("spend");
            assert_eq!(e.1, r[col("BASKET_SIZE")]);
            assert!(r[col("QUANTITY")].parse::<u32>().expect("quantity") >= 1);
            let hour: u32 = r[col("SHOP_HOUR")].parse().expect("hour");
            assert!((8..=21).contains(&hour));
        }
        assert_eq!(spend.len(), 2000);
        for (spend, size) in spend.values() {
            assert_eq!(catalogue::basket_size(*spend), *size);
        }
        // BASKET_TYPE is the content class holding >= 60% of the basket's spend (unless XX).
        let mut classes: std::collections::BTreeMap<&str, ([f64; 3], &str)> = Default::default();
        for r in &rows {
            let c = COMMODITIES.iter().find(|c| c.code == r[col("PROD_CODE_30")]).expect("known commodity");
            assert_eq!(c.department, r[col("PROD_CODE_20")], "hierarchy is consistent");
            let e = classes.entry(r[col("BASKET_ID")]).or_insert(([0.0; 3], r[col("BASKET_TYPE")]));
            e.0[c.class as usize] += r[col("SPEND")].parse::<f64>().expect("spend");
        }
        let typed = classes.values().filter(|(_, t)| *t != "XX");
        for (spend, basket_type) in typed {
            assert_eq!(catalogue::basket_type(spend[0], spend[1], spend[2]), *basket_type);
        }
        // The seed vocabulary occurs.
        for (name, value) in [
            ("BASKET_SIZE", "M"),
            ("BASKET_TYPE", "MIXED"),
            ("STORE_REGION", "LONDON"),
            ("STORE_FORMAT", "LS"),
            ("PROD_CODE_20", "FOOD"),
            ("PROD_CODE_30", "FRESH"),
        ] {
            assert!(rows.iter().any(|r| r[col(name)] == value), "{name}={value}");
        }
        // A few unclassified values, as in the real data.
        for name in ["BASKET_PRICE_SENSITIVITY", "BASKET_TYPE", "BASKET_DOMINANT_MISSION", "CUST_LIFESTAGE"] {
            assert!(rows.iter().any(|r| r[col(name)] == "XX"), "{name} has XX");
        }
        // Truth rows are distributions.
        for t in truth.lines().skip(1) {
            let p: Vec<f64> = t.split(',').skip(1).take(3).map(|x| x.parse().expect("p")).collect();
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        assert!(summary.expected_bayes_accuracy > 0.5 && summary.expected_bayes_accuracy < 0.9);
    }
}
