//! `retail-api serve`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::Artifact;
use retail_server::{AppState, ModelSource, ServerConfig};

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
    /// Most records in one batch call.
    #[arg(long, env = "MAX_BATCH_ROWS", default_value_t = ServerConfig::default().max_batch_rows)]
    max_batch_rows: usize,
    /// Most scoring requests handled at once; more are answered 429 with Retry-After.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = ServerConfig::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Longest a scoring request may take, in milliseconds, before it is answered 503.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = ServerConfig::default().request_timeout.as_millis() as u64)]
    request_timeout_ms: u64,
    /// Seconds between checks of a local model source for a new version (0: never).
    #[arg(long, env = "MODEL_POLL_SECONDS", default_value_t = 0.0)]
    model_poll_seconds: f64,
    /// After SIGTERM, seconds the server keeps accepting while /ready answers 503 (so load
    /// balancers take it out of rotation first).
    #[arg(long, env = "DRAIN_DELAY_SECONDS", default_value_t = 0.0)]
    drain_delay_seconds: f64,
    /// After SIGTERM, seconds until the process exits even with requests in flight.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = ServerConfig::default().shutdown_grace.as_secs_f64())]
    shutdown_grace_seconds: f64,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<ServerConfig> {
        if self.max_batch_rows == 0 || self.max_concurrent_requests == 0 || self.request_timeout_ms == 0 {
            bail!("--max-batch-rows, --max-concurrent-requests and --request-timeout-ms must be positive");
        }
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| anyhow::anyhow!("--{name} must be a non-negative number of seconds, got {value}"))
        };
        let drain_delay = seconds("drain-delay-seconds", self.drain_delay_seconds)?;
        let model_poll = seconds("model-poll-seconds", self.model_poll_seconds)?;
        let shutdown_grace = seconds("shutdown-grace-seconds", self.shutdown_grace_seconds)?;
        if shutdown_grace <= drain_delay {
            bail!("--shutdown-grace-seconds must be longer than --drain-delay-seconds");
        }
        Ok(ServerConfig {
            addr: SocketAddr::new(self.host, self.port),
            max_batch_rows: self.max_batch_rows,
            max_concurrent_requests: self.max_concurrent_requests,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            drain_delay,
            shutdown_grace,
            model_poll: (!model_poll.is_zero()).then_some(model_poll),
            ..ServerConfig::default()
        })
    }
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
        bail!("MODEL_URI {uri}: scheme {scheme}:// is not supported by this build (use a local path or file://)");
    }
    Ok(ModelSource::Local(uri.to_owned()))
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let source = model_source(args.model_uri.as_deref())?;
    let artifact = match &source {
        ModelSource::Embedded => Artifact::embedded_default().context("cannot load the embedded default model")?,
        ModelSource::Local(path) => {
            Artifact::load(&PathBuf::from(path)).with_context(|| format!("cannot load model {path}"))?
        }
    };
    let config = args.config()?;
    let addr = config.addr;
    let state = Arc::new(AppState::new(artifact, source, config));
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(retail_server::serve(state)).with_context(|| format!("cannot serve on {addr}"))
}

/// `retail-api openapi`: the document `/openapi.json` serves (and `docs/openapi.json` holds).
#[allow(clippy::print_stdout)]
pub fn print_openapi() -> anyhow::Result<()> {
    println!("{}", retail_server::openapi().to_pretty_json()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uri_forms() {
        assert_eq!(model_source(None).expect("none"), ModelSource::Embedded);
        assert_eq!(model_source(Some("")).expect("empty"), ModelSource::Embedded);
        assert_eq!(model_source(Some("/m")).expect("path"), ModelSource::Local("/m".into()));
        assert_eq!(model_source(Some("file:///m.tar.gz")).expect("file"), ModelSource::Local("/m.tar.gz".into()));
        assert!(model_source(Some("ftp://x/y")).is_err());
    }
}
