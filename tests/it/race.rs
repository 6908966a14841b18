//! Many clients racing for overlapping seats of one show: every seat is held
//! by at most one booking, and the booked seats are exactly the union of the
//! bookings that succeeded.

use std::collections::{BTreeSet, HashMap};

use crate::common::*;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use theatre::{
    config::ConnectionUrl,
    entity::{booking, seat},
    proto,
};
use tokio::sync::Barrier;
use tonic::Code;

on_both_backends!(
    concurrent_overlapping_bookings_never_share_a_seat,
    deleting_a_movie_while_booking_leaves_no_confirmed_orphan,
);

/// PostgreSQL's claims on the pool rather than on connections of their own:
/// the route a URL with a parameter only sqlx knows takes (`src/db.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_through_the_pool_never_share_a_seat() {
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        let url = format!(
            "{}?statement-cache-capacity=100",
            config.database_url.expose()
        );
        config.database_url = ConnectionUrl::new(url);
    })
    .await;
    assert!(
        app.server.db().direct().is_none(),
        "the claims use the pool"
    );
    race(&app).await;
}

/// `sslmode=require`: the claims' own connections speak TLS, as the pool
/// does (this host's PostgreSQL offers it, as Debian's does out of the box).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_over_tls_never_share_a_seat() {
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        let url = format!("{}?sslmode=require", config.database_url.expose());
        config.database_url = ConnectionUrl::new(url);
    })
    .await;
    assert!(
        app.server.db().direct().is_some_and(|d| d.tls()),
        "the claims use connections of their own, over TLS"
    );
    race(&app).await;
    let db = app.server.db().conn();
    // Every connection of the service, the claims' own among them, is encrypted.
    let plain = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE NOT s.ssl) AS plain, count(*) AS open
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap();
    let (open, unencrypted): (i64, i64) = (
        plain.try_get("", "open").unwrap(),
        plain.try_get("", "plain").unwrap(),
    );
    assert!(open >= 3, "the pool's and the claims' connections: {open}");
    assert_eq!(unencrypted, 0, "of {open} connections");
}

const CLIENTS: usize = 120;
const SEATS_PER_ROW: i32 = 10;

/// Each client wants three adjacent-ish seats from a sliding window over the
/// 20 seats of rows A and B, so almost every request overlaps several others.
fn wanted_seats(client: usize) -> Vec<String> {
    let all: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|row| (1..=SEATS_PER_ROW).map(move |n| format!("{row}{n}")))
        .collect();
    let start = (client * 7) % all.len();
    (0..3)
        .map(|k| all[(start + k * 3) % all.len()].clone())
        .collect()
}

async fn concurrent_overlapping_bookings_never_share_a_seat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // On this host PostgreSQL's claims go on connections of their own.
    assert_eq!(
        app.server.db().direct().is_some(),
        backend == Backend::Postgres
    );
    race(&app).await;
}

/// `CLIENTS` clients book overlapping seats of one show at once.
async fn race(app: &TestApp) {
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Rush").await;
    let theatre = app.create_theatre(&mut admin, "Arena").await;
    let show = app
        .create_show(
            &mut admin,
            &movie.id,
            &theatre.id,
            vec![row("A", SEATS_PER_ROW, 1000), row("B", SEATS_PER_ROW, 800)],
        )
        .await;

    let clients = app.users("racer", CLIENTS).await;

    let barrier = std::sync::Arc::new(Barrier::new(CLIENTS));
    let attempts = clients.into_iter().enumerate().map(|(i, mut client)| {
        let barrier = barrier.clone();
        let show_id = show.id.clone();
        tokio::spawn(async move {
            let seats = wanted_seats(i);
            barrier.wait().await;
            let result = client
                .booking
                .create_booking(proto::CreateBookingRequest {
                    show_id,
                    seat_ids: seats.clone(),
                    idempotency_key: String::new(),
                })
                .await;
            (
                client.user_id.clone(),
                seats,
                result.map(|r| r.into_inner().booking.unwrap()),
            )
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("client task"))
        .collect();

    let mut won: Vec<proto::Booking> = Vec::new();
    for (user_id, seats, outcome) in outcomes {
        match outcome {
            Ok(b) => {
                assert_eq!(b.seat_ids, seats);
                assert_eq!(b.user_id, user_id);
                won.push(b);
            }
            Err(status) => assert_eq!(
                status.code(),
                Code::FailedPrecondition,
                "a lost race is FAILED_PRECONDITION, never {status:?}"
            ),
        }
    }
    assert!(!won.is_empty(), "someone must win");

    // No seat in two successful bookings.
    let mut owner: HashMap<String, String> = HashMap::new();
    for b in &won {
        for s in &b.seat_ids {
            if let Some(other) = owner.insert(s.clone(), b.id.clone()) {
                panic!("seat {s} sold to both {other} and {}", b.id);
            }
        }
    }
    let union: BTreeSet<String> = owner.keys().cloned().collect();

    // The seat map and the seat rows agree with the winners, seat by seat.
    let mut reader = app.admin().await;
    let shown: BTreeSet<String> = booked_seats(&mut reader, &show.id)
        .await
        .into_iter()
        .collect();
    assert_eq!(shown, union);
    let show_uuid = uuid::Uuid::parse_str(&show.id).unwrap();
    let held = seat::Entity::find()
        .filter(seat::Column::ShowId.eq(show_uuid))
        .filter(seat::Column::BookingId.is_not_null())
        .all(app.server.db().conn())
        .await
        .unwrap();
    assert_eq!(held.len(), union.len());
    for s in held {
        assert_eq!(
            s.booking_id.unwrap().to_string(),
            owner[s.seat_id.as_str()],
            "seat {} is held by the booking that won it",
            s.seat_id
        );
    }
    let stored = booking::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap();
    assert_eq!(stored.len(), won.len(), "no booking row for a lost race");
}

/// DeleteMovie racing with bookings on its show: every booking either fails
/// (the show is gone) or ends CANCELLED by the deletion; none stays CONFIRMED
/// without a show.
async fn deleting_a_movie_while_booking_leaves_no_confirmed_orphan(backend: Backend) {
    const BOOKERS: usize = 20;
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let clients = app.users("booker", BOOKERS).await;
    let barrier = std::sync::Arc::new(Barrier::new(BOOKERS + 1));
    let mut tasks = Vec::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        let show_id = fx.show_id.clone();
        tasks.push(tokio::spawn(async move {
            let seat = format!("{}{}", if i % 2 == 0 { "A" } else { "B" }, i / 2 + 1);
            barrier.wait().await;
            book(&mut client, &show_id, &[&seat]).await.map(|b| b.id)
        }));
    }
    let deleter = {
        let barrier = barrier.clone();
        let movie_id = fx.movie_id.clone();
        let mut admin = admin.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            admin
                .catalog
                .delete_movie(proto::DeleteMovieRequest { movie_id })
                .await
                .map(|r| r.into_inner())
        })
    };
    let mut booked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => booked += 1,
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        }
    }
    let deletion = deleter.await.unwrap().expect("delete succeeds");
    assert_eq!(
        deletion.cancelled_bookings as usize, booked,
        "every committed booking was cancelled"
    );
    let bookings = booking::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap();
    assert_eq!(bookings.len(), booked);
    for b in bookings {
        assert_eq!(
            b.status,
            booking::Status::Cancelled,
            "booking {} left confirmed",
            b.id
        );
        assert!(b.show_id.is_none());
    }
}
