//! Logging set-up: `tracing` to stderr through a non-blocking, buffered writer (a logging thread
//! writes; requests never wait on stderr), JSON when `LOG_FORMAT=json` (containers, fields at the
//! top level), human text otherwise; the level comes from `RUST_LOG` (default `info`). When the
//! buffer is full (128,000 lines behind) new lines are dropped rather than slowing requests.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; keep the guard until exit so buffered lines are written.
pub fn init() -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
    guard
}
