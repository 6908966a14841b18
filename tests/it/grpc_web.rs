//! grpc-web on the gRPC port: a booking flow driven by a real grpc-web client
//! (`buf curl --protocol grpcweb`, HTTP/1.1), and CORS preflights.

use std::{
    io::{Read, Write},
    net::SocketAddr,
    path::PathBuf,
    process::Command,
};

use crate::common::*;
use serde_json::{Value, json};

fn buf() -> PathBuf {
    std::env::var_os("THEATRE_TEST_BUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/buf"))
}

/// One grpc-web call; `Ok(response)` or `Err(error)` as buf prints them (JSON).
fn grpc_web(
    addr: SocketAddr,
    method: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value, Value> {
    let mut cmd = Command::new(buf());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["curl", "--protocol", "grpcweb", "--schema", "."])
        .args(["-d", &body.to_string()]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    let out = cmd
        .arg(format!("http://{addr}/{method}"))
        .output()
        .expect("buf must be installed in .venv (scripts/test installs it)");
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    if out.status.success() {
        Ok(parse(&out.stdout)
            .unwrap_or_else(|| panic!("{method}: {}", String::from_utf8_lossy(&out.stdout))))
    } else {
        Err(parse(&out.stderr)
            .or_else(|| parse(&out.stdout))
            .unwrap_or_else(|| panic!("{method}: {}", String::from_utf8_lossy(&out.stderr))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_flow_works_through_grpc_web() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let addr = app.server.addr();
    let call = |method: &str, token: Option<&str>, body: Value| grpc_web(addr, method, token, body);

    let login = |email: &str, password: &str| {
        call(
            "theatre.v1.AuthService/Login",
            None,
            json!({"email": email, "password": password}),
        )
        .unwrap()["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let admin = login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let movie = call(
        "theatre.v1.CatalogService/CreateMovie",
        Some(&admin),
        json!({"title": "Web", "duration_minutes": 90, "genre": "Drama"}),
    )
    .unwrap();
    let theatre = call(
        "theatre.v1.CatalogService/CreateTheatre",
        Some(&admin),
        json!({"name": "Browser", "city": "Lisbon"}),
    )
    .unwrap();
    let starts_at = (app.clock_now() + chrono::Duration::hours(5)).to_rfc3339();
    let show = call(
        "theatre.v1.CatalogService/CreateShow",
        Some(&admin),
        json!({
            "movie_id": movie["movie"]["id"], "theatre_id": theatre["theatre"]["id"],
            "starts_at": starts_at, "rows": [{"label": "A", "seats": 4, "price_cents": 700}]
        }),
    )
    .unwrap();
    let show_id = show["show"]["id"].as_str().unwrap().to_owned();

    call(
        "theatre.v1.AuthService/SignUp",
        None,
        json!({"email": "web@theatre.test", "password": PASSWORD, "display_name": "Web"}),
    )
    .unwrap();
    let user = login("web@theatre.test", PASSWORD);
    let booking = call(
        "theatre.v1.BookingService/CreateBooking",
        Some(&user),
        json!({"show_id": show_id, "seat_ids": ["A2", "A3"]}),
    )
    .unwrap();
    assert_eq!(booking["booking"]["status"], "BOOKING_STATUS_CONFIRMED");
    assert_eq!(booking["booking"]["totalCents"], "1400");

    let clash = call(
        "theatre.v1.BookingService/CreateBooking",
        Some(&user),
        json!({"show_id": show_id, "seat_ids": ["A3"]}),
    )
    .unwrap_err();
    assert_eq!(clash["code"], "failed_precondition", "{clash}");
    let map = call(
        "theatre.v1.CatalogService/GetSeatMap",
        Some(&user),
        json!({"show_id": show_id}),
    )
    .unwrap();
    assert_eq!(booked_in_json(&map), ["A2", "A3"]);

    let denied = call("theatre.v1.CatalogService/ListTheatres", None, json!({})).unwrap_err();
    assert_eq!(denied["code"], "unauthenticated");
    let forbidden = call(
        "theatre.v1.CatalogService/CreateTheatre",
        Some(&user),
        json!({"name": "x", "city": "y"}),
    )
    .unwrap_err();
    assert_eq!(forbidden["code"], "permission_denied");
}

/// Sends a CORS preflight over plain HTTP/1.1 and returns the response head.
fn preflight(addr: SocketAddr, origin: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "OPTIONS /theatre.v1.CatalogService/ListMovies HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type,x-grpc-web,authorization\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cors_allows_only_configured_origins() {
    let local = TestApp::spawn(Backend::Sqlite).await;
    let head = preflight(local.server.addr(), "http://localhost:5173");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://localhost:5173"),
        "{head}"
    );
    assert!(head.contains("authorization"), "{head}");
    let head = preflight(local.server.addr(), "https://evil.example");
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    let configured = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_origins =
            theatre::config::CorsOrigins::List(vec!["https://app.theatre.test".into()]);
    })
    .await;
    let head = preflight(configured.server.addr(), "https://app.theatre.test");
    assert!(
        head.contains("access-control-allow-origin: https://app.theatre.test"),
        "{head}"
    );
    let head = preflight(configured.server.addr(), "http://localhost:5173");
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}
