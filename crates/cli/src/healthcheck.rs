//! `retail-api healthcheck`: exits 0 when the local server answers 200, else 1. Used by the
//! image's HEALTHCHECK, which has no shell and no curl.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// `retail-api healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Port of the local server.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Path to ask (`/ready`: healthy means able to serve).
    #[arg(long, default_value = "/ready")]
    path: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

pub fn healthcheck(args: &HealthcheckArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", args.path)?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).with_context(|| format!("no answer from {addr}{}", args.path))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status != "200" {
        bail!("{addr}{} answered {status}", args.path);
    }
    Ok(())
}
