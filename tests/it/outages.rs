//! Database faults that are not the client's reach it as UNAVAILABLE (with a
//! retry delay), never INTERNAL, and cost each pooled connection at most one
//! failed call.

use std::time::Duration;

use crate::common::*;
use sea_orm::{ConnectionTrait, EntityTrait};
use theatre::{entity::booking, proto};
use tokio::time::Instant;
use tonic::Code;
use tonic_types::StatusExt;

const BOOKERS: usize = 6;
const KILLS: usize = 2;

/// One call of the load: when it started, what it asked and how it ended.
struct Outcome {
    started: Instant,
    seats: Vec<String>,
    result: Result<proto::Booking, tonic::Status>,
}

/// Every server process serving `url`'s database is terminated, as a
/// PostgreSQL crash, failover or `pg_terminate_backend` by an operator does,
/// and new connections are refused for `down` (a server coming back up):
/// the seat claims' own connections reopen at once when they find theirs
/// closed, so without the pause a kill could go unnoticed by every client.
async fn terminate_connections(
    admin: &sea_orm::DatabaseConnection,
    url: &str,
    down: Duration,
) -> u64 {
    let name = url.rsplit('/').next().unwrap();
    let allow = |on: bool| format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {on}");
    admin
        .execute_unprepared(&allow(false))
        .await
        .expect("refuse connections");
    let killed = admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .expect("terminate backends")
        .rows_affected();
    tokio::time::sleep(down).await;
    admin
        .execute_unprepared(&allow(true))
        .await
        .expect("allow connections");
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_database_connections_are_unavailable_and_recover_within_a_second() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut admin = app.admin().await;
    let show = app
        .show_fixture_with(&mut admin, hall('A'..='F', 500))
        .await;
    let bookers = app.users("booker", BOOKERS).await;
    let (base, _) = app.database_url().rsplit_once('/').unwrap();
    let pg = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .unwrap();

    let stop_at = Instant::now() + Duration::from_millis(800 * KILLS as u64 + 1500);
    let load = bookers.into_iter().enumerate().map(|(i, mut client)| {
        let show_id = show.show_id.clone();
        tokio::spawn(async move {
            let row = char::from(b'A' + i as u8);
            let mut outcomes = Vec::new();
            for pair in 0..50 {
                if Instant::now() >= stop_at {
                    break;
                }
                let seats = vec![
                    format!("{row}{}", 2 * pair + 1),
                    format!("{row}{}", 2 * pair + 2),
                ];
                let started = Instant::now();
                let result = client
                    .booking
                    .create_booking(proto::CreateBookingRequest {
                        show_id: show_id.clone(),
                        seat_ids: seats.clone(),
                        idempotency_key: format!("outage-{i}-{pair}"),
                    })
                    .await
                    .map(|r| r.into_inner().booking.unwrap());
                outcomes.push(Outcome {
                    started,
                    seats,
                    result,
                });
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            outcomes
        })
    });
    let load: Vec<_> = load.collect();

    let mut kills = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let killed =
            terminate_connections(&pg, app.database_url(), Duration::from_millis(200)).await;
        kills.push(Instant::now());
        assert!(killed > 0, "the service had connections to kill");
    }
    let last_kill = *kills.last().unwrap();
    let mut outcomes = Vec::new();
    for task in load {
        outcomes.extend(task.await.unwrap());
    }

    let mut unavailable = 0;
    for outcome in &outcomes {
        let Err(status) = &outcome.result else {
            continue;
        };
        match status.code() {
            Code::Unavailable => {
                unavailable += 1;
                assert!(
                    status.get_details_retry_info().is_some(),
                    "UNAVAILABLE carries RetryInfo: {status:?}"
                );
            }
            Code::FailedPrecondition => {}
            other => panic!("{:?} got {other:?}: {status:?}", outcome.seats),
        }
    }
    eprintln!("{} calls, {unavailable} UNAVAILABLE", outcomes.len());
    assert!(
        unavailable > 0,
        "killing every connection mid-load failed no call; the test saw nothing"
    );
    let late: Vec<_> = outcomes
        .iter()
        .filter(|o| o.started >= last_kill + Duration::from_secs(1))
        .collect();
    assert!(!late.is_empty(), "the load ran past the recovery second");
    for outcome in late {
        assert!(
            outcome.result.is_ok(),
            "a call a second after the kill failed: {:?}",
            outcome.result
        );
    }

    // Every booking the client was told about is stored with its seats.
    let db = app.server.db().conn();
    for outcome in &outcomes {
        let Ok(confirmed) = &outcome.result else {
            continue;
        };
        let id: uuid::Uuid = confirmed.id.parse().unwrap();
        let stored = booking::Entity::find_by_id(theatre::ids::BookingId(id))
            .one(db)
            .await
            .unwrap()
            .expect("an OK booking is stored");
        let stored_seats: Vec<String> = stored.seat_ids.0.into_iter().map(String::from).collect();
        assert_eq!(stored_seats, outcome.seats);
    }
    let mut ann = app.user("ann").await;
    assert!(book(&mut ann, &show.show_id, &["F99"]).await.is_ok());
}
