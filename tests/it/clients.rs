//! The client kits run their examples against a live server, as a customer of
//! the kits would: the TypeScript booking flow over gRPC (connect-node), the
//! Python booking flow (grpcio), and the Python event consumer
//! (confluent-kafka) reading what a flow published, applying each event once.
//! The kits are generated and built by `clients/generate` (scripts/test runs
//! it first); a missing kit fails here with that hint.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use crate::common::*;
use theatre::{entity::booking, proto};

on_both_backends!(
    the_typescript_kit_runs_the_booking_flow,
    the_python_kit_runs_the_booking_flow
);

/// What both examples print and what they leave: one booking, cancelled, and
/// the refused request for A4 left nothing behind.
async fn assert_flow_ran(app: &TestApp, stdout: &str) {
    for line in [
        "ann booked A3,A4 for 2400 cents",
        "ben asked for A4: FAILED_PRECONDITION SEAT_TAKEN seats=A4",
        "seat map: A3,A4 booked of 10",
        "booking flow: ok",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    use sea_orm::EntityTrait;
    let bookings = booking::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap();
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    assert!(bookings[0].cancelled_at.is_some(), "{bookings:?}");
}

/// Runs one kit's booking example against a fresh server and checks it.
async fn run_booking_example(backend: Backend, program: PathBuf, example: &str) {
    let app = TestApp::spawn(backend).await;
    let script = repo(example).display().to_string();
    let stdout = run_to_end(program, vec![script], kit_env(&app)).await;
    assert_flow_ran(&app, &stdout).await;
}

async fn the_typescript_kit_runs_the_booking_flow(backend: Backend) {
    run_booking_example(
        backend,
        "node".into(),
        "clients/ts/dist/examples/booking.js",
    )
    .await;
}

async fn the_python_kit_runs_the_booking_flow(backend: Backend) {
    let python = repo(".venv/bin/python");
    run_booking_example(backend, python, "clients/python/examples/booking.py").await;
}

/// A flow that writes every event type once or more: movie created, updated
/// and deleted; shows created and deleted; bookings confirmed and cancelled
/// (by the customer, by the show's deletion and by the movie's).
async fn every_kind_of_event(app: &TestApp) {
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let second = app
        .another_show(&mut admin, &fx, vec![row("A", 5, 800)])
        .await;
    let mut ann = app.user("ann").await;
    let first = book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();
    ann.booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: first.id,
        })
        .await
        .unwrap();
    book(&mut ann, &fx.show_id, &["A2"]).await.unwrap();
    book(&mut ann, &second.id, &["A1"]).await.unwrap();
    admin
        .catalog
        .delete_show(proto::DeleteShowRequest { show_id: second.id })
        .await
        .unwrap();
    app.rename_movie(&mut admin, &fx.movie_id, "Metropolis (restored)")
        .await;
    admin
        .catalog
        .delete_movie(proto::DeleteMovieRequest {
            movie_id: fx.movie_id,
        })
        .await
        .unwrap();
}

/// The consumer's closing line: what it applied, per type, and what it skipped.
fn summary(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().expect("the consumer printed nothing");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_consumer_applies_every_event_type_once() {
    let brokers = kafka_brokers();
    let app = TestApp::spawn_with(Backend::Postgres, |c| use_kafka(c, brokers.clone())).await;
    every_kind_of_event(&app).await;
    let mut written: BTreeMap<String, u64> = BTreeMap::new();
    for event_type in app.outbox_types().await {
        *written.entry(event_type).or_default() += 1;
    }
    assert_eq!(written.len(), 7, "every event type: {written:?}");
    let total: u64 = written.values().sum();
    app.wait_published(total, Duration::from_secs(30)).await;

    let (catalog, bookings) = app.topics();
    let seen = tempfile::tempdir().unwrap();
    let consume = |group: &str| {
        let args = [
            "--brokers",
            &brokers.join(","),
            "--topics",
            &format!("{catalog},{bookings}"),
            "--group",
            group,
            "--seen",
            &seen.path().join("seen.db").display().to_string(),
            "--idle",
            "4",
        ]
        .map(str::to_owned);
        let mut argv = vec![
            repo("clients/python/examples/consume_events.py")
                .display()
                .to_string(),
        ];
        argv.extend(args);
        run_to_end(repo(".venv/bin/python"), argv, vec![])
    };

    let first = consume("first").await;
    let applied = summary(&first);
    let expected: serde_json::Map<String, serde_json::Value> = written
        .iter()
        .map(|(t, n)| (t.clone(), (*n).into()))
        .collect();
    assert_eq!(
        applied["applied"],
        serde_json::Value::Object(expected),
        "{first}"
    );
    assert_eq!(applied["duplicates"], 0, "{first}");
    assert!(first.contains("movie_deleted "), "{first}");
    assert!(first.contains("booking_cancelled "), "{first}");

    // Another group reads every record again, as after a crash before the
    // offsets were committed: each one is a duplicate and nothing is applied.
    let again = summary(&consume("second").await);
    assert_eq!(again["applied"], serde_json::json!({}));
    assert_eq!(again["duplicates"], total);
}
