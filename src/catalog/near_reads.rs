//! The cached catalog reads (`GetShow`, `GetSeatMap`, `ListMovies`) answered
//! from this instance's copy (`cache::near`) before tonic decodes the call:
//! the copy is the encoded response, so a hit costs no decoding, cloning or
//! encoding of the response (a seat map's 40 seats, a page's 20 movies), only
//! framing it. It sits inside every other layer (metrics, logs, limits, auth),
//! so a hit is counted, logged and authorized as any call.
//!
//! Anything else goes on to the service, which answers it as before: a miss,
//! a request this does not read (compressed, not one whole message, a bad
//! id or page token: the service names the field).
use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Frame;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use prost::Message;
use tonic::body::Body;
use tower::{Layer, Service};

use crate::{
    cache::{Cache, Entry},
    ids::ShowId,
    page::Pages,
    proto,
};

/// The largest request read here; a larger one goes on to the service.
const LARGEST: usize = 1024;

#[derive(Clone)]
pub struct NearReadsLayer {
    cache: Cache,
    pages: Pages,
}

impl NearReadsLayer {
    pub fn new(cache: Cache, pages: Pages) -> Self {
        Self { cache, pages }
    }
}

impl<S> Layer<S> for NearReadsLayer {
    type Service = NearReads<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NearReads {
            inner,
            cache: self.cache.clone(),
            pages: self.pages.clone(),
        }
    }
}

#[derive(Clone)]
pub struct NearReads<S> {
    inner: S,
    cache: Cache,
    pages: Pages,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The reads answered here, by path.
#[derive(Clone, Copy)]
enum Read {
    Show,
    SeatMap,
    Movies,
}

impl Read {
    fn of(path: &str) -> Option<Self> {
        match path.strip_prefix("/theatre.v1.CatalogService/")? {
            "GetShow" => Some(Self::Show),
            "GetSeatMap" => Some(Self::SeatMap),
            "ListMovies" => Some(Self::Movies),
            _ => None,
        }
    }

    /// The cache entry the request `message` asks for, if it is a valid one.
    fn entry(self, message: &[u8], pages: &Pages) -> Option<Entry> {
        Some(match self {
            Self::Show => {
                let request = proto::GetShowRequest::decode(message).ok()?;
                Entry::Show(ShowId::parse("show_id", &request.show_id).ok()?)
            }
            Self::SeatMap => {
                let request = proto::GetSeatMapRequest::decode(message).ok()?;
                Entry::SeatMap(ShowId::parse("show_id", &request.show_id).ok()?)
            }
            Self::Movies => {
                let request = proto::ListMoviesRequest::decode(message).ok()?;
                let page = pages
                    .request("movies", request.page_size, &request.page_token)
                    .ok()?;
                Entry::MoviePage {
                    size: page.size,
                    after: page.after,
                }
            }
        })
    }
}

impl<S> Service<Request<Body>> for NearReads<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let read = Read::of(request.uri().path())
            .filter(|_| !request.headers().contains_key("grpc-encoding"));
        let Some(read) = read else {
            return Box::pin(self.inner.call(request));
        };
        // The ready service goes with this call; the clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (cache, pages) = (self.cache.clone(), self.pages.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let (seen, rest) = match read_head(body).await {
                Ok(head) => head,
                Err(status) => return Ok(status.into_http()),
            };
            if rest.is_none()
                && let Some(message) = one_message(&seen)
                && let Some(entry) = read.entry(message, &pages)
                && let Some(copy) = cache.near_copy(&entry)
            {
                return Ok(answer(copy));
            }
            inner
                .call(Request::from_parts(parts, replay(seen, rest)))
                .await
        })
    }
}

/// The request body up to its end, or up to [`LARGEST`] bytes and the rest.
async fn read_head(mut body: Body) -> Result<(Bytes, Option<Body>), tonic::Status> {
    let mut seen = BytesMut::new();
    while seen.len() <= LARGEST {
        match body.frame().await {
            None => return Ok((seen.freeze(), None)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => seen.extend_from_slice(&data),
                // Request trailers: not a call read here.
                Err(_) => break,
            },
            Some(Err(status)) => return Err(status),
        }
    }
    Ok((seen.freeze(), Some(body)))
}

/// The message of a body that is exactly one uncompressed gRPC message.
fn one_message(body: &[u8]) -> Option<&[u8]> {
    let (&[0, a, b, c, d], message) = body.split_first_chunk::<5>()? else {
        return None;
    };
    (u32::from_be_bytes([a, b, c, d]) as usize == message.len()).then_some(message)
}

/// The body again: what was read, then whatever was not.
fn replay(seen: Bytes, rest: Option<Body>) -> Body {
    let head = stream::iter([Ok::<_, tonic::Status>(Frame::data(seen))]);
    match rest {
        None => Body::new(StreamBody::new(head)),
        Some(rest) => {
            use futures_util::StreamExt;
            Body::new(StreamBody::new(head.chain(BodyStream::new(rest))))
        }
    }
}

/// A successful unary answer whose message is `encoded`: one DATA frame (h2
/// copies one of up to 1,024 bytes into its write buffer, `conn`; split
/// into more, a 2 KB page went slower) and the trailers.
fn answer(encoded: Bytes) -> Response<Body> {
    let mut framed = BytesMut::with_capacity(5 + encoded.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(encoded.len()).expect("a cached response fits a gRPC frame"));
    framed.extend_from_slice(&encoded);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = stream::iter([
        Ok::<_, Infallible>(Frame::data(framed.freeze())),
        Ok(Frame::trailers(trailers)),
    ]);
    let mut response = Response::new(Body::new(StreamBody::new(frames)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}
