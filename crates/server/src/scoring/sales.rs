//! Sales forecast records: the seed's `{"features": {"store_id": 1, "product_id": 123, "date":
//! "2024-01-01", "price": 29.99, "promotion": 0}}`, or the same fields at the top level. Read in
//! one pass into [`Slot`]s borrowed from the body, checked field by field (every wrong type,
//! missing field and impossible value listed at once, named `features.FIELD` when nested), then
//! encoded by the model's forecast pipeline ([`retail_model::forecast`]), the one training used.

use retail_model::forecast::{SalesEncoded, SalesRecord, SalesStats, encode_parsed};
use serde::de::{IgnoredAny, MapAccess};

use super::FieldErrors;
use super::slot::{Slot, scalar_kinds};
use crate::schema::ForecastResponse;

/// The fields of a forecast record, in the order errors list them.
pub const SALES_FIELDS: [&str; 5] = ["store_id", "product_id", "date", "price", "promotion"];

/// A forecast record as read: its fields, and whether they were nested under `features`.
#[derive(Default)]
pub(crate) struct RawSales<'a> {
    fields: [Slot<'a>; 5],
    nested: bool,
    /// `features` was there but not an object: its kind.
    not_object: Option<&'static str>,
}

/// What a key of a forecast record object is.
pub(crate) enum SalesKey {
    /// One of [`SALES_FIELDS`], by index.
    Field(usize),
    /// `features`: the fields, nested (the seed's shape).
    Features,
    /// `records`: a batch, where the caller accepts one (`/invocations`).
    Records,
    /// Anything else (skipped).
    Other,
}

impl SalesKey {
    /// The key `name`.
    pub(crate) fn of(name: &str) -> Self {
        match name {
            "features" => Self::Features,
            "records" => Self::Records,
            _ => SALES_FIELDS.iter().position(|f| *f == name).map_or(Self::Other, Self::Field),
        }
    }
}

impl<'a> RawSales<'a> {
    /// A record of these fields ([`SALES_FIELDS`] order), e.g. one row of v2 tensors.
    pub(crate) fn from_fields(fields: [Slot<'a>; 5]) -> Self {
        Self { fields, nested: false, not_object: None }
    }

    /// Reads the value of `key` from `map` into the record (a nested `features` object is read
    /// field by field; anything nested deeper is skipped).
    pub(crate) fn read_value<'de: 'a, A: MapAccess<'de>>(
        &mut self,
        key: SalesKey,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            SalesKey::Field(i) => self.fields[i] = map.next_value()?,
            SalesKey::Features => {
                self.nested = true;
                let nested: Nested<'a> = map.next_value()?;
                self.not_object = nested.not_object;
                for (slot, value) in self.fields.iter_mut().zip(nested.fields) {
                    if !value.is_absent() || slot.is_absent() {
                        *slot = value;
                    }
                }
            }
            SalesKey::Records | SalesKey::Other => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    /// The record's features, or every invalid field: wrong types and missing fields, then the
    /// values the forecast pipeline refuses (impossible dates, negative prices, …).
    pub(crate) fn encode(self, stats: &SalesStats) -> Result<SalesEncoded, FieldErrors> {
        let prefix = if self.nested { "features." } else { "" };
        let path = |i: usize| format!("{prefix}{}", SALES_FIELDS[i]);
        let mut errors = FieldErrors::default();
        if let Some(kind) = self.not_object {
            errors.field("features", || format!("must be an object, got {kind}"));
            return Err(errors);
        }
        let [store_id, product_id, date, price, promotion] = &self.fields;
        let store_id = integer(store_id, || path(0), &mut errors);
        let product_id = integer(product_id, || path(1), &mut errors);
        let day = date.string(|| path(2), true, &mut errors);
        let price_value = price.number(|| path(3), true, &mut errors);
        let promotion = integer(promotion, || path(4), &mut errors);
        // Placeholders stand in for the fields that failed above; their own errors are kept.
        let record = SalesRecord {
            store_id: store_id.unwrap_or(0),
            product_id: product_id.unwrap_or(0),
            date: day.unwrap_or("2000-01-01"),
            price: price_value.unwrap_or(1.0),
            promotion: promotion.unwrap_or(0),
        };
        let typed =
            [store_id.is_some(), product_id.is_some(), day.is_some(), price_value.is_some(), promotion.is_some()];
        match record.validate() {
            Ok(parsed) if errors.is_empty() => Ok(encode_parsed(&parsed, stats)),
            Ok(_) => Err(errors),
            Err(invalid) => {
                for e in invalid.errors {
                    let i = SALES_FIELDS.iter().position(|f| *f == e.field);
                    if i.is_none_or(|i| typed[i]) {
                        errors.push(|| format!("{prefix}{}", e.field), || e.reason);
                    }
                }
                Err(errors)
            }
        }
    }
}

/// A whole number within `i64`, from a JSON number (`3`, `3.0`) or a numeric string.
fn integer(slot: &Slot<'_>, path: impl Fn() -> String, errors: &mut FieldErrors) -> Option<i64> {
    let n = slot.number(&path, true, errors)?;
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Some(n as i64);
    }
    errors.push(path, || format!("must be a whole number, got {n}"));
    None
}

/// The fields nested under `features` (in [`SALES_FIELDS`] order), or the kind of value
/// `features` was when it was not an object.
struct Nested<'a> {
    fields: [Slot<'a>; 5],
    not_object: Option<&'static str>,
}

impl<'de> serde::Deserialize<'de> for Nested<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NestedVisitor)
    }
}

struct NestedVisitor;

impl NestedVisitor {
    fn kind(self, kind: &'static str) -> Nested<'static> {
        Nested { fields: Default::default(), not_object: Some(kind) }
    }
}

impl<'de> serde::de::Visitor<'de> for NestedVisitor {
    type Value = Nested<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of features")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Nested<'de>, A::Error> {
        let mut fields: [Slot<'de>; 5] = Default::default();
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            match &key {
                Slot::Str(name) if let Some(i) = SALES_FIELDS.iter().position(|f| f == name) => {
                    fields[i] = map.next_value()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Nested { fields, not_object: None })
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Nested<'de>, A::Error> {
        super::slot::SlotVisitor.visit_seq(seq)?;
        Ok(self.kind("an array"))
    }

    scalar_kinds!();
}

/// The answer of a regression (units expected, a tabular regressor's number), with its warnings.
pub fn forecast_response(value: f64, model_version: &str, warnings: Vec<String>) -> ForecastResponse {
    ForecastResponse {
        prediction: value,
        model_version: model_version.to_owned(),
        request_id: None,
        warnings,
        explanation: None,
    }
}
