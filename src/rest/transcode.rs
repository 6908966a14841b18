//! JSON request → gRPC request, gRPC response → JSON response.
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, Version, header};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, SerializeOptions};
use serde_json::{Map, Value};
use tonic::{Code, body::Body};

use super::{Contract, Endpoint, JsonCall, status::Refusal};
use crate::{error::AppError, methods::Method};

/// The request headers that describe the JSON body, not the call; the rest
/// (authorization, x-request-id, grpc-timeout, …) travel on as metadata.
const BODY_HEADERS: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
];

/// The gRPC request a JSON request stands for: its body's fields (read by
/// [`body_fields`] first for a binding with a body), then the query
/// parameters, then the path's variables (each overriding the one before, as
/// grpc-gateway does), as one protobuf message.
pub(super) fn grpc_request(
    endpoint: &Endpoint,
    method: &'static Method,
    bound: Vec<(&'static str, &str)>,
    mut parts: http::request::Parts,
    mut fields: Map<String, Value>,
) -> Result<Request<Body>, Refusal> {
    if let Some(query) = parts.uri.query() {
        query_fields(&endpoint.input, query, &mut fields)?;
    }
    for (field, raw) in bound {
        let value = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Refusal::invalid(field, "the path segment is not UTF-8"))?;
        let descriptor = endpoint
            .input
            .get_field_by_name(field)
            .expect("build-checked");
        set(&mut fields, &descriptor, Value::String(value.into_owned()));
    }
    let message = message_of(endpoint, fields)?;

    let len = message.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + len);
    frame.put_u8(0);
    frame.put_u32(len as u32);
    message.encode(&mut frame).expect("the buffer has room");

    for name in &BODY_HEADERS {
        parts.headers.remove(name);
    }
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    parts
        .headers
        .insert(header::TE, HeaderValue::from_static("trailers"));
    parts.method = http::Method::POST;
    parts.uri = http::Uri::from_static(method.path);
    // Inside, every call is gRPC; grpc-web's layer passes HTTP/2 through.
    parts.version = Version::HTTP_2;
    parts.extensions.insert(JsonCall);
    Ok(Request::from_parts(
        parts,
        Body::new(Full::new(frame.freeze())),
    ))
}

/// The request message the fields spell, or a refusal naming the field
/// that does not fit (its JSON path, such as `rows[0].seats`).
fn message_of(endpoint: &Endpoint, fields: Map<String, Value>) -> Result<DynamicMessage, Refusal> {
    let mut track = serde_path_to_error::Track::new();
    let fields = serde_path_to_error::Deserializer::new(Value::Object(fields), &mut track);
    DynamicMessage::deserialize_with_options(
        endpoint.input.clone(),
        fields,
        &DeserializeOptions::new(),
    )
    .map_err(|e| {
        let path = track.path().to_string();
        if path == "." {
            Refusal::body(format!(
                "the body does not fit {}: {e}",
                endpoint.input.name()
            ))
        } else {
            Refusal::invalid(&path, &e.to_string())
        }
    })
}

/// The JSON object of the body (empty body: no fields).
pub(super) async fn body_fields(body: Body, max: usize) -> Result<Map<String, Value>, Refusal> {
    let bytes = Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => Refusal::too_large(max),
            Err(_) => Refusal::of(AppError::Unavailable("the request body was cut off".into())),
        })?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Refusal::body(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(Refusal::body(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// Query parameters name request fields by their proto or JSON name;
/// a repeated field takes the parameter once per value.
fn query_fields(
    input: &prost_reflect::MessageDescriptor,
    query: &str,
    fields: &mut Map<String, Value>,
) -> Result<(), Refusal> {
    for (name, raw) in form_urlencoded::parse(query.as_bytes()) {
        let descriptor = input
            .get_field_by_name(&name)
            .or_else(|| input.get_field_by_json_name(&name))
            .ok_or_else(|| Refusal::invalid(&name, "no such query parameter"))?;
        let value = match descriptor.kind() {
            Kind::Bool => match &*raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(Refusal::invalid(&name, "must be true or false")),
            },
            Kind::Message(_) => return Err(Refusal::invalid(&name, "cannot be a query parameter")),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| Refusal::invalid(&name, "must be an integer"))?,
            _ => Value::String(raw.into_owned()),
        };
        if descriptor.is_list() {
            let list = fields
                .entry(descriptor.json_name())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.push(value);
            }
        } else {
            set(fields, &descriptor, value);
        }
    }
    Ok(())
}

/// Sets a field under its JSON name, dropping a value the caller gave under
/// the proto name so the two spellings cannot both arrive.
fn set(fields: &mut Map<String, Value>, descriptor: &FieldDescriptor, value: Value) {
    fields.remove(descriptor.name());
    fields.insert(descriptor.json_name().to_owned(), value);
}

/// The JSON answer to the gRPC response: the message, or the status.
pub(super) async fn json_response(
    contract: &Contract,
    endpoint: &Endpoint,
    response: Response<Body>,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    // Trailers-only answers (every error the layers give) carry the status in
    // the head; the others in the trailers after the message.
    let (mut message, trailers) = match body.collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (collected.to_bytes(), trailers)
        }
        Err(e) => {
            let status = tonic::Status::from_error(e.into());
            return Refusal::from_status(&status).into_response(contract);
        }
    };
    let status = tonic::Status::from_header_map(&parts.headers)
        .or_else(|| trailers.as_ref().and_then(tonic::Status::from_header_map))
        .unwrap_or_else(|| tonic::Status::internal("the call ended without a status"));
    if status.code() != Code::Ok {
        return Refusal::from_status(&status)
            .with_headers(parts.headers)
            .into_response(contract);
    }
    // JSON spells out field names: about three times the protobuf size.
    // (Asking the decoded message its encoded_len walked the whole seat map
    // again: 4% of the JSON face's CPU under rest_browse.)
    let capacity = message.len() * 3 + 64;
    let decoded = unframe(&mut message).and_then(|payload| {
        DynamicMessage::decode(endpoint.output.clone(), payload).map_err(|e| e.to_string())
    });
    let json = decoded.and_then(|message| {
        let mut out = Vec::with_capacity(capacity);
        let mut serializer = serde_json::Serializer::new(&mut out);
        message
            .serialize_with_options(
                &mut serializer,
                &SerializeOptions::new().skip_default_fields(false),
            )
            .map(|()| out)
            .map_err(|e| e.to_string())
    });
    match json {
        Ok(json) => {
            let mut response = Response::new(Body::new(Full::new(Bytes::from(json))));
            copy_call_headers(&parts.headers, response.headers_mut());
            response
        }
        Err(e) => Refusal::of(AppError::Internal(format!(
            "a gRPC response could not be transcoded to JSON: {e}"
        )))
        .into_response(contract),
    }
}

/// The one message of a unary gRPC response body.
fn unframe(body: &mut Bytes) -> Result<Bytes, String> {
    if body.len() < 5 || body[0] != 0 {
        return Err("the response is not one uncompressed gRPC message".into());
    }
    body.advance(1);
    let len = body.get_u32() as usize;
    if body.len() < len {
        return Err("the response message is cut off".into());
    }
    Ok(body.split_to(len))
}

/// The response headers a JSON client may read: the request id and the
/// like, never gRPC's own.
pub(super) fn copy_call_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let grpc = name.as_str().starts_with("grpc-") || name == header::CONTENT_TYPE;
        if !grpc && name != header::CONTENT_LENGTH {
            to.append(name, value.clone());
        }
    }
    to.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
}
