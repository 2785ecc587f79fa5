//! Open Inference Protocol v2 requests: columnar tensors, one per input of the model's kind (a
//! basket's flat-record fields, a day of sales' fields, a tabular model's columns), or for a
//! tabular model one `[N, n_columns]` tensor of rows; read without a JSON tree. Each tensor's
//! data is kept only for the known inputs (and a tabular model's first other tensor) and only
//! up to `max_rows + 1` elements (`max_rows × n_columns + 1` for a tabular model); shapes are
//! checked with checked arithmetic; rows are then encoded one at a time straight from the
//! columns.

use std::fmt;

use retail_model::metrics::argmax;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::answer::quote;
use super::batch::{Batch, parse, probabilities};
use super::record::{FLAT_FIELDS, encode_flat};
use super::sales::{RawSales, SALES_FIELDS};
use super::slot::{Slot, SlotVisitor, scalar_kinds};
use super::tabular::encode_slots;
use super::{Cancel, ContributionTensors, Encoder, Explaining, Row, ScoreError, Scorer, is_regression};

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

/// The inputs of a model: their names in the order its rows are read (a basket's in
/// [`FLAT_FIELDS`] order), and with their datatypes in the order errors list them.
struct Inputs<'p> {
    names: Vec<&'p str>,
    listed: Vec<(&'p str, &'static str)>,
}

fn inputs_of(encoder: Encoder<'_>) -> Inputs<'_> {
    match encoder {
        Encoder::Basket(_) => Inputs { names: FLAT_FIELDS.to_vec(), listed: INPUTS.to_vec() },
        Encoder::Sales(_) => Inputs { names: SALES_FIELDS.to_vec(), listed: SALES_INPUTS.to_vec() },
        Encoder::Tabular(schema) => {
            let listed = tabular_inputs(schema);
            Inputs { names: listed.iter().map(|i| i.0).collect(), listed }
        }
    }
}

mod outputs;
mod shape;
mod tabular;

pub use outputs::Outputs;
use outputs::OutputsSeed;
use shape::{Shape, ShapeSeed};
pub use tabular::tabular_inputs;

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
    /// With the `contributions` output: each row's explanation.
    pub contributions: Option<ContributionTensors>,
}

/// Scores a v2 inference request of at most `max_rows` rows; `may_explain`: whether its
/// credential may have the `contributions` output ([`ScoreError::ExplainNotAllowed`] if it asks).
pub fn infer<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    (max_rows, may_explain): (usize, bool),
    cancel: &Cancel,
) -> Result<Inference, ScoreError> {
    let encoder = model.encoder();
    let inputs = inputs_of(encoder);
    let tabular = matches!(encoder, Encoder::Tabular(_));
    let cap = if tabular { max_rows.saturating_mul(inputs.names.len()).saturating_add(1) } else { max_rows + 1 };
    let request = parse(body, RequestSeed { cap, names: &inputs.names, keep_other: tabular })
        .map_err(|e| ScoreError::Request(format!("request body is not valid JSON: {e}")))?;
    let regression = is_regression(model.artifact());
    let all = if regression { Outputs::REGRESSION } else { Outputs::CLASSIFIER };
    let outputs = request.outputs.unwrap_or(Ok(all)).and_then(|o| o.within(all));
    let tensors = request.inputs.ok_or_else(|| ScoreError::Request("inputs must be an array of tensors".to_owned()))?;
    let mut batch = Batch::new(encoder, max_rows, cancel);
    let n = match (encoder, tensors.other) {
        (Encoder::Tabular(schema), Some(other)) if tensors.by_name.iter().all(Option::is_none) => {
            tabular::push_matrix(schema, other, max_rows, &mut batch)?
        }
        _ => {
            let mut columns = columns(tensors.by_name, &inputs, tabular)?;
            let n = rows(&columns, &inputs.names, max_rows)?;
            push_columns(encoder, &mut columns, n, &mut batch);
            n
        }
    };
    let (rows, notes) = batch.finish(Ok(()), super::ErrorsMode::AllOrNothing)?.into_scored();
    let outputs = outputs.map_err(ScoreError::Request)?;
    let explaining = match outputs.contributions {
        true if !may_explain => return Err(ScoreError::ExplainNotAllowed),
        true => Some(Explaining::of(model.artifact())?),
        false => None,
    };
    let probabilities = probabilities(model, &rows, cancel)?;
    let engine = &model.artifact().engine;
    let (nc, nf) = (engine.n_classes(), engine.n_features().max(1));
    let contributions = explaining.map(|e| e.tensors(&rows, nf, cancel)).transpose()?;
    let classes = probabilities.chunks(nc).zip(rows.chunks(nf)).zip(notes).map(|((p, row), notes)| {
        super::noted(model, row, p, notes);
        argmax(p)
    });
    let classes = if regression {
        classes.for_each(drop);
        Vec::new()
    } else {
        classes.collect()
    };
    let id = match request.id {
        Slot::Str(id) => Some(id.into_owned()),
        _ => None,
    };
    Ok(Inference { id, rows: n, classes, probabilities, outputs, contributions })
}

/// Encodes `n` rows from the columns (in the model's row order) into the batch; a stop
/// (cancellation) is recorded in the batch and reported by its `finish`.
fn push_columns(encoder: Encoder<'_>, columns: &mut [Vec<Slot<'_>>], n: usize, batch: &mut Batch<'_>) {
    let mut row_slots = Vec::with_capacity(columns.len());
    let _ = (0..n).try_for_each(|row| match encoder {
        Encoder::Basket(pipeline) => {
            batch.push(|| encode_flat(pipeline, std::array::from_fn(|f| &columns[f][row])).map(Row::Basket))
        }
        Encoder::Sales(stats) => {
            let fields = std::array::from_fn(|f| std::mem::take(&mut columns[f][row]));
            batch.push(|| RawSales::from_fields(fields).encode(stats).map(Row::Sales))
        }
        Encoder::Tabular(schema) => {
            row_slots.clear();
            row_slots.extend(columns.iter_mut().map(|column| std::mem::take(&mut column[row])));
            batch.push(|| encode_slots(schema, &row_slots, ""))
        }
    });
}

/// The tensors in row order, each checked: present, datatype, data, shape (`inputs.listed`:
/// the inputs with their datatypes, in the order errors name them). A tabular model's message
/// for a missing input also offers the one-tensor form.
fn columns<'a>(
    mut tensors: Vec<Option<Tensor<'a>>>,
    inputs: &Inputs<'_>,
    tabular: bool,
) -> Result<Vec<Vec<Slot<'a>>>, ScoreError> {
    let bad = |message: String| Err(ScoreError::Request(message));
    let mut columns: Vec<Vec<Slot<'a>>> = std::iter::repeat_with(Vec::new).take(inputs.names.len()).collect();
    for &(name, datatype) in &inputs.listed {
        let f = inputs.names.iter().position(|n| *n == name).unwrap_or_default();
        let Some(tensor) = tensors[f].take() else {
            let all: Vec<&str> = inputs.listed.iter().take(12).map(|i| i.0).collect();
            let more = if inputs.listed.len() > all.len() { ", …" } else { "" };
            let or = if tabular {
                format!("; or one FP64 input of shape [N, {}]", inputs.names.len())
            } else {
                String::new()
            };
            return bad(format!("input {name} is missing (inputs: {}{more}{or})", all.join(", ")));
        };
        let given = match &tensor.datatype {
            Slot::Str(s) => s.as_ref(),
            _ => "",
        };
        if (datatype == "BYTES" && given != "BYTES") || (datatype != "BYTES" && !NUMERIC.contains(&given)) {
            return bad(format!("input {name} has datatype {}, expected {datatype}", quote(given)));
        }
        columns[f] = checked_data(name, tensor)?;
    }
    Ok(columns)
}

/// A tensor's data, if it has data and its shape (when given) matches it.
fn checked_data<'a>(name: &str, tensor: Tensor<'a>) -> Result<Vec<Slot<'a>>, ScoreError> {
    let Some(data) = tensor.data else {
        return Err(ScoreError::Request(format!("input {name} has no data")));
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
            return Err(ScoreError::Request(format!("input {name}: shape {shape} {problem}")));
        }
    }
    Ok(data)
}

/// The number of rows: every column's length (`columns` in `names` order), between 1 and
/// `max_rows`.
fn rows(columns: &[Vec<Slot<'_>>], names: &[&str], max_rows: usize) -> Result<usize, ScoreError> {
    let n = columns.first().map_or(0, Vec::len);
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
    /// The tensors; `None` when `inputs` is not an array.
    inputs: Option<Tensors<'a>>,
    outputs: Option<Result<Outputs, String>>,
}

/// The tensors of a request that may be used.
struct Tensors<'a> {
    /// The first tensor of each input, in the model's row order.
    by_name: Vec<Option<Tensor<'a>>>,
    /// The first tensor named as no input, when asked to keep it (a tabular model's rows).
    other: Option<Tensor<'a>>,
}

struct RequestSeed<'n> {
    /// Most data elements kept per tensor.
    cap: usize,
    /// The model's inputs.
    names: &'n [&'n str],
    /// Keep the first tensor named as no input.
    keep_other: bool,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = Request<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl RequestSeed<'_> {
    fn kind<'a>(self, _: &'static str) -> Request<'a> {
        Request { id: Slot::Missing, inputs: None, outputs: None }
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
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
                    let seed = InputsSeed { cap: self.cap, names: self.names, keep_other: self.keep_other };
                    request.inputs = map.next_value_seed(seed)?;
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
pub(super) struct Tensor<'a> {
    name: Slot<'a>,
    datatype: Slot<'a>,
    shape: Option<Shape>,
    data: Option<Vec<Slot<'a>>>,
}

/// `inputs`: the first tensor of each known input (and, asked to, the first other one); other
/// tensors are read and dropped.
struct InputsSeed<'n> {
    cap: usize,
    names: &'n [&'n str],
    keep_other: bool,
}

impl<'de> DeserializeSeed<'de> for InputsSeed<'_> {
    type Value = Option<Tensors<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl InputsSeed<'_> {
    fn kind<T>(self, _: &'static str) -> Option<T> {
        None
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_> {
    type Value = Option<Tensors<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of tensors")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let by_name = std::iter::repeat_with(|| None).take(self.names.len()).collect();
        let mut tensors = Tensors { by_name, other: None };
        while let Some(tensor) = seq.next_element_seed(TensorSeed { cap: self.cap })? {
            let Some(Tensor { name: Slot::Str(name), .. }) = &tensor else { continue };
            match self.names.iter().position(|f| f == name) {
                Some(f) if tensors.by_name[f].is_none() => tensors.by_name[f] = tensor,
                None if self.keep_other && tensors.other.is_none() => tensors.other = tensor,
                _ => {}
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
