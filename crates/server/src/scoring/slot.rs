//! One JSON value as a record field sees it: a number or a string is kept (the string borrowed
//! from the body unless it had escapes), anything else only by its kind, its contents skipped
//! without being stored.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::FieldErrors;

/// A field's value, or [`Slot::Missing`] when the field is absent.
#[derive(Debug, Default)]
pub(crate) enum Slot<'a> {
    /// The field is absent.
    #[default]
    Missing,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// Any JSON number.
    Number(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array (contents skipped).
    Array,
    /// An object (contents skipped).
    Object,
}

impl Slot<'_> {
    /// What a reason says the value was.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Missing | Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number(_) => "a number",
            Self::Str(_) => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }

    /// Absent or `null`.
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::Missing | Self::Null)
    }

    /// The number, or an error under `path` (`is required` when absent and `required`). A string
    /// holding a finite decimal number counts, as in pydantic's lax mode (FastAPI's default).
    pub(crate) fn number(
        &self,
        path: impl FnOnce() -> String,
        required: bool,
        errors: &mut FieldErrors,
    ) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Str(s) if let Some(n) = lax_number(s) => Some(n),
            other => {
                other.mismatch(path, required, "a number", errors);
                None
            }
        }
    }

    /// The string, or an error under `path` (`is required` when absent and `required`).
    pub(crate) fn string(
        &self,
        path: impl FnOnce() -> String,
        required: bool,
        errors: &mut FieldErrors,
    ) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            other => {
                other.mismatch(path, required, "a string", errors);
                None
            }
        }
    }

    fn mismatch(&self, path: impl FnOnce() -> String, required: bool, expected: &str, errors: &mut FieldErrors) {
        match self {
            _ if self.is_absent() && !required => {}
            _ if self.is_absent() => errors.push(path, || "is required".to_owned()),
            other => errors.push(path, || format!("must be {expected}, got {}", other.kind())),
        }
    }
}

/// A finite decimal number written as a string (`"125.50"`, `" 3 "`, `"1e3"`), as pydantic v2
/// reads a number field in lax mode; not `""`, `"NaN"`, `"inf"` or `"0x10"`.
fn lax_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let decimal = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    s.parse::<f64>().ok().filter(|n| decimal && n.is_finite())
}

impl<'de> Deserialize<'de> for Slot<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SlotVisitor)
    }
}

/// Builds a [`Slot`] from any JSON value.
pub(crate) struct SlotVisitor;

impl<'de> Visitor<'de> for SlotVisitor {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Slot::Bool)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Slot::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Slot::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Slot::Number(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Slot::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Slot::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Slot::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Slot::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Slot::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Slot::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Slot::Object)
    }
}

/// The scalar `visit_*` methods of a [`Visitor`] whose `Value` a type's `kind(self, kind)`
/// builds from the kind of a value that is not what it reads (e.g. a record that is a number).
macro_rules! scalar_kinds {
    () => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(self.kind("a boolean"))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(self.kind("a number"))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(self.kind("a number"))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(self.kind("a number"))
        }

        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(self.kind("a string"))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.kind("null"))
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.kind("null"))
        }
    };
}
pub(crate) use scalar_kinds;

#[cfg(test)]
mod tests {
    use super::lax_number;

    #[test]
    fn numeric_strings_read_as_pydantic_lax_mode_does() {
        for (text, n) in [("125.50", 125.5), ("3", 3.0), (" 7 ", 7.0), ("-2", -2.0), ("1e3", 1000.0), (".5", 0.5)] {
            assert_eq!(lax_number(text), Some(n), "{text}");
        }
        for text in ["", " ", "NaN", "nan", "inf", "-Infinity", "0x10", "1,5", "12abc", "1e999", "e"] {
            assert_eq!(lax_number(text), None, "{text}");
        }
    }
}
