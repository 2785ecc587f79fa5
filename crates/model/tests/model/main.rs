//! Integration tests of retail-model (one test binary).

mod artifact;
mod hostile;
mod onnx;
mod parity;
