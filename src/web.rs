//! The seat-map page (`web/`, built into `web/dist`), served from
//! `THEATRE_WEB_DIR` under `/web/` on the API's own port: the page then calls
//! the API on its own origin, so no CORS setting is needed for it. Off unless
//! the directory is configured; every other request passes through untouched.
use std::{
    future::Future,
    path::Path,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Method, Request, Response, StatusCode, header};
use tonic::body::Body;
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// Where the page lives; `/web` itself redirects here.
pub const MOUNT: &str = "/web/";
const ROOT: &str = "/web";

#[derive(Clone)]
pub struct WebLayer {
    files: Option<ServeDir>,
}

impl WebLayer {
    /// Serves `dir` under [`MOUNT`], or nothing when `dir` is `None`.
    pub fn new(dir: Option<&Path>) -> Self {
        Self {
            files: dir.map(ServeDir::new),
        }
    }
}

impl<S> tower::Layer<S> for WebLayer {
    type Service = WebService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WebService {
            inner,
            files: self.files.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WebService<S> {
    inner: S,
    files: Option<ServeDir>,
}

/// The path under the mount of a page request (empty for `/web` itself), or
/// `None` for the API's own.
fn page_path(request: &Request<Body>) -> Option<&str> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return None;
    }
    request
        .uri()
        .path()
        .strip_prefix(ROOT)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn redirect_to_mount() -> Response<Body> {
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, MOUNT)
        .body(Body::empty())
        .expect("a static redirect is a valid response")
}

impl<S> tower::Service<Request<Body>> for WebService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = WebFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let (Some(files), Some(path)) = (&self.files, page_path(&request)) else {
            return WebFuture::Api {
                call: self.inner.call(request),
            };
        };
        if path.is_empty() {
            return WebFuture::page(async { Ok(redirect_to_mount()) });
        }
        // The file service reads the path alone; the page's own query (`?api=`)
        // is for its script.
        *request.uri_mut() = path.parse().expect("a suffix of a valid path is valid");
        let files = files.clone();
        WebFuture::page(async move {
            let response = files.oneshot(request).await;
            let response: Response<_> = match response {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(Body::new))
        })
    }
}

type Boxed<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// An API call passes through as the inner future itself.
    #[project = WebFutureProj]
    pub enum WebFuture<F, E> {
        Api { #[pin] call: F },
        Page { call: Boxed<E> },
    }
}

impl<F, E> WebFuture<F, E> {
    fn page(call: impl Future<Output = Result<Response<Body>, E>> + Send + 'static) -> Self {
        Self::Page {
            call: Box::pin(call),
        }
    }
}

impl<F, E> Future for WebFuture<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            WebFutureProj::Api { call } => call.poll(cx),
            WebFutureProj::Page { call } => call.as_mut().poll(cx),
        }
    }
}
