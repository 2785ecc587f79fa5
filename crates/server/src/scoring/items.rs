//! `basket_items`, read item by item: each item's fields are checked as soon as the item is read
//! and the item is added to the basket's running totals, so no list of items is ever kept.

use std::fmt;

use retail_model::features::{BasketRecord, FeaturePipeline, ItemsAggregator, StoreContext};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::FieldErrors;
use super::slot::{Slot, SlotVisitor};

/// A record's `basket_items` as read: the running basket and the errors found so far.
pub(crate) struct Items<'p> {
    basket: ItemsAggregator<'p>,
    /// Items that are not objects, and fields of the wrong type.
    type_errors: FieldErrors,
    /// Quantities and prices out of range.
    range_errors: FieldErrors,
    /// `basket_items` was neither an object nor an array: its kind.
    not_items: Option<&'static str>,
}

impl Items<'_> {
    /// The basket's record, or every error: the items' type errors, then `errors` (the record's
    /// other fields), then out-of-range values and an empty basket.
    pub(crate) fn finish(
        self: Box<Self>,
        store: &StoreContext,
        errors: FieldErrors,
    ) -> Result<BasketRecord, FieldErrors> {
        let items = *self;
        items.finish_unboxed(store, errors)
    }

    fn finish_unboxed(self, store: &StoreContext, errors: FieldErrors) -> Result<BasketRecord, FieldErrors> {
        if let Some(kind) = self.not_items {
            let mut only = FieldErrors::default();
            only.field("basket_items", || format!("must be an object of items, got {kind}"));
            return Err(only);
        }
        let mut all = self.type_errors;
        all.extend_prefixed(String::new, errors);
        let basket = if self.range_errors.is_empty() {
            self.basket.finish(store).map_err(FieldErrors::from)
        } else {
            Err(self.range_errors)
        };
        match basket {
            Ok(record) if all.is_empty() => Ok(record),
            Ok(_) => Err(all),
            Err(invalid) => {
                all.extend_prefixed(String::new, invalid);
                Err(all)
            }
        }
    }
}

/// Reads `basket_items`: `null` is no items at all (a flat record).
pub(crate) struct ItemsSeed<'p> {
    pub(crate) pipeline: &'p FeaturePipeline,
}

impl<'de, 'p> DeserializeSeed<'de> for ItemsSeed<'p> {
    type Value = Option<Items<'p>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'p> ItemsSeed<'p> {
    fn empty(&self) -> Items<'p> {
        Items {
            basket: self.pipeline.items(),
            type_errors: FieldErrors::default(),
            range_errors: FieldErrors::default(),
            not_items: None,
        }
    }

    fn not_items<E>(self, kind: &'static str) -> Result<Option<Items<'p>>, E> {
        Ok(Some(Items { not_items: Some(kind), ..self.empty() }))
    }
}

impl<'de, 'p> Visitor<'de> for ItemsSeed<'p> {
    type Value = Option<Items<'p>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("basket items")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut items = self.empty();
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            let name = match &key {
                Slot::Str(name) => name,
                _ => "",
            };
            map.next_value_seed(ItemSeed { items: &mut items, key: ItemKey::Name(name) })?;
        }
        Ok(Some(items))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = self.empty();
        let mut i = 0;
        while seq.next_element_seed(ItemSeed { items: &mut items, key: ItemKey::Index(i) })?.is_some() {
            i += 1;
        }
        Ok(Some(items))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        self.not_items("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        self.not_items("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        self.not_items("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.not_items("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        self.not_items("a string")
    }
}

/// How an item is named in errors: its key in an object, its index in an array.
#[derive(Clone, Copy)]
enum ItemKey<'k> {
    Name(&'k str),
    Index(usize),
}

impl fmt::Display for ItemKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Index(i) => write!(f, "{i}"),
        }
    }
}

/// Reads one item and adds it to the basket.
struct ItemSeed<'i, 'p, 'k> {
    items: &'i mut Items<'p>,
    key: ItemKey<'k>,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let key = self.key;
        let slot = deserializer.deserialize_any(ItemVisitor)?;
        match slot {
            Ok(fields) => add(self.items, key, &fields),
            Err(kind) => self
                .items
                .type_errors
                .push(|| format!("basket_items.{key}"), || format!("must be an object, got {kind}")),
        }
        Ok(())
    }
}

/// An item's fields: quantity, price, category, product_id.
type ItemFields<'a> = [Slot<'a>; 4];

const ITEM_FIELDS: [&str; 4] = ["quantity", "price", "category", "product_id"];

/// Reads an item object's fields, or the kind of a value that is not an object.
struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Result<ItemFields<'de>, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a basket item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: ItemFields<'de> = Default::default();
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            match ITEM_FIELDS.iter().position(|f| matches!(&key, Slot::Str(k) if k == f)) {
                Some(i) => fields[i] = map.next_value()?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(Err(SlotVisitor.visit_seq(seq)?.kind()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }
}

/// Checks an item's field types and adds it to the basket; a mistyped number is reported and
/// replaced by a neutral stand-in so the other fields are still checked.
fn add(items: &mut Items<'_>, key: ItemKey<'_>, fields: &ItemFields<'_>) {
    let errors = &mut items.type_errors;
    let path = |field: &'static str| move || format!("basket_items.{key}.{field}");
    let quantity = fields[0].number(path("quantity"), true, errors);
    let price = fields[1].number(path("price"), true, errors);
    let category = fields[2].string(path("category"), false, errors);
    fields[3].string(path("product_id"), false, errors);
    let added = items.basket.add(key, quantity.unwrap_or(1.0), price.unwrap_or(0.0), category);
    if let Err(invalid) = added {
        items.range_errors.extend(invalid.errors);
    }
}
