//! A v2 request's `outputs`: which of `label` and `probabilities` (a classifier's) or
//! `prediction` (a forecast's) to return, and whether `contributions` (any model's explanation,
//! with its `base`).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::scoring::answer::quote;
use crate::scoring::slot::{Slot, SlotVisitor, scalar_kinds};

/// Which outputs a request asked for (all of the model's when it names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outputs {
    /// `label`: the predicted class of each row.
    pub label: bool,
    /// `probabilities`: each row's class probabilities.
    pub probabilities: bool,
    /// `prediction`: each row's forecast.
    pub prediction: bool,
    /// `contributions` (and `base`): each row's explanation. Never implied by naming no output.
    pub contributions: bool,
}

impl Outputs {
    /// Every output of a classifier.
    pub const CLASSIFIER: Self = Self { label: true, probabilities: true, prediction: false, contributions: false };
    /// Every output of a regression.
    pub const REGRESSION: Self = Self { label: false, probabilities: false, prediction: true, contributions: false };

    /// These outputs if `all` (a model's every output) has each of them, else the first unknown.
    pub(super) fn within(self, all: Self) -> Result<Self, String> {
        let asked = [(self.label, all.label, "label"), (self.probabilities, all.probabilities, "probabilities")];
        let asked = asked.into_iter().chain([(self.prediction, all.prediction, "prediction")]);
        let known: Vec<&str> =
            [(all.label, "label"), (all.probabilities, "probabilities"), (all.prediction, "prediction")]
                .into_iter()
                .filter_map(|(has, name)| has.then_some(name))
                .collect();
        match asked.into_iter().find(|(wanted, has, _)| *wanted && !*has) {
            Some((_, _, name)) => Err(format!("unknown output \"{name}\" (outputs are {})", known.join(" and "))),
            None => Ok(self),
        }
    }
}

/// `outputs`: which of `label` and `probabilities` to return, or what is wrong with the list.
pub(super) struct OutputsSeed;

impl<'de> DeserializeSeed<'de> for OutputsSeed {
    type Value = Result<Outputs, String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl OutputsSeed {
    fn kind(self, _: &'static str) -> Result<Outputs, String> {
        Err("outputs must be an array".to_owned())
    }
}

impl<'de> Visitor<'de> for OutputsSeed {
    type Value = Result<Outputs, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("requested outputs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut wanted = Outputs::default();
        let (mut unnamed, mut unknown) = (false, None);
        while let Some(name) = seq.next_element::<OutputName<'de>>()? {
            match name.0 {
                Slot::Str(n) if n == "label" => wanted.label = true,
                Slot::Str(n) if n == "probabilities" => wanted.probabilities = true,
                Slot::Str(n) if n == "prediction" => wanted.prediction = true,
                Slot::Str(n) if n == "contributions" => wanted.contributions = true,
                Slot::Str(n) => {
                    unknown.get_or_insert_with(|| quote(&n));
                }
                _ => unnamed = true,
            }
        }
        Ok(match unknown {
            _ if unnamed => Err("each output needs a name".to_owned()),
            Some(name) => Err(format!(
                "unknown output {name} (outputs are label and probabilities, or prediction; and contributions)"
            )),
            None => Ok(wanted),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_map(map)?;
        Ok(self.kind("an object"))
    }

    scalar_kinds!();
}

/// The `name` of one requested output ([`Slot::Missing`] when it has none or is no object).
struct OutputName<'a>(Slot<'a>);

impl<'de> de::Deserialize<'de> for OutputName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OutputNameVisitor)
    }
}

struct OutputNameVisitor;

impl OutputNameVisitor {
    fn kind<'a>(self, _: &'static str) -> OutputName<'a> {
        OutputName(Slot::Missing)
    }
}

impl<'de> Visitor<'de> for OutputNameVisitor {
    type Value = OutputName<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an output")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = Slot::Missing;
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            match &key {
                Slot::Str(k) if k == "name" => name = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(OutputName(name))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(self.kind("an array"))
    }

    scalar_kinds!();
}
