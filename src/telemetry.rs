//! Per-RPC telemetry: a request id (taken from `x-request-id` or generated,
//! and returned), one span per call carrying method and request id, and one
//! log line when the call ends with its gRPC status and latency.
//!
//! Only the path, the request id, the status code and timings are logged:
//! never metadata (tokens) or messages (passwords).
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use tower_http::{
    classify::{GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::{MakeSpan, OnEos, OnFailure, OnResponse, TraceLayer},
};
use tracing::Span;

use crate::rest::JsonCall;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;

/// Keeps a caller's reasonable request id, otherwise makes a UUIDv7.
#[derive(Clone, Copy, Default)]
pub struct RequestIds;

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Drops an oversized or non-printable caller id so a fresh one is made.
pub fn sanitize_request_id<B>(mut request: Request<B>) -> Request<B> {
    let bad = request.headers().get(&REQUEST_ID).is_some_and(|v| {
        v.len() > MAX_REQUEST_ID_LEN || v.to_str().map_or(true, |s| s.chars().any(char::is_control))
    });
    if bad {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

pub fn set_request_id() -> SetRequestIdLayer<RequestIds> {
    SetRequestIdLayer::new(REQUEST_ID, RequestIds)
}

pub fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(REQUEST_ID)
}

#[derive(Clone, Copy, Default)]
pub struct RpcSpan;

impl<B> MakeSpan<B> for RpcSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let face = if request.extensions().get::<JsonCall>().is_some() {
            "json"
        } else {
            "grpc"
        };
        tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            face,
            request_id = %request_id,
            grpc_status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<&str> {
    headers.get("grpc-status").and_then(|v| v.to_str().ok())
}

/// Records the status on the call's span and emits its one "rpc finished" line.
fn finished(span: &Span, status: &str) {
    span.record("grpc_status", status);
    let _entered = span.enter();
    tracing::info!("rpc finished");
}

/// Ends a call: at the response for trailers-only (error) answers, otherwise
/// at the end of the stream, where the status trailer is.
#[derive(Clone, Copy, Default)]
pub struct RpcEnd;

impl<B> OnResponse<B> for RpcEnd {
    /// Unary handlers have finished when the response head goes out, so this
    /// latency is the call's; the stream that follows holds one message.
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
        if let Some(status) = grpc_status(response.headers()) {
            finished(span, status);
        }
    }
}

impl OnEos for RpcEnd {
    fn on_eos(self, trailers: Option<&HeaderMap>, _stream_duration: Duration, span: &Span) {
        finished(span, trailers.and_then(grpc_status).unwrap_or("0"));
    }
}

impl OnFailure<GrpcFailureClass> for RpcEnd {
    fn on_failure(&mut self, failure: GrpcFailureClass, _latency: Duration, span: &Span) {
        if let GrpcFailureClass::Error(error) = failure {
            let _entered = span.enter();
            tracing::debug!(%error, "transport error");
        }
    }
}

pub type RpcTraceLayer =
    TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, RpcSpan, (), RpcEnd, (), RpcEnd, RpcEnd>;

pub fn trace_rpcs() -> RpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(RpcSpan)
        .on_request(())
        .on_response(RpcEnd)
        .on_body_chunk(())
        .on_eos(RpcEnd)
        .on_failure(RpcEnd)
}
