//! Which kind of model a body is for, from its keys alone: the unqualified routes (`/predict`,
//! `/predict/batch`, `/batch-predict`) send a body the default model cannot read to the one
//! other loaded model whose kind reads it (`Models::for_body`).
//!
//! The rule: a record with `store_id` or `product_id` (at the top or under `features`) and none
//! of the basket fields is a day of sales; one whose `features` is an array, or an object
//! without those two, is a tabular row; one with a basket field (`SPEND`, `BASKET_SIZE`, …,
//! `basket_items`) and neither of the others is a basket; anything else is ambiguous. A batch is
//! judged by its first record.

use std::fmt;

use retail_model::artifact::ModelKind;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::batch::parse;
use super::record::FLAT_FIELDS;
use super::slot::scalar_kinds;

/// The shapes of body the model kinds read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// A basket: the flat record or `basket_items`.
    Basket,
    /// A day of sales.
    Sales,
    /// A tabular row: `features` by column name or in column order.
    Tabular,
}

impl BodyShape {
    /// The shape a model kind reads.
    pub fn of(kind: ModelKind) -> Self {
        match kind {
            ModelKind::BasketClassifier => Self::Basket,
            ModelKind::SalesForecast => Self::Sales,
            ModelKind::TabularClassifier | ModelKind::TabularRegressor => Self::Tabular,
        }
    }
}

/// The shape of `body`, when its keys say so unambiguously.
pub fn shape(body: &[u8]) -> Option<BodyShape> {
    parse(body, KeysSeed { depth: 0 }).ok().and_then(Keys::shape)
}

/// Whether `body` may be for another shape than `default` (a byte search, so a body for the
/// default's shape costs no second parse).
pub fn may_be_other_shape(body: &[u8], default: Option<BodyShape>) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let (features, ids) = (has(b"\"features\""), has(b"\"store_id\"") || has(b"\"product_id\""));
    match default {
        Some(BodyShape::Basket) => features || ids,
        Some(BodyShape::Sales) => !ids,
        Some(BodyShape::Tabular) => !features || ids,
        None => true,
    }
}

/// What the keys of a record said.
#[derive(Debug, Default, Clone, Copy)]
struct Keys {
    sales: bool,
    basket: bool,
    tabular: bool,
}

impl Keys {
    fn shape(self) -> Option<BodyShape> {
        match (self.sales, self.basket, self.tabular) {
            (true, false, false) => Some(BodyShape::Sales),
            (false, true, false) => Some(BodyShape::Basket),
            (false, false, true) => Some(BodyShape::Tabular),
            _ => None,
        }
    }

    fn or(self, other: Self) -> Self {
        Self {
            sales: self.sales | other.sales,
            basket: self.basket | other.basket,
            tabular: self.tabular | other.tabular,
        }
    }
}

/// Reads the keys of a record, or of a batch's first record (`depth` 1 inside `records`).
struct KeysSeed {
    depth: u8,
}

impl KeysSeed {
    /// A value that is not an object has no keys.
    fn kind(self, _: &'static str) -> Keys {
        Keys::default()
    }
}

impl<'de> DeserializeSeed<'de> for KeysSeed {
    type Value = Keys;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Keys, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed {
    type Value = Keys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record or a batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
        let mut keys = Keys::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "store_id" | "product_id" => keys.sales = true,
                "basket_items" => keys.basket = true,
                "features" => {
                    keys = keys.or(map.next_value_seed(FeaturesKeysSeed)?);
                    continue;
                }
                "records" if self.depth == 0 => {
                    keys = keys.or(map.next_value_seed(FirstSeed)?);
                    continue;
                }
                name if FLAT_FIELDS.contains(&name) => keys.basket = true,
                _ => {}
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(keys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Keys, A::Error> {
        FirstSeed.visit_seq(seq)
    }

    scalar_kinds!();
}

/// The keys of the first record of an array (the rest skipped).
struct FirstSeed;

impl FirstSeed {
    /// A value that is not an array has no records.
    fn kind(self, _: &'static str) -> Keys {
        Keys::default()
    }
}

impl<'de> DeserializeSeed<'de> for FirstSeed {
    type Value = Keys;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Keys, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstSeed {
    type Value = Keys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
        let first = seq.next_element_seed(KeysSeed { depth: 1 })?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Keys, A::Error> {
        KeysSeed { depth: 1 }.visit_map(map)
    }

    scalar_kinds!();
}

/// What a `features` value says: an array is a tabular row; an object is a day of sales when it
/// has `store_id` or `product_id`, else a tabular row (an empty object or a scalar: nothing).
struct FeaturesKeysSeed;

impl FeaturesKeysSeed {
    fn kind(self, _: &'static str) -> Keys {
        Keys::default()
    }
}

impl<'de> DeserializeSeed<'de> for FeaturesKeysSeed {
    type Value = Keys;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Keys, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FeaturesKeysSeed {
    type Value = Keys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Keys, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Keys { tabular: true, ..Keys::default() })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
        let (mut any, mut ids) = (false, false);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            any = true;
            ids |= matches!(key.as_ref(), "store_id" | "product_id");
            map.next_value::<IgnoredAny>()?;
        }
        Ok(Keys { sales: ids, tabular: any && !ids, ..Keys::default() })
    }

    scalar_kinds!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SALES: &str =
        r#"{"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}}"#;
    const SEED_BASKET: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

    #[test]
    fn records_and_batches_are_judged_by_their_keys() {
        let sales = Some(BodyShape::Sales);
        let basket = Some(BodyShape::Basket);
        assert_eq!(shape(SEED_SALES.as_bytes()), sales);
        assert_eq!(shape(br#"{"store_id": 1, "product_id": 2}"#), sales);
        assert_eq!(shape(SEED_BASKET.as_bytes()), basket);
        assert_eq!(shape(br#"{"basket_items": {}}"#), basket);
        assert_eq!(shape(format!(r#"{{"records": [{SEED_SALES}, {SEED_BASKET}]}}"#).as_bytes()), sales);
        assert_eq!(shape(format!(r#"{{"records": [{SEED_BASKET}]}}"#).as_bytes()), basket);
        for ambiguous in [r#"{"SPEND": 1, "store_id": 1}"#, "{}", "[]", "3", r#"{"records": []}"#, "not json"] {
            assert_eq!(shape(ambiguous.as_bytes()), None, "{ambiguous}");
        }
        assert!(may_be_other_shape(SEED_SALES.as_bytes(), basket));
        assert!(!may_be_other_shape(SEED_BASKET.as_bytes(), basket), "a basket body for a basket default");
        assert!(may_be_other_shape(SEED_BASKET.as_bytes(), sales));
        assert!(!may_be_other_shape(SEED_SALES.as_bytes(), sales));
    }

    #[test]
    fn features_by_name_without_ids_or_in_order_are_a_tabular_row() {
        let tabular = Some(BodyShape::Tabular);
        let seed = r#"{"features": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}"#;
        assert_eq!(shape(seed.as_bytes()), tabular);
        assert_eq!(shape(br#"{"features": {"age": 3, "city": "Leeds"}}"#), tabular);
        assert_eq!(shape(format!(r#"{{"records": [{seed}]}}"#).as_bytes()), tabular);
        assert_eq!(shape(br#"{"features": {}}"#), None);
        assert_eq!(shape(br#"{"features": [1], "SPEND": 3}"#), None);
        assert!(may_be_other_shape(seed.as_bytes(), Some(BodyShape::Basket)));
        assert!(may_be_other_shape(seed.as_bytes(), Some(BodyShape::Sales)));
        assert!(!may_be_other_shape(seed.as_bytes(), tabular));
        assert!(may_be_other_shape(SEED_BASKET.as_bytes(), tabular));
        assert!(may_be_other_shape(SEED_SALES.as_bytes(), tabular));
    }
}
