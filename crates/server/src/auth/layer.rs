//! [`RequireScope`]: the route layer of a protected route group. It checks the credential
//! before anything else on the route (body admission included), answers 401/403 in the API's
//! error shape, counts failures by reason, and puts the [`Principal`] in the response's
//! extensions (for the access log). With a cached key the
//! check is synchronous and nothing is boxed; only a token with an unknown `kid` waits for a
//! JWKS refetch.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use super::{Auth, Failure, Principal, Scope, Verdict, WithoutExplain};
use crate::ApiError;

/// Requires a credential carrying `scope` on every route of the group it is applied to.
#[derive(Clone)]
pub struct RequireScope {
    auth: Arc<Auth>,
    scope: Scope,
}

impl RequireScope {
    /// The layer for routes that need `scope`.
    pub fn new(auth: Arc<Auth>, scope: Scope) -> Self {
        Self { auth, scope }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded { inner, auth: self.auth.clone(), scope: self.scope }
    }
}

/// A service behind [`RequireScope`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    auth: Arc<Auth>,
    scope: Scope,
}

/// The principal if it has `scope`, else `None` (counted, and logged at debug level).
fn authorize(principal: Principal, scope: Scope) -> Option<Principal> {
    if principal.scopes().contains(scope) {
        return Some(principal);
    }
    crate::metrics::auth_failure("insufficient_scope");
    tracing::debug!(principal = principal.name(), %scope, "insufficient scope");
    None
}

/// The 403 answer for a credential without `scope`.
fn forbid(scope: Scope) -> Response {
    ApiError::InsufficientScope(scope).into_response()
}

/// The 401 answer for `failure` (counted).
fn deny(failure: Failure) -> Response {
    crate::metrics::auth_failure(failure.reason());
    tracing::debug!(reason = failure.reason(), "credential refused");
    ApiError::Unauthorized(failure).into_response()
}

/// Runs the inner service for an authorized request; the principal goes with the response (no
/// handler reads it, so it is not put in the request: that would cost an allocation each). A
/// scoring request whose credential lacks `explain` is marked [`WithoutExplain`] (zero-sized), so
/// its handler refuses an explanation.
fn admit<S>(inner: &mut S, mut request: Request, principal: Principal, scope: Scope) -> GuardFuture<S::Future>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    if scope == Scope::Predict && !principal.scopes().contains(Scope::Explain) {
        request.extensions_mut().insert(WithoutExplain);
    }
    GuardFuture::Inner { inner: inner.call(request), principal: Some(principal) }
}

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.auth.check(request.headers()) {
            Verdict::Allowed(principal) => match authorize(principal, self.scope) {
                Some(principal) => admit(&mut self.inner, request, principal, self.scope),
                None => GuardFuture::Done { response: Some(forbid(self.scope)) },
            },
            Verdict::Denied(failure) => GuardFuture::Done { response: Some(deny(failure)) },
            Verdict::UnknownKid => {
                // The inner service was made ready for this call: take it, leave a clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let (auth, scope) = (self.auth.clone(), self.scope);
                GuardFuture::Refetch {
                    future: Box::pin(async move {
                        let verdict = auth.check_after_refetch(request.headers()).await;
                        match verdict {
                            Verdict::Allowed(p) => match authorize(p, scope) {
                                Some(principal) => admit(&mut inner, request, principal, scope).await,
                                None => Ok(forbid(scope)),
                            },
                            Verdict::Denied(failure) => Ok(deny(failure)),
                            Verdict::UnknownKid => Ok(deny(Failure::UnknownKey)),
                        }
                    }),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Guarded`].
    #[project = GuardProj]
    pub enum GuardFuture<F> {
        /// Authorized: the route runs; its answer gets the principal.
        Inner { #[pin] inner: F, principal: Option<Principal> },
        /// Refused at once.
        Done { response: Option<Response> },
        /// Waiting for a JWKS refetch (an unknown `kid`), then as above.
        Refetch { future: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardProj::Inner { inner, principal } => {
                let Ok(mut response) = ready!(inner.poll(cx));
                if let Some(principal) = principal.take() {
                    response.extensions_mut().insert(principal);
                }
                Poll::Ready(Ok(response))
            }
            GuardProj::Done { response } => Poll::Ready(Ok(response.take().unwrap_or_default())),
            GuardProj::Refetch { future } => future.as_mut().poll(cx),
        }
    }
}
