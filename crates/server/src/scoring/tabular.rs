//! Tabular records (seed 001): `{"features": {"col": v, …}}` by column name (absent columns are
//! missing; unknown names are refused, each named) or `{"features": [v1, …, vn]}` in the
//! schema's column order (exactly n values). Values are numbers, strings or `null` (missing).
//! Read in one pass into [`Slot`]s borrowed from the body, then encoded by
//! [`TabularSchema::encode`], the function training encoded with; every bad field is listed as
//! `features.COLUMN`.

use std::fmt;

use retail_model::tabular::{TabularSchema, TabularWarning, Value};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::answer::PREFIX_CHARS;
use super::batch::{Batch, RecordsSeed};
use super::record::Parsed;
use super::slot::{Slot, scalar_kinds};
use super::{FieldErrors, Row};

/// Most column names an error message lists (the rest are counted).
const NAMES_LISTED: usize = 12;

/// The schema's column names for a message: the first [`NAMES_LISTED`], then how many more.
pub(crate) fn column_list(schema: &TabularSchema) -> String {
    let names: Vec<&str> = schema.columns.iter().take(NAMES_LISTED).map(|c| c.name.as_str()).collect();
    let more = schema.len().saturating_sub(NAMES_LISTED);
    if more == 0 { names.join(", ") } else { format!("{}, … ({more} more)", names.join(", ")) }
}

/// A name as an error's field shows it: at most [`PREFIX_CHARS`] characters (then `…`).
fn short(name: &str) -> String {
    match name.char_indices().nth(PREFIX_CHARS) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

/// One row's feature values and warnings from one slot per column (schema order): absent and
/// `null` are missing, numbers and strings are encoded by the column, anything else is refused.
/// Errors name `{prefix}{column}`: type errors first, then the values the columns refuse.
pub(crate) fn encode_slots(schema: &TabularSchema, slots: &[Slot<'_>], prefix: &str) -> Result<Row, FieldErrors> {
    let mut errors = FieldErrors::default();
    if slots.len() != schema.len() {
        let reason = || format!("must hold {} values ({}), got {}", schema.len(), column_list(schema), slots.len());
        errors.field(prefix.trim_end_matches('.'), reason);
        return Err(errors);
    }
    let values: Vec<Value<'_>> = schema
        .columns
        .iter()
        .zip(slots)
        .map(|(column, slot)| match slot {
            Slot::Missing | Slot::Null => Value::Missing,
            Slot::Number(x) => Value::Number(*x),
            Slot::Str(text) => Value::Text(text),
            other => {
                let reason = || format!("must be a number, a string or null, got {}", other.kind());
                errors.push(|| format!("{prefix}{}", column.name), reason);
                Value::Missing
            }
        })
        .collect();
    let mut features = Vec::with_capacity(schema.len());
    let mut warnings = Vec::new();
    if let Err(invalid) = schema.encode(&values, prefix, &mut features, &mut warnings) {
        errors.extend(invalid.errors);
    }
    errors.into_result()?;
    // Each column warns at most once; the cap keeps that promise whatever the encoder does.
    warnings.truncate(schema.len());
    Ok(Row::Tabular { features, warnings })
}

/// Shortens the values a warning quotes (one character more than it shows, so it still knows to
/// add `…`), so a batch keeps no copy of long values.
pub(crate) fn clip(warnings: &mut [TabularWarning]) {
    for w in warnings {
        if let TabularWarning::Unseen { value, .. } = w
            && let Some((end, _)) = value.char_indices().nth(PREFIX_CHARS + 1)
        {
            value.truncate(end);
        }
    }
}

/// A tabular model's record (or, with a batch, an object of `records` streamed into it). Keys
/// other than `features` and `records` are skipped.
pub(crate) fn read_tabular<'de, 'p, A: MapAccess<'de>>(
    schema: &'p TabularSchema,
    mut batch: Option<&mut Batch<'p>>,
    mut map: A,
) -> Result<Parsed, A::Error> {
    let mut features = None;
    let mut is_batch = false;
    while let Some(key) = map.next_key::<Slot<'de>>()? {
        match &key {
            Slot::Str(k) if k == "features" && features.is_none() => {
                features = Some(map.next_value_seed(FeaturesSeed { schema })?);
            }
            Slot::Str(k) if k == "records" && !is_batch && batch.is_some() => {
                is_batch = true;
                map.next_value_seed(RecordsSeed { batch: batch.as_deref_mut() })?;
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    if is_batch {
        return Ok(Parsed::Batch);
    }
    let row = match features {
        Some(Ok(slots)) => encode_slots(schema, &slots, "features."),
        Some(Err(errors)) => Err(errors),
        None => {
            let mut errors = FieldErrors::default();
            errors.field("features", || {
                format!("is required: an object by column name, or an array of {} values", schema.len())
            });
            Err(errors)
        }
    };
    Ok(Parsed::Record(row))
}

/// `features`: one slot per column in schema order, from an object by name or an array in
/// order; or every problem with it (unknown names, a wrong count, not an object or array).
struct FeaturesSeed<'p> {
    schema: &'p TabularSchema,
}

type Features<'a> = Result<Vec<Slot<'a>>, FieldErrors>;

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_> {
    type Value = Features<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl FeaturesSeed<'_> {
    fn kind<'a>(self, kind: &'static str) -> Features<'a> {
        let mut errors = FieldErrors::default();
        errors.field("features", || format!("must be an object or an array, got {kind}"));
        Err(errors)
    }

    /// The column `name`, trying `hint` (the column after the previous key) first: keys usually
    /// come in schema order.
    fn position(&self, name: &str, hint: usize) -> Option<usize> {
        let columns = &self.schema.columns;
        match columns.get(hint) {
            Some(c) if c.name == name => Some(hint),
            _ => self.schema.position(name),
        }
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_> {
    type Value = Features<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("features by column name or in column order")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: Vec<Slot<'de>> = std::iter::repeat_with(Slot::default).take(self.schema.len()).collect();
        let mut errors = FieldErrors::default();
        let mut hint = 0;
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            let name = match &key {
                Slot::Str(name) => name.as_ref(),
                _ => "",
            };
            match self.position(name, hint) {
                Some(i) => {
                    slots[i] = map.next_value()?;
                    hint = i + 1;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    let reason = || format!("is not a column of this model (columns: {})", column_list(self.schema));
                    errors.push(|| format!("features.{}", short(name)), reason);
                }
            }
        }
        Ok(errors.into_result().map(|()| slots))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let n = self.schema.len();
        let mut slots = Vec::with_capacity(n);
        let mut count = 0usize;
        while let Some(slot) = seq.next_element::<Slot<'de>>()? {
            count += 1;
            if slots.len() < n {
                slots.push(slot);
            }
        }
        if count == n {
            return Ok(Ok(slots));
        }
        let mut errors = FieldErrors::default();
        let reason =
            || format!("must hold {n} values, one per column in order ({}), got {count}", column_list(self.schema));
        errors.field("features", reason);
        Ok(Err(errors))
    }

    scalar_kinds!();
}
