//! What an instance knows of a show (`booking::known`) and the group commit
//! (`booking::batch`): a seat known to be sold is refused before any database
//! work; a freed seat is never refused, on this instance or another; and the
//! bookings of one batch succeed or fail each on their own.
use std::{collections::BTreeSet, sync::Arc};

use crate::common::*;
use theatre::proto;
use tokio::sync::Barrier;
use tonic::Code;

/// PostgreSQL: a seat another transaction holds is skipped, not waited for;
/// the booking that wanted it keeps nothing, and the seat is not taken for
/// sold (once the holder lets go, it is bookable).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_short_of_a_held_seat_keeps_nothing_and_learns_nothing() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn_with(Backend::Postgres, |c| use_redis(c, &redis_url())).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    // The instance knows the show before the seat is held.
    book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();

    let holder = app.server.db().conn().begin().await.unwrap();
    holder
        .execute_unprepared(&format!(
            "SELECT 1 FROM seats WHERE show_id = '{}' AND seat_id = 'A5' FOR UPDATE",
            fx.show_id
        ))
        .await
        .unwrap();
    assert_status(
        book(&mut ann, &fx.show_id, &["A5", "A6"]).await,
        Code::FailedPrecondition,
        "A5",
    );
    holder.rollback().await.unwrap();

    let mut reader = app.admin().await;
    assert_eq!(
        booked_seats(&mut reader, &fx.show_id).await,
        vec!["A1".to_owned()],
        "the short claim kept neither seat"
    );
    let bookings = my_bookings(&mut ann).await;
    assert_eq!(
        bookings.len(),
        1,
        "the short claim left no booking: {bookings:?}"
    );
    book(&mut ann, &fx.show_id, &["A5", "A6"])
        .await
        .expect("a seat that was only held is bookable once let go");
}

on_both_backends!(
    a_seat_known_to_be_sold_is_refused_without_a_database_statement,
    a_cancelled_seat_is_bookable_at_once_on_every_instance,
    a_cancelled_seat_is_bookable_at_once_without_redis,
    bookings_claimed_together_succeed_or_fail_each_on_their_own,
);

async fn cancel(client: &mut Client, booking: &proto::Booking) {
    client
        .booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: booking.id.clone(),
        })
        .await
        .expect("cancel");
}

/// How many database statements `work` ran, besides those of scraping the
/// metrics (which reads the outbox's backlog), measured with no work first.
async fn statements_of(app: &TestApp, work: impl AsyncFnOnce()) -> f64 {
    let count = async || app.scrape().await.value("theatre_db_statements_total");
    let (first, second) = (count().await, count().await);
    work().await;
    count().await - second - (second - first)
}

async fn a_seat_known_to_be_sold_is_refused_without_a_database_statement(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| use_redis(c, &redis_url())).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    book(&mut ann, &fx.show_id, &["A1", "A2"]).await.unwrap();

    let refusals = statements_of(&app, async || {
        for _ in 0..5 {
            assert_status(
                book(&mut ben, &fx.show_id, &["A3", "A2"]).await,
                Code::FailedPrecondition,
                "A2",
            );
        }
    });
    assert_eq!(
        refusals.await,
        0.0,
        "a seat known to be sold is refused from memory, with no database statement"
    );
    // The refusal kept nothing: the free seat of the request is still free.
    book(&mut ben, &fx.show_id, &["A3"]).await.unwrap();
}

async fn a_cancelled_seat_is_bookable_at_once_on_every_instance(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| use_redis(c, &redis_url())).await;
    let sibling = app.sibling().await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    let mut ann_there = Client::there(&sibling, &ann).await;
    let mut ben_there = Client::there(&sibling, &ben).await;

    for _ in 0..3 {
        let booking = book(&mut ann, &fx.show_id, &["B5"]).await.unwrap();
        // Both instances now know C5 is sold, and refuse it.
        assert_status(
            book(&mut ben, &fx.show_id, &["B5"]).await,
            Code::FailedPrecondition,
            "B5",
        );
        assert_status(
            book(&mut ben_there, &fx.show_id, &["B5"]).await,
            Code::FailedPrecondition,
            "B5",
        );
        // Cancelled on the other instance; the first must not refuse it now.
        cancel(&mut ann_there, &booking).await;
        let again = book(&mut ben, &fx.show_id, &["B5"])
            .await
            .expect("a seat freed on another instance is bookable at once");
        cancel(&mut ben, &again).await;
        // And the other way round.
        let there = book(&mut ann_there, &fx.show_id, &["B5"]).await.unwrap();
        cancel(&mut ann, &there).await;
        let last = book(&mut ben_there, &fx.show_id, &["B5"])
            .await
            .expect("freed on the first instance, bookable on the second");
        assert_eq!(
            booked_seats(&mut ben, &fx.show_id).await,
            vec!["B5".to_owned()]
        );
        cancel(&mut ben, &last).await;
    }
}

async fn a_cancelled_seat_is_bookable_at_once_without_redis(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    for _ in 0..3 {
        let booking = book(&mut ann, &fx.show_id, &["B7", "B8"]).await.unwrap();
        let refusal = statements_of(&app, async || {
            assert_status(
                book(&mut ben, &fx.show_id, &["B8"]).await,
                Code::FailedPrecondition,
                "B8",
            );
        });
        assert_eq!(refusal.await, 0.0, "refused from memory");
        cancel(&mut ann, &booking).await;
        let again = book(&mut ben, &fx.show_id, &["B8"])
            .await
            .expect("a cancelled seat is bookable at once");
        cancel(&mut ben, &again).await;
    }
}

/// Pairs of rivals want one seat of row A each plus a seat of their own in
/// row C; loners want one seat of row B. Sent together, most of them are
/// claimed in shared batches on PostgreSQL: each pair has one winner, every
/// loner wins, and no loser keeps or blocks its own seat in row C.
async fn bookings_claimed_together_succeed_or_fail_each_on_their_own(backend: Backend) {
    const PAIRS: usize = 12;
    const LONERS: usize = 12;
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app
        .show_fixture_with(
            &mut admin,
            vec![row("A", 20, 1000), row("B", 20, 1000), row("C", 30, 1000)],
        )
        .await;
    let clients = app.users("batch", 2 * PAIRS + LONERS).await;
    let barrier = Arc::new(Barrier::new(clients.len()));
    let attempts = clients.into_iter().enumerate().map(|(i, mut client)| {
        let barrier = barrier.clone();
        let show = fx.show_id.clone();
        let seats: Vec<String> = if i < 2 * PAIRS {
            vec![format!("A{}", i / 2 + 1), format!("C{}", i + 1)]
        } else {
            vec![format!("B{}", i - 2 * PAIRS + 1)]
        };
        tokio::spawn(async move {
            barrier.wait().await;
            let asked: Vec<&str> = seats.iter().map(String::as_str).collect();
            (i, seats.clone(), book(&mut client, &show, &asked).await)
        })
    });
    let mut sold = BTreeSet::new();
    let mut winners = vec![0; PAIRS];
    for attempt in futures::future::join_all(attempts).await {
        let (i, seats, result) = attempt.unwrap();
        match result {
            Ok(_) => {
                sold.extend(seats);
                if i < 2 * PAIRS {
                    winners[i / 2] += 1;
                }
            }
            Err(status) => {
                assert!(i < 2 * PAIRS, "loner {i} was refused: {status:?}");
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                let rival_seat = format!("A{}", i / 2 + 1);
                assert!(
                    status.message().contains(&rival_seat) && !status.message().contains(&seats[1]),
                    "refused for the rival's seat only: {status:?}"
                );
            }
        }
    }
    assert_eq!(winners, vec![1; PAIRS], "one winner per pair");
    let mut reader = app.admin().await;
    let booked: BTreeSet<String> = booked_seats(&mut reader, &fx.show_id)
        .await
        .into_iter()
        .collect();
    assert_eq!(booked, sold, "the seats sold are exactly the winners'");
    // Every loser's own seat is still free to book.
    let mut late = app.user("late").await;
    for i in 0..2 * PAIRS {
        let own = format!("C{}", i + 1);
        if !sold.contains(&own) {
            book(&mut late, &fx.show_id, &[&own]).await.unwrap();
        }
    }
    if backend == Backend::Postgres {
        let m = app.scrape().await;
        let (calls, bookings) = (
            m.value("theatre_claim_batch_size_count"),
            m.value("theatre_claim_batch_size_sum"),
        );
        assert!(
            bookings > calls,
            "some bookings shared a batch: {bookings} bookings in {calls} calls"
        );
    }
}
