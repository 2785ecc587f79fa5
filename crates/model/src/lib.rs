//! retail-model: everything about the basket price-sensitivity model that is not HTTP or CLI —
//! reference data, the shared feature pipeline, the native inference engine, the artifact format
//! and metrics; with the `train` feature also the synthetic data generator, CSV reading, the
//! gradient-boosted-trees trainer, evaluation and the model card. [`forecast`] is the Retail
//! Forecast model's shared half (daily units per store × product): validation, the holiday
//! calendar, training statistics and features; reading sales CSVs needs `train`.

pub mod artifact;
pub mod catalogue;
pub mod drift;
pub mod engine;
pub mod explain;
pub mod features;
pub mod forecast;
pub mod metrics;
pub mod onnx;
pub mod tabular;
pub mod time;

#[cfg(feature = "train")]
pub mod card;
#[cfg(feature = "train")]
pub mod csv_lines;
pub mod csv_plain;
#[cfg(feature = "train")]
pub mod data;
#[cfg(feature = "train")]
pub mod gbdt;
#[cfg(feature = "train")]
pub mod import;
#[cfg(feature = "train")]
pub mod progress;
#[cfg(feature = "train")]
pub mod rng;
#[cfg(feature = "train")]
pub mod synth;
#[cfg(feature = "train")]
pub mod training;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The label column the model predicts.
pub const TARGET: &str = "BASKET_PRICE_SENSITIVITY";

/// Model name used in artifacts and by the inference protocol.
pub const MODEL_NAME: &str = "retail-price-sensitivity";

/// Class codes in model output order.
pub const CLASSES: [&str; 3] = ["LA", "MM", "UM"];

/// Human label of a class code.
pub fn class_label(code: &str) -> &'static str {
    match code {
        "LA" => "Less Affluent",
        "MM" => "Mid Market",
        "UM" => "Up Market",
        _ => "Unclassified",
    }
}

/// Version of this crate and, when the build knew it, the git commit.
pub fn code_version() -> String {
    match option_env!("GIT_COMMIT") {
        Some(commit) if !commit.is_empty() => {
            format!("retail-model {} ({commit})", env!("CARGO_PKG_VERSION"))
        }
        _ => format!("retail-model {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Toolchain that compiled this build.
pub fn rustc_version() -> &'static str {
    env!("RETAIL_RUSTC_VERSION")
}
