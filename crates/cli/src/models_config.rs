//! Which models `serve` holds: one from the single-model settings (`MODEL_URI`,
//! `MODEL_PACKAGE_GROUP`, `MODEL_BUCKET` + `MODEL_KEY`, as before), or several from
//! `MODELS_CONFIG` (a TOML file) or `MODELS` (`name=source,…`); `DEFAULT_MODEL` names the one
//! the unqualified routes serve.
//!
//! ```toml
//! default = "retail-price-sensitivity"      # optional (DEFAULT_MODEL wins; else the first)
//!
//! [[model]]
//! name = "retail-price-sensitivity"
//! source = "s3://models/retail/model.tar.gz" # a path, file://, s3://, registry:<group>, embedded
//! poll_seconds = 60                          # optional (else MODEL_POLL_SECONDS)
//! fallback = "embedded"                      # optional: an embedded model serves while it loads
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use retail_model::artifact::ModelKind;
use retail_server::store::S3Url;
use retail_server::{ModelConfig, ModelSource};
use serde::Deserialize;

/// Largest `MODELS_CONFIG` file read.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// One model to serve, and which embedded model may stand in while it loads.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Name, source, poll interval.
    pub config: ModelConfig,
    /// Serve this embedded model until the source loads.
    pub fallback: Option<ModelKind>,
}

/// `MODELS_CONFIG`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    default: Option<String>,
    #[serde(default)]
    model: Vec<Entry>,
}

/// One `[[model]]` of `MODELS_CONFIG`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    source: String,
    poll_seconds: Option<f64>,
    fallback: Option<String>,
}

/// What may serve while a model's source loads: `none`, or an embedded model (`embedded`,
/// `embedded:retail-sales-forecast`).
fn fallback(value: Option<&str>) -> anyhow::Result<Option<ModelKind>> {
    match value {
        None | Some("none") => Ok(None),
        Some(other) => match source(other) {
            Ok(ModelSource::Embedded(kind)) => Ok(Some(kind)),
            _ => bail!("fallback {other:?}: use none, embedded or embedded:retail-sales-forecast"),
        },
    }
}

/// The models of a `MODELS_CONFIG` file and the default it names; `poll` applies to models that
/// set no `poll_seconds`.
pub fn from_file(path: &Path, poll: Option<Duration>) -> anyhow::Result<(Vec<Planned>, Option<String>)> {
    let size = std::fs::metadata(path).with_context(|| format!("MODELS_CONFIG {}", path.display()))?.len();
    if size > MAX_CONFIG_BYTES {
        bail!("MODELS_CONFIG {}: larger than {MAX_CONFIG_BYTES} bytes", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("MODELS_CONFIG {}", path.display()))?;
    parse_file(&text, poll).with_context(|| format!("MODELS_CONFIG {}", path.display()))
}

fn parse_file(text: &str, poll: Option<Duration>) -> anyhow::Result<(Vec<Planned>, Option<String>)> {
    let file: File = toml::from_str(text)?;
    if file.model.is_empty() {
        bail!("no [[model]] configured");
    }
    let planned = file
        .model
        .into_iter()
        .map(|e| {
            let poll = match e.poll_seconds {
                None => poll,
                Some(s) => seconds(s).with_context(|| format!("model {:?}: poll_seconds", e.name))?,
            };
            let source = source(&e.source).with_context(|| format!("model {:?}", e.name))?;
            let fallback = fallback(e.fallback.as_deref()).with_context(|| format!("model {:?}", e.name))?;
            Ok(Planned { config: ModelConfig { name: e.name, source, poll }, fallback })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((planned, file.default))
}

/// The models of `MODELS` (`name=source,name=source`), polled every `poll`.
pub fn from_list(list: &str, poll: Option<Duration>) -> anyhow::Result<Vec<Planned>> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let Some((name, uri)) = item.split_once('=') else {
                bail!("MODELS item {item:?}: write name=source");
            };
            let source = source(uri.trim()).with_context(|| format!("MODELS item {item:?}"))?;
            Ok(Planned { config: ModelConfig { name: name.trim().to_owned(), source, poll }, fallback: None })
        })
        .collect()
}

/// A poll interval: 0 means never.
fn seconds(value: f64) -> anyhow::Result<Option<Duration>> {
    let d = Duration::try_from_secs_f64(value).map_err(|_| anyhow::anyhow!("{value} is not a number of seconds"))?;
    Ok((!d.is_zero()).then_some(d))
}

/// A model source: a path, `file://…`, `s3://bucket/key`, `registry:<group>`, `embedded` (the
/// basket classifier, also `embedded:retail-price-sensitivity`),
/// `embedded:retail-sales-forecast`, or `embedded:<name>` of the tabular model this build
/// embeds (`models/tabular`), if any.
pub fn source(uri: &str) -> anyhow::Result<ModelSource> {
    if uri.is_empty() {
        bail!("empty source");
    }
    if let Some(name) = uri.strip_prefix("embedded") {
        let tabular = retail_server::embedded_tabular_name();
        return match name {
            "" | ":retail-price-sensitivity" => Ok(ModelSource::Embedded(ModelKind::BasketClassifier)),
            ":retail-sales-forecast" => Ok(ModelSource::Embedded(ModelKind::SalesForecast)),
            other if tabular.is_some_and(|t| other.strip_prefix(':') == Some(t)) => {
                Ok(ModelSource::Embedded(ModelKind::TabularClassifier))
            }
            _ => {
                let tabular = tabular.map_or_else(
                    || " (this build embeds no tabular model)".to_owned(),
                    |t| format!(" and embedded:{t} (the tabular model)"),
                );
                bail!(
                    "{uri}: the embedded models are embedded:retail-price-sensitivity (or embedded), embedded:retail-sales-forecast{tabular}"
                )
            }
        };
    }
    if let Some(group) = uri.strip_prefix("registry:") {
        if group.is_empty() {
            bail!("registry: needs a model package group");
        }
        return Ok(ModelSource::Registry { group: group.to_owned() });
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(ModelSource::Local(path.to_owned()));
    }
    if uri.starts_with("s3://") {
        return S3Url::parse(uri).map(ModelSource::S3).map_err(|e| anyhow::anyhow!("{e}"));
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        bail!("{uri}: scheme {scheme}:// is not supported (use a path, file://, s3://, registry:<group> or embedded)");
    }
    Ok(ModelSource::Local(uri.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_names_models_sources_polls_and_the_default() {
        let text = r#"
            default = "forecast"
            [[model]]
            name = "baskets"
            source = "embedded"
            [[model]]
            name = "forecast"
            source = "s3://models/forecast/model.tar.gz"
            poll_seconds = 30
            fallback = "embedded"
            [[model]]
            name = "registered"
            fallback = "embedded:retail-sales-forecast"
            source = "registry:retail-forecast"
            poll_seconds = 0
        "#;
        let poll = Some(Duration::from_secs(5));
        let (planned, default) = parse_file(text, poll).expect("config");
        assert_eq!(default.as_deref(), Some("forecast"));
        assert_eq!(planned.len(), 3);
        assert_eq!(
            planned[0].config,
            ModelConfig { name: "baskets".into(), source: ModelSource::Embedded(ModelKind::BasketClassifier), poll }
        );
        assert_eq!(planned[0].fallback, None);
        let s3 = ModelSource::S3(S3Url { bucket: "models".into(), key: "forecast/model.tar.gz".into() });
        assert_eq!(
            planned[1].config,
            ModelConfig { name: "forecast".into(), source: s3, poll: Some(Duration::from_secs(30)) }
        );
        assert_eq!(planned[1].fallback, Some(ModelKind::BasketClassifier));
        assert_eq!(planned[2].config.source, ModelSource::Registry { group: "retail-forecast".into() });
        assert_eq!(planned[2].config.poll, None, "0 means never");
        assert_eq!(planned[2].fallback, Some(ModelKind::SalesForecast));
    }

    #[test]
    fn config_file_mistakes_are_refused_with_their_place() {
        for (text, needle) in [
            ("", "no [[model]]"),
            ("[[model]]\nname = \"a\"\n", "source"),
            ("[[model]]\nname = \"a\"\nsource = \"embedded\"\nsauce = 1\n", "sauce"),
            ("[[model]]\nname = \"a\"\nsource = \"ftp://x/y\"\n", "ftp://"),
            ("[[model]]\nname = \"a\"\nsource = \"embedded\"\npoll_seconds = -1\n", "poll_seconds"),
            ("[[model]]\nname = \"a\"\nsource = \"embedded\"\nfallback = \"maybe\"\n", "fallback"),
        ] {
            let error = format!("{:#}", parse_file(text, None).expect_err(text));
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_models_list_is_name_equals_source() {
        let planned = from_list("a=embedded, b=/models/b.tar.gz,", None).expect("list");
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[1].config.source, ModelSource::Local("/models/b.tar.gz".into()));
        assert!(from_list("a", None).is_err());
        assert!(from_list("a=", None).is_err());
        assert!(from_list("a=registry:", None).is_err());
    }

    #[test]
    fn the_embedded_tabular_model_is_named_by_its_manifest_name() {
        match retail_server::embedded_tabular_name() {
            Some(name) => {
                let source = source(&format!("embedded:{name}")).expect("the embedded tabular model");
                assert_eq!(source, ModelSource::Embedded(ModelKind::TabularClassifier));
                assert_eq!(source.location(), format!("embedded:{name}"));
            }
            None => {
                let error = format!("{:#}", source("embedded:tabular").expect_err("none embedded"));
                assert!(error.contains("embeds no tabular model"), "{error}");
            }
        }
        assert!(source("embedded:nothing-of-that-name").is_err());
    }
}
