//! The OpenAPI 3.1 description of the HTTP/JSON face, generated from the same
//! contract and bindings as the routes: every path, the proto3 JSON schema of
//! every message, the bearer scheme and the `google.rpc.Status` error shape.
//! `build.rs` writes it for `GET /openapi.json`; the repository keeps a copy
//! (`openapi.json`) that a test holds equal to it.
use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
};
use serde_json::{Map, Value, json};

use crate::catalogue::{Entry, Segment};

/// The document, as pretty JSON with a final newline.
pub fn render(pool: &DescriptorPool, entries: &[Entry]) -> String {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for entry in entries {
        let (path, operation) = operation(pool, entry, &mut schemas);
        paths
            .entry(path)
            .or_default()
            .insert(entry.http.verb.to_lowercase(), operation);
    }
    let mut components = schemas.0;
    components.insert("Status".into(), status_schema());
    let mut out = serde_json::to_string_pretty(&document(tags(pool, entries), paths, components))
        .expect("JSON");
    out.push('\n');
    out
}

/// One RPC as an OpenAPI operation, with the path it is served at (path
/// variables by their JSON names, as the specification writes `{movieId}`).
fn operation(pool: &DescriptorPool, entry: &Entry, schemas: &mut Schemas) -> (String, Value) {
    let service = pool
        .get_service_by_name(&entry.service)
        .expect("catalogued service");
    let method = service
        .methods()
        .find(|m| m.name() == entry.name)
        .expect("catalogued method");
    let input = method.input();
    let field = |name: &str| input.get_field_by_name(name).expect("build-checked");
    let bound: Vec<&str> = entry
        .http
        .segments
        .iter()
        .filter_map(|s| match s {
            Segment::Field(f) => Some(f.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();
    let parameter = |field: &FieldDescriptor, place: &str, schema: Value| {
        json!({
            "name": field.json_name(), "in": place, "required": place == "path",
            "schema": schema,
            "description": comment_of(&field.parent_file(), field.path()),
        })
    };
    let mut parameters: Vec<Value> = bound
        .iter()
        .map(|f| parameter(&field(f), "path", json!({"type": "string"})))
        .collect();
    let mut operation = Map::new();
    if entry.http.body {
        let body = schemas.message_inline(&input, &bound);
        operation.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": body}}}),
        );
    } else {
        for f in input.fields().filter(|f| !bound.contains(&f.name())) {
            parameters.push(parameter(&f, "query", schemas.field(&f)));
        }
    }
    let comment = comment_of(&method.parent_file(), method.path());
    operation.insert(
        "operationId".into(),
        json!(format!("{}_{}", service.name(), entry.name)),
    );
    operation.insert("tags".into(), json!([service.name()]));
    operation.insert("summary".into(), json!(summary(&entry.name, &comment)));
    if !comment.is_empty() {
        operation.insert("description".into(), json!(comment));
    }
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Value::Array(parameters));
    }
    let output = schemas.message_ref(&method.output());
    operation.insert(
        "responses".into(),
        json!({
            "200": {"description": "OK", "content": {"application/json": {"schema": output}}},
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        }),
    );
    if entry.access == "Public" {
        operation.insert("security".into(), json!([]));
    }
    let segments: Vec<String> = entry
        .http
        .segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.clone(),
            Segment::Field(f) => format!("{{{}}}", field(f).json_name()),
        })
        .collect();
    let custom = entry
        .http
        .custom
        .as_ref()
        .map(|c| format!(":{c}"))
        .unwrap_or_default();
    (
        format!("/{}{custom}", segments.join("/")),
        Value::Object(operation),
    )
}

/// A tag per service, in contract order, described by the service's comment.
fn tags(pool: &DescriptorPool, entries: &[Entry]) -> Vec<Value> {
    let mut names: Vec<&str> = entries.iter().map(|e| e.service.as_str()).collect();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let service = pool.get_service_by_name(name).expect("catalogued");
            json!({
                "name": service.name(),
                "description": comment_of(&service.parent_file(), service.path()),
            })
        })
        .collect()
}

fn document(
    tags: Vec<Value>,
    paths: BTreeMap<String, Map<String, Value>>,
    schemas: Map<String, Value>,
) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Theatre API",
            "version": "v1",
            "description": "Cinema seat booking. The HTTP/JSON face of the gRPC contract in proto/ \
                (package theatre.v1): each operation is one RPC, bound by its google.api.http \
                annotation; bodies and responses follow the proto3 JSON mapping.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "http://127.0.0.1:50051", "description": "the default THEATRE_ADDR"}],
        "tags": tags,
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "PASETO v4.public",
                    "description": "The accessToken that POST /auth/login returns.",
                },
            },
            "responses": {
                "Error": {
                    "description": "The call failed: a google.rpc.Status, with the details a \
                        gRPC client gets (BadRequest, PreconditionFailure, RetryInfo).",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait before retrying (429 and 503).",
                            "schema": {"type": "integer"},
                        },
                    },
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
                },
            },
            "schemas": schemas,
        },
    })
}

/// The first sentence of a comment, or the method name.
fn summary(name: &str, comment: &str) -> String {
    let first = comment
        .split(". ")
        .next()
        .unwrap_or("")
        .trim_end_matches('.');
    if first.is_empty() || first.len() > 100 {
        name.to_owned()
    } else {
        first.replace('\n', " ")
    }
}

/// The leading comment of the element at `path` of `file`.
fn comment_of(file: &FileDescriptor, path: &[i32]) -> String {
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.as_deref())
        .map(|c| {
            c.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// `google.api.FieldBehavior` values (AIP-203) this document reads.
const REQUIRED: i32 = 2;
const OUTPUT_ONLY: i32 = 3;

/// The `google.api.field_behavior` values a field declares.
fn behaviour(field: &FieldDescriptor) -> Vec<i32> {
    let Some(extension) = field
        .parent_pool()
        .get_extension_by_name("google.api.field_behavior")
    else {
        return Vec::new();
    };
    let options = field.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    match &*options.get_extension(&extension) {
        prost_reflect::Value::List(values) => values
            .iter()
            .filter_map(prost_reflect::Value::as_enum_number)
            .collect(),
        _ => Vec::new(),
    }
}

/// The field's `buf.validate` rules, if it declares any.
fn rules(field: &FieldDescriptor) -> Option<prost_reflect::DynamicMessage> {
    let extension = field
        .parent_pool()
        .get_extension_by_name("buf.validate.field")?;
    let options = field.options();
    if !options.has_extension(&extension) {
        return None;
    }
    options.get_extension(&extension).as_message().cloned()
}

/// One set rule of a `buf.validate` rules message (`string.min_len`, ...).
fn rule(rules: &prost_reflect::DynamicMessage, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut message = rules.clone();
    for name in parents {
        if !message.has_field_by_name(name) {
            return None;
        }
        message = message.get_field_by_name(name)?.as_message()?.clone();
    }
    if !message.has_field_by_name(last) {
        return None;
    }
    match &*message.get_field_by_name(last)? {
        prost_reflect::Value::U64(n) => Some(json!(n)),
        prost_reflect::Value::I32(n) => Some(json!(n)),
        prost_reflect::Value::Bool(b) => Some(json!(b)),
        prost_reflect::Value::String(s) => Some(json!(s)),
        _ => None,
    }
}

/// The JSON Schema keywords that say what the field's `buf.validate` rules
/// say, where JSON Schema has one (64-bit integers are JSON strings, so their
/// bounds stay in the description). A keyword with a fixed value stands for a
/// rule that is a flag (`string.uuid`, `repeated.unique`) and is set when the
/// flag is true; the others take the rule's value.
fn constraints(rules: &prost_reflect::DynamicMessage, items: bool) -> Map<String, Value> {
    let prefix: &[&str] = if items { &["repeated", "items"] } else { &[] };
    let keywords: [(&[&str], &str, Option<Value>); 9] = [
        (&["string", "min_len"], "minLength", None),
        (&["string", "max_len"], "maxLength", None),
        (&["string", "pattern"], "pattern", None),
        (&["string", "uuid"], "format", Some(json!("uuid"))),
        (&["int32", "gte"], "minimum", None),
        (&["int32", "lte"], "maximum", None),
        (&["repeated", "min_items"], "minItems", None),
        (&["repeated", "max_items"], "maxItems", None),
        (&["repeated", "unique"], "uniqueItems", Some(json!(true))),
    ];
    let mut found = Map::new();
    for (path, keyword, fixed) in keywords {
        let path: Vec<&str> = prefix.iter().chain(path).copied().collect();
        match (rule(rules, &path), fixed) {
            (Some(Value::Bool(true)), Some(fixed)) => {
                found.insert(keyword.into(), fixed);
            }
            (Some(value), None) => {
                found.insert(keyword.into(), value);
            }
            _ => {}
        }
    }
    found
}

/// The component schemas, filled as messages and enums are met.
#[derive(Default)]
struct Schemas(Map<String, Value>);

impl Schemas {
    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if message.full_name() == "google.protobuf.Timestamp" {
            return json!({"type": "string", "format": "date-time"});
        }
        let name = message.name().to_owned();
        if !self.0.contains_key(&name) {
            self.0.insert(name.clone(), Value::Null);
            let schema = self.message_inline(message, &[]);
            self.0.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn message_inline(&mut self, message: &MessageDescriptor, skip: &[&str]) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields().filter(|f| !skip.contains(&f.name())) {
            let mut schema = self.field(&field);
            let comment = comment_of(&field.parent_file(), field.path());
            let behaviour = behaviour(&field);
            let mut notes = Map::new();
            if !comment.is_empty() {
                notes.insert("description".into(), json!(comment));
            }
            if behaviour.contains(&OUTPUT_ONLY) {
                notes.insert("readOnly".into(), json!(true));
            }
            if behaviour.contains(&REQUIRED) {
                required.push(field.json_name().to_owned());
            }
            if let (Some(object), false) = (schema.as_object_mut(), notes.is_empty()) {
                if object.contains_key("$ref") {
                    notes.insert("allOf".into(), json!([schema]));
                    schema = Value::Object(notes);
                } else {
                    object.extend(notes);
                }
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        let comment = comment_of(&message.parent_file(), message.path());
        if !comment.is_empty() {
            schema["description"] = json!(comment);
        }
        schema
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        let item = match field.kind() {
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0})
            }
            // proto3 JSON writes 64-bit integers as strings and reads both.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Float | Kind::Double => json!({"type": "number"}),
            Kind::Enum(e) => self.enum_ref(&e),
            Kind::Message(m) => self.message_ref(&m),
        };
        let rules = rules(field);
        let limits = |items| {
            rules
                .as_ref()
                .map(|r| constraints(r, items))
                .unwrap_or_default()
        };
        let mut item = item;
        // A $ref stands alone; a message's own rules are on its fields.
        let is_ref = item.get("$ref").is_some();
        if let (Some(object), false) = (item.as_object_mut(), is_ref) {
            object.extend(limits(field.is_list()));
        }
        if !field.is_list() {
            return item;
        }
        let mut array = json!({"type": "array", "items": item});
        array
            .as_object_mut()
            .expect("an object")
            .extend(limits(false));
        array
    }

    fn enum_ref(&mut self, e: &EnumDescriptor) -> Value {
        let name = e.name().to_owned();
        let values: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
        self.0.entry(name.clone()).or_insert_with(|| {
            json!({
                "type": "string", "enum": values,
                "description": comment_of(&e.parent_file(), e.path()),
            })
        });
        json!({"$ref": format!("#/components/schemas/{name}")})
    }
}

fn status_schema() -> Value {
    json!({
        "type": "object",
        "description": "google.rpc.Status: the gRPC code, a message for people, and typed details.",
        "properties": {
            "code": {"type": "integer", "format": "int32", "description": "The gRPC status code (google.rpc.Code)."},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "A google.protobuf.Any: @type names the detail, such as type.googleapis.com/google.rpc.BadRequest.",
                    "properties": {"@type": {"type": "string"}},
                    "required": ["@type"],
                    "additionalProperties": true,
                },
            },
        },
        "required": ["code", "message"],
    })
}
