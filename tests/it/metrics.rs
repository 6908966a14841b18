//! `/metrics` on its own listener: per-method counts, codes and latency,
//! bookings by outcome, logins, cache, pool and outbox, read by a real scrape.

use std::time::Duration;

use crate::common::*;
use tonic::Code;

const BOOKING: &str = r#"grpc_service="theatre.v1.BookingService",grpc_method="CreateBooking""#;

async fn metrics_follow_what_the_service_did(backend: Backend) {
    let redis = redis_url();
    let app = TestApp::spawn_with(backend, |c| use_redis(c, &redis)).await;
    let mut admin = app.admin().await;
    let show = app.show_fixture(&mut admin).await;
    let mut alice = app.user("alice").await;
    let mut bob = app.user("bob").await;
    book(&mut alice, &show.show_id, &["A1", "A2"])
        .await
        .unwrap();
    assert_status(
        book(&mut bob, &show.show_id, &["A2"]).await,
        Code::FailedPrecondition,
        "A2",
    );
    assert_status(
        book(&mut bob, &show.show_id, &["Z9"]).await,
        Code::InvalidArgument,
        "Z9",
    );
    booked_seats(&mut bob, &show.show_id).await;
    booked_seats(&mut bob, &show.show_id).await;
    let wrong = app
        .anonymous_auth()
        .login(theatre::proto::LoginRequest {
            email: "alice@theatre.test".into(),
            password: "not-the-password".into(),
        })
        .await;
    assert_status(wrong, Code::Unauthenticated, "invalid email or password");

    let m = app.scrape().await;
    let handled = |code: &str| {
        m.value(&format!(
            "grpc_server_handled_total{{{BOOKING},grpc_code=\"{code}\"}}"
        ))
    };
    assert_eq!(handled("OK"), 1.0);
    assert_eq!(handled("FailedPrecondition"), 1.0);
    assert_eq!(handled("InvalidArgument"), 1.0);
    assert_eq!(
        m.value(&format!("grpc_server_started_total{{{BOOKING}}}")),
        3.0
    );
    assert_eq!(
        m.value(&format!("grpc_server_handling_seconds_count{{{BOOKING}}}")),
        3.0
    );
    assert!(m.value(&format!("grpc_server_handling_seconds_sum{{{BOOKING}}}")) > 0.0);
    assert_eq!(
        m.value(&format!(
            "grpc_server_handling_seconds_bucket{{{BOOKING},le=\"+Inf\"}}"
        )),
        3.0
    );
    assert_eq!(
        m.value(r#"grpc_server_handled_total{grpc_service="theatre.v1.AuthService",grpc_method="Login",grpc_code="Unauthenticated"}"#),
        1.0
    );
    assert_eq!(m.value("theatre_bookings_confirmed_total"), 1.0);
    assert_eq!(
        m.value(r#"theatre_bookings_failed_total{reason="seats_taken"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"theatre_bookings_failed_total{reason="invalid_argument"}"#),
        1.0
    );
    assert_eq!(m.value("theatre_login_failures_total"), 1.0);
    assert_eq!(m.value("theatre_rpc_in_flight"), 0.0);
    assert_eq!(m.value("theatre_rpc_shed_total"), 0.0);

    let cache = app.server.cache_stats();
    assert!(cache.hits >= 1 && cache.misses >= 1, "{cache:?}");
    assert_eq!(m.value("theatre_cache_hits_total"), cache.hits as f64);
    assert_eq!(m.value("theatre_cache_misses_total"), cache.misses as f64);
    assert_eq!(m.value("theatre_cache_errors_total"), 0.0);

    assert_eq!(m.value("theatre_db_pool_max_connections"), 16.0);
    // Any split between busy and idle is possible at the moment of a scrape.
    let open =
        m.value("theatre_db_pool_connections_in_use") + m.value("theatre_db_pool_connections_idle");
    assert!((1.0..=16.0).contains(&open), "{open} open connections");
    assert!(m.value("theatre_db_statements_total") > 10.0);
    // No Kafka: every event waits in the outbox, and the oldest one's age is the lag.
    let events = app.outbox_types().await.len();
    assert_eq!(events, 3, "movie, show, booking");
    assert_eq!(m.value("theatre_outbox_backlog_events"), events as f64);
    app.clock.advance(chrono::Duration::seconds(90));
    let later = app.scrape().await;
    assert!(later.value("theatre_outbox_oldest_event_age_seconds") >= 90.0);
    assert!(
        !later.has("theatre_events_broker_up"),
        "no relay without Kafka"
    );
}

on_both_backends!(metrics_follow_what_the_service_did);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_metrics_show_published_events_and_an_empty_backlog() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_kafka(c, kafka_brokers())).await;
    let mut admin = app.admin().await;
    app.show_fixture(&mut admin).await;
    app.wait_published(2, Duration::from_secs(20)).await;
    let m = app.scrape().await;
    assert_eq!(m.value("theatre_outbox_published_total"), 2.0);
    assert_eq!(m.value("theatre_outbox_backlog_events"), 0.0);
    assert_eq!(m.value("theatre_outbox_oldest_event_age_seconds"), 0.0);
    assert_eq!(m.value("theatre_events_broker_up"), 1.0);
    assert_eq!(m.value("theatre_outbox_publish_failures_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_paths_share_one_series_and_metrics_can_be_turned_off() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut grpc = tonic::client::Grpc::new(app.channel());
    for path in ["/x.Y/A", "/x.Y/B", "/theatre.v1.Nope/C"] {
        grpc.ready().await.unwrap();
        let result: Result<tonic::Response<()>, _> = grpc
            .unary(
                tonic::Request::new(()),
                path.parse().unwrap(),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert!(result.is_err());
    }
    let m = app.scrape().await;
    let unknown: f64 =
        m.0.lines()
            .filter(|l| l.starts_with(r#"grpc_server_started_total{grpc_service="unknown""#))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum();
    assert_eq!(unknown, 3.0);
    assert!(!m.0.contains("x.Y"), "raw paths never become labels");

    let off = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_addr = None).await;
    assert!(off.server.metrics_addr().is_none());
}
