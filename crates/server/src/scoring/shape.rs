//! Which kind of model a body is for, from its keys alone: the unqualified routes (`/predict`,
//! `/predict/batch`, `/batch-predict`) send a body the default model cannot read to the one
//! other loaded model whose kind reads it (`Models::for_body`).
//!
//! The rule: a record with `features`, `store_id` or `product_id` and none of the basket fields
//! is a day of sales; one with a basket field (`SPEND`, `BASKET_SIZE`, …, `basket_items`) and
//! none of those is a basket; anything else is ambiguous. A batch is judged by its first record.

use std::fmt;

use retail_model::artifact::ModelKind;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::batch::parse;
use super::record::FLAT_FIELDS;
use super::slot::scalar_kinds;

/// The kind of model `body` is for, when its keys say so unambiguously.
pub fn shape(body: &[u8]) -> Option<ModelKind> {
    parse(body, KeysSeed { depth: 0 }).ok().and_then(Keys::kind)
}

/// Whether `body` may be for another kind than `default` (a byte search, so a body for the
/// default kind costs no second parse).
pub fn may_be_other_shape(body: &[u8], default: Option<ModelKind>) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let sales = has(b"\"features\"") || has(b"\"store_id\"");
    match default {
        Some(ModelKind::BasketClassifier) => sales,
        Some(ModelKind::SalesForecast) => !sales,
        None => true,
    }
}

/// What the keys of a record said.
#[derive(Debug, Default, Clone, Copy)]
struct Keys {
    sales: bool,
    basket: bool,
}

impl Keys {
    fn kind(self) -> Option<ModelKind> {
        match (self.sales, self.basket) {
            (true, false) => Some(ModelKind::SalesForecast),
            (false, true) => Some(ModelKind::BasketClassifier),
            _ => None,
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
                "features" | "store_id" | "product_id" => keys.sales = true,
                "basket_items" => keys.basket = true,
                "records" if self.depth == 0 => {
                    let first = map.next_value_seed(FirstSeed)?;
                    keys.sales |= first.sales;
                    keys.basket |= first.basket;
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SALES: &str =
        r#"{"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}}"#;
    const SEED_BASKET: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

    #[test]
    fn records_and_batches_are_judged_by_their_keys() {
        let sales = Some(ModelKind::SalesForecast);
        let basket = Some(ModelKind::BasketClassifier);
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
}
