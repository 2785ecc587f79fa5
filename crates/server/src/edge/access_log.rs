//! The access log: one INFO line per request (target `access`), fields at the top level of the
//! JSON line so CloudWatch Logs Insights can `filter status >= 500`: time, request id, method,
//! route template, status, latency, bytes in and out, model name and version, rows scored,
//! client address, user agent and the authenticated principal (a token's `sub` or an API key's
//! name). Never bodies, tokens, keys or other headers. `ACCESS_LOG` chooses
//! every request, errors (status >= 400) only, or none.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::AppState;
use crate::edge::hook::Hook;
use crate::metrics::requests::method_label;
use crate::routes::Scored;

/// Which requests get an access-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// Every request.
    #[default]
    All,
    /// Requests answered with status 400 or more.
    Errors,
    /// None.
    Off,
}

const FORWARDED_FOR: &str = "x-forwarded-for";

/// Longest user agent logged; longer ones are cut.
const MAX_USER_AGENT: usize = 256;

/// What the access log keeps of a request until its answer.
pub struct Seen {
    start: Instant,
    method: &'static str,
    route: Option<MatchedPath>,
    id: Option<tower_http::request_id::RequestId>,
    peer: Option<IpAddr>,
    agent: Option<HeaderValue>,
    forwarded: Option<HeaderValue>,
    bytes_in: u64,
}

/// The layer's hook.
#[derive(Clone)]
pub struct Log(pub Arc<AppState>);

impl Hook for Log {
    type Seen = Option<Seen>;

    fn before(&self, request: &mut Request) -> Self::Seen {
        if self.0.config.access_log == AccessLog::Off {
            return None;
        }
        let headers = request.headers();
        Some(Seen {
            start: Instant::now(),
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            id: request.extensions().get().cloned(),
            peer: request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
            agent: headers.get(header::USER_AGENT).cloned(),
            forwarded: headers.get(FORWARDED_FOR).cloned(),
            bytes_in: content_length(headers).unwrap_or(0),
        })
    }

    fn after(&self, seen: Self::Seen, response: &mut Response) {
        let Some(seen) = seen else { return };
        let status = response.status().as_u16();
        if self.0.config.access_log == AccessLog::Errors && status < 400 {
            return;
        }
        let scored = response.extensions().get::<Scored>();
        let manifest = scored.map(|s| &s.model.artifact.manifest);
        tracing::info!(
            target: "access",
            request_id = crate::edge::request_id::id_of(seen.id.as_ref()),
            method = seen.method,
            route = seen.route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status,
            latency_ms = seen.start.elapsed().as_secs_f64() * 1e3,
            bytes_in = seen.bytes_in,
            bytes_out = response.body().size_hint().exact().or_else(|| content_length(response.headers())).unwrap_or(0),
            model = scored.map(|s| s.model.name.as_ref()),
            model_version = manifest.map(|m| m.version.as_str()),
            rows = scored.map(|s| s.rows),
            client = client(seen.peer, seen.forwarded.as_ref(), &self.0.config.trusted_proxies).map(tracing::field::display),
            user_agent = user_agent(seen.agent.as_ref()),
            principal = response.extensions().get::<crate::auth::Principal>().map(crate::auth::Principal::name),
            "request"
        );
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn user_agent(agent: Option<&HeaderValue>) -> Option<&str> {
    let agent = agent?.to_str().ok()?;
    Some(agent.get(..MAX_USER_AGENT).unwrap_or(agent))
}

/// The client: the peer, or the first `X-Forwarded-For` hop when the peer is a trusted proxy.
pub fn client(peer: Option<IpAddr>, forwarded: Option<&HeaderValue>, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = forwarded.and_then(|v| v.to_str().ok());
    Some(forwarded.and_then(|f| f.split(',').next()).and_then(|hop| hop.trim().parse().ok()).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_forwarded_hop_counts_only_behind_a_trusted_proxy() {
        let headers = HeaderValue::from_static("203.0.113.7, 10.0.0.5");
        let headers = Some(&headers);
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(client(Some(proxy), headers, &trusted), "203.0.113.7".parse().ok());
        assert_eq!(client(Some(stranger), headers, &trusted), Some(stranger));
        assert_eq!(client(Some(proxy), headers, &[]), Some(proxy));
        let garbage = HeaderValue::from_static("not an address");
        assert_eq!(client(Some(proxy), Some(&garbage), &trusted), Some(proxy));
        assert_eq!(client(Some(proxy), None, &trusted), Some(proxy));
    }
}
