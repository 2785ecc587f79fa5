//! Open Inference Protocol v2 requests: columnar tensors, one per input of the model's kind (a
//! basket's flat-record fields, or a day of sales' fields), read without a JSON tree. Each tensor's data is kept only for the known inputs and only up to
//! `max_rows + 1` elements; shapes are checked with checked arithmetic; rows are then encoded
//! one at a time straight from the columns.

use std::fmt;

use retail_model::metrics::argmax;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::answer::quote;
use super::batch::{Batch, parse, probabilities};
use super::record::{FLAT_FIELDS, encode_flat};
use super::sales::{RawSales, SALES_FIELDS};
use super::slot::{Slot, SlotVisitor, scalar_kinds};
use super::{Cancel, Encoder, Row, ScoreError, Scorer};

/// Inputs a basket classifier takes, in the order of the seed's flat record, with their v2
/// datatypes.
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

/// Inputs a sales forecast takes, with their v2 datatypes (`date` as `YYYY-MM-DD` bytes).
pub const SALES_INPUTS: [(&str, &str); 5] =
    [("store_id", "INT64"), ("product_id", "INT64"), ("date", "BYTES"), ("price", "FP64"), ("promotion", "INT64")];

/// Most inputs of any kind (the slots a request keeps tensors in).
const MAX_INPUTS: usize = 8;

/// The inputs of a model's kind, in the order its rows are read (a basket's in
/// [`FLAT_FIELDS`] order), and in the order errors list them.
fn inputs_of(encoder: Encoder<'_>) -> (&'static [&'static str], &'static [(&'static str, &'static str)]) {
    match encoder {
        Encoder::Basket(_) => (&FLAT_FIELDS, &INPUTS),
        Encoder::Sales(_) => (&SALES_FIELDS, &SALES_INPUTS),
    }
}

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
    /// Rows scored.
    pub rows: usize,
    /// The predicted class of each row (an index into the model's classes; a forecast: none).
    pub classes: Vec<usize>,
    /// Class probabilities, row-major (`rows × n_classes`); a forecast: each row's prediction.
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
    let encoder = model.encoder();
    let (names, listed) = inputs_of(encoder);
    let request = parse(body, RequestSeed { cap: max_rows + 1, names })
        .map_err(|e| ScoreError::Request(format!("request body is not valid JSON: {e}")))?;
    let all = if names.len() == SALES_FIELDS.len() { Outputs::REGRESSION } else { Outputs::CLASSIFIER };
    let outputs = request.outputs.unwrap_or(Ok(all)).and_then(|o| o.within(all));
    let inputs = request.inputs.ok_or_else(|| ScoreError::Request("inputs must be an array of tensors".to_owned()))?;
    let mut columns = columns(inputs, names, listed)?;
    let n = rows(&columns[..names.len()], names, max_rows)?;
    let mut batch = Batch::new(encoder, max_rows, cancel);
    // A stop (cancellation) is recorded in the batch and reported by `finish`.
    let _ = (0..n).try_for_each(|row| match encoder {
        Encoder::Basket(pipeline) => {
            batch.push(|| encode_flat(pipeline, std::array::from_fn(|f| &columns[f][row])).map(Row::Basket))
        }
        Encoder::Sales(stats) => {
            let fields = std::array::from_fn(|f| std::mem::take(&mut columns[f][row]));
            batch.push(|| RawSales::from_fields(fields).encode(stats).map(Row::Sales))
        }
    });
    let (rows, unseen) = batch.finish(Ok(()), super::ErrorsMode::AllOrNothing)?.into_scored();
    let outputs = outputs.map_err(ScoreError::Request)?;
    let probabilities = probabilities(model, &rows, cancel)?;
    let forecast = matches!(encoder, Encoder::Sales(_));
    let nc = model.artifact().engine.n_classes();
    let classes = probabilities.chunks(nc).zip(&unseen).map(|(p, unseen)| {
        let class = argmax(p);
        model.scored(class, unseen);
        class
    });
    let classes = if forecast {
        classes.for_each(drop);
        Vec::new()
    } else {
        classes.collect()
    };
    let id = match request.id {
        Slot::Str(id) => Some(id.into_owned()),
        _ => None,
    };
    Ok(Inference { id, rows: n, classes, probabilities, outputs })
}

/// The tensors in `names` order, each checked: present, datatype, data, shape (`listed`: the
/// inputs with their datatypes, in the order errors name them).
fn columns<'a>(
    mut tensors: [Option<Tensor<'a>>; MAX_INPUTS],
    names: &[&str],
    listed: &[(&str, &str)],
) -> Result<[Vec<Slot<'a>>; MAX_INPUTS], ScoreError> {
    let bad = |message: String| Err(ScoreError::Request(message));
    let mut columns: [Vec<Slot<'a>>; MAX_INPUTS] = Default::default();
    for &(name, datatype) in listed {
        let f = names.iter().position(|n| *n == name).unwrap_or_default();
        let Some(tensor) = tensors[f].take() else {
            let all: Vec<&str> = listed.iter().map(|i| i.0).collect();
            return bad(format!("input {name} is missing (inputs: {})", all.join(", ")));
        };
        let given = match &tensor.datatype {
            Slot::Str(s) => s.as_ref(),
            _ => "",
        };
        if (datatype == "BYTES" && given != "BYTES") || (datatype != "BYTES" && !NUMERIC.contains(&given)) {
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

/// The number of rows: every column's length (`columns` in `names` order), between 1 and
/// `max_rows`.
fn rows(columns: &[Vec<Slot<'_>>], names: &[&str], max_rows: usize) -> Result<usize, ScoreError> {
    let n = columns[0].len();
    if let Some((column, name)) = columns.iter().zip(names).find(|(column, _)| column.len() != n) {
        let len = column.len();
        return Err(ScoreError::Request(format!("input {name} has {len} rows, {} has {n}", names[0])));
    }
    if n == 0 || n > max_rows {
        let n = if n > max_rows { format!("more than {max_rows}") } else { n.to_string() };
        return Err(ScoreError::Request(format!("inputs must have 1 to {max_rows} rows, got {n}")));
    }
    Ok(n)
}

/// The parts of a request that matter.
struct Request<'a> {
    id: Slot<'a>,
    /// The first tensor of each input, in the model's input order; `None` when `inputs` is not
    /// an array.
    inputs: Option<[Option<Tensor<'a>>; MAX_INPUTS]>,
    outputs: Option<Result<Outputs, String>>,
}

struct RequestSeed {
    /// Most data elements kept per tensor.
    cap: usize,
    /// The model's inputs.
    names: &'static [&'static str],
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
                Slot::Str(k) if k == "inputs" => {
                    request.inputs = map.next_value_seed(InputsSeed { cap: self.cap, names: self.names })?
                }
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
    names: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for InputsSeed {
    type Value = Option<[Option<Tensor<'de>>; MAX_INPUTS]>;

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
    type Value = Option<[Option<Tensor<'de>>; MAX_INPUTS]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tensors")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tensors: [Option<Tensor<'de>>; MAX_INPUTS] = Default::default();
        while let Some(tensor) = seq.next_element_seed(TensorSeed { cap: self.cap })? {
            let Some(Tensor { name: Slot::Str(name), .. }) = &tensor else { continue };
            if let Some(f) = self.names.iter().position(|f| f == name)
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
