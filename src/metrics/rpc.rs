//! The tower layer that counts every RPC and times it, by method and status.
//!
//! A call ends at its response head when the answer is trailers-only (every
//! error), otherwise at the trailers that close the body. A call dropped
//! before either (the client went away) counts as `Canceled`.
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::{MethodLabels, Metrics};
use crate::methods;

/// Infrastructure methods, labelled by name like the contract's.
const INFRA_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

const UNKNOWN: MethodLabels = MethodLabels {
    grpc_service: "unknown",
    grpc_method: "unknown",
};

/// Labels for a request: its contract method, or an infrastructure method
/// by path. Paths outside the served methods share one label, so random
/// paths cannot grow the series without bound.
pub fn method_labels<B>(request: &http::Request<B>) -> MethodLabels {
    if let Some(method) = methods::resolved(request) {
        return MethodLabels {
            grpc_service: method.service,
            grpc_method: method.name,
        };
    }
    let path = request.uri().path();
    INFRA_METHODS
        .iter()
        .find(|known| **known == path)
        .and_then(|known| known.strip_prefix('/')?.split_once('/'))
        .map_or(UNKNOWN, |(grpc_service, grpc_method)| MethodLabels {
            grpc_service,
            grpc_method,
        })
}

/// gRPC status codes by number, spelled as go-grpc-prometheus spells them.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

fn code_name(headers: &HeaderMap) -> Option<&'static str> {
    let code: usize = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(CODE_NAMES.get(code).copied().unwrap_or("Unknown"))
}

/// One call being measured; records its outcome exactly once.
struct Call {
    metrics: Metrics,
    method: MethodLabels,
    start: Instant,
    /// Time to the response head, once it went out.
    head: Option<f64>,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if !self.done {
            self.done = true;
            let seconds = self
                .head
                .unwrap_or_else(|| self.start.elapsed().as_secs_f64());
            self.metrics.rpc_finished(self.method, code, seconds);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("Canceled");
    }
}

#[derive(Clone)]
pub struct RpcMetricsLayer {
    metrics: Metrics,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RpcMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = method_labels(&request);
        self.metrics.rpc_started(method);
        let call = Call {
            metrics: self.metrics.clone(),
            method,
            start: Instant::now(),
            head: None,
            done: false,
        };
        MeteredFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, B, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<MeteredBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut call = this.call.take().expect("polled after completion");
        call.head = Some(call.start.elapsed().as_secs_f64());
        Poll::Ready(match result {
            Ok(response) => {
                // Trailers-only: the status is already in the head.
                let call = match code_name(response.headers()) {
                    Some(code) => {
                        call.finish(code);
                        None
                    }
                    None => Some(call),
                };
                Ok(response.map(|inner| MeteredBody { inner, call }))
            }
            Err(e) => {
                call.finish("Unknown");
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), this.call.as_mut()) {
                    call.finish(code_name(trailers).unwrap_or("Unknown"));
                }
            }
            Some(Err(_)) | None => {
                if let Some(call) = this.call.as_mut() {
                    call.finish("Unknown");
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> MethodLabels {
        let request = methods::resolve(http::Request::get(path).body(()).unwrap());
        method_labels(&request)
    }

    #[test]
    fn served_methods_get_their_labels_and_others_share_one() {
        let login = labels("/theatre.v1.AuthService/Login");
        assert_eq!(login.grpc_service, "theatre.v1.AuthService");
        assert_eq!(login.grpc_method, "Login");
        let watch = labels("/grpc.health.v1.Health/Watch");
        assert_eq!(watch.grpc_method, "Watch");
        assert_eq!(labels("/x.Y/Z").grpc_service, "unknown");
        assert_eq!(labels("/").grpc_method, "unknown");
    }
}
