//! `retail-api serve`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::Artifact;
use retail_server::{AppState, ModelSource};

/// `retail-api serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Model artifact to serve: a directory or `.tar.gz` path, or `file://…` (default: the embedded model).
    #[arg(long, env = "MODEL_URI")]
    model_uri: Option<String>,
}

/// Where `--model-uri` points.
fn model_source(uri: Option<&str>) -> anyhow::Result<ModelSource> {
    let Some(uri) = uri.filter(|u| !u.is_empty()) else {
        return Ok(ModelSource::Embedded);
    };
    if uri == "embedded" {
        return Ok(ModelSource::Embedded);
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(ModelSource::Local(path.to_owned()));
    }
    if let Some((scheme, _)) = uri.split_once("://") {
        bail!(
            "MODEL_URI {uri}: scheme {scheme}:// is not supported by this build (use a local path or file://)"
        );
    }
    Ok(ModelSource::Local(uri.to_owned()))
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let source = model_source(args.model_uri.as_deref())?;
    let artifact = match &source {
        ModelSource::Embedded => {
            Artifact::embedded_default().context("cannot load the embedded default model")?
        }
        ModelSource::Local(path) => Artifact::load(&PathBuf::from(path))
            .with_context(|| format!("cannot load model {path}"))?,
    };
    let state = Arc::new(AppState::new(artifact, source));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addr = SocketAddr::new(args.host, args.port);
    runtime
        .block_on(retail_server::serve(addr, state))
        .with_context(|| format!("cannot serve on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uri_forms() {
        assert_eq!(model_source(None).expect("none"), ModelSource::Embedded);
        assert_eq!(
            model_source(Some("")).expect("empty"),
            ModelSource::Embedded
        );
        assert_eq!(
            model_source(Some("/m")).expect("path"),
            ModelSource::Local("/m".into())
        );
        assert_eq!(
            model_source(Some("file:///m.tar.gz")).expect("file"),
            ModelSource::Local("/m.tar.gz".into())
        );
        assert!(model_source(Some("ftp://x/y")).is_err());
    }
}
