//! Per-RPC telemetry, in one layer: the request id (taken from `x-request-id`
//! or generated, and returned), the call's metrics (counted when it starts,
//! counted and timed by status when it ends), and one log line when it ends,
//! with method, request id, gRPC status and latency. The handler runs with
//! its call's method and request id at hand (`crate::call`), for the lines it
//! logs itself.
//!
//! A call ends at its response head when the answer is trailers-only (every
//! error), otherwise at the trailers that close the body. A call dropped
//! before either (the client went away) ends as CANCELLED.
//!
//! One layer, not four (request id, propagation, trace span, metrics): each
//! wrapped every call's future and body again, and a tracing span per call,
//! entered at every poll, cost more than the rest of the layers together
//! (BENCHMARKS.md, "One layer per call").
//!
//! Only the path, the request id, the status code and timings are logged:
//! never metadata (tokens) or messages (passwords).
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use crate::{
    call::{self, CallInfo},
    methods,
    metrics::{
        MethodLabels, Metrics,
        rpc::{code_name, rpc_method},
    },
    rest::JsonCall,
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;

/// gRPC's CANCELLED and UNKNOWN.
const CANCELLED: u16 = 1;
const UNKNOWN: u16 = 2;

/// The call's request id: the caller's if it is short and printable with no
/// spaces (so that it reads as one word in a log line), otherwise a fresh
/// UUIDv7, which replaces it in the request.
fn request_id<B>(request: &mut Request<B>) -> HeaderValue {
    let theirs = request.headers().get(&REQUEST_ID).filter(|v| {
        (1..=MAX_REQUEST_ID_LEN).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic)
    });
    if let Some(id) = theirs {
        return id.clone();
    }
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    let made = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
    let id = HeaderValue::from_str(made).expect("a UUID is a valid header value");
    request.headers_mut().insert(REQUEST_ID, id.clone());
    id
}

/// A request id is new on every call, so HPACK's table gains nothing from
/// it: sent "never indexed", it neither evicts the entries that repeat nor
/// has the encoder search the ids before it, which cost 4% of a call.
fn never_indexed(id: &HeaderValue) -> HeaderValue {
    let mut id = id.clone();
    id.set_sensitive(true);
    id
}

/// The gRPC status code in a response head or its trailers.
pub fn grpc_status(headers: &HeaderMap) -> Option<u16> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

#[derive(Clone)]
pub struct CallLayer {
    metrics: Arc<Metrics>,
}

impl CallLayer {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics: Arc::new(metrics),
        }
    }
}

impl<S> Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CallService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CallService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<CallBody<ResBody>>;
    type Error = S::Error;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The method is looked up once; limits and auth read it from here.
        let mut request = methods::resolve(request);
        let method = rpc_method(&request);
        let face = if request.extensions().get::<JsonCall>().is_some() {
            "json"
        } else {
            "grpc"
        };
        let info = Arc::new(CallInfo {
            method: method.path,
            request_id: request_id(&mut request),
        });
        self.metrics.rpc_started(method.labels);
        let call = Call {
            metrics: self.metrics.clone(),
            labels: method.labels,
            face,
            info: info.clone(),
            start: Instant::now(),
            head: None,
            done: false,
        };
        CallFuture {
            inner: call::scope(info, self.inner.call(request)),
            call: Some(call),
        }
    }
}

/// One call being served; ends exactly once.
struct Call {
    metrics: Arc<Metrics>,
    labels: MethodLabels,
    face: &'static str,
    info: Arc<CallInfo>,
    start: Instant,
    /// Time to the response head, once it went out: a unary handler has
    /// finished then, so this is the call's latency.
    head: Option<Duration>,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: u16) {
        if self.done {
            return;
        }
        self.done = true;
        let latency = self.head.unwrap_or_else(|| self.start.elapsed());
        self.metrics
            .rpc_finished(self.labels, code_name(code), latency.as_secs_f64());
        tracing::info!(
            method = %self.info.method,
            face = %self.face,
            request_id = %self.info.request_id(),
            grpc_status = code,
            latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            "rpc finished"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(CANCELLED);
    }
}

pin_project_lite::pin_project! {
    pub struct CallFuture<F: Future> {
        #[pin]
        inner: TaskLocalFuture<Arc<CallInfo>, F>,
        call: Option<Call>,
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CallBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut call = this.call.take().expect("polled after completion");
        call.head = Some(call.start.elapsed());
        Poll::Ready(match result {
            Ok(mut response) => {
                response
                    .headers_mut()
                    .entry(REQUEST_ID)
                    .or_insert_with(|| never_indexed(&call.info.request_id));
                // Trailers-only: the status is already in the head.
                let call = match grpc_status(response.headers()) {
                    Some(code) => {
                        call.finish(code);
                        None
                    }
                    None => Some(call),
                };
                Ok(response.map(|inner| CallBody { inner, call }))
            }
            Err(e) => {
                call.finish(UNKNOWN);
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    pub struct CallBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for CallBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(call) = this.call.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        call.finish(grpc_status(trailers).unwrap_or(UNKNOWN));
                    }
                }
                Some(Err(_)) | None => call.finish(UNKNOWN),
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
