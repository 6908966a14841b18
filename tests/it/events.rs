//! Kafka events through the outbox: the exact events of a flow with keys,
//! headers and order per key, consumed with a real Kafka client; and a broker
//! that is down while the service works, then comes up: nothing lost, nothing
//! published twice.

use std::{collections::HashSet, time::Duration};

use crate::common::*;
use sea_orm::EntityTrait;
use theatre::{entity::outbox_event, proto};
use tonic::Code;

use proto::event_envelope::Payload as P;

on_both_backends!(a_flow_publishes_exactly_its_events_in_order_per_key);

fn type_of(c: &Consumed) -> &str {
    c.event.event_type.as_str()
}

/// Events of one key in partition-offset order.
fn of_key<'a>(records: &'a [Consumed], key: &str) -> Vec<&'a Consumed> {
    let mut v: Vec<&Consumed> = records.iter().filter(|c| c.key == key).collect();
    assert!(
        v.iter().all(|c| c.partition == v[0].partition),
        "one key, one partition"
    );
    v.sort_by_key(|c| c.offset);
    v
}

async fn a_flow_publishes_exactly_its_events_in_order_per_key(backend: Backend) {
    let brokers = kafka_brokers();
    let app = TestApp::spawn_with(backend, |c| {
        use_kafka(c, brokers.clone());
    })
    .await;
    let topics = app.topics();
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut ben = app.user("ben").await;
    let first = book(&mut ann, &fx.show_id, &["A1", "A2"]).await.unwrap();
    let refused = book(&mut ben, &fx.show_id, &["A2", "A3"]).await;
    assert_status(refused, Code::FailedPrecondition, "A2");
    ann.booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: first.id.clone(),
        })
        .await
        .unwrap();
    let second = book(&mut ben, &fx.show_id, &["B4"]).await.unwrap();
    admin
        .catalog
        .update_movie(proto::UpdateMovieRequest {
            movie_id: fx.movie_id.clone(),
            genre: Some("Noir".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .catalog
        .delete_movie(proto::DeleteMovieRequest {
            movie_id: fx.movie_id.clone(),
        })
        .await
        .unwrap();

    app.wait_published(8, Duration::from_secs(30)).await;
    let catalog = consume(&brokers, &topics.0, 4, Duration::from_secs(15)).await;
    let bookings = consume(&brokers, &topics.1, 4, Duration::from_secs(15)).await;
    assert_eq!(catalog.len(), 4, "{catalog:#?}");
    assert_eq!(bookings.len(), 4, "{bookings:#?}");

    // Every record: key = aggregate id, headers = envelope type and id, and
    // exactly the outbox rows, once each.
    let outbox: HashSet<String> = outbox_event::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    let mut seen = HashSet::new();
    for c in catalog.iter().chain(&bookings) {
        assert_eq!(c.key, c.event.aggregate_id);
        assert_eq!(c.headers["event-type"], c.event.event_type);
        assert_eq!(c.headers["event-id"], c.event.event_id);
        assert_eq!(
            c.headers["content-type"],
            "application/x-protobuf; messageType=theatre.v1.EventEnvelope"
        );
        assert_eq!(c.event.schema_version, 1);
        assert!(c.event.occurred_at.is_some());
        assert!(
            seen.insert(c.event.event_id.clone()),
            "published twice: {c:?}"
        );
    }
    assert_eq!(seen, outbox);

    // The movie's own events, in order on one partition.
    let movie_events: Vec<&str> = of_key(&catalog, &fx.movie_id)
        .into_iter()
        .map(type_of)
        .collect();
    assert_eq!(
        movie_events,
        [
            "theatre.v1.MovieCreated",
            "theatre.v1.MovieUpdated",
            "theatre.v1.MovieDeleted"
        ]
    );
    let show_events: Vec<&str> = of_key(&catalog, &fx.show_id)
        .into_iter()
        .map(type_of)
        .collect();
    assert_eq!(show_events, ["theatre.v1.ShowCreated"]);
    let deleted = of_key(&catalog, &fx.movie_id)[2];
    let Some(P::MovieDeleted(d)) = &deleted.event.payload else {
        panic!()
    };
    assert_eq!(d.deleted_show_ids, [fx.show_id.as_str()]);
    assert_eq!(d.cancelled_booking_ids, [second.id.as_str()]);

    // The first booking: confirmed, then cancelled by the user.
    let first_events = of_key(&bookings, &first.id);
    assert_eq!(first_events.len(), 2);
    let Some(P::BookingConfirmed(c)) = &first_events[0].event.payload else {
        panic!()
    };
    assert_eq!(c.seat_ids, ["A1", "A2"]);
    assert_eq!(c.total_cents, 2400);
    assert_eq!(c.user_id, ann.user_id);
    assert_eq!(c.show_id, fx.show_id);
    let Some(P::BookingCancelled(x)) = &first_events[1].event.payload else {
        panic!()
    };
    assert_eq!(x.reason, proto::CancelReason::ByUser as i32);
    // The second: confirmed, then cancelled by the movie's deletion.
    let second_events = of_key(&bookings, &second.id);
    let Some(P::BookingConfirmed(c)) = &second_events[0].event.payload else {
        panic!()
    };
    assert_eq!(c.seat_ids, ["B4"]);
    assert_eq!(c.user_id, ben.user_id);
    let Some(P::BookingCancelled(x)) = &second_events[1].event.payload else {
        panic!()
    };
    assert_eq!(x.reason, proto::CancelReason::MovieDeleted as i32);
    // Ben's refused booking produced nothing.
    let confirmed_for_ben = bookings
        .iter()
        .filter(|b| matches!(&b.event.payload, Some(P::BookingConfirmed(c)) if c.user_id == ben.user_id))
        .count();
    assert_eq!(confirmed_for_ben, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_down_then_up_loses_nothing_and_publishes_nothing_twice() {
    const BOOKINGS: usize = 6;
    let mut kafka = OwnKafka::reserve();
    let brokers = kafka.brokers();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        use_kafka(c, brokers.clone());
    })
    .await;
    let topics = app.topics();

    // The broker is down: every request still succeeds; events pile up.
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ids = Vec::new();
    for i in 0..BOOKINGS {
        let mut user = app.user(&format!("u{i}")).await;
        ids.push(
            book(&mut user, &fx.show_id, &[&format!("A{}", i + 1)])
                .await
                .unwrap()
                .id,
        );
    }
    let expected = (2 + BOOKINGS) as u64;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = app.server.relay_stats().unwrap();
        if stats.backlog == expected {
            assert_eq!(stats.published, 0);
            assert!(stats.failures > 0, "the relay noticed the broker was down");
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "backlog gauge never showed {expected}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The broker comes up: the backlog drains, every event exactly once.
    kafka.start();
    app.wait_published(expected, Duration::from_secs(60)).await;
    let catalog = consume(&brokers, &topics.0, 2, Duration::from_secs(15)).await;
    let bookings = consume(&brokers, &topics.1, BOOKINGS, Duration::from_secs(15)).await;
    assert_eq!(catalog.len(), 2);
    assert_eq!(bookings.len(), BOOKINGS);
    let mut published: Vec<String> = bookings.iter().map(|b| b.key.clone()).collect();
    published.sort();
    ids.sort();
    assert_eq!(published, ids, "each booking's event exactly once");
    let unique: HashSet<&str> = catalog
        .iter()
        .chain(&bookings)
        .map(|c| c.event.event_id.as_str())
        .collect();
    assert_eq!(unique.len() as u64, expected);
    assert_eq!(app.server.relay_stats().unwrap().backlog, 0);
}

/// Two instances relay the same outbox to the same topics: every event is
/// published once, and published rows are pruned after the retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_publish_each_event_once_and_prune_it() {
    const BOOKINGS: usize = 12;
    let brokers = kafka_brokers();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        use_kafka(c, brokers.clone());
        c.kafka.retention = Duration::ZERO;
        c.kafka.batch_size = 3;
    })
    .await;
    let topics = app.topics();
    let sibling = app.sibling().await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    for i in 0..BOOKINGS {
        let mut user = app.user(&format!("p{i}")).await;
        let seat = if i < 10 {
            format!("A{}", i + 1)
        } else {
            format!("B{}", i - 9)
        };
        book(&mut user, &fx.show_id, &[&seat]).await.unwrap();
    }
    let expected = 2 + BOOKINGS;
    let bookings = consume(&brokers, &topics.1, BOOKINGS, Duration::from_secs(30)).await;
    let catalog = consume(&brokers, &topics.0, 2, Duration::from_secs(15)).await;
    let ids: HashSet<&str> = catalog
        .iter()
        .chain(&bookings)
        .map(|c| c.event.event_id.as_str())
        .collect();
    assert_eq!(ids.len(), expected, "every event exactly once");
    let a = app.server.relay_stats().unwrap().published;
    let b = sibling.relay_stats().unwrap().published;
    assert_eq!(
        a + b,
        expected as u64,
        "the two relays together published each row once"
    );

    eprintln!("relay split: instance A published {a}, instance B {b}");
    // Retention zero: published rows leave the outbox.
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.count(outbox_event::Entity).await > 0 {
        assert!(
            tokio::time::Instant::now() < end,
            "published rows were never pruned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sibling.shutdown().await.unwrap();
}
