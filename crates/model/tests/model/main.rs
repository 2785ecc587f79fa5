//! Integration tests of retail-model (one test binary).

mod artifact;
mod onnx;
mod parity;
