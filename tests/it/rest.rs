//! The HTTP/JSON face, driven with a real HTTP client (reqwest, HTTP/1.1) on
//! the same port as gRPC: the specification's endpoints, proto3 JSON in and
//! out, `google.rpc.Status` errors under the mapped HTTP status, and the same
//! layers (auth, limits, metrics) as gRPC calls.
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tonic::Code;

use crate::common::*;
use theatre::{entity::movie, proto};

on_both_backends!(
    the_booking_flow_runs_over_http_json,
    calls_without_a_valid_token_or_role_are_refused_over_http,
    a_booking_race_split_between_grpc_and_http_sells_every_seat_once,
);

/// One HTTP/JSON caller, with or without a bearer token.
#[derive(Clone)]
struct Rest {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

/// What came back: status, headers and the JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// The body of a 200, or a panic showing what came instead.
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{:?}", self.body);
        self.body
    }

    /// Asserts an error reply: HTTP status, the gRPC code in the
    /// `google.rpc.Status` body and a word of its message.
    fn refused(&self, status: StatusCode, code: Code, needle: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["code"], json!(code as i32), "{:?}", self.body);
        let message = self.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
        assert_eq!(
            self.headers["content-type"], "application/json",
            "errors are JSON too"
        );
    }

    /// The `details` entry of the given `@type` suffix.
    fn detail(&self, kind: &str) -> &Value {
        self.body["details"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{kind}"))
            })
            .unwrap_or_else(|| panic!("no {kind} in {:?}", self.body))
    }
}

impl Rest {
    fn anonymous(app: &TestApp) -> Self {
        Self {
            base: format!("http://{}", app.server.addr()),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("HTTP round trip");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body.to_string())).await
    }

    /// Signs up (over HTTP) and logs in; returns the caller and their id.
    async fn sign_up(&self, name: &str) -> (Rest, String) {
        let email = format!("{name}@theatre.test");
        let signup = json!({"email": email, "password": PASSWORD, "displayName": name});
        let user = self.post("/auth/signup", signup).await.ok();
        assert_eq!(user["user"]["role"], "ROLE_USER", "enums go out by name");
        self.log_in(&email, PASSWORD).await
    }

    async fn log_in(&self, email: &str, password: &str) -> (Rest, String) {
        let login = self
            .post("/auth/login", json!({"email": email, "password": password}))
            .await
            .ok();
        let token = login["accessToken"].as_str().expect("accessToken");
        let expires = login["expiresAt"].as_str().expect("expiresAt");
        chrono::DateTime::parse_from_rfc3339(expires).expect("timestamps are RFC 3339");
        let id = login["user"]["id"].as_str().unwrap().to_owned();
        (self.with_token(token), id)
    }
}

fn starts_at(app: &TestApp, hours: i64) -> String {
    use theatre::clock::Clock;
    (app.clock.now() + chrono::Duration::hours(hours)).to_rfc3339()
}

/// A movie, theatre and show (rows A and B of 10) made over HTTP by `admin`.
async fn show_over_http(app: &TestApp, admin: &Rest, title: &str) -> (String, String) {
    let movie = admin
        .post(
            "/movies",
            json!({"title": title, "durationMinutes": 120, "genre": "drama"}),
        )
        .await
        .ok();
    let movie_id = movie["movie"]["id"].as_str().unwrap().to_owned();
    let theatre = admin
        .post("/theatres", json!({"name": "Odeon", "city": "Leeds"}))
        .await
        .ok();
    // Both spellings in: proto names (`theatre_id`, `price_cents`) and
    // lowerCamelCase; 64-bit integers as strings or numbers.
    let show = admin
        .post(
            "/shows",
            json!({
                "movieId": movie_id,
                "theatre_id": theatre["theatre"]["id"],
                "startsAt": starts_at(app, 48),
                "rows": [
                    {"label": "A", "seats": 10, "priceCents": "1200"},
                    {"label": "B", "seats": 10, "price_cents": 900},
                ],
            }),
        )
        .await
        .ok();
    let show_id = show["show"]["id"].as_str().unwrap().to_owned();
    (movie_id, show_id)
}

async fn the_booking_flow_runs_over_http_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = Rest::anonymous(&app);
    let (admin, _) = anonymous.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (alice, alice_id) = anonymous.sign_up("alice").await;
    let (bob, _) = anonymous.sign_up("bob").await;
    let me = alice.get("/auth/me").await.ok();
    assert_eq!(me["user"]["id"], alice_id);

    let (movie_id, show_id) = show_over_http(&app, &admin, "Metropolis").await;
    let renamed = admin
        .send(
            Method::PATCH,
            &format!("/movies/{movie_id}"),
            Some(r#"{"title": "Metropolis (1927)"}"#),
        )
        .await
        .ok();
    assert_eq!(renamed["movie"]["title"], "Metropolis (1927)");
    assert_eq!(
        renamed["movie"]["durationMinutes"], 120,
        "unchanged fields stay"
    );
    let movies = alice.get("/movies?pageSize=10").await.ok();
    assert_eq!(movies["movies"].as_array().unwrap().len(), 1);

    let shows = alice.get(&format!("/shows?movieId={movie_id}")).await.ok();
    let shows = shows["shows"].as_array().unwrap();
    assert_eq!(shows.len(), 1);
    assert_eq!(shows[0]["id"], show_id);
    assert_eq!(shows[0]["totalSeats"], 20);
    assert_eq!(
        shows[0]["rows"][1]["priceCents"], "900",
        "int64 goes out as a string"
    );
    let by_proto_name = alice.get(&format!("/shows?movie_id={movie_id}")).await.ok();
    assert_eq!(
        by_proto_name["shows"][0]["id"], show_id,
        "the proto name works too"
    );
    alice
        .get("/shows?movieId=01a2355f-0000-7000-8000-000000000000")
        .await
        .refused(StatusCode::NOT_FOUND, Code::NotFound, "movie");

    let seats = alice.get(&format!("/shows/{show_id}/seats")).await.ok();
    assert_eq!(seats["seats"].as_array().unwrap().len(), 20);
    assert_eq!(seats["seats"][0]["status"], "SEAT_STATUS_AVAILABLE");

    let booking = alice
        .post(
            "/bookings",
            json!({"showId": show_id, "seatIds": ["A1", "A2"]}),
        )
        .await
        .ok();
    let booking = &booking["booking"];
    assert_eq!(booking["status"], "BOOKING_STATUS_CONFIRMED");
    assert_eq!(booking["totalCents"], "2400");
    let booking_id = booking["id"].as_str().unwrap().to_owned();

    let taken = bob
        .post(
            "/bookings",
            json!({"showId": show_id, "seatIds": ["A2", "A3"]}),
        )
        .await;
    taken.refused(StatusCode::CONFLICT, Code::FailedPrecondition, "A2");
    let violations = &taken.detail("PreconditionFailure")["violations"];
    assert_eq!(
        violations,
        &json!([{"type": "SEAT_TAKEN", "subject": "A2", "description": "seat is already booked"}])
    );

    let seats = bob.get(&format!("/shows/{show_id}/seats")).await.ok();
    assert_eq!(booked_in_json(&seats), ["A1", "A2"]);

    let mine = alice.get("/bookings/user").await.ok();
    assert_eq!(mine["bookings"].as_array().unwrap().len(), 1);
    assert_eq!(mine["bookings"][0]["id"], booking_id);
    assert_eq!(bob.get("/bookings/user").await.ok()["bookings"], json!([]));
    bob.get(&format!("/bookings/{booking_id}")).await.refused(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "booking",
    );

    let cancelled = alice
        .post(&format!("/bookings/{booking_id}:cancel"), json!({}))
        .await
        .ok();
    assert_eq!(cancelled["booking"]["status"], "BOOKING_STATUS_CANCELLED");
    assert_eq!(
        cancelled["booking"]["cancelReason"],
        "CANCEL_REASON_BY_USER"
    );
    alice
        .post(&format!("/bookings/{booking_id}:cancel"), json!({}))
        .await
        .refused(StatusCode::CONFLICT, Code::FailedPrecondition, "");

    // DELETE /movies/{id}: its show and seats go; the booking on it stays,
    // cancelled, as customer history.
    let kept = bob
        .post("/bookings", json!({"showId": show_id, "seatIds": ["B5"]}))
        .await
        .ok();
    let kept_id = kept["booking"]["id"].as_str().unwrap().to_owned();
    let deleted = admin
        .send(Method::DELETE, &format!("/movies/{movie_id}"), None)
        .await
        .ok();
    assert_eq!(deleted, json!({"deletedShows": 1, "cancelledBookings": 1}));
    alice.get(&format!("/shows/{show_id}")).await.refused(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "show",
    );
    alice.get(&format!("/movies/{movie_id}")).await.refused(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "movie",
    );
    let history = bob.get(&format!("/bookings/{kept_id}")).await.ok();
    assert_eq!(history["booking"]["status"], "BOOKING_STATUS_CANCELLED");
    assert_eq!(
        history["booking"]["cancelReason"],
        "CANCEL_REASON_MOVIE_DELETED"
    );
    assert_eq!(history["booking"]["movieTitle"], "Metropolis (1927)");
}

async fn calls_without_a_valid_token_or_role_are_refused_over_http(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = Rest::anonymous(&app);
    let (alice, _) = anonymous.sign_up("alice").await;
    let movie = json!({"title": "Heist", "durationMinutes": 90});

    anonymous.post("/movies", movie.clone()).await.refused(
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        "token",
    );
    anonymous
        .with_token("v4.public.not-a-token")
        .get("/movies")
        .await
        .refused(StatusCode::UNAUTHORIZED, Code::Unauthenticated, "");
    anonymous.get("/bookings/user").await.refused(
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        "token",
    );
    alice.post("/movies", movie.clone()).await.refused(
        StatusCode::FORBIDDEN,
        Code::PermissionDenied,
        "ADMIN",
    );
    alice
        .send(
            Method::DELETE,
            "/movies/01a2355f-0000-7000-8000-000000000000",
            None,
        )
        .await
        .refused(StatusCode::FORBIDDEN, Code::PermissionDenied, "ADMIN");
    alice
        .post("/theatres", json!({"name": "Mine", "city": "Porto"}))
        .await
        .refused(StatusCode::FORBIDDEN, Code::PermissionDenied, "ADMIN");
    assert_eq!(app.count(movie::Entity).await, 0, "nothing was written");
}

/// Every seat of a show is wanted by six clients, half on gRPC and half on
/// HTTP/JSON, all released at once: each seat is sold exactly once, and each
/// loser hears FAILED_PRECONDITION in its own protocol.
async fn a_booking_race_split_between_grpc_and_http_sells_every_seat_once(backend: Backend) {
    const SEATS: usize = 20;
    const CLIENTS: usize = 120;
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let show = app.show_fixture(&mut admin).await;
    let seat = |i: usize| format!("{}{}", if i % SEATS < 10 { "A" } else { "B" }, i % 10 + 1);
    let clients = app.users("racer", CLIENTS).await;
    let barrier = std::sync::Arc::new(Barrier::new(CLIENTS));
    let rest = Rest::anonymous(&app);
    let tasks = clients.into_iter().enumerate().map(|(i, mut client)| {
        let barrier = barrier.clone();
        let show_id = show.show_id.clone();
        let rest = rest.with_token(&client.token);
        let wanted = seat(i);
        tokio::spawn(async move {
            barrier.wait().await;
            let won = if i % 2 == 0 {
                match book(&mut client, &show_id, &[&wanted]).await {
                    Ok(booking) => Some(booking.id),
                    Err(status) => {
                        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                        None
                    }
                }
            } else {
                let reply = rest
                    .post("/bookings", json!({"showId": show_id, "seatIds": [wanted]}))
                    .await;
                if reply.status == StatusCode::OK {
                    Some(reply.body["booking"]["id"].as_str().unwrap().to_owned())
                } else {
                    reply.refused(StatusCode::CONFLICT, Code::FailedPrecondition, &wanted);
                    None
                }
            };
            (wanted, i % 2 == 0, won)
        })
    });
    let outcomes = futures::future::join_all(tasks).await;
    let mut sold: BTreeMap<String, usize> = BTreeMap::new();
    let mut faces = BTreeSet::new();
    for outcome in outcomes {
        let (wanted, grpc, won) = outcome.expect("client task");
        if won.is_some() {
            *sold.entry(wanted).or_default() += 1;
            faces.insert(grpc);
        }
    }
    let all: BTreeMap<String, usize> = (0..SEATS).map(|i| (seat(i), 1)).collect();
    assert_eq!(sold, all, "every seat sold, and once");
    println!("winners' faces (true: gRPC): {faces:?}");
    let mut reader = app.admin().await;
    assert_eq!(booked_seats(&mut reader, &show.show_id).await.len(), SEATS);
    assert_eq!(
        app.count(theatre::entity::booking::Entity).await,
        SEATS as u64,
        "one booking row per seat sold"
    );
}

#[tokio::test]
async fn malformed_requests_get_400_naming_the_problem() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let anonymous = Rest::anonymous(&app);
    let (admin, _) = anonymous.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let send = |body: &'static str| {
        let admin = admin.clone();
        async move { admin.send(Method::POST, "/movies", Some(body)).await }
    };

    let broken = send(r#"{"title": "Heist""#).await;
    broken.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "not valid JSON",
    );
    assert_eq!(
        broken.detail("BadRequest")["fieldViolations"][0]["field"],
        "body"
    );
    send(r#"["Heist"]"#).await.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "JSON object",
    );
    send(r#"{"title": "Heist", "durationMinutes": 90, "rating": 5}"#)
        .await
        .refused(StatusCode::BAD_REQUEST, Code::InvalidArgument, "rating");
    let typed = send(r#"{"title": "Heist", "durationMinutes": "long"}"#).await;
    typed.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "durationMinutes",
    );
    assert_eq!(
        typed.detail("BadRequest")["fieldViolations"][0]["field"],
        "durationMinutes"
    );
    // A well-formed body the handler refuses: its own BadRequest, as over gRPC.
    let invalid = send(r#"{"title": "", "durationMinutes": 90}"#).await;
    invalid.refused(StatusCode::BAD_REQUEST, Code::InvalidArgument, "title");
    assert_eq!(
        invalid.detail("BadRequest")["fieldViolations"][0]["field"],
        "title"
    );

    admin.get("/movies?pageSize=ten").await.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "pageSize",
    );
    admin.get("/movies?colour=red").await.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "colour",
    );
    admin.get("/movies/not-an-id").await.refused(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        "movie_id",
    );
    admin.get("/no/such/thing").await.refused(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        "/no/such/thing",
    );
    let verb = admin.send(Method::PUT, "/movies", Some("{}")).await;
    verb.refused(StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented, "PUT");
    assert_eq!(verb.headers["allow"], "POST, GET");
    assert_eq!(app.count(movie::Entity).await, 0, "nothing was written");
}

#[tokio::test]
async fn throttled_logins_get_429_with_retry_after() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let anonymous = Rest::anonymous(&app);
    anonymous.sign_up("alice").await;
    let wrong = json!({"email": "alice@theatre.test", "password": "not-the-password"});
    let mut last = None;
    for _ in 0..10 {
        let reply = anonymous.post("/auth/login", wrong.clone()).await;
        if reply.status != StatusCode::UNAUTHORIZED {
            last = Some(reply);
            break;
        }
    }
    let throttled = last.expect("the login throttle refuses at some point");
    throttled.refused(StatusCode::TOO_MANY_REQUESTS, Code::ResourceExhausted, "");
    let wait: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "Retry-After is whole seconds: {wait}");
    assert!(throttled.detail("RetryInfo")["retryDelay"].is_string());
}

#[tokio::test]
async fn json_calls_share_the_rpcs_metrics_and_request_ids() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let anonymous = Rest::anonymous(&app);
    let (alice, _) = anonymous.sign_up("alice").await;
    let mut grpc = app.login("alice@theatre.test", PASSWORD).await;
    grpc.catalog
        .list_movies(proto::ListMoviesRequest::default())
        .await
        .unwrap();
    let reply = alice.get("/movies").await;
    let request_id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!request_id.is_empty());
    reply.ok();
    let echoed = alice
        .http
        .get(format!("{}/movies", alice.base))
        .bearer_auth(alice.token.as_deref().unwrap())
        .header("x-request-id", "trace-me-7")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-7");
    let m = app.scrape().await;
    let handled = m.value(
        r#"grpc_server_handled_total{grpc_service="theatre.v1.CatalogService",grpc_method="ListMovies",grpc_code="OK"}"#,
    );
    assert_eq!(handled, 3.0, "one series for both faces");
}

#[tokio::test]
async fn browsers_may_call_the_json_routes_from_allowed_origins() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_origins = theatre::config::CorsOrigins::List(vec!["https://box.example".into()]);
        c.cors_headers.push("x-tenant".into());
    })
    .await;
    let rest = Rest::anonymous(&app);
    let preflight = |origin: &'static str| {
        rest.http
            .request(Method::OPTIONS, format!("{}/movies/123", rest.base))
            .header("origin", origin)
            .header("access-control-request-method", "DELETE")
            .header(
                "access-control-request-headers",
                "authorization,content-type,traceparent,x-tenant",
            )
            .send()
    };
    let allowed = preflight("https://box.example").await.unwrap();
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    for wanted in ["authorization", "traceparent", "tracestate", "x-tenant"] {
        assert!(headers.contains(wanted), "{wanted} not in {headers}");
    }
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://box.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("DELETE") && methods.contains("PATCH"),
        "{methods}"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let call = rest
        .http
        .get(format!("{}/movies", rest.base))
        .header("origin", "https://box.example")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        call.headers()["access-control-allow-origin"],
        "https://box.example"
    );
    let exposed = call.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_the_repository_copy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let served = Rest::anonymous(&app).get("/openapi.json").await.ok();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(theatre::rest::OPENAPI).unwrap()
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != theatre::rest::OPENAPI {
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, theatre::rest::OPENAPI).unwrap();
        } else {
            panic!(
                "openapi.json is not what build.rs generates from proto/; \
                 run `UPDATE_OPENAPI=1 cargo nextest run openapi` and commit it"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_deadlines_and_oversized_bodies_keep_their_http_statuses() {
    let shedding = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.max_in_flight = 1;
        c.limits.max_queued = 1;
    })
    .await;
    let rest = Rest::anonymous(&shedding);
    // Each login spends tens of milliseconds in argon2: twelve at once cannot
    // all fit in one running and one waiting slot.
    let login = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let replies =
        futures::future::join_all((0..12).map(|_| rest.post("/auth/login", login.clone()))).await;
    let shed: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status != StatusCode::OK)
        .collect();
    assert!(!shed.is_empty() && shed.len() < 12, "{} shed", shed.len());
    for reply in shed {
        reply.refused(
            StatusCode::TOO_MANY_REQUESTS,
            Code::ResourceExhausted,
            "capacity",
        );
        assert!(
            reply.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
    }

    let slow = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.rpc_deadline = std::time::Duration::from_millis(5);
    })
    .await;
    let signup = json!({"email": "slow@theatre.test", "password": PASSWORD, "displayName": "Slow"});
    Rest::anonymous(&slow)
        .post("/auth/signup", signup)
        .await
        .refused(StatusCode::GATEWAY_TIMEOUT, Code::DeadlineExceeded, "");

    let small = TestApp::spawn_with(Backend::Sqlite, |c| c.limits.max_message_bytes = 4096).await;
    let (admin, _) = Rest::anonymous(&small)
        .log_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    let long = json!({"title": "Long", "description": "x".repeat(10_000), "durationMinutes": 100});
    admin.post("/movies", long).await.refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::ResourceExhausted,
        "4096 bytes",
    );
    assert_eq!(small.count(movie::Entity).await, 0);
}

/// The database refusing connections is the server's fault, not the
/// client's: 503 with Retry-After, then service again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_503_with_retry_after() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(Backend::Postgres).await;
    let (alice, _) = Rest::anonymous(&app).sign_up("alice").await;
    alice.get("/movies").await.ok();
    let (base, name) = app.database_url().rsplit_once('/').unwrap();
    let pg = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .unwrap();
    let set = |allow: bool| {
        let pg = pg.clone();
        async move {
            pg.execute_unprepared(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allow}"
            ))
            .await
            .unwrap();
            if !allow {
                pg.execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .await
                .unwrap();
            }
        }
    };
    set(false).await;
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(alice.get("/movies").await);
    }
    set(true).await;
    for reply in &replies {
        reply.refused(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, "");
        assert!(
            reply.headers.contains_key("retry-after"),
            "{:?}",
            reply.headers
        );
    }
    let mut recovered = false;
    for _ in 0..50 {
        if alice.get("/movies").await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the service answers again once the database is back"
    );
}

/// With Redis, the cached reads come back over HTTP/JSON from the instance's
/// own copy (answered before tonic, as encoded bytes) exactly as loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_reads_over_http_are_the_loaded_ones() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_redis(c, &redis_url())).await;
    let anonymous = Rest::anonymous(&app);
    let (admin, _) = anonymous.log_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, show_id) = show_over_http(&app, &admin, "Metropolis").await;
    for path in [
        format!("/shows/{show_id}/seats"),
        format!("/shows/{show_id}"),
        "/movies?pageSize=5".to_owned(),
    ] {
        let loaded = admin.get(&path).await.ok();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let copies = app.server.cache_stats().near_hits;
            assert_eq!(admin.get(&path).await.ok(), loaded, "{path}");
            if app.server.cache_stats().near_hits > copies {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: never a copy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
