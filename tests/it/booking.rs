//! Booking: the atomic seat claim, validation, idempotency, cancellation, ownership.

use crate::common::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use theatre::{
    entity::{booking, seat},
    proto,
};
use tonic::Code;

on_both_backends!(
    booking_claims_seats_and_records_an_event,
    overlapping_booking_takes_no_seats,
    bad_booking_input_names_the_field_and_writes_nothing,
    started_show_cannot_be_booked_or_cancelled,
    repeated_idempotency_key_returns_the_original_booking,
    cancelling_frees_the_seats_once,
    other_users_bookings_are_not_found,
);

fn request(show_id: &str, seats: &[&str], key: &str) -> proto::CreateBookingRequest {
    proto::CreateBookingRequest {
        show_id: show_id.into(),
        seat_ids: seats.iter().map(|s| s.to_string()).collect(),
        idempotency_key: key.into(),
    }
}

async fn booking_claims_seats_and_records_an_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;

    let booking = book(&mut ann, &fx.show_id, &["A2", "B1"]).await.unwrap();
    assert_eq!(booking.status, proto::BookingStatus::Confirmed as i32);
    assert_eq!(booking.seat_ids, ["A2", "B1"]);
    assert_eq!(booking.total_cents, 1200 + 900);
    assert_eq!(booking.movie_title, "Metropolis");
    assert_eq!(booking.theatre_name, "Odeon");
    assert_eq!(booking.show_id, fx.show_id);
    assert_eq!(booking.user_id, ann.user_id);

    let mut booked = booked_seats(&mut ann, &fx.show_id).await;
    booked.sort();
    assert_eq!(booked, ["A2", "B1"]);

    let mut events = app.outbox("theatre.v1.BookingConfirmed").await;
    assert_eq!(events.len(), 1);
    let envelope = events.remove(0);
    assert_eq!(envelope.aggregate_id, booking.id);
    let Some(proto::event_envelope::Payload::BookingConfirmed(confirmed)) = envelope.payload else {
        panic!("expected BookingConfirmed, got {envelope:?}");
    };
    assert_eq!(confirmed.seat_ids, ["A2", "B1"]);
    assert_eq!(confirmed.total_cents, 2100);
    assert_eq!(confirmed.user_id, ann.user_id);
}

async fn overlapping_booking_takes_no_seats(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    book(&mut ann, &fx.show_id, &["A1", "A2"]).await.unwrap();
    let events_before = app.outbox_types().await.len();

    let clash = book(&mut ben, &fx.show_id, &["A3", "A2", "A4"]).await;
    let status = clash.as_ref().unwrap_err().clone();
    assert_status(clash, Code::FailedPrecondition, "A2");
    assert!(
        !status.message().contains("A3"),
        "only taken seats are named"
    );

    let mut booked = booked_seats(&mut ben, &fx.show_id).await;
    booked.sort();
    assert_eq!(booked, ["A1", "A2"], "A3 and A4 stay free");
    assert_eq!(app.count(booking::Entity).await, 1);
    assert_eq!(
        app.outbox_types().await.len(),
        events_before,
        "a refused booking records no event"
    );
    book(&mut ben, &fx.show_id, &["A3", "A4"])
        .await
        .expect("free seats still bookable");
}

async fn bad_booking_input_names_the_field_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let eleven: Vec<String> = (1..=10)
        .map(|n| format!("A{n}"))
        .chain(["B1".into()])
        .collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let long_key = "k".repeat(101);
    let cases: Vec<(proto::CreateBookingRequest, &str)> = vec![
        (request(&fx.show_id, &[], ""), "seat_ids:"),
        (request(&fx.show_id, &eleven, ""), "seat_ids:"),
        (request(&fx.show_id, &["A1", "A1"], ""), "seat_ids[1]:"),
        (request(&fx.show_id, &["a1"], ""), "seat_ids[0]:"),
        (request(&fx.show_id, &["A0"], ""), "seat_ids[0]:"),
        (request(&fx.show_id, &["A1", "Z9", "A99"], ""), "Z9, A99"),
        (request("", &["A1"], ""), "show_id:"),
        (request("nope", &["A1"], ""), "show_id:"),
        (request(&fx.show_id, &["A1"], &long_key), "idempotency_key:"),
    ];
    for (req, needle) in cases {
        let result = ann.booking.create_booking(req).await;
        assert_status(result, Code::InvalidArgument, needle);
    }
    let unknown_show = uuid::Uuid::now_v7().to_string();
    assert_status(
        book(&mut ann, &unknown_show, &["A1"]).await,
        Code::NotFound,
        "show",
    );
    assert_eq!(app.count(booking::Entity).await, 0);
    assert!(booked_seats(&mut ann, &fx.show_id).await.is_empty());
}

async fn started_show_cannot_be_booked_or_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let booking = book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();
    app.clock.advance(chrono::Duration::hours(25));
    // Tokens expire after an hour of (test) time; log in again.
    let mut ann = app.login("ann@theatre.test", PASSWORD).await;
    assert_status(
        book(&mut ann, &fx.show_id, &["A2"]).await,
        Code::FailedPrecondition,
        "already started",
    );
    let cancel = ann
        .booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: booking.id.clone(),
        })
        .await;
    assert_status(cancel, Code::FailedPrecondition, "already started");
    assert_eq!(booked_seats(&mut ann, &fx.show_id).await, ["A1"]);
}

async fn repeated_idempotency_key_returns_the_original_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;

    let first = ann
        .booking
        .create_booking(request(&fx.show_id, &["B5", "B6"], "order-1"))
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    let again = ann
        .booking
        .create_booking(request(&fx.show_id, &["B6", "B5"], "order-1"))
        .await
        .expect("a retry is answered with the original booking")
        .into_inner()
        .booking
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(app.count(booking::Entity).await, 1);

    let other_seats = ann
        .booking
        .create_booking(request(&fx.show_id, &["B7"], "order-1"))
        .await;
    assert_status(other_seats, Code::InvalidArgument, "idempotency_key:");

    // Keys are per user: Ben's "order-1" is his own booking.
    let bens = ben
        .booking
        .create_booking(request(&fx.show_id, &["B7"], "order-1"))
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    assert_ne!(bens.id, first.id);
    assert_eq!(app.count(booking::Entity).await, 2);

    // Concurrent retries of one request book once.
    let tries = (0..8).map(|_| {
        let mut ann = ann.clone();
        let show = fx.show_id.clone();
        tokio::spawn(async move {
            ann.booking
                .create_booking(request(&show, &["A9", "A10"], "order-2"))
                .await
                .map(|r| r.into_inner().booking.unwrap().id)
        })
    });
    let ids: Vec<String> = futures::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every retry succeeds"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one booking: {ids:?}");
    assert_eq!(app.count(booking::Entity).await, 3);
}

async fn cancelling_frees_the_seats_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    let booking = book(&mut ann, &fx.show_id, &["A5", "A6"]).await.unwrap();

    let cancelled = ann
        .booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: booking.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    assert_eq!(cancelled.status, proto::BookingStatus::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, proto::CancelReason::ByUser as i32);
    assert!(cancelled.cancelled_at.is_some());
    assert_eq!(
        cancelled.seat_ids,
        ["A5", "A6"],
        "the booking keeps its seats as history"
    );
    assert!(booked_seats(&mut ann, &fx.show_id).await.is_empty());
    let held = seat::Entity::find()
        .filter(seat::Column::BookingId.is_not_null())
        .all(app.server.db().conn())
        .await
        .unwrap();
    assert!(held.is_empty());

    let twice = ann
        .booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: booking.id.clone(),
        })
        .await;
    assert_status(twice, Code::FailedPrecondition, "already cancelled");
    book(&mut ben, &fx.show_id, &["A5", "A6"])
        .await
        .expect("freed seats can be booked");
    let types = app.outbox_types().await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "theatre.v1.BookingCancelled")
            .count(),
        1
    );
}

async fn other_users_bookings_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    let anns = book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();
    let bens = book(&mut ben, &fx.show_id, &["A2"]).await.unwrap();

    let get = ben
        .booking
        .get_booking(proto::GetBookingRequest {
            booking_id: anns.id.clone(),
        })
        .await;
    assert_status(get, Code::NotFound, "booking");
    let cancel = ben
        .booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: anns.id.clone(),
        })
        .await;
    assert_status(cancel, Code::NotFound, "booking");
    let bad = ben
        .booking
        .get_booking(proto::GetBookingRequest {
            booking_id: "x".into(),
        })
        .await;
    assert_status(bad, Code::InvalidArgument, "booking_id:");

    let mine = my_bookings(&mut ben).await;
    assert_eq!(
        mine.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [bens.id.as_str()]
    );
    let own = ann
        .booking
        .get_booking(proto::GetBookingRequest {
            booking_id: anns.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    assert_eq!(own.id, anns.id);
    assert_eq!(
        booked_seats(&mut ann, &fx.show_id).await.len(),
        2,
        "Ann's booking untouched"
    );
}

/// Every `Actual Loops` of an `EXPLAIN (FORMAT JSON)` plan tree, with its node type,
/// and the `Actual Rows` of each scan of `seats`.
fn plan_loops(node: &serde_json::Value, out: &mut Vec<(String, u64)>) {
    if let Some(loops) = node["Actual Loops"].as_u64() {
        let kind = node["Node Type"].as_str().unwrap_or("?");
        let relation = node["Relation Name"].as_str().unwrap_or("");
        out.push((format!("{kind} {relation}"), loops));
        // A scan of seats that returns more rows than were asked for read
        // seats of the show that nobody asked for.
        if relation == "seats" {
            let rows = node["Actual Rows"].as_u64().unwrap_or(0);
            out.push((format!("{kind} {relation} rows"), rows));
        }
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_loops(child, out);
    }
}

/// The plans auto_explain sends as NOTICEs (`log_level = notice`) for each
/// statement a call runs, nested ones included, as `psql` prints them.
fn noticed_plans(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .split("NOTICE:")
        .filter_map(|notice| {
            let json = &notice[notice.find('{')?..=notice.rfind('}')?];
            Some(
                serde_json::from_str::<serde_json::Value>(json).expect("plan JSON")["Plan"].clone(),
            )
        })
        .collect()
}

/// A show created after `seats` was analyzed has no statistics, and the claim
/// once planned as a semi join that probed every seat of the show (2,000 loops,
/// about a second, for one seat). The service's batch statement, from the
/// file it runs (`claim_bookings`), runs here under auto_explain with a
/// booking on such a show: no node of any statement it runs may loop more
/// times than seats were requested, in its generic plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_claim_on_a_show_newer_than_the_statistics_touches_only_the_requested_seats() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut admin = app.admin().await;
    let analyzed = app
        .show_fixture_with(&mut admin, hall('A'..='T', 900))
        .await;
    let mut ann = app.user("ann").await;
    for seats in [["A1", "A2"], ["B5", "B6"], ["C9", "C10"]] {
        book(&mut ann, &analyzed.show_id, &seats).await.unwrap();
    }
    app.server
        .db()
        .conn()
        .execute_unprepared("ANALYZE")
        .await
        .unwrap();
    let fresh = app
        .create_show(
            &mut admin,
            &analyzed.movie_id,
            &analyzed.theatre_id,
            hall('A'..='T', 900),
        )
        .await;

    // The service's own statement file, prepared as the service prepares it;
    // the snapshot is the show's own, so the booking gets as far as the claim.
    let prepare_claim = format!(
        "PREPARE claim AS\n{}",
        include_str!("../../src/booking/sql/claim_bookings_call.sql")
    );
    let snapshot = app
        .server
        .db()
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT m.title, t.name, s.starts_at::text AS starts_at FROM shows s \
                 JOIN movies m ON m.id = s.movie_id JOIN theatres t ON t.id = s.theatre_id \
                 WHERE s.id = '{}'",
                fresh.id
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    let text = |column: &str| -> String { snapshot.try_get("", column).unwrap() };
    let claim = format!(
        "EXECUTE claim(ARRAY[gen_random_uuid()], ARRAY['{user}'::uuid], ARRAY['{show}'::uuid], \
         ARRAY[1], ARRAY['K50'], ARRAY[900::bigint], ARRAY['{title}'], ARRAY['{theatre}'], \
         ARRAY['{starts}'::timestamptz], ARRAY[''], \
         ARRAY[gen_random_uuid()], ARRAY['booking'], ARRAY['x'], \
         ARRAY['theatre.v1.BookingConfirmed'], ARRAY['\\x00'::bytea], ARRAY[now()])",
        user = ann.user_id,
        show = fresh.id,
        title = text("title").replace('\'', "''"),
        theatre = text("name").replace('\'', "''"),
        starts = text("starts_at"),
    );
    let mut psql = std::process::Command::new("psql");
    psql.args([
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        app.database_url(),
    ]);
    for statement in [
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_analyze = on",
        "SET auto_explain.log_nested_statements = on",
        "SET auto_explain.log_format = json",
        "SET auto_explain.log_level = notice",
        // The plans a prepared statement settles on after five executions,
        // which know nothing of the parameters: a read once scanned every
        // seat of the show in its generic plan.
        "SET plan_cache_mode = force_generic_plan",
        &prepare_claim,
        "BEGIN",
        &claim,
        "ROLLBACK",
    ] {
        psql.args(["-c", statement]);
    }
    let out = psql.output().expect("psql runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql failed: {stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1|OK|"),
        "the booking was claimed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut loops = Vec::new();
    for plan in noticed_plans(&stderr) {
        plan_loops(&plan, &mut loops);
    }
    assert!(
        loops.iter().any(|(node, _)| node == "ModifyTable seats"),
        "the seat claim's plan was seen: {loops:?}"
    );
    assert!(
        loops.iter().any(|(node, _)| node.ends_with(" movies")),
        "the snapshot check's plan was seen: {loops:?}"
    );
    let worst = loops.iter().max_by_key(|(_, n)| *n).unwrap();
    assert!(
        worst.1 <= 1,
        "a one-seat booking looped or read more seats than asked for: {worst:?}; all: {loops:?}"
    );
}
