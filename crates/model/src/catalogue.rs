//! Retail reference data: the product hierarchy, content classes and the basket conventions
//! (`BASKET_SIZE`, `BASKET_TYPE`) that the generator, the feature pipeline and serving share.
//!
//! Hierarchy, finest to coarsest: `PROD_CODE` ⊂ `PROD_CODE_10` (sub-commodity class) ⊂
//! `PROD_CODE_30` (commodity group, e.g. `FRESH`) ⊂ `PROD_CODE_20` (department, e.g. `FOOD`) ⊂
//! `PROD_CODE_40` (division). The seed request pairs department `FOOD` with commodity group
//! `FRESH`, which only nests this way round; see `docs/data.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a commodity group contributes to a basket's content mix (`BASKET_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[repr(u8)]
pub enum ContentClass {
    /// Perishables: produce, meat, dairy, bakery.
    Fresh = 0,
    /// Ambient, frozen and drinks.
    Grocery = 1,
    /// Everything that is not food or drink.
    Nonfood = 2,
}

impl ContentClass {
    /// The `BASKET_TYPE` value of a basket dominated by this class.
    pub fn basket_type(self) -> &'static str {
        match self {
            Self::Fresh => "FRESH",
            Self::Grocery => "GROCERY",
            Self::Nonfood => "NONFOOD",
        }
    }
}

/// One commodity group of the built-in catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Commodity {
    /// `PROD_CODE_30` value.
    pub code: &'static str,
    /// `PROD_CODE_20` value of its department.
    pub department: &'static str,
    /// `PROD_CODE_40` value of its division.
    pub division: &'static str,
    /// Content class used for `BASKET_TYPE`.
    pub class: ContentClass,
    /// Mean shelf price of a standard-tier unit, in pounds.
    pub standard_price: f64,
    /// Relative purchase frequency of a line from this group.
    pub weight: f64,
}

const fn c(
    code: &'static str,
    department: &'static str,
    division: &'static str,
    class: ContentClass,
    standard_price: f64,
    weight: f64,
) -> Commodity {
    Commodity { code, department, division, class, standard_price, weight }
}

use ContentClass::{Fresh, Grocery, Nonfood};

/// The built-in product hierarchy: 26 commodity groups in 7 departments and 3 divisions.
pub const COMMODITIES: &[Commodity] = &[
    c("FRESH", "FOOD", "D00001", Fresh, 1.60, 14.0),
    c("MEAT_FISH", "FOOD", "D00001", Fresh, 4.50, 7.0),
    c("DAIRY", "FOOD", "D00001", Fresh, 1.30, 10.0),
    c("BAKERY", "FOOD", "D00001", Fresh, 1.20, 8.0),
    c("GROCERY", "FOOD", "D00001", Grocery, 1.40, 14.0),
    c("FROZEN", "FOOD", "D00001", Grocery, 2.50, 5.0),
    c("CONFECTIONERY", "FOOD", "D00001", Grocery, 1.10, 6.0),
    c("SOFT_DRINKS", "DRINKS", "D00001", Grocery, 1.30, 6.0),
    c("HOT_DRINKS", "DRINKS", "D00001", Grocery, 2.80, 3.0),
    c("BEER_CIDER", "DRINKS", "D00001", Grocery, 4.50, 3.0),
    c("WINE_SPIRITS", "DRINKS", "D00001", Grocery, 8.00, 2.5),
    c("CLEANING", "HOUSEHOLD", "D00002", Nonfood, 2.00, 3.0),
    c("PAPER", "HOUSEHOLD", "D00002", Nonfood, 3.00, 2.5),
    c("LAUNDRY", "HOUSEHOLD", "D00002", Nonfood, 5.00, 1.5),
    c("TOILETRIES", "HEALTH_BEAUTY", "D00002", Nonfood, 2.50, 3.0),
    c("COSMETICS", "HEALTH_BEAUTY", "D00002", Nonfood, 6.00, 1.0),
    c("HEALTHCARE", "HEALTH_BEAUTY", "D00002", Nonfood, 3.50, 1.5),
    c("BABY_FOOD", "BABY", "D00002", Grocery, 1.20, 0.6),
    c("NAPPIES", "BABY", "D00002", Nonfood, 7.00, 0.4),
    c("PET_FOOD", "PET", "D00002", Grocery, 3.00, 1.5),
    c("PET_CARE", "PET", "D00002", Nonfood, 4.00, 0.5),
    c("ELECTRONICS", "GENERAL", "D00003", Nonfood, 18.00, 0.4),
    c("HOME", "GENERAL", "D00003", Nonfood, 8.00, 0.8),
    c("CLOTHING", "GENERAL", "D00003", Nonfood, 12.00, 0.6),
    c("SEASONAL", "GENERAL", "D00003", Nonfood, 5.00, 0.5),
    c("NEWS_MAGAZINES", "GENERAL", "D00003", Nonfood, 2.00, 1.5),
];

/// `STORE_REGION` values of the built-in world.
pub const REGIONS: &[&str] = &[
    "LONDON",
    "SOUTH_EAST",
    "EAST",
    "SOUTH_WEST",
    "MIDLANDS",
    "NORTH_WEST",
    "NORTH_EAST",
    "YORKSHIRE",
    "SCOTLAND",
    "WALES",
];

/// `STORE_FORMAT` values: large, medium, small (convenience) and extra-large stores.
pub const STORE_FORMATS: &[&str] = &["LS", "MS", "SS", "XLS"];

/// The unclassified value used throughout the dunnhumby data.
pub const UNCLASSIFIED: &str = "XX";

/// Content-mix share above which a basket takes the dominant class as its `BASKET_TYPE`.
pub const BASKET_TYPE_SHARE: f64 = 0.6;

/// `BASKET_SIZE` of a basket with this total spend: `S` under £15, `L` from £130, else `M`.
///
/// The seed record (£125.50, size `M`) fixes the upper bound.
pub fn basket_size(spend: f64) -> &'static str {
    if spend < 15.0 {
        "S"
    } else if spend < 130.0 {
        "M"
    } else {
        "L"
    }
}

/// `BASKET_TYPE` of a basket from its spend per content class: the class holding at least
/// [`BASKET_TYPE_SHARE`] of the classified spend, `MIXED` when none does, `XX` when nothing in
/// the basket could be classified.
pub fn basket_type(fresh: f64, grocery: f64, nonfood: f64) -> &'static str {
    let total = fresh + grocery + nonfood;
    if total <= 0.0 {
        return UNCLASSIFIED;
    }
    [(fresh, Fresh), (grocery, Grocery), (nonfood, Nonfood)]
        .into_iter()
        .find(|(spend, _)| *spend / total >= BASKET_TYPE_SHARE)
        .map_or("MIXED", |(_, class)| class.basket_type())
}

/// Where a commodity group sits in the hierarchy, as recorded in a model's input schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// `PROD_CODE_20` department.
    pub department: String,
    /// Content class.
    pub class: ContentClass,
}

/// Commodity group → placement map, as stored in a model artifact and used for `basket_items`.
pub type Hierarchy = BTreeMap<String, Placement>;

/// The built-in hierarchy as a map (what training records in the artifact).
pub fn builtin_hierarchy() -> Hierarchy {
    COMMODITIES
        .iter()
        .map(|c| (c.code.to_owned(), Placement { department: c.department.to_owned(), class: c.class }))
        .collect()
}

/// Canonical spelling of a category value: trimmed, upper case, spaces and dashes as `_`.
///
/// Training data and requests go through the same function, so `"grocery"`, `" Grocery "` and
/// `"GROCERY"` are one value.
pub fn canonical(value: &str) -> String {
    value
        .trim()
        .chars()
        .map(|ch| match ch {
            ' ' | '-' => '_',
            other => other.to_ascii_uppercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_values_are_in_the_catalogue() {
        let fresh = COMMODITIES.iter().find(|c| c.code == "FRESH").expect("FRESH");
        assert_eq!(fresh.department, "FOOD");
        assert!(REGIONS.contains(&"LONDON"));
        assert!(STORE_FORMATS.contains(&"LS"));
        assert_eq!(basket_size(125.50), "M");
        assert_eq!(basket_type(50.0, 30.0, 45.5), "MIXED");
    }

    #[test]
    fn basket_type_follows_the_dominant_share() {
        assert_eq!(basket_type(6.0, 2.0, 2.0), "FRESH");
        assert_eq!(basket_type(0.0, 0.0, 1.0), "NONFOOD");
        assert_eq!(basket_type(0.0, 0.0, 0.0), "XX");
        assert_eq!(basket_type(5.0, 5.0, 0.0), "MIXED");
    }

    #[test]
    fn canonical_spelling() {
        assert_eq!(canonical(" soft drinks "), "SOFT_DRINKS");
        assert_eq!(canonical("health-beauty"), "HEALTH_BEAUTY");
    }

    #[test]
    fn commodity_codes_are_unique_and_canonical() {
        let mut codes: Vec<_> = COMMODITIES.iter().map(|c| c.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), COMMODITIES.len());
        for c in COMMODITIES {
            assert_eq!(canonical(c.code), c.code);
            assert_eq!(canonical(c.department), c.department);
        }
    }
}
