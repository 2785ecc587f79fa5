//! `retail-api registry`: publish artifacts to S3 and manage versions in the SageMaker Model
//! Registry.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use retail_model::artifact::{self, Manifest, ModelMetrics, sha256_hex};
use retail_server::registry::{APPROVED, NewPackage, Package, Registry};
use retail_server::store::{S3Source, S3Url};
use serde_json::{Value, json};

/// The package group of the CONTRACT, used when none is given.
const DEFAULT_GROUP: &str = "retail-price-sensitivity-models";

/// `retail-api registry`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Verify an artifact directory, upload it as `model.tar.gz` with its sha256 to S3, and
    /// optionally register it as a new version of a model package group.
    Push(PushArgs),
    /// List the versions of a model package group, newest first.
    List(ListArgs),
    /// Approve a version: servers watching the group switch to it.
    Approve(StatusArgs),
    /// Reject a version: servers watching the group fall back to the newest approved one.
    Reject(StatusArgs),
}

#[derive(Debug, Args)]
struct PushArgs {
    /// Artifact directory (as written by `retail-api train`).
    #[arg(long)]
    model: PathBuf,
    /// Where to upload: `s3://bucket/prefix/` (the archive goes to `<prefix><version>/model.tar.gz`)
    /// or an exact `s3://bucket/key.tar.gz`.
    #[arg(long)]
    uri: String,
    /// Register the upload as a new version of this model package group (created if missing).
    #[arg(long)]
    package_group: Option<String>,
    /// Register the version as Approved (default: PendingManualApproval).
    #[arg(long, requires = "package_group")]
    approve: bool,
    /// Serving image recorded in the package's inference specification.
    #[arg(long, env = "IMAGE_URI", default_value = concat!("retail-api:", env!("CARGO_PKG_VERSION")))]
    image: String,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Model package group.
    #[arg(long, env = "MODEL_PACKAGE_GROUP", default_value = DEFAULT_GROUP)]
    package_group: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Model package group.
    #[arg(long, env = "MODEL_PACKAGE_GROUP", default_value = DEFAULT_GROUP)]
    package_group: String,
    /// Version number within the group.
    #[arg(long)]
    version: u64,
    /// Why (recorded as the approval description).
    #[arg(long, default_value = "")]
    reason: String,
}

/// Runs a `registry` subcommand.
pub fn registry(args: &RegistryArgs) -> anyhow::Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            RegistryCommand::Push(args) => push(args).await,
            RegistryCommand::List(args) => list(args).await,
            RegistryCommand::Approve(args) => set_status(args, APPROVED).await,
            RegistryCommand::Reject(args) => set_status(args, "Rejected").await,
        }
    })
}

#[allow(clippy::print_stdout)]
fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Where the archive of `version` goes under `uri`.
fn archive_url(uri: &str, version: &str) -> anyhow::Result<S3Url> {
    if uri.ends_with(".tar.gz") || uri.ends_with(".tgz") {
        return S3Url::parse(uri).map_err(anyhow::Error::msg);
    }
    let prefix = if uri.ends_with('/') { uri.to_owned() } else { format!("{uri}/") };
    S3Url::parse(&format!("{prefix}{version}/model.tar.gz")).map_err(anyhow::Error::msg)
}

/// A sibling object of `url` named `name`.
fn sibling(url: &S3Url, name: &str) -> S3Url {
    let dir = url.key.rsplit_once('/').map_or("", |(dir, _)| dir);
    let key = if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
    S3Url { bucket: url.bucket.clone(), key }
}

async fn upload(url: &S3Url, content: Vec<u8>) -> anyhow::Result<()> {
    S3Source::at(url)?.put(content).await.with_context(|| format!("cannot upload {url}"))
}

/// The model-quality statistics document registered with a package, in the layout of SageMaker
/// Model Monitor's model-quality statistics: multiclass (plus `macro_f1`) or regression (plus
/// Poisson deviance, WAPE and bias).
fn statistics(manifest: &Manifest) -> Value {
    let m = match &manifest.metrics {
        ModelMetrics::Classification(m) => m,
        ModelMetrics::Regression(r) => {
            return json!({
                "version": 0.0,
                "dataset": {"item_count": r.rows, "evaluated_on": "held-out test split"},
                "regression_metrics": {
                    "mae": {"value": r.mae},
                    "mse": {"value": r.rmse * r.rmse},
                    "rmse": {"value": r.rmse},
                    "poisson_deviance": {"value": r.poisson_deviance},
                    "wape": {"value": r.wape},
                    "bias": {"value": r.bias},
                }
            });
        }
    };
    let support: u64 = m.per_class.iter().map(|c| c.support).sum();
    let weighted = |f: fn(&retail_model::metrics::ClassScores) -> f64| {
        m.per_class.iter().map(|c| f(c) * c.support as f64).sum::<f64>() / support.max(1) as f64
    };
    let classes: Vec<&str> = manifest.classes.iter().map(|c| c.code.as_str()).collect();
    let confusion: BTreeMap<&str, BTreeMap<&str, u64>> = classes
        .iter()
        .zip(&m.confusion)
        .map(|(actual, row)| (*actual, classes.iter().copied().zip(row.iter().copied()).collect()))
        .collect();
    json!({
        "version": 0.0,
        "dataset": {"item_count": m.rows, "evaluated_on": "held-out test split"},
        "multiclass_classification_metrics": {
            "accuracy": {"value": m.accuracy},
            "macro_f1": {"value": m.macro_f1},
            "weighted_precision": {"value": weighted(|c| c.precision)},
            "weighted_recall": {"value": weighted(|c| c.recall)},
            "weighted_f1": {"value": weighted(|c| c.f1)},
            "log_loss": {"value": m.log_loss},
            "confusion_matrix": confusion,
        }
    })
}

/// The metrics a package's customer metadata carries: accuracy and macro-F1 of a classifier, the
/// Poisson deviance, WAPE and bias of a regression.
fn headline_metrics(metrics: &ModelMetrics) -> Vec<(String, String)> {
    let four = |v: f64| format!("{v:.4}");
    match metrics {
        ModelMetrics::Classification(m) => {
            vec![("accuracy".into(), four(m.accuracy)), ("macro_f1".into(), four(m.macro_f1))]
        }
        ModelMetrics::Regression(r) => [("poisson_deviance", r.poisson_deviance), ("wape", r.wape), ("bias", r.bias)]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), four(v?))))
            .collect(),
    }
}

async fn push(args: &PushArgs) -> anyhow::Result<()> {
    let dir = args.model.clone();
    let (artifact, archive) = tokio::task::spawn_blocking(move || artifact::pack(&dir))
        .await?
        .with_context(|| format!("cannot publish {}", args.model.display()))?;
    let manifest = &artifact.manifest;
    let url = archive_url(&args.uri, &manifest.version)?;
    let sha256 = sha256_hex(&archive);
    let bytes = archive.len();
    upload(&url, archive).await?;
    let file_name = url.key.rsplit('/').next().unwrap_or("model.tar.gz");
    upload(&sibling(&url, &format!("{file_name}.sha256")), format!("{sha256}  {file_name}\n").into_bytes()).await?;
    let mut answer = json!({"model_version": manifest.version, "model_data_url": url.to_string(),
        "sha256": sha256, "bytes": bytes});
    if let Some(group) = &args.package_group {
        let statistics_url = sibling(&url, "model-quality.json");
        upload(&statistics_url, serde_json::to_vec_pretty(&statistics(manifest))?).await?;
        let metadata = BTreeMap::from([
            ("model_name".to_owned(), manifest.name.clone()),
            ("model_version".to_owned(), manifest.version.clone()),
            ("created_at".to_owned(), manifest.created_at.clone()),
            ("sha256".to_owned(), sha256),
        ])
        .into_iter()
        .chain(headline_metrics(&manifest.metrics))
        .collect::<BTreeMap<_, _>>();
        let approval_status = if args.approve { APPROVED } else { "PendingManualApproval" };
        let registry = Registry::from_env()?;
        let arn = registry
            .create(&NewPackage {
                group: group.clone(),
                description: format!("{} {}", manifest.name, manifest.version),
                image: args.image.clone(),
                model_data_url: url.to_string(),
                statistics_url: statistics_url.to_string(),
                customer_metadata: metadata,
                approval_status: approval_status.to_owned(),
            })
            .await?;
        let package = registry.describe(group, &arn).await?;
        answer["package_group"] = json!(group);
        answer["package_arn"] = json!(arn);
        answer["package_version"] = json!(package.version);
        answer["approval_status"] = json!(package.approval_status);
    }
    print_json(&answer)
}

fn package_json(p: &Package) -> Value {
    json!({"version": p.version, "approval_status": p.approval_status, "creation_time": p.creation_time,
        "arn": p.arn, "model_data_url": p.model_data_url, "customer_metadata": p.customer_metadata})
}

#[allow(clippy::print_stdout)]
async fn list(args: &ListArgs) -> anyhow::Result<()> {
    let registry = Registry::from_env()?;
    let mut packages = Vec::new();
    for summary in registry.list(&args.package_group, None).await? {
        packages.push(registry.describe(&args.package_group, &summary.model_package_arn).await?);
    }
    if args.json {
        return print_json(&Value::Array(packages.iter().map(package_json).collect()));
    }
    println!("{:>7}  {:<22}  {:<12}  {:>8}  {:>8}  MODEL DATA", "VERSION", "STATUS", "MODEL", "ACCURACY", "MACRO_F1");
    for p in &packages {
        let meta = |key: &str| p.customer_metadata.get(key).map_or("-", String::as_str);
        println!(
            "{:>7}  {:<22}  {:<12}  {:>8}  {:>8}  {}",
            p.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
            p.approval_status,
            meta("model_version"),
            meta("accuracy"),
            meta("macro_f1"),
            p.model_data_url
        );
    }
    Ok(())
}

async fn set_status(args: &StatusArgs, status: &str) -> anyhow::Result<()> {
    let registry = Registry::from_env()?;
    let summary = registry.find(&args.package_group, args.version).await?;
    let package = registry.describe(&args.package_group, &summary.model_package_arn).await?;
    if package.approval_status == status {
        tracing::info!(version = args.version, group = %args.package_group, status, "already in that status");
        return print_json(&package_json(&package));
    }
    registry.set_status(&package, status, &args.reason).await?;
    let package = registry.describe(&args.package_group, &summary.model_package_arn).await?;
    print_json(&package_json(&package))
}
