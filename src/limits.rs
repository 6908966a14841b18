//! Overload protection for the `theatre.*` services: a bounded number of
//! handlers run at once, a bounded number wait for them, and the rest are
//! refused at once with RESOURCE_EXHAUSTED (and a retry hint) instead of
//! queueing without limit until everything times out. Every call also has a
//! server-side deadline. Health and reflection are exempt, so probes still
//! answer while the service sheds load.
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::Semaphore;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::{
    config::Limits,
    error::{AppError, Reason, status_for},
    methods,
    metrics::Metrics,
    telemetry::grpc_status,
};

/// How soon a shed client is told to retry.
const SHED_RETRY_AFTER: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct LimitLayer {
    shared: Arc<Shared>,
}

struct Shared {
    /// Calls admitted (running or waiting); a call that cannot get one is shed.
    admitted: Arc<Semaphore>,
    /// Handler slots.
    running: Semaphore,
    limits: Limits,
    metrics: Metrics,
}

impl LimitLayer {
    pub fn new(limits: Limits, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                admitted: Arc::new(Semaphore::new(limits.max_in_flight + limits.max_queued)),
                running: Semaphore::new(limits.max_in_flight),
                limits,
                metrics,
            }),
        }
    }
}

/// Counts a call in `theatre_queued_calls` while it waits for a slot.
struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.queued().inc();
        Self(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queued().dec();
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    layer: LimitLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

fn refuse<B: Default>(err: AppError) -> http::Response<B> {
    Status::from(err).into_http()
}

fn deadline_exceeded(deadline: Duration) -> AppError {
    AppError::DeadlineExceeded(format!(
        "call exceeded the server deadline of {} ms (THEATRE_RPC_DEADLINE_MS)",
        deadline.as_millis()
    ))
}

/// tonic answers an oversized request with OUT_OF_RANGE; the gRPC spec (and
/// every other implementation) says RESOURCE_EXHAUSTED, naming the limit.
fn oversized_to_resource_exhausted<B: Default>(
    response: http::Response<B>,
    limit: usize,
) -> http::Response<B> {
    // The code first: building the whole status decodes the base64 details
    // of every error answer, a refusal's largest cost after its own encoding.
    let oversized = grpc_status(response.headers()) == Some(Code::OutOfRange as u16)
        && Status::from_header_map(response.headers()).is_some_and(|status| {
            status
                .message()
                .contains("decoded message length too large")
        });
    if !oversized {
        return response;
    }
    status_for(
        Code::ResourceExhausted,
        Reason::MessageTooLarge,
        format!("request message is larger than {limit} bytes (THEATRE_MAX_MESSAGE_BYTES)"),
    )
    .into_http()
}

impl<S, B, ResBody> Service<http::Request<B>> for Limited<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if methods::resolved(&req).is_none() {
            return Box::pin(self.inner.call(req));
        }
        let shared = self.layer.shared.clone();
        let Ok(admitted) = shared.admitted.clone().try_acquire_owned() else {
            shared.metrics.shed();
            let err = AppError::ResourceExhausted {
                reason: Reason::Overloaded,
                message: "server is at capacity, retry shortly".into(),
                retry_after: SHED_RETRY_AFTER,
            };
            return Box::pin(std::future::ready(Ok(refuse(err))));
        };
        // The service that was polled ready handles this call; a fresh clone
        // takes its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let _admitted = admitted;
            let limits = shared.limits;
            // One deadline, one timer, for the wait and the handler together.
            let handled = tokio::time::timeout(limits.rpc_deadline, async {
                let _slot = match shared.running.try_acquire() {
                    Ok(slot) => slot,
                    Err(_) => {
                        let _waiting = Waiting::new(&shared.metrics);
                        shared
                            .running
                            .acquire()
                            .await
                            .expect("the slot semaphore is never closed")
                    }
                };
                inner.call(req).await
            })
            .await;
            match handled {
                Ok(Ok(response)) => Ok(oversized_to_resource_exhausted(
                    response,
                    limits.max_message_bytes,
                )),
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(refuse(deadline_exceeded(limits.rpc_deadline))),
            }
        })
    }
}
