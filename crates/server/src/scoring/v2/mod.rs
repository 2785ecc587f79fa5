//! Open Inference Protocol v2 requests: columnar tensors, one per flat-record field, read
//! without a JSON tree. Each tensor's data is kept only for the known inputs and only up to
//! `max_rows + 1` elements; shapes are checked with checked arithmetic; rows are then encoded
//! one at a time straight from the columns.

use std::fmt;

use retail_model::metrics::argmax;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::answer::quote;
use super::batch::{Batch, parse, probabilities};
use super::record::{FLAT_FIELDS, encode_flat};
use super::slot::{Slot, SlotVisitor, scalar_kinds};
use super::{Cancel, ScoreError, Scorer};

/// Inputs the model takes, in the order of the seed's flat record, with their v2 datatypes.
pub const INPUTS: [(&str, &str); 8] = [
    ("BASKET_SIZE", "BYTES"),
    ("BASKET_TYPE", "BYTES"),
    ("STORE_REGION", "BYTES"),
    ("STORE_FORMAT", "BYTES"),
    ("SPEND", "FP64"),
    ("QUANTITY", "FP64"),
    ("PROD_CODE_20", "BYTES"),
    ("PROD_CODE_30", "BYTES"),
];

mod outputs;
mod shape;

pub use outputs::Outputs;
use outputs::OutputsSeed;
use shape::{Shape, ShapeSeed};

/// Datatypes accepted for an `FP64` input.
const NUMERIC: [&str; 11] =
    ["FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"];

/// A scored v2 request.
#[derive(Debug)]
pub struct Inference {
    /// The request's `id`, if it gave a string.
    pub id: Option<String>,
    /// The predicted class of each row (an index into the model's classes).
    pub classes: Vec<usize>,
    /// Class probabilities, row-major (`classes.len() × n_classes`).
    pub probabilities: Vec<f64>,
    /// The outputs to return.
    pub outputs: Outputs,
}

/// Scores a v2 inference request of at most `max_rows` rows.
pub fn infer<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    max_rows: usize,
    cancel: &Cancel,
) -> Result<Inference, ScoreError> {
    let request = parse(body, RequestSeed { cap: max_rows + 1 })
        .map_err(|e| ScoreError::Request(format!("request body is not valid JSON: {e}")))?;
    let outputs = request.outputs.unwrap_or(Ok(Outputs { label: true, probabilities: true }));
    let inputs = request.inputs.ok_or_else(|| ScoreError::Request("inputs must be an array of tensors".to_owned()))?;
    let columns = columns(inputs)?;
    let n = rows(&columns, max_rows)?;
    let mut batch = Batch::new(model.basket_pipeline()?, max_rows, cancel);
    // A stop (cancellation) is recorded in the batch and reported by `finish`.
    let _ = (0..n)
        .try_for_each(|row| batch.push(|pipeline| encode_flat(pipeline, std::array::from_fn(|f| &columns[f][row]))));
    let (rows, unseen) = batch.finish(Ok(()), super::ErrorsMode::AllOrNothing)?.into_scored();
    let outputs = outputs.map_err(ScoreError::Request)?;
    let probabilities = probabilities(model, &rows, cancel)?;
    let nc = model.artifact().engine.n_classes();
    let classes = probabilities.chunks(nc).zip(&unseen).map(|(p, unseen)| {
        let class = argmax(p);
        model.scored(class, unseen);
        class
    });
    let id = match request.id {
        Slot::Str(id) => Some(id.into_owned()),
        _ => None,
    };
    Ok(Inference { id, classes: classes.collect(), probabilities, outputs })
}

/// The tensors in [`FLAT_FIELDS`] order, each checked: present, datatype, data, shape.
fn columns<'a>(mut tensors: [Option<Tensor<'a>>; 8]) -> Result<[Vec<Slot<'a>>; 8], ScoreError> {
    let bad = |message: String| Err(ScoreError::Request(message));
    let mut columns: [Vec<Slot<'a>>; 8] = Default::default();
    for (name, datatype) in INPUTS {
        let f = field_index(name);
        let Some(tensor) = tensors[f].take() else {
            return bad(format!("input {name} is missing (inputs: {})", INPUTS.map(|i| i.0).join(", ")));
        };
        let given = match &tensor.datatype {
            Slot::Str(s) => s.as_ref(),
            _ => "",
        };
        if (datatype == "BYTES" && given != "BYTES") || (datatype == "FP64" && !NUMERIC.contains(&given)) {
            return bad(format!("input {name} has datatype {}, expected {datatype}", quote(given)));
        }
        let Some(data) = tensor.data else {
            return bad(format!("input {name} has no data"));
        };
        if let Some(shape) = tensor.shape {
            let problem = match shape.product {
                _ if shape.bad => Some("must hold non-negative integers".to_owned()),
                None => Some("overflows: the product of its dimensions is over 2^64".to_owned()),
                Some(elements) if elements != data.len() as u64 => {
                    Some(format!("does not match {} data elements", data.len()))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                return bad(format!("input {name}: shape {shape} {problem}"));
            }
        }
        columns[f] = data;
    }
    Ok(columns)
}

/// The number of rows: every column's length, between 1 and `max_rows`.
fn rows(columns: &[Vec<Slot<'_>>; 8], max_rows: usize) -> Result<usize, ScoreError> {
    let first = field_index(INPUTS[0].0);
    let n = columns[first].len();
    if let Some((name, _)) = INPUTS.iter().find(|(name, _)| columns[field_index(name)].len() != n) {
        let len = columns[field_index(name)].len();
        return Err(ScoreError::Request(format!("input {name} has {len} rows, {} has {n}", INPUTS[0].0)));
    }
    if n == 0 || n > max_rows {
        let n = if n > max_rows { format!("more than {max_rows}") } else { n.to_string() };
        return Err(ScoreError::Request(format!("inputs must have 1 to {max_rows} rows, got {n}")));
    }
    Ok(n)
}

/// Index of an input in [`FLAT_FIELDS`] (every input is one).
fn field_index(name: &str) -> usize {
    FLAT_FIELDS.iter().position(|f| *f == name).unwrap_or_default()
}

/// The parts of a request that matter.
struct Request<'a> {
    id: Slot<'a>,
    /// The first tensor of each input, in [`FLAT_FIELDS`] order; `None` when `inputs` is not an
    /// array.
    inputs: Option<[Option<Tensor<'a>>; 8]>,
    outputs: Option<Result<Outputs, String>>,
}

struct RequestSeed {
    /// Most data elements kept per tensor.
    cap: usize,
}

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Request<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl RequestSeed {
    fn kind<'a>(self, _: &'static str) -> Request<'a> {
        Request { id: Slot::Missing, inputs: None, outputs: None }
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inference request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = Request { id: Slot::Missing, inputs: None, outputs: None };
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            match &key {
                Slot::Str(k) if k == "id" => request.id = map.next_value()?,
                Slot::Str(k) if k == "inputs" => request.inputs = map.next_value_seed(InputsSeed { cap: self.cap })?,
                Slot::Str(k) if k == "outputs" => request.outputs = Some(map.next_value_seed(OutputsSeed)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(request)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(self.kind("an array"))
    }

    scalar_kinds!();
}

/// A tensor as read.
struct Tensor<'a> {
    name: Slot<'a>,
    datatype: Slot<'a>,
    shape: Option<Shape>,
    data: Option<Vec<Slot<'a>>>,
}

/// `inputs`: the first tensor of each known input; other tensors are read and dropped.
struct InputsSeed {
    cap: usize,
}

impl<'de> DeserializeSeed<'de> for InputsSeed {
    type Value = Option<[Option<Tensor<'de>>; 8]>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl InputsSeed {
    fn kind<T>(self, _: &'static str) -> Option<T> {
        None
    }
}

impl<'de> Visitor<'de> for InputsSeed {
    type Value = Option<[Option<Tensor<'de>>; 8]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tensors")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tensors: [Option<Tensor<'de>>; 8] = Default::default();
        while let Some(tensor) = seq.next_element_seed(TensorSeed { cap: self.cap })? {
            let Some(Tensor { name: Slot::Str(name), .. }) = &tensor else { continue };
            if let Some(f) = FLAT_FIELDS.iter().position(|f| f == name)
                && tensors[f].is_none()
            {
                tensors[f] = tensor;
            }
        }
        Ok(Some(tensors))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_map(map)?;
        Ok(None)
    }

    scalar_kinds!();
}

/// One tensor; `None` when it is not an object.
struct TensorSeed {
    cap: usize,
}

impl<'de> DeserializeSeed<'de> for TensorSeed {
    type Value = Option<Tensor<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl TensorSeed {
    fn kind<T>(self, _: &'static str) -> Option<T> {
        None
    }
}

impl<'de> Visitor<'de> for TensorSeed {
    type Value = Option<Tensor<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tensor")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tensor = Tensor { name: Slot::Missing, datatype: Slot::Missing, shape: None, data: None };
        while let Some(key) = map.next_key::<Slot<'de>>()? {
            match &key {
                Slot::Str(k) if k == "name" => tensor.name = map.next_value()?,
                Slot::Str(k) if k == "datatype" => tensor.datatype = map.next_value()?,
                Slot::Str(k) if k == "shape" => tensor.shape = map.next_value_seed(ShapeSeed)?,
                Slot::Str(k) if k == "data" => {
                    let mut data = Vec::new();
                    map.next_value_seed(DataSeed { out: &mut data, cap: self.cap })?;
                    tensor.data = Some(data);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(tensor))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(None)
    }

    scalar_kinds!();
}

/// `data`: nested arrays flattened row-major into `out`; an error past `cap` elements.
struct DataSeed<'o, 'a> {
    out: &'o mut Vec<Slot<'a>>,
    cap: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor data")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(DataSeed { out: &mut *self.out, cap: self.cap })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let slot = SlotVisitor.visit_map(map)?;
        self.push(slot)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_bool(v)?)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_i64(v)?)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_u64(v)?)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_f64(v)?)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_borrowed_str(v)?)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.push(SlotVisitor.visit_str(v)?)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.push(Slot::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.push(Slot::Null)
    }
}

impl<'a> DataSeed<'_, 'a> {
    fn push<E: de::Error>(self, slot: Slot<'a>) -> Result<(), E> {
        if self.out.len() == self.cap {
            return Err(E::custom(format!("tensor data holds more than {} elements", self.cap - 1)));
        }
        self.out.push(slot);
        Ok(())
    }
}
