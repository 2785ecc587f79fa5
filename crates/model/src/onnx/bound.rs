//! An upper bound on the memory that decoding an ONNX file takes, read from its protobuf wire
//! format before it is decoded. `prost` allocates per element: an empty node is 2 bytes on the
//! wire and a 144-byte struct in memory, a packed varint 1 byte and 8, so a file within the
//! model-file limit could decode to gigabytes. The walk follows the subset of `onnx.proto` the
//! importer decodes ([`proto`]) and skips unknown fields, as the decoder does.

use super::{OnnxError, proto};

/// Most memory decoding an ONNX file may take: 256 MiB. An XGBoost export of 1,000 rounds × 3
/// classes at depth 6 (189,000 nodes, a 9 MB file) is bounded at 89 MB, the committed fixtures
/// at < 1 MB.
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

/// The messages of [`proto`].
#[derive(Debug, Clone, Copy)]
enum Message {
    Model,
    OpsetId,
    Graph,
    Node,
    Attribute,
    Tensor,
    ValueInfo,
    Type,
    TensorType,
    Shape,
    Dimension,
}

/// What a known field decodes into.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// A sub-message: an element of a vector, or held inline (optional fields).
    Message { message: Message, repeated: bool },
    /// A string or bytes: an element of a vector, or a single value.
    Bytes { repeated: bool },
    /// Repeated integers (varints: up to 8 bytes in memory per byte on the wire).
    Varints,
    /// Repeated floats or doubles (as large in memory as on the wire).
    Fixed,
}

impl Message {
    /// Size of the decoded struct.
    fn size(self) -> u64 {
        let size = match self {
            Self::Model => size_of::<proto::ModelProto>(),
            Self::OpsetId => size_of::<proto::OperatorSetIdProto>(),
            Self::Graph => size_of::<proto::GraphProto>(),
            Self::Node => size_of::<proto::NodeProto>(),
            Self::Attribute => size_of::<proto::AttributeProto>(),
            Self::Tensor => size_of::<proto::TensorProto>(),
            Self::ValueInfo => size_of::<proto::ValueInfoProto>(),
            Self::Type => size_of::<proto::TypeProto>(),
            Self::TensorType => size_of::<proto::TensorTypeProto>(),
            Self::Shape => size_of::<proto::TensorShapeProto>(),
            Self::Dimension => size_of::<proto::Dimension>(),
        };
        size as u64
    }

    /// The fields that allocate (field numbers of `proto`); scalars and unknown fields do not.
    fn field(self, tag: u64) -> Option<Field> {
        use Message as M;
        let message = |message, repeated| Some(Field::Message { message, repeated });
        match (self, tag) {
            (M::Model, 8) => message(M::OpsetId, true),
            (M::Model, 7) => message(M::Graph, false),
            (M::Graph, 1) => message(M::Node, true),
            (M::Graph, 5) => message(M::Tensor, true),
            (M::Graph, 11 | 12) => message(M::ValueInfo, true),
            (M::Node, 5) => message(M::Attribute, true),
            (M::Attribute, 5) => message(M::Tensor, false),
            (M::ValueInfo, 2) => message(M::Type, false),
            (M::Type, 1) => message(M::TensorType, false),
            (M::TensorType, 2) => message(M::Shape, false),
            (M::Shape, 1) => message(M::Dimension, true),
            (M::Node, 1 | 2) | (M::Attribute, 9) => Some(Field::Bytes { repeated: true }),
            (M::Model, 2 | 3)
            | (M::OpsetId, 1)
            | (M::Graph, 2)
            | (M::Node, 3 | 4 | 7)
            | (M::Attribute, 1 | 4)
            | (M::Tensor, 8 | 9)
            | (M::ValueInfo, 1)
            | (M::Dimension, 2) => Some(Field::Bytes { repeated: false }),
            (M::Attribute, 8) | (M::Tensor, 1) => Some(Field::Varints),
            (M::Attribute, 7) | (M::Tensor, 4 | 10) => Some(Field::Fixed),
            _ => None,
        }
    }
}

/// An upper bound on the bytes `prost` allocates decoding `bytes` as a `ModelProto`: each
/// decoded struct and string, and twice each vector element (for spare capacity).
pub(super) fn decoded_bytes(bytes: &[u8]) -> Result<u64, OnnxError> {
    let mut wire = Wire { bytes, pos: 0 };
    Ok(Message::Model.size().saturating_add(wire.message(Message::Model)?))
}

/// A cursor over protobuf wire data.
struct Wire<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Wire<'_> {
    fn truncated() -> OnnxError {
        OnnxError::Decode("truncated or malformed protobuf".to_owned())
    }

    fn varint(&mut self) -> Result<u64, OnnxError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(Self::truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(Self::truncated())
    }

    fn take(&mut self, len: u64) -> Result<&[u8], OnnxError> {
        let end = usize::try_from(len).ok().and_then(|len| self.pos.checked_add(len)).ok_or_else(Self::truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(Self::truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// What the fields of one `message` (the rest of the data) allocate, beyond its own struct.
    fn message(&mut self, message: Message) -> Result<u64, OnnxError> {
        let mut total = 0u64;
        while self.pos < self.bytes.len() {
            let key = self.varint()?;
            let field = message.field(key >> 3);
            let cost = match key & 7 {
                0 => {
                    self.varint()?;
                    if matches!(field, Some(Field::Varints)) { 16 } else { 0 }
                }
                1 => self.take(8).map(|_| if matches!(field, Some(Field::Fixed)) { 16 } else { 0 })?,
                5 => self.take(4).map(|_| if matches!(field, Some(Field::Fixed)) { 8 } else { 0 })?,
                2 => {
                    let len = self.varint()?;
                    let payload = self.take(len)?;
                    Self::payload(field, payload)?
                }
                _ => return Err(OnnxError::Decode("protobuf groups are not supported".to_owned())),
            };
            total = total.saturating_add(cost);
        }
        Ok(total)
    }

    /// What a length-delimited field allocates.
    fn payload(field: Option<Field>, payload: &[u8]) -> Result<u64, OnnxError> {
        let len = payload.len() as u64;
        let vec_header = size_of::<Vec<u8>>() as u64;
        Ok(match field {
            None => 0,
            Some(Field::Bytes { repeated: false }) => len,
            Some(Field::Bytes { repeated: true }) => len + 2 * vec_header,
            Some(Field::Varints) => 16 * len,
            Some(Field::Fixed) => 2 * len,
            Some(Field::Message { message, repeated }) => {
                let inner = Wire { bytes: payload, pos: 0 }.message(message)?;
                inner.saturating_add(if repeated { 2 * message.size() } else { 0 })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn the_bound_covers_what_decoding_holds() {
        let node = proto::NodeProto { op_type: "TreeEnsembleClassifier".into(), ..Default::default() };
        let attribute = proto::AttributeProto { name: "nodes_modes".into(), ints: vec![1; 1000], ..Default::default() };
        let graph = proto::GraphProto {
            node: vec![proto::NodeProto { attribute: vec![attribute], ..node }; 10],
            ..Default::default()
        };
        let model = proto::ModelProto { graph: Some(graph), ..Default::default() };
        let bytes = model.encode_to_vec();
        let bound = decoded_bytes(&bytes).expect("walks");
        let held = size_of::<proto::ModelProto>() + 10 * (size_of::<proto::NodeProto>() + 22 + 1000 * 8);
        assert!(bound >= held as u64, "{bound} < {held}");
        assert!(bound < 4 * held as u64, "a tight enough bound: {bound} vs {held}");
    }

    #[test]
    fn empty_repeated_messages_are_counted_not_decoded() {
        // 2 bytes per node on the wire, a NodeProto each in memory.
        let nodes = 1_000_000usize;
        let mut graph = Vec::with_capacity(2 * nodes);
        for _ in 0..nodes {
            graph.extend([0x0a, 0x00]);
        }
        let mut model = vec![0x3a];
        let mut len = graph.len();
        while len >= 0x80 {
            model.push((len as u8) | 0x80);
            len >>= 7;
        }
        model.push(len as u8);
        model.extend(graph);
        let bound = decoded_bytes(&model).expect("walks");
        assert!(bound >= (nodes * size_of::<proto::NodeProto>()) as u64, "{bound}");
        assert!(matches!(decoded_bytes(&model[..model.len() - 1]), Err(OnnxError::Decode(_))), "truncated");
    }
}
