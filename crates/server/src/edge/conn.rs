//! Connections: the accept loop and each connection's life. A connection is always in one of
//! three phases — reading a request head, busy with a request, or idle between requests — and
//! each phase has its own bound: the header-read timeout (slowloris, sockets that never send),
//! the request's own limits, and the keep-alive idle timeout (longer than the load balancer's, so
//! the balancer closes first). At `MAX_CONNECTIONS` the oldest connection not busy with a request
//! is closed to make room, so probes and real clients get in while an attacker holds idle
//! sockets; when every connection is busy, the new one is refused. After the shutdown signal,
//! idle connections close at once and busy ones after their answer.
//!
//! Hand-rolled over hyper's connection API (not `axum::serve`) because hyper's
//! `header_read_timeout` also runs while a kept-alive connection waits for its next request, so
//! one timer cannot be both 10 s for heads and 75 s for idle connections (docs/decisions.md).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::metrics;

/// Connection limits and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request head (from connect, or from its first byte
    /// on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Longest a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
}

/// Phases, stored in the top bits of [`Activity::state`]; the rest is milliseconds since the
/// server's epoch when the phase began.
const READING_HEAD: u64 = 0;
const BUSY: u64 = 1;
const IDLE: u64 = 2;
const PHASE_SHIFT: u32 = 62;

/// What a connection is doing, shared by its IO (first byte of a head), its service (request
/// start and end) and its watchdog.
struct Activity {
    state: AtomicU64,
    evict: Notify,
    epoch: Instant,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let activity = Self { state: AtomicU64::new(0), evict: Notify::new(), epoch };
        activity.set(READING_HEAD);
        activity
    }

    fn set(&self, phase: u64) {
        let millis =
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX >> 2) & ((1 << PHASE_SHIFT) - 1);
        self.state.store(phase << PHASE_SHIFT | millis, Ordering::Release);
    }

    fn phase(&self) -> (u64, Instant) {
        let state = self.state.load(Ordering::Acquire);
        let since = self.epoch + Duration::from_millis(state & ((1 << PHASE_SHIFT) - 1));
        (state >> PHASE_SHIFT, since)
    }

    fn is_busy(&self) -> bool {
        self.phase().0 == BUSY
    }

    /// When the current phase runs out (`None` while busy: the request has its own limits).
    fn deadline(&self, limits: &ConnLimits) -> Option<(Instant, &'static str)> {
        match self.phase() {
            (BUSY, _) => None,
            (IDLE, since) => Some((since + limits.idle_timeout, "idle_timeout")),
            (_, since) => Some((since + limits.header_read_timeout, "header_timeout")),
        }
    }

    /// When the watchdog next looks. Phases change without waking it (that would cost a wake-up
    /// per request), so while busy or idle it also looks every header-read timeout: a head
    /// started on a kept-alive connection is then cut within twice that timeout.
    fn next_look(&self, limits: &ConnLimits) -> Instant {
        let recheck = Instant::now() + limits.header_read_timeout;
        self.deadline(limits).map_or(recheck, |(at, _)| at.min(recheck))
    }
}

/// Marks the connection busy for as long as a request is being handled (also when the
/// request's future is dropped early).
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.set(BUSY);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(IDLE);
    }
}

/// The socket, watched: the first byte read on an idle connection starts the head's timer.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.phase().0 == IDLE {
            self.activity.set(READING_HEAD);
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Activity>>>,
    all_closed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }

    /// Makes room for one more connection: closes the oldest one that is not busy. `false` when
    /// every connection is busy.
    fn make_room(&self, max: usize) -> bool {
        let Ok(open) = self.open.lock() else { return false };
        if open.len() < max {
            return true;
        }
        match open.values().find(|a| !a.is_busy()) {
            Some(oldest) => {
                oldest.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn add(&self, id: u64, activity: Arc<Activity>) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, activity);
            metrics::connections_open(open.len());
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
            metrics::connections_open(open.len());
            if open.is_empty() {
                self.all_closed.notify_waiters();
            }
        }
    }
}

/// Accepts connections until `shutdown` resolves, then stops accepting, lets each connection
/// finish its request in flight, and returns when all are closed.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnLimits, shutdown: impl Future<Output = ()>) {
    let registry = Arc::new(Registry::default());
    let (closing_tx, closing) = watch::channel(false);
    let epoch = Instant::now();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors (or similar): back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    metrics::connection_closed("accept_error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !registry.make_room(limits.max_connections) {
            metrics::connection_closed("refused");
            drop(stream);
            continue;
        }
        next_id += 1;
        let activity = Arc::new(Activity::new(epoch));
        registry.add(next_id, activity.clone());
        let (registry, app, closing, id) = (registry.clone(), app.clone(), closing.clone(), next_id);
        tokio::spawn(async move {
            let reason = connection(stream, peer, app, activity, limits, closing).await;
            metrics::connection_closed(reason);
            registry.remove(id);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    loop {
        let all_closed = registry.all_closed.notified();
        if registry.len() == 0 {
            return;
        }
        all_closed.await;
    }
}

/// Serves one connection until it closes; returns why it closed.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    activity: Arc<Activity>,
    limits: ConnLimits,
    mut closing: watch::Receiver<bool>,
) -> &'static str {
    let _ = stream.set_nodelay(true);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let busy = Busy::begin(&activity);
            request.extensions_mut().insert(ConnectInfo(peer));
            let call = app.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = call.await;
                drop(busy);
                response
            }
        })
    };
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = *closing.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let timer = tokio::time::sleep_until(activity.next_look(&limits).into());
        tokio::select! {
            result = conn.as_mut() => {
                return match result {
                    Ok(()) if draining => "shutdown",
                    Ok(()) => "closed",
                    Err(_) => "error",
                };
            }
            () = timer => {
                // The phase may have changed since the deadline was computed.
                if let Some((at, reason)) = activity.deadline(&limits) && at <= Instant::now() {
                    return reason;
                }
            }
            () = activity.evict.notified() => return "evicted",
            changed = closing.changed(), if !draining => {
                if changed.is_ok() {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
