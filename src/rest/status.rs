//! Errors as HTTP/JSON: the `google.rpc.Status` a gRPC client would get
//! (`code`, `message`, `details` with `@type`), under the HTTP status of the
//! standard mapping (`google/rpc/code.proto`), with `Retry-After` where the
//! status carries a RetryInfo.
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};
use tonic::{Code, Status, body::Body};
use tonic_types::StatusExt;

use super::Contract;
use crate::error::{AppError, Reason, status_for};

/// The HTTP status for a gRPC code.
///
/// One departure from Google's table: FAILED_PRECONDITION is 409 Conflict,
/// not 400. Here it always means the state of the system refuses the call
/// (the seat is taken, the show has started, the booking is already
/// cancelled), which is what 409 says; 400 would tell the client to fix a
/// request that was well formed.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a status code"),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A call that ends in an error, as a gRPC status (so the JSON face and gRPC
/// clients read the same thing), with the HTTP status where the standard
/// mapping has none precise enough.
pub(super) struct Refusal {
    status: Status,
    http: Option<StatusCode>,
    headers: HeaderMap,
}

impl Refusal {
    pub(super) fn new(code: Code, reason: Reason, message: String) -> Self {
        Self::from_status(&status_for(code, reason, message))
    }

    /// The status a handler's error gives.
    pub(super) fn of(err: AppError) -> Self {
        Self::from_status(&Status::from(err))
    }

    /// INVALID_ARGUMENT with a BadRequest naming the field, as the handlers
    /// give for a bad value.
    pub(super) fn invalid(field: &str, reason: &str) -> Self {
        Self::of(AppError::invalid(field, reason))
    }

    /// A body that is not JSON, or not the request message's JSON.
    pub(super) fn body(reason: String) -> Self {
        Self::invalid("body", &reason)
    }

    pub(super) fn too_large(max: usize) -> Self {
        let mut refusal = Self::new(
            Code::ResourceExhausted,
            Reason::MessageTooLarge,
            format!("the request body is larger than {max} bytes"),
        );
        refusal.http = Some(StatusCode::PAYLOAD_TOO_LARGE);
        refusal
    }

    pub(super) fn from_status(status: &Status) -> Self {
        Self {
            status: status.clone(),
            http: None,
            headers: HeaderMap::new(),
        }
    }

    /// Keeps the call's response headers (the request id) on the error.
    pub(super) fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    pub(super) fn into_response(self, contract: &Contract) -> Response<Body> {
        let body = status_json(contract, &self.status);
        let mut response = Response::new(Body::new(Full::new(bytes::Bytes::from(body))));
        *response.status_mut() = self.http.unwrap_or_else(|| http_status(self.status.code()));
        super::transcode::copy_call_headers(&self.headers, response.headers_mut());
        if let Some(delay) = self
            .status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
        {
            // Whole seconds, rounded up: a client that waits less is refused again.
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// `google.rpc.Status` as proto3 JSON: the details a status carries, or just
/// its code and message.
fn status_json(contract: &Contract, status: &Status) -> Vec<u8> {
    let decoded = (!status.details().is_empty())
        .then(|| DynamicMessage::decode(contract.status.clone(), status.details()).ok())
        .flatten();
    let message = decoded.unwrap_or_else(|| {
        let plain = tonic_types::pb::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Vec::new(),
        };
        DynamicMessage::decode(contract.status.clone(), plain.encode_to_vec().as_slice())
            .expect("a google.rpc.Status decodes as one")
    });
    let mut out = Vec::new();
    match message.serialize_with_options(
        &mut serde_json::Serializer::new(&mut out),
        &SerializeOptions::new(),
    ) {
        Ok(()) => out,
        // An Any whose type the pool lacks: the code and message still go out.
        Err(_) => serde_json::json!({
            "code": status.code() as i32,
            "message": status.message(),
        })
        .to_string()
        .into_bytes(),
    }
}

/// 405, naming the verbs the path is bound with.
pub(super) fn wrong_verb(
    contract: &Contract,
    verb: &http::Method,
    path: &str,
    mut verbs: Vec<&'static http::Method>,
) -> Response<Body> {
    verbs.dedup();
    let allow: Vec<&str> = verbs.iter().map(|v| v.as_str()).collect();
    let mut refusal = Refusal::new(
        Code::Unimplemented,
        Reason::VerbNotAllowed,
        format!("{path} does not take {verb}; it takes {}", allow.join(", ")),
    );
    refusal.http = Some(StatusCode::METHOD_NOT_ALLOWED);
    let mut response = refusal.into_response(contract);
    if let Ok(allow) = HeaderValue::from_str(&allow.join(", ")) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}
