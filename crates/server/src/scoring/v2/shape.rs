//! A v2 tensor's `shape`, read with checked arithmetic: the product of its dimensions, or why
//! it has none (a dimension that is not a non-negative integer, or an overflow).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::scoring::slot::{SlotVisitor, scalar_kinds};

/// Most dimensions a shape may have.
const MAX_DIMS: usize = 32;

/// A tensor's `shape`: its dimensions' product (checked), or `bad` when one is not a
/// non-negative integer; the first few dimensions for messages.
pub(super) struct Shape {
    shown: Vec<String>,
    /// The first few dimensions (`None`: not a non-negative integer).
    pub(super) counts: Vec<Option<u64>>,
    /// How many dimensions.
    pub(super) dims: usize,
    /// The number of elements; `None` when the product overflows.
    pub(super) product: Option<u64>,
    /// A dimension is not a non-negative integer.
    pub(super) bad: bool,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let more = if self.dims > self.shown.len() { ", …" } else { "" };
        write!(f, "[{}{more}]", self.shown.join(", "))
    }
}

/// `shape`: `None` when it is not an array (then it is not checked).
pub(super) struct ShapeSeed;

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = Option<Shape>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ShapeSeed {
    fn kind<T>(self, _: &'static str) -> Option<T> {
        None
    }
}

impl<'de> Visitor<'de> for ShapeSeed {
    type Value = Option<Shape>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor shape")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut shape = Shape { shown: Vec::new(), counts: Vec::new(), dims: 0, product: Some(1), bad: false };
        while let Some(dim) = seq.next_element::<Dim>()? {
            shape.dims += 1;
            if shape.dims > MAX_DIMS {
                return Err(de::Error::custom(format!("a shape has more than {MAX_DIMS} dimensions")));
            }
            if shape.shown.len() < 8 {
                shape.shown.push(dim.shown);
                shape.counts.push(dim.count);
            }
            match dim.count {
                Some(n) => shape.product = shape.product.and_then(|p| p.checked_mul(n)),
                None => shape.bad = true,
            }
        }
        Ok(Some(shape))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_map(map)?;
        Ok(None)
    }

    scalar_kinds!();
}

/// One dimension: a count when it is a non-negative integer; how it reads, for messages.
struct Dim {
    count: Option<u64>,
    shown: String,
}

impl<'de> de::Deserialize<'de> for Dim {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DimVisitor)
    }
}

struct DimVisitor;

impl DimVisitor {
    fn kind(self, kind: &'static str) -> Dim {
        Dim { count: None, shown: kind.to_owned() }
    }
}

impl<'de> Visitor<'de> for DimVisitor {
    type Value = Dim;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dimension")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dim, E> {
        Ok(Dim { count: Some(v), shown: v.to_string() })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dim, E> {
        Ok(Dim { count: u64::try_from(v).ok(), shown: v.to_string() })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dim, E> {
        Ok(Dim { count: None, shown: v.to_string() })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Dim, E> {
        Ok(self.kind("a boolean"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Dim, E> {
        Ok(self.kind("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Dim, E> {
        Ok(self.kind("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Dim, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(self.kind("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Dim, A::Error> {
        SlotVisitor.visit_map(map)?;
        Ok(self.kind("an object"))
    }
}
