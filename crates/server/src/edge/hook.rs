//! A layer that runs code before a request and after its response, without boxing the inner
//! service or its future (axum's `from_fn` boxes both on every request, which the throughput
//! benchmark showed; docs/decisions.md). Each edge concern that only looks at the request and
//! then edits the response — metrics, the access log, error bodies, the drain header — is a
//! [`Hook`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

/// Code run around each request.
pub trait Hook: Clone + Send + Sync + 'static {
    /// What `before` keeps for `after`.
    type Seen: Send + 'static;
    /// Looks at (or adjusts) the request before it goes in.
    fn before(&self, request: &mut Request) -> Self::Seen;
    /// Adjusts the response on its way out.
    fn after(&self, seen: Self::Seen, response: &mut Response);
}

/// The layer of a [`Hook`].
#[derive(Clone)]
pub struct HookLayer<H>(pub H);

impl<S, H: Hook> Layer<S> for HookLayer<H> {
    type Service = Hooked<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        Hooked { inner, hook: self.0.clone() }
    }
}

/// A service with a [`Hook`] around it.
#[derive(Clone)]
pub struct Hooked<S, H> {
    inner: S,
    hook: H,
}

impl<S, H> Service<Request> for Hooked<S, H>
where
    S: Service<Request, Response = Response>,
    H: Hook,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HookedFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let seen = self.hook.before(&mut request);
        HookedFuture { inner: self.inner.call(request), hook: Some((self.hook.clone(), seen)) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Hooked`].
    pub struct HookedFuture<F, H: Hook> {
        #[pin]
        inner: F,
        hook: Option<(H, H::Seen)>,
    }
}

impl<F, E, H> Future for HookedFuture<F, H>
where
    F: Future<Output = Result<Response, E>>,
    H: Hook,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some((hook, seen))) = (result.as_mut(), this.hook.take()) {
            hook.after(seen, response);
        }
        Poll::Ready(result)
    }
}
