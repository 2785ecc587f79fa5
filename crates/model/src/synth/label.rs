//! The label model: `BASKET_PRICE_SENSITIVITY` is drawn from an ordinal logit over the basket's
//! observable, model-visible fields, so a basket's true class probabilities are known exactly and
//! their argmax is the Bayes-optimal prediction (the ceiling any model can reach).
//!
//! ```text
//! u = ln( (SPEND / QUANTITY) / standard_price(PROD_CODE_30) )      price index of the basket
//! s = 0.6 + 4.5 u + region(STORE_REGION) + format(STORE_FORMAT) + type(BASKET_TYPE) + 0.3 ln(SPEND / 30)
//! P(LA) = σ(-1.8 - s)      P(UM) = σ(s - 1.8)      P(MM) = 1 - P(LA) - P(UM)
//! ```
//! A basket paying more per item than its dominant commodity group's standard shelf price leans
//! up-market; London and the South East, convenience formats and fresh baskets lean up-market;
//! hypermarkets and grocery-heavy baskets lean less affluent.

use crate::catalogue::COMMODITIES;
use crate::features::BasketRecord;

/// Weight of the price index.
pub const PRICE_WEIGHT: f64 = 4.5;
/// Weight of log spend.
pub const SPEND_WEIGHT: f64 = 0.3;
/// Spend at which the spend term is zero.
pub const SPEND_PIVOT: f64 = 30.0;
/// Ordinal cut-point: `P(LA) = σ(-CUT - s)`, `P(UM) = σ(s - CUT)`.
pub const CUT: f64 = 1.8;
/// Shift of the latent score, so that mid-market is the most common class as in the real data.
pub const INTERCEPT: f64 = 0.6;
/// Reference unit price used when the dominant commodity group is not in the catalogue.
pub const FALLBACK_PRICE: f64 = 2.0;

/// Region effect on the latent score.
pub fn region_effect(region: &str) -> f64 {
    match region {
        "LONDON" => 0.6,
        "SOUTH_EAST" => 0.4,
        "SOUTH_WEST" => 0.15,
        "EAST" => 0.1,
        "SCOTLAND" => 0.0,
        "MIDLANDS" => -0.15,
        "NORTH_WEST" | "YORKSHIRE" => -0.2,
        "WALES" => -0.3,
        "NORTH_EAST" => -0.4,
        _ => 0.0,
    }
}

/// Store-format effect on the latent score.
pub fn format_effect(format: &str) -> f64 {
    match format {
        "SS" => 0.35,
        "MS" => 0.1,
        "XLS" => -0.25,
        _ => 0.0,
    }
}

/// Basket-type effect on the latent score.
pub fn type_effect(basket_type: &str) -> f64 {
    match basket_type {
        "FRESH" => 0.3,
        "NONFOOD" => 0.1,
        "GROCERY" => -0.2,
        _ => 0.0,
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// True `[P(LA), P(MM), P(UM)]` of a basket.
pub fn class_probabilities<S: AsRef<str>>(record: &BasketRecord<S>) -> [f64; 3] {
    let reference = COMMODITIES
        .iter()
        .find(|c| c.code == record.prod_code_30.as_ref())
        .map_or(FALLBACK_PRICE, |c| c.standard_price);
    let unit_price = record.spend / record.quantity;
    let u = (unit_price.max(0.01) / reference).ln();
    let s = INTERCEPT
        + PRICE_WEIGHT * u
        + region_effect(record.store_region.as_ref())
        + format_effect(record.store_format.as_ref())
        + type_effect(record.basket_type.as_ref())
        + SPEND_WEIGHT * (record.spend.max(0.01) / SPEND_PIVOT).ln();
    let la = sigmoid(-CUT - s);
    let um = sigmoid(s - CUT);
    [la, 1.0 - la - um, um]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_a_distribution_and_ordered_in_price() {
        let record = |spend: f64| BasketRecord {
            spend,
            quantity: 10.0,
            prod_code_20: "FOOD",
            prod_code_30: "FRESH",
            basket_size: "M",
            basket_type: "MIXED",
            store_region: "MIDLANDS",
            store_format: "LS",
        };
        let mut last_um = 0.0;
        for spend in [5.0, 10.0, 16.0, 30.0, 60.0] {
            let p = class_probabilities(&record(spend));
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(p.iter().all(|&x| x > 0.0));
            assert!(p[2] > last_um, "pricier baskets lean up-market");
            last_um = p[2];
        }
    }
}
