//! Which request fields each engine feature is computed from, so contributions are reported per
//! *input* field. A feature computed from one field gives it its whole contribution; a derived
//! feature computed from several splits its contribution equally among them (the Shapley value
//! of a function symmetric in its inputs, and the convention shap's `Partition` users take for
//! engineered columns). Categorical fields are one engine feature each (a vocabulary code, not
//! one-hot columns), so nothing needs summing back.
//!
//! | model | derived feature | attributed to |
//! | --- | --- | --- |
//! | basket | `UNIT_PRICE` = SPEND / QUANTITY | ½ `SPEND`, ½ `QUANTITY` |
//! | forecast | `day_of_week`, `month`, `day_of_year`, `holiday`, `calendar_effect` | `date` |
//! | forecast | `relative_price`, `price_effect` (price against the product's reference price) | ½ `price`, ½ `product_id` |
//! | forecast | `promotion_effect` (promotion × the product's lift) | ½ `promotion`, ½ `product_id` |
//! | forecast | `season_effect` (the product's seasonality on the day) | ½ `product_id`, ½ `date` |
//! | forecast | `product_base_rate`, `store_base_rate` | `product_id`, `store_id` |
//! | forecast | `baseline` (sum of all the effects) | ⅕ each of `store_id`, `product_id`, `date`, `price`, `promotion` |

use crate::artifact::Features;
use crate::features::FEATURE_NAMES;

/// The input fields of a model and, per engine feature, the fields it is attributed to with
/// their shares (summing to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    /// Input field names, in the order contributions are reported.
    pub fields: Vec<String>,
    /// Per engine feature: `(field index, share)`.
    pub parts: Vec<Vec<(usize, f64)>>,
}

/// The basket request's fields.
const BASKET_FIELDS: [&str; 8] =
    ["SPEND", "QUANTITY", "PROD_CODE_20", "PROD_CODE_30", "BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT"];

/// The forecast request's fields.
const SALES_FIELDS: [&str; 5] = ["store_id", "product_id", "date", "price", "promotion"];

/// Each forecast feature's fields (indices into [`SALES_FIELDS`]), in
/// [`crate::forecast::FEATURE_NAMES`] order.
const SALES_PARTS: [&[usize]; crate::forecast::N_FEATURES] = [
    &[2],             // day_of_week
    &[2],             // month
    &[2],             // day_of_year
    &[2],             // holiday
    &[4],             // promotion
    &[3],             // price
    &[3, 1],          // relative_price
    &[3, 1],          // price_effect
    &[1],             // product_base_rate
    &[0],             // store_base_rate
    &[4, 1],          // promotion_effect
    &[1, 2],          // season_effect
    &[2],             // calendar_effect
    &[0, 1, 2, 3, 4], // baseline
];

impl Attribution {
    /// The attribution of a model's features.
    pub fn of(features: &Features) -> Self {
        match features {
            Features::Basket(_) => Self::basket(),
            Features::Sales(_) => Self::sales(),
            Features::Tabular(schema) => Self::identity(schema.columns.iter().map(|c| c.name.clone()).collect()),
        }
    }

    /// Each feature is its own field.
    pub fn identity(fields: Vec<String>) -> Self {
        let parts = (0..fields.len()).map(|f| vec![(f, 1.0)]).collect();
        Self { fields, parts }
    }

    /// The basket classifier's attribution (`UNIT_PRICE` split between `SPEND` and `QUANTITY`).
    pub fn basket() -> Self {
        let field = |name: &str| BASKET_FIELDS.iter().position(|f| *f == name);
        let parts = FEATURE_NAMES
            .iter()
            .map(|&name| match field(name) {
                Some(f) => vec![(f, 1.0)],
                // UNIT_PRICE, the one derived basket feature: SPEND / QUANTITY.
                None => vec![(0, 0.5), (1, 0.5)],
            })
            .collect();
        Self { fields: BASKET_FIELDS.iter().map(|f| (*f).to_owned()).collect(), parts }
    }

    /// The sales forecast's attribution (see the table above).
    pub fn sales() -> Self {
        Self::equal_shares(&SALES_FIELDS, &SALES_PARTS)
    }

    fn equal_shares(fields: &[&str], parts: &[&[usize]]) -> Self {
        let parts = parts.iter().map(|p| p.iter().map(|&f| (f, 1.0 / p.len() as f64)).collect()).collect();
        Self { fields: fields.iter().map(|f| (*f).to_owned()).collect(), parts }
    }

    /// Adds feature contributions `phi` (one per engine feature) to field contributions `out`.
    pub fn add(&self, phi: &[f64], out: &mut [f64]) {
        for (parts, &p) in self.parts.iter().zip(phi) {
            for &(field, share) in parts {
                out[field] += p * share;
            }
        }
    }
}
