//! Logging set-up: `tracing` to stderr through a non-blocking, buffered writer (a logging thread
//! writes; requests never wait on stderr), JSON when `LOG_FORMAT=json` (containers, fields at the
//! top level), human text otherwise, coloured only when stderr is a terminal; the level comes from
//! `RUST_LOG` (default `info`). When the buffer is full (128,000 lines behind) new lines are
//! dropped rather than slowing requests.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// The S3 client logs each retry at INFO; they are DEBUG detail here (the model source logs the
/// failure that matters once, as a warning), shown when `RUST_LOG` asks for debug or names them.
const QUIET_RETRIES: &str = "object_store=warn";

/// The filter from `RUST_LOG` (default `info`), with the S3 client's retries demoted.
fn filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info");
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let debug = filter.max_level_hint().is_some_and(|level| level >= LevelFilter::DEBUG);
    if debug || spec.contains("object_store") {
        return filter;
    }
    match QUIET_RETRIES.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs the global subscriber; keep the guard until exit so buffered lines are written.
pub fn init() -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let spec = std::env::var("RUST_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(spec.as_deref()))
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_retries_are_debug_detail() {
        assert!(filter(None).to_string().contains(QUIET_RETRIES));
        assert!(!filter(Some("info,retail_server=debug")).to_string().contains(QUIET_RETRIES));
        assert!(!filter(Some("debug")).to_string().contains(QUIET_RETRIES));
        assert!(!filter(Some("object_store=info")).to_string().contains(QUIET_RETRIES));
        assert!(filter(Some("warn")).to_string().contains(QUIET_RETRIES));
    }
}
