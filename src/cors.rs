//! CORS for browsers, for grpc-web and the JSON routes alike.
//!
//! Only requests that carry an `Origin` header go through it: every browser
//! call does (a preflight, a cross-origin call, a same-origin POST), and the
//! rest (gRPC services, grpcurl, curl) would only gain a `Vary` header on
//! every response, which cost them 2-3% of a call (BENCHMARKS.md, "One layer
//! per call"). No response here may be stored by a shared cache for another
//! request: every call but sign-up, login and health needs an `authorization`
//! header, whose responses shared caches do not store (RFC 9111, 3.5), and
//! those three are POSTs or gRPC.
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Request;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::config::CorsOrigins;

fn is_local_origin(origin: &http::HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn cors_layer(origins: &CorsOrigins, extra_headers: &[String]) -> CorsLayer {
    let allow = match origins {
        CorsOrigins::None => AllowOrigin::list(Vec::<http::HeaderValue>::new()),
        CorsOrigins::Localhost => AllowOrigin::predicate(|origin, _| is_local_origin(origin)),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| o.parse::<http::HeaderValue>().ok()),
        ),
    };
    let header = http::HeaderName::from_static;
    let extra = extra_headers
        .iter()
        .filter_map(|h| http::HeaderName::try_from(h.as_str()).ok());
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            http::Method::GET,
            http::Method::POST,
            http::Method::PATCH,
            http::Method::PUT,
            http::Method::DELETE,
            http::Method::OPTIONS,
        ])
        .allow_headers(
            [
                header("authorization"),
                header("content-type"),
                header("x-grpc-web"),
                header("x-user-agent"),
                header("grpc-timeout"),
                header("x-request-id"),
            ]
            .into_iter()
            .chain(extra)
            .collect::<Vec<_>>(),
        )
        .expose_headers([
            header("grpc-status"),
            header("grpc-message"),
            header("grpc-status-details-bin"),
            header("x-request-id"),
            header("retry-after"),
        ])
        .max_age(std::time::Duration::from_secs(24 * 3600))
}

#[derive(Clone)]
pub struct BrowserCorsLayer {
    cors: CorsLayer,
}

impl BrowserCorsLayer {
    pub fn new(origins: &CorsOrigins, extra_headers: &[String]) -> Self {
        Self {
            cors: cors_layer(origins, extra_headers),
        }
    }
}

impl<S> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            cors: Arc::new(self.cors.clone()),
            inner,
        }
    }
}

/// tonic clones the service stack for every call, so the CORS layer is
/// shared and its service is made only for a browser's call.
#[derive(Clone)]
pub struct BrowserCors<S> {
    cors: Arc<CorsLayer>,
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for BrowserCors<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BrowserFuture<<Cors<S> as Service<Request<B>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !request.headers().contains_key(http::header::ORIGIN) {
            return BrowserFuture::Direct {
                future: self.inner.call(request),
            };
        }
        // The service that was polled ready handles this call; a fresh clone
        // takes its place for the next one.
        let ready = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, ready);
        BrowserFuture::Cors {
            future: self.cors.layer(ready).call(request),
        }
    }
}

pin_project_lite::pin_project! {
    #[project = BrowserFutureProj]
    pub enum BrowserFuture<C, D> {
        Cors { #[pin] future: C },
        Direct { #[pin] future: D },
    }
}

impl<C, D> Future for BrowserFuture<C, D>
where
    C: Future,
    D: Future<Output = C::Output>,
{
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BrowserFutureProj::Cors { future } => future.poll(cx),
            BrowserFutureProj::Direct { future } => future.poll(cx),
        }
    }
}
