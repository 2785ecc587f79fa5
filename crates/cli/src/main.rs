//! `retail-api`: the one binary. Flags become validated configs here; the work happens in the
//! library crates.

mod auth;
#[cfg(feature = "train")]
mod bars;
mod capture;
mod drift_args;
#[cfg(feature = "train")]
mod evaluate;
mod healthcheck;
#[cfg(feature = "train")]
mod import;
mod models_config;
mod output;
mod predict;
mod registry;
mod report_error;
mod serve;
#[cfg(feature = "train")]
mod summary;
#[cfg(feature = "train")]
mod tabular;
mod telemetry;
#[cfg(feature = "train")]
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Basket price-sensitivity prediction (dunnhumby `BASKET_PRICE_SENSITIVITY`: LA, MM, UM).
#[derive(Debug, Parser)]
#[command(name = "retail-api", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the embedded default model unless MODEL_URI says otherwise).
    #[command(after_help = serve::LOGGING_HELP)]
    Serve(Box<serve::ServeArgs>),
    /// Exit 0 when the local server is ready (for the image's HEALTHCHECK), else 1.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Print a new HS256 bearer token signed with JWT_SECRET_KEY.
    Token(auth::TokenArgs),
    /// Make API keys for API_KEYS_FILE.
    Apikey(auth::ApiKeyArgs),
    /// Publish model artifacts to S3 and manage their versions in the SageMaker Model Registry.
    Registry(registry::RegistryArgs),
    /// Write a deterministic synthetic dataset: dunnhumby basket transactions (default) or
    /// daily store × product sales (`--kind sales`).
    #[cfg(feature = "train")]
    GenData(train::GenDataArgs),
    /// Train a model and write an artifact directory: a basket classifier from a transaction CSV,
    /// or a sales forecast from a sales CSV (detected from the header).
    #[cfg(feature = "train")]
    Train(Box<train::TrainArgs>),
    /// Score an artifact on labelled data (transactions, sales, or a tabular model's CSV): a
    /// summary on stderr, the metrics as JSON on stdout (or --json FILE).
    #[cfg(feature = "train")]
    Evaluate(evaluate::EvaluateArgs),
    /// Offline batch scoring of local files or S3 objects: transaction lines, CSV rows of the
    /// model's fields, or JSON lines of requests (also in the serving build, for batch Jobs).
    Predict(predict::PredictArgs),
    /// Turn an ONNX tree-ensemble classifier (scikit-learn, XGBoost, LightGBM via skl2onnx /
    /// onnxmltools) into an artifact directory served by the native engine.
    #[cfg(feature = "train")]
    ImportOnnx(import::ImportOnnxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_writer = telemetry::init();
    let result = run(cli.command);
    // Write buffered log lines before the error, so they come out in order.
    drop(log_writer);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report_error::print(&error);
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(&args),
        Command::Healthcheck(args) => healthcheck::healthcheck(&args),
        Command::Openapi => serve::print_openapi(),
        Command::Token(args) => auth::token(&args),
        Command::Apikey(args) => auth::apikey(&args),
        Command::Registry(args) => registry::registry(&args),
        #[cfg(feature = "train")]
        Command::GenData(args) => train::gen_data(&args),
        #[cfg(feature = "train")]
        Command::Train(args) => train::train(&args),
        #[cfg(feature = "train")]
        Command::Evaluate(args) => evaluate::evaluate(&args),
        Command::Predict(args) => predict::predict(&args),
        #[cfg(feature = "train")]
        Command::ImportOnnx(args) => import::import_onnx(&args),
    }
}
