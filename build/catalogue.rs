//! The method catalogue, read from the contract: every RPC of `theatre.v1`
//! with the access rule its `option (theatre.v1.access)` declares and the
//! HTTP binding its `option (google.api.http)` declares. `build.rs` writes it
//! as Rust for `src/methods.rs`; `tests/it/contract.rs` checks it.
use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

/// One RPC, with the `crate::methods::Access` variant it declares and its
/// HTTP binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub service: String,
    pub name: String,
    pub access: &'static str,
    pub http: HttpBinding,
}

/// An RPC's `google.api.http` rule, checked against the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// `GET`, `POST`, `PATCH`, `PUT` or `DELETE` (an `http::Method` constant).
    pub verb: &'static str,
    /// The path template as written, such as `/bookings/{booking_id}:cancel`.
    pub template: String,
    /// `/`-separated segments: a literal, or `{field}` binding a request field.
    pub segments: Vec<Segment>,
    /// The `:verb` suffix of the last segment (AIP-136 custom methods).
    pub custom: Option<String>,
    /// `body: "*"`: the JSON body fills the request's fields.
    pub body: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Field(String),
}

/// Every RPC of the `theatre.v1` services, or what is wrong with those that
/// declare no access rule or no valid HTTP binding (a build error: such a
/// method must not exist).
pub fn catalogue(pool: &DescriptorPool) -> Result<Vec<Entry>, String> {
    let access = pool.get_extension_by_name("theatre.v1.access").ok_or(
        "the contract lacks the theatre.v1.access option (proto/theatre/v1/options.proto)",
    )?;
    let http = pool
        .get_extension_by_name("google.api.http")
        .ok_or("the contract does not import google/api/annotations.proto")?;
    let mut entries = Vec::new();
    let mut undeclared = Vec::new();
    let mut unmapped = Vec::new();
    for service in pool.services().filter(|s| s.package_name() == "theatre.v1") {
        for method in service.methods() {
            let Some(access) = access_rule(&method, &access) else {
                undeclared.push(method.full_name().to_owned());
                continue;
            };
            let options = method.options();
            let binding = if options.has_extension(&http) {
                http_binding(&method, &options.get_extension(&http))
            } else {
                Err("no `option (google.api.http)`".to_owned())
            };
            match binding {
                Ok(http) => entries.push(Entry {
                    service: service.full_name().to_owned(),
                    name: method.name().to_owned(),
                    access,
                    http,
                }),
                Err(why) => unmapped.push(format!("{}: {why}", method.full_name())),
            }
        }
    }
    let mut errors = Vec::new();
    if !undeclared.is_empty() {
        errors.push(format!(
            "every RPC must declare `option (theatre.v1.access) = ACCESS_…;`; these do not: {}",
            undeclared.join(", ")
        ));
    }
    if !unmapped.is_empty() {
        errors.push(format!(
            "every RPC must have an HTTP binding (AIP-127); these do not: {}",
            unmapped.join("; ")
        ));
    }
    errors.extend(clashes(&entries));
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors.join("\n"))
    }
}

/// The `crate::methods::Access` variant a method declares, if it does.
fn access_rule(
    method: &MethodDescriptor,
    access: &prost_reflect::ExtensionDescriptor,
) -> Option<&'static str> {
    let options = method.options();
    let rule = options
        .has_extension(access)
        .then(|| options.get_extension(access).as_enum_number())
        .flatten();
    match rule {
        Some(1) => Some("Public"),
        Some(2) => Some("User"),
        Some(3) => Some("Admin"),
        _ => None,
    }
}

/// Two RPCs bound to one verb and template.
fn clashes(entries: &[Entry]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .filter(|e| !seen.insert((e.http.verb, e.http.template.clone())))
        .map(|e| format!("two RPCs bind {} {}", e.http.verb, e.http.template))
        .collect()
}

/// Reads one `HttpRule` (only the parts this contract uses: the five verbs,
/// top-level field variables, `body` empty or `*`) and checks it against the
/// method's request message.
fn http_binding(
    method: &MethodDescriptor,
    rule: &prost_reflect::Value,
) -> Result<HttpBinding, String> {
    let rule = rule
        .as_message()
        .ok_or("google.api.http is not a message")?;
    let text = |name: &str| {
        rule.get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let verbs = [
        ("get", "GET"),
        ("post", "POST"),
        ("patch", "PATCH"),
        ("put", "PUT"),
        ("delete", "DELETE"),
    ];
    let (template, verb) = verbs
        .iter()
        .find(|(field, _)| rule.has_field_by_name(field))
        .map(|(field, verb)| (text(field), *verb))
        .ok_or("only get, post, patch, put and delete bindings are supported")?;
    if rule.has_field_by_name("additional_bindings") || rule.has_field_by_name("response_body") {
        return Err("additional_bindings and response_body are not supported".into());
    }
    let body = match text("body").as_str() {
        "" => false,
        "*" => true,
        other => return Err(format!("body must be empty or \"*\", not {other:?}")),
    };
    if body == (verb == "GET" || verb == "DELETE") {
        return Err(format!(
            "{verb} must {}have a body",
            if body { "not " } else { "" }
        ));
    }
    let (segments, custom) = parse_template(&template, &method.input())?;
    Ok(HttpBinding {
        verb,
        template,
        segments,
        custom,
        body,
    })
}

fn parse_template(
    template: &str,
    input: &MessageDescriptor,
) -> Result<(Vec<Segment>, Option<String>), String> {
    let path = template
        .strip_prefix('/')
        .ok_or_else(|| format!("{template:?} does not start with /"))?;
    let (path, custom) = match path.rsplit_once(':') {
        Some((path, verb)) if !verb.contains(['/', '}']) => (path, Some(verb.to_owned())),
        _ => (path, None),
    };
    let mut segments = Vec::new();
    for part in path.split('/') {
        let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(field) => {
                let descriptor = input.get_field_by_name(field).ok_or_else(|| {
                    format!("{template:?} binds {field}, which {} lacks", input.name())
                })?;
                if descriptor.kind() != prost_reflect::Kind::String || descriptor.is_list() {
                    return Err(format!("{template:?} binds {field}, which is not a string"));
                }
                Segment::Field(field.to_owned())
            }
            None if !part.is_empty() && !part.contains(['{', '}', '*', '=']) => {
                Segment::Literal(part.to_owned())
            }
            None => return Err(format!("{template:?}: unsupported segment {part:?}")),
        };
        segments.push(segment);
    }
    Ok((segments, custom))
}

/// The catalogue as the Rust `src/methods.rs` includes.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::from(
        "/// Generated by build.rs from `proto/`: every RPC, its access rule and HTTP binding.\n",
    );
    out.push_str("pub const METHODS: &[Method] = &[\n");
    for e in entries {
        let segments: Vec<String> = e
            .http
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => format!("Segment::Literal({l:?})"),
                Segment::Field(f) => format!("Segment::Field({f:?})"),
            })
            .collect();
        out.push_str(&format!(
            "    Method {{ path: \"/{service}/{name}\", service: \"{service}\", name: \"{name}\", \
             access: Access::{access}, http: HttpBinding {{ verb: http::Method::{verb}, template: {template:?}, \
             segments: &[{segments}], custom: {custom:?}, body: {body} }} }},\n",
            service = e.service,
            name = e.name,
            access = e.access,
            verb = e.http.verb,
            template = e.http.template,
            segments = segments.join(", "),
            custom = e.http.custom,
            body = e.http.body,
        ));
    }
    out.push_str("];\n");
    out
}
