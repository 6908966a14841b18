//! The call a task is serving: its method and request id, set by the
//! telemetry layer (`crate::telemetry`) around the handler, so that every line
//! logged while serving it (a database error, a throttled login) names the
//! call it belongs to (`crate::logs::TextLine`, `JsonLine`) and can be matched with the
//! call's "rpc finished" line.
//!
//! A task-local rather than a tracing span: a span per call cost more than
//! the rest of the layers together (BENCHMARKS.md, "One layer per call").
use std::{borrow::Cow, future::Future, sync::Arc};

use http::HeaderValue;
use tokio::task::futures::TaskLocalFuture;

/// What identifies a call in the logs.
#[derive(Debug)]
pub struct CallInfo {
    /// The request path, `/theatre.v1.Service/Method`.
    pub method: Cow<'static, str>,
    pub request_id: HeaderValue,
}

impl CallInfo {
    pub fn request_id(&self) -> &str {
        // Only printable ASCII ids are kept or made (`telemetry::request_id`).
        self.request_id.to_str().unwrap_or("")
    }
}

tokio::task_local! {
    static CURRENT: Arc<CallInfo>;
}

/// Runs `future` as the handling of `call`.
pub fn scope<F: Future>(call: Arc<CallInfo>, future: F) -> TaskLocalFuture<Arc<CallInfo>, F> {
    CURRENT.scope(call, future)
}

/// Calls `f` with the call the current task is serving, if any.
pub fn with_current<R>(f: impl FnOnce(Option<&CallInfo>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|call| (f.take().expect("called once"))(Some(call))) {
        Ok(result) => result,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}
