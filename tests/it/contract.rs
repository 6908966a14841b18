//! The method catalogue comes from the contract: every RPC declares who may
//! call it in `proto/` (`option (theatre.v1.access)`) and where it lives over
//! HTTP (`option (google.api.http)`), the catalogue the server enforces is
//! exactly that, and an RPC without a rule or a binding fails the build.
#[allow(dead_code)] // render() is build.rs's
#[path = "../../build/catalogue.rs"]
mod catalogue;

use prost::Message;
use prost_reflect::DescriptorPool;
use theatre::methods::{Access, METHODS, Route, route};

const CONTRACT: &[&str] = &[
    "theatre/v1/auth.proto",
    "theatre/v1/catalog.proto",
    "theatre/v1/booking.proto",
];

fn compile(includes: &[&std::path::Path], files: &[&str]) -> DescriptorPool {
    let mut compiler = protox::Compiler::new(includes).expect("include paths");
    compiler.open_files(files).expect("the protos compile");
    compiler.descriptor_pool()
}

#[test]
fn the_served_catalogue_is_what_the_contract_declares() {
    let declared =
        catalogue::catalogue(&compile(&["proto".as_ref()], CONTRACT)).expect("every RPC declares");
    let served: Vec<(String, String)> = METHODS
        .iter()
        .map(|m| (m.path.to_owned(), format!("{:?}", m.access)))
        .collect();
    let expected: Vec<(String, String)> = declared
        .iter()
        .map(|e| (format!("/{}/{}", e.service, e.name), e.access.to_owned()))
        .collect();
    assert_eq!(served, expected);

    // Every method of the descriptor set that reflection serves is in it.
    let fds = prost_types::FileDescriptorSet::decode(theatre::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = 0;
    for file in fds.file.iter().filter(|f| f.package() == "theatre.v1") {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/theatre.v1.{}/{}", service.name(), method.name());
                assert!(
                    theatre::methods::find(&path).is_some(),
                    "{path} is not served"
                );
                rpcs += 1;
            }
        }
    }
    assert_eq!(rpcs, METHODS.len());

    let rule = |path: &str| theatre::methods::find(path).unwrap().access;
    assert_eq!(rule("/theatre.v1.AuthService/SignUp"), Access::Public);
    assert_eq!(rule("/theatre.v1.CatalogService/CreateShow"), Access::Admin);
    assert_eq!(
        rule("/theatre.v1.BookingService/CreateBooking"),
        Access::User
    );
}

/// The catalogue of a contract with one extra service of these RPCs, or the
/// build error it would give.
fn catalogue_with(rpcs: &str) -> Result<Vec<catalogue::Entry>, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("extra")).unwrap();
    std::fs::write(
        dir.path().join("extra/extra.proto"),
        format!(
            r#"syntax = "proto3";
package theatre.v1;
import "google/api/annotations.proto";
import "google/protobuf/empty.proto";
import "theatre/v1/options.proto";
message Thing {{ string thing_id = 1; }}
service ExtraService {{
{rpcs}
}}
"#
        ),
    )
    .unwrap();
    let pool = compile(
        &["proto".as_ref(), dir.path()],
        &["extra/extra.proto", "theatre/v1/auth.proto"],
    );
    catalogue::catalogue(&pool)
}

const DECLARED: &str = r#"
  rpc Declared(Thing) returns (google.protobuf.Empty) {
    option (theatre.v1.access) = ACCESS_USER;
    option (google.api.http) = { get: "/things/{thing_id}" };
  }"#;

#[test]
fn an_rpc_without_an_access_rule_fails_the_build() {
    let err = catalogue_with(&format!(
        "{DECLARED}\n  rpc Forgotten(Thing) returns (google.protobuf.Empty) {{\n    \
         option (google.api.http) = {{ post: \"/things\" body: \"*\" }};\n  }}"
    ))
    .unwrap_err();
    assert!(err.contains("theatre.v1.ExtraService.Forgotten"), "{err}");
    assert!(!err.contains("Declared"), "{err}");
    assert!(catalogue_with(DECLARED).is_ok());
}

#[test]
fn an_rpc_without_a_valid_http_binding_fails_the_build() {
    let unbound = "  rpc Unbound(Thing) returns (google.protobuf.Empty) {\n    \
                   option (theatre.v1.access) = ACCESS_USER;\n  }";
    let err = catalogue_with(&format!("{DECLARED}\n{unbound}")).unwrap_err();
    assert!(
        err.contains("ExtraService.Unbound: no `option (google.api.http)`"),
        "{err}"
    );
    assert!(!err.contains("Declared"), "{err}");

    let misbound = [
        (
            r#"get: "/things/{colour}""#,
            "binds colour, which Thing lacks",
        ),
        (r#"get: "/things" body: "*""#, "GET must not have a body"),
        (r#"post: "/things""#, "POST must have a body"),
        (r#"get: "things""#, "does not start with /"),
        (
            r#"get: "/things/{thing_id}""#,
            "two RPCs bind GET /things/{thing_id}",
        ),
    ];
    for (rule, why) in misbound {
        let rpc = format!(
            "  rpc Misbound(Thing) returns (google.protobuf.Empty) {{\n    \
             option (theatre.v1.access) = ACCESS_USER;\n    \
             option (google.api.http) = {{ {rule} }};\n  }}"
        );
        let err = catalogue_with(&format!("{DECLARED}\n{rpc}")).unwrap_err();
        assert!(err.contains(why), "{rule}: {err}");
    }
}

/// The original specification's REST endpoints, exactly as it lists them.
#[test]
fn the_specifications_endpoints_are_bound_as_written() {
    let spec = [
        ("POST", "/auth/signup", "AuthService/SignUp"),
        ("POST", "/auth/login", "AuthService/Login"),
        ("POST", "/movies", "CatalogService/CreateMovie"),
        ("GET", "/movies", "CatalogService/ListMovies"),
        ("DELETE", "/movies/m-1", "CatalogService/DeleteMovie"),
        ("POST", "/shows", "CatalogService/CreateShow"),
        ("GET", "/shows", "CatalogService/ListShows"),
        ("POST", "/bookings", "BookingService/CreateBooking"),
        ("GET", "/bookings/user", "BookingService/ListMyBookings"),
        // and the resource style around them
        ("GET", "/bookings/b-1", "BookingService/GetBooking"),
        (
            "POST",
            "/bookings/b-1:cancel",
            "BookingService/CancelBooking",
        ),
        ("GET", "/shows/s-1/seats", "CatalogService/GetSeatMap"),
        ("PATCH", "/movies/m-1", "CatalogService/UpdateMovie"),
        ("GET", "/auth/me", "AuthService/WhoAmI"),
    ];
    for (verb, path, rpc) in spec {
        let verb: http::Method = verb.parse().unwrap();
        match route(&verb, path) {
            Route::Method(method, _) => {
                assert_eq!(method.path, format!("/theatre.v1.{rpc}"), "{verb} {path}")
            }
            other => panic!("{verb} {path}: {other:?}"),
        }
    }
    match route(&http::Method::DELETE, "/movies/m-1") {
        Route::Method(_, bound) => assert_eq!(bound, [("movie_id", "m-1")]),
        other => panic!("{other:?}"),
    }
    let list_shows = theatre::methods::find("/theatre.v1.CatalogService/ListShows").unwrap();
    assert!(
        !list_shows.http.body,
        "GET /shows?movieId= takes a query, not a body"
    );
    // The OpenAPI document has an operation for every RPC.
    let openapi: serde_json::Value = serde_json::from_str(theatre::rest::OPENAPI).unwrap();
    let operations: usize = openapi["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(operations, METHODS.len());
    assert!(
        openapi["paths"]["/shows"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "movieId" && p["in"] == "query")
    );
    assert_eq!(
        openapi["paths"]["/auth/login"]["post"]["security"],
        serde_json::json!([])
    );
    assert_eq!(
        openapi["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    // google.api.field_behavior reaches the document: REQUIRED as
    // `required`, OUTPUT_ONLY as `readOnly`.
    let booking_body =
        &openapi["paths"]["/bookings"]["post"]["requestBody"]["content"]["application/json"];
    assert_eq!(
        booking_body["schema"]["required"],
        serde_json::json!(["showId", "seatIds"])
    );
    let movie = &openapi["components"]["schemas"]["Movie"]["properties"];
    assert_eq!(movie["id"]["readOnly"], true);
    assert_eq!(movie["title"].get("readOnly"), None);
    // The buf.validate rules reach it as JSON Schema keywords.
    let seats = &booking_body["schema"]["properties"]["seatIds"];
    assert_eq!(seats["maxItems"], 10);
    assert_eq!(seats["uniqueItems"], true);
    assert_eq!(seats["items"]["pattern"], "^[A-Z]{1,3}[1-9][0-9]{0,2}$");
    assert_eq!(
        booking_body["schema"]["properties"]["showId"]["format"],
        "uuid"
    );
}
