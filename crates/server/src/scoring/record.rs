//! One record (a `/predict` body): read in one pass into typed [`Slot`]s borrowed from the body,
//! `basket_items` aggregated item by item as they are read, then checked field by field. No
//! JSON tree is built, and a well-formed flat record allocates nothing until it is encoded.

use std::fmt;

use retail_model::features::{
    BasketRecord, Encoded, FEATURE_NAMES, FIRST_CATEGORICAL, FeaturePipeline, N_CATEGORICAL, StoreContext,
};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use retail_model::forecast::SalesStats;

use super::batch::{Batch, RecordsSeed};
use super::items::{Items, ItemsSeed};
use super::sales::{RawSales, SalesKey};
use super::slot::{Slot, SlotVisitor, scalar_kinds};
use super::{Encoder, FieldErrors, Row};

/// The flat record's fields: the numbers, then the categories in [`BasketRecord::categories`]
/// order (the model's features without the derived `UNIT_PRICE`).
pub(crate) const FLAT_FIELDS: [&str; 8] = {
    let mut names = [""; 8];
    names[0] = FEATURE_NAMES[0];
    names[1] = FEATURE_NAMES[1];
    let mut i = 0;
    while i < N_CATEGORICAL {
        names[2 + i] = FEATURE_NAMES[FIRST_CATEGORICAL + i];
        i += 1;
    }
    names
};

/// A key of a record object.
enum Key {
    /// One of [`FLAT_FIELDS`], by index.
    Flat(usize),
    /// `store_region` or `store_format` (the `basket_items` shape also takes them lower-case).
    StoreLower(usize),
    CustomerId,
    BasketItems,
    /// `records`: a batch, where the caller accepts one (`/invocations`).
    Records,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        // Spelled out (checked against FLAT_FIELDS by a test) so the match compiles to a jump
        // on length: this is the hot path of every request.
        Ok(match v {
            "SPEND" => Key::Flat(0),
            "QUANTITY" => Key::Flat(1),
            "PROD_CODE_20" => Key::Flat(2),
            "PROD_CODE_30" => Key::Flat(3),
            "BASKET_SIZE" => Key::Flat(4),
            "BASKET_TYPE" => Key::Flat(5),
            "STORE_REGION" => Key::Flat(6),
            "STORE_FORMAT" => Key::Flat(7),
            "store_region" => Key::StoreLower(0),
            "store_format" => Key::StoreLower(1),
            "customer_id" => Key::CustomerId,
            "basket_items" => Key::BasketItems,
            "records" => Key::Records,
            _ => Key::Other,
        })
    }
}

/// A record as read: every field it may use, and its `basket_items` if it has them.
struct RawRecord<'a, 'p> {
    flat: [Slot<'a>; 8],
    store_lower: [Slot<'a>; 2],
    customer_id: Slot<'a>,
    /// Boxed: most records have none, and the record is moved a few times.
    items: Option<Box<Items<'p>>>,
}

/// What a body read as a record turned out to be.
pub(crate) enum Parsed {
    /// A record object, encoded as soon as it was read: its features or its invalid fields.
    Record(Result<Row, FieldErrors>),
    /// Not an object.
    NotObject,
    /// An object with `records`, streamed into the batch.
    Batch,
}

/// Reads one record the way the model's kind reads it; with a batch, an object holding
/// `records` is a batch streamed into it.
pub(crate) struct RecordSeed<'p, 'b> {
    pub(crate) encoder: Encoder<'p>,
    pub(crate) batch: Option<&'b mut Batch<'p>>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self.encoder {
            Encoder::Basket(pipeline) => read_basket(pipeline, self.batch, map),
            Encoder::Sales(stats) => read_sales(stats, self.batch, map),
            Encoder::Tabular(schema) => super::tabular::read_tabular(schema, self.batch, map),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(Parsed::NotObject)
    }

    scalar_kinds!();
}

/// A sales forecast's record (or, with a batch, an object of `records` streamed into it).
fn read_sales<'de, 'p, A: MapAccess<'de>>(
    stats: &'p SalesStats,
    mut batch: Option<&mut Batch<'p>>,
    mut map: A,
) -> Result<Parsed, A::Error> {
    let mut record = RawSales::default();
    let mut is_batch = false;
    while let Some(key) = map.next_key::<Slot<'de>>()? {
        let key = match &key {
            Slot::Str(name) => SalesKey::of(name),
            _ => SalesKey::Other,
        };
        match key {
            SalesKey::Records if !is_batch && batch.is_some() => {
                is_batch = true;
                map.next_value_seed(RecordsSeed { batch: batch.as_deref_mut() })?;
            }
            key => record.read_value(key, &mut map)?,
        }
    }
    Ok(if is_batch { Parsed::Batch } else { Parsed::Record(record.encode(stats).map(Row::Sales)) })
}

/// A basket classifier's record (or, with a batch, an object of `records` streamed into it).
fn read_basket<'de, 'p, A: MapAccess<'de>>(
    pipeline: &'p FeaturePipeline,
    batch: Option<&mut Batch<'p>>,
    mut map: A,
) -> Result<Parsed, A::Error> {
    {
        let mut record = RawRecord {
            flat: Default::default(),
            store_lower: Default::default(),
            customer_id: Slot::Missing,
            items: None,
        };
        let mut batch = batch;
        let mut is_batch = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Flat(i) => record.flat[i] = map.next_value()?,
                Key::StoreLower(i) => record.store_lower[i] = map.next_value()?,
                Key::CustomerId => record.customer_id = map.next_value()?,
                Key::BasketItems => record.items = map.next_value_seed(ItemsSeed { pipeline })?.map(Box::new),
                Key::Records if !is_batch && batch.is_some() => {
                    is_batch = true;
                    map.next_value_seed(RecordsSeed { batch: batch.as_deref_mut() })?;
                }
                Key::Records | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(if is_batch { Parsed::Batch } else { Parsed::Record(record.encode(pipeline)) })
    }
}

impl RecordSeed<'_, '_> {
    fn kind(self, _: &'static str) -> Parsed {
        Parsed::NotObject
    }
}

impl RawRecord<'_, '_> {
    /// The record's features (with the record derived from its `basket_items`, if it has
    /// them), or every invalid field (type errors first, then ranges).
    fn encode(self, pipeline: &FeaturePipeline) -> Result<Row, FieldErrors> {
        let Self { flat, store_lower, customer_id, items } = self;
        match items {
            None => {
                encode_flat(pipeline, [&flat[0], &flat[1], &flat[2], &flat[3], &flat[4], &flat[5], &flat[6], &flat[7]])
                    .map(Row::Basket)
            }
            Some(items) => {
                let mut errors = FieldErrors::default();
                let store = store_context(&flat[6..8], &store_lower, &mut errors);
                if !customer_id.is_absent() && !matches!(customer_id, Slot::Str(_)) {
                    errors.field("customer_id", || format!("must be a string, got {}", customer_id.kind()));
                }
                let record = items.finish(&store, errors)?;
                let encoded = pipeline.encode(&record).map_err(FieldErrors::from)?;
                Ok(Row::Items(encoded, Box::new(record)))
            }
        }
    }
}

/// The store fields of a `basket_items` record; the lower-case spelling wins when both are given.
fn store_context(upper: &[Slot<'_>], lower: &[Slot<'_>; 2], errors: &mut FieldErrors) -> StoreContext {
    let mut store = [None, None];
    for (i, value) in store.iter_mut().enumerate() {
        let names = [FLAT_FIELDS[6 + i], ["store_region", "store_format"][i]];
        for (slot, name) in [&upper[i], &lower[i]].into_iter().zip(names) {
            if let Some(v) = slot.string(|| name.to_owned(), false, errors) {
                *value = Some(v.to_owned());
            }
        }
    }
    let [store_region, store_format] = store;
    StoreContext { store_region, store_format }
}

/// A flat record's features from its [`FLAT_FIELDS`] values, or every invalid field (types,
/// then the ranges of the numbers that did parse).
pub(crate) fn encode_flat(pipeline: &FeaturePipeline, fields: [&Slot<'_>; 8]) -> Result<Encoded, FieldErrors> {
    let mut errors = FieldErrors::default();
    let spend = fields[0].number(|| FLAT_FIELDS[0].to_owned(), true, &mut errors);
    let quantity = fields[1].number(|| FLAT_FIELDS[1].to_owned(), true, &mut errors);
    let mut categories = [""; N_CATEGORICAL];
    for (i, category) in categories.iter_mut().enumerate() {
        let name = FLAT_FIELDS[2 + i];
        *category = fields[2 + i].string(|| name.to_owned(), true, &mut errors).unwrap_or_default();
    }
    let [prod_code_20, prod_code_30, basket_size, basket_type, store_region, store_format] = categories;
    let record = BasketRecord {
        spend: spend.unwrap_or(0.0),
        quantity: quantity.unwrap_or(1.0),
        prod_code_20,
        prod_code_30,
        basket_size,
        basket_type,
        store_region,
        store_format,
    };
    if errors.is_empty() {
        return pipeline.encode(&record).map_err(FieldErrors::from);
    }
    if let Err(invalid) = record.validate() {
        errors.extend(invalid.errors);
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use serde::de::value::{Error, StrDeserializer};
    use serde::de::{DeserializeSeed, IntoDeserializer};

    use super::*;

    #[test]
    fn every_flat_field_is_a_key_at_its_index() {
        for (i, name) in FLAT_FIELDS.iter().enumerate() {
            let deserializer: StrDeserializer<'_, Error> = name.into_deserializer();
            assert!(matches!(KeySeed.deserialize(deserializer), Ok(Key::Flat(k)) if k == i), "{name}");
        }
    }
}
