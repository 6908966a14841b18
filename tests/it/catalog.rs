//! Catalog: movies, theatres, shows, paging, validation and the delete cascade.

use std::collections::HashSet;

use crate::common::*;
use sea_orm::EntityTrait;
use theatre::{
    entity::{booking, movie, outbox_event, seat, show, theatre as theatre_entity},
    proto,
};
use tonic::Code;

on_both_backends!(
    movie_create_get_update_round_trip,
    list_movies_pages_through_every_movie_once,
    bad_catalog_input_names_the_field_and_writes_nothing,
    unknown_ids_are_not_found,
    duplicate_theatre_is_already_exists,
    shows_report_layout_and_availability,
    deleting_a_movie_cascades_and_keeps_bookings_as_history,
    deleting_a_show_cancels_its_bookings,
    shows_in_one_theatre_cannot_overlap,
    a_longer_movie_cannot_push_its_shows_into_the_next,
    concurrent_shows_for_one_slot_leave_exactly_one,
);

async fn movie_create_get_update_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let created = app.create_movie(&mut admin, "Nosferatu").await;
    assert_eq!(created.duration_minutes, 120);
    app.clock.advance(chrono::Duration::minutes(5));

    let updated = admin
        .catalog
        .update_movie(proto::UpdateMovieRequest {
            movie_id: created.id.clone(),
            title: Some("Nosferatu (1922)".into()),
            duration_minutes: Some(94),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .movie
        .unwrap();
    assert_eq!(updated.title, "Nosferatu (1922)");
    assert_eq!(updated.duration_minutes, 94);
    assert_eq!(updated.genre, created.genre, "unset fields are kept");
    assert_eq!(updated.description, created.description);
    assert!(updated.updated_at.unwrap().seconds > created.updated_at.unwrap().seconds);

    let mut ann = app.user("ann").await;
    let fetched = ann
        .catalog
        .get_movie(proto::GetMovieRequest {
            movie_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .movie
        .unwrap();
    assert_eq!(fetched, updated);
    let types = app.outbox_types().await;
    assert_eq!(
        types,
        ["theatre.v1.MovieCreated", "theatre.v1.MovieUpdated"]
    );
}

async fn list_movies_pages_through_every_movie_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(app.create_movie(&mut admin, &format!("Film {i}")).await.id);
    }
    let mut ann = app.user("ann").await;
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = ann
            .catalog
            .list_movies(proto::ListMoviesRequest {
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(page.movies.len());
        seen.extend(page.movies.into_iter().map(|m| m.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, [3, 3, 1]);
    assert_eq!(seen, created, "every movie once, in creation order");

    let all = ann
        .catalog
        .list_movies(proto::ListMoviesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.movies.len(), 7, "default page size covers them");
    assert!(all.next_page_token.is_empty());

    let r = ann
        .catalog
        .list_movies(proto::ListMoviesRequest {
            page_size: -1,
            page_token: String::new(),
        })
        .await;
    assert_status(r, Code::InvalidArgument, "page_size:");
    // Above the maximum is capped, not refused (AIP-158).
    let capped = ann
        .catalog
        .list_movies(proto::ListMoviesRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(capped.movies.len(), 7);
    let r = ann
        .catalog
        .list_movies(proto::ListMoviesRequest {
            page_size: 3,
            page_token: "garbage!".into(),
        })
        .await;
    assert_status(r, Code::InvalidArgument, "page_token:");
}

async fn counts(app: &TestApp) -> [u64; 5] {
    [
        app.count(movie::Entity).await,
        app.count(theatre_entity::Entity).await,
        app.count(show::Entity).await,
        app.count(seat::Entity).await,
        app.count(outbox_event::Entity).await,
    ]
}

fn movie_req(title: &str, duration: i32, genre: &str) -> proto::CreateMovieRequest {
    proto::CreateMovieRequest {
        title: title.into(),
        description: String::new(),
        duration_minutes: duration,
        genre: genre.into(),
    }
}

async fn bad_catalog_input_names_the_field_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let before = counts(&app).await;

    for (req, field) in [
        (movie_req("", 90, "Drama"), "title:"),
        (movie_req(&"t".repeat(201), 90, "Drama"), "title:"),
        (movie_req("Ok", 0, "Drama"), "duration_minutes:"),
        (movie_req("Ok", -5, "Drama"), "duration_minutes:"),
        (movie_req("Ok", 90, ""), "genre:"),
        (movie_req("Ok", 90, &"g".repeat(51)), "genre:"),
    ] {
        assert_status(
            admin.catalog.create_movie(req).await,
            Code::InvalidArgument,
            field,
        );
    }
    let no_fields = admin
        .catalog
        .update_movie(proto::UpdateMovieRequest {
            movie_id: fx.movie_id.clone(),
            ..Default::default()
        })
        .await;
    assert_status(no_fields, Code::InvalidArgument, "movie:");
    let blank_title = admin
        .catalog
        .update_movie(proto::UpdateMovieRequest {
            movie_id: fx.movie_id.clone(),
            title: Some("  ".into()),
            ..Default::default()
        })
        .await;
    assert_status(blank_title, Code::InvalidArgument, "title:");
    let theatre = admin
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: String::new(),
            city: "Braga".into(),
        })
        .await;
    assert_status(theatre, Code::InvalidArgument, "name:");

    let show = |starts_at: Option<prost_types::Timestamp>, rows: Vec<proto::SeatRow>| {
        proto::CreateShowRequest {
            movie_id: fx.movie_id.clone(),
            theatre_id: fx.theatre_id.clone(),
            starts_at,
            rows,
        }
    };
    let future = Some(starts_in_hours(&app, 2));
    for (req, field) in [
        (show(None, vec![row("A", 5, 100)]), "starts_at:"),
        (
            show(Some(starts_in_hours(&app, -1)), vec![row("A", 5, 100)]),
            "starts_at:",
        ),
        (show(future, vec![]), "rows:"),
        (show(future, vec![row("a", 5, 100)]), "rows[0].label:"),
        (show(future, vec![row("ABCD", 5, 100)]), "rows[0].label:"),
        (
            show(future, vec![row("A", 5, 100), row("A", 5, 100)]),
            "rows[1].label:",
        ),
        (show(future, vec![row("A", 0, 100)]), "rows[0].seats:"),
        (show(future, vec![row("A", 101, 100)]), "rows[0].seats:"),
        (show(future, vec![row("A", 5, 0)]), "rows[0].price_cents:"),
        (
            show(future, vec![row("A", 5, -100)]),
            "rows[0].price_cents:",
        ),
    ] {
        assert_status(
            admin.catalog.create_show(req).await,
            Code::InvalidArgument,
            field,
        );
    }
    let bad_movie = proto::CreateShowRequest {
        movie_id: "123".into(),
        ..show(future, vec![row("A", 5, 100)])
    };
    assert_status(
        admin.catalog.create_show(bad_movie).await,
        Code::InvalidArgument,
        "movie_id:",
    );
    assert_eq!(counts(&app).await, before, "nothing written");
}

async fn unknown_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let c = &mut admin.catalog;
    assert_status(
        c.get_movie(proto::GetMovieRequest {
            movie_id: missing.clone(),
        })
        .await,
        Code::NotFound,
        "movie",
    );
    assert_status(
        c.update_movie(proto::UpdateMovieRequest {
            movie_id: missing.clone(),
            genre: Some("Noir".into()),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "movie",
    );
    assert_status(
        c.delete_movie(proto::DeleteMovieRequest {
            movie_id: missing.clone(),
        })
        .await,
        Code::NotFound,
        "movie",
    );
    assert_status(
        c.get_show(proto::GetShowRequest {
            show_id: missing.clone(),
        })
        .await,
        Code::NotFound,
        "show",
    );
    assert_status(
        c.get_seat_map(proto::GetSeatMapRequest {
            show_id: missing.clone(),
        })
        .await,
        Code::NotFound,
        "show",
    );
    assert_status(
        c.delete_show(proto::DeleteShowRequest {
            show_id: missing.clone(),
        })
        .await,
        Code::NotFound,
        "show",
    );
    assert_status(
        c.list_shows(proto::ListShowsRequest {
            movie_id: missing.clone(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        "movie",
    );
    for (movie_id, theatre_id, entity) in [
        (missing.clone(), fx.theatre_id.clone(), "movie"),
        (fx.movie_id.clone(), missing.clone(), "theatre"),
    ] {
        let r = c
            .create_show(proto::CreateShowRequest {
                movie_id,
                theatre_id,
                starts_at: Some(starts_in_hours(&app, 3)),
                rows: vec![row("A", 2, 100)],
            })
            .await;
        assert_status(r, Code::NotFound, entity);
    }
    assert_eq!(app.count(show::Entity).await, 1);
}

async fn duplicate_theatre_is_already_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    app.create_theatre(&mut admin, "Odeon").await;
    let again = admin
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Odeon".into(),
            city: "Lisbon".into(),
        })
        .await;
    assert_status(again, Code::AlreadyExists, "name:");
    admin
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Odeon".into(),
            city: "Porto".into(),
        })
        .await
        .expect("same name in another city is fine");
    let list = admin
        .catalog
        .list_theatres(proto::ListTheatresRequest::default())
        .await
        .unwrap()
        .into_inner()
        .theatres;
    let cities: Vec<&str> = list.iter().map(|t| t.city.as_str()).collect();
    assert_eq!(cities, ["Lisbon", "Porto"]);
}

async fn shows_report_layout_and_availability(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let other_movie = app.create_movie(&mut admin, "Other").await;
    app.create_show(
        &mut admin,
        &other_movie.id,
        &fx.theatre_id,
        vec![row("C", 3, 500)],
    )
    .await;
    let mut ann = app.user("ann").await;
    book(&mut ann, &fx.show_id, &["A1", "B2", "B3"])
        .await
        .unwrap();

    let got = ann
        .catalog
        .get_show(proto::GetShowRequest {
            show_id: fx.show_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .show
        .unwrap();
    assert_eq!(got.total_seats, 20);
    assert_eq!(got.available_seats, 17);
    assert_eq!(got.movie_title, "Metropolis");
    assert_eq!(got.theatre_name, "Odeon");
    assert_eq!(got.rows, vec![row("A", 10, 1200), row("B", 10, 900)]);

    let listed = ann
        .catalog
        .list_shows(proto::ListShowsRequest {
            movie_id: fx.movie_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .shows;
    assert_eq!(listed, vec![got]);
    let everything = ann
        .catalog
        .list_shows(proto::ListShowsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .shows;
    assert_eq!(everything.len(), 2);

    let map = ann
        .catalog
        .get_seat_map(proto::GetSeatMapRequest {
            show_id: fx.show_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .seats;
    assert_eq!(map.len(), 20);
    assert_eq!(map[0].seat_id, "A1");
    assert_eq!(map[10].seat_id, "B1");
    assert_eq!(map[9].seat_id, "A10", "seats in layout order");
    assert_eq!(map[11].price_cents, 900);
    assert_eq!(map[11].row, "B");
    assert_eq!(map[11].number, 2);
    assert_eq!(map[11].status, proto::SeatStatus::Booked as i32);
    assert_eq!(map[12].status, proto::SeatStatus::Booked as i32);
    assert_eq!(map[13].status, proto::SeatStatus::Available as i32);
}

async fn deleting_a_movie_cascades_and_keeps_bookings_as_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let second = app
        .another_show(&mut admin, &fx, vec![row("A", 4, 700)])
        .await;
    let keep_movie = app.create_movie(&mut admin, "Survivor").await;
    let keep_show = app
        .create_show(
            &mut admin,
            &keep_movie.id,
            &fx.theatre_id,
            vec![row("A", 4, 700)],
        )
        .await;
    let mut ann = app.user("ann").await;
    let b1 = book(&mut ann, &fx.show_id, &["A1", "A2"]).await.unwrap();
    let b2 = book(&mut ann, &second.id, &["A3"]).await.unwrap();
    let earlier = book(&mut ann, &second.id, &["A4"]).await.unwrap();
    ann.booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: earlier.id.clone(),
        })
        .await
        .unwrap();
    let kept = book(&mut ann, &keep_show.id, &["A1"]).await.unwrap();

    let deleted = admin
        .catalog
        .delete_movie(proto::DeleteMovieRequest {
            movie_id: fx.movie_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_shows, 2);
    assert_eq!(
        deleted.cancelled_bookings, 2,
        "the earlier cancellation is not counted again"
    );

    // The database cascaded: no shows or seats of the movie are left.
    let conn = app.server.db().conn();
    let movie_uuid = uuid::Uuid::parse_str(&fx.movie_id).unwrap();
    assert!(
        movie::Entity::find_by_id(theatre::ids::MovieId(movie_uuid))
            .one(conn)
            .await
            .unwrap()
            .is_none()
    );
    let shows = show::Entity::find().all(conn).await.unwrap();
    assert_eq!(
        shows.iter().map(|s| s.id.to_string()).collect::<Vec<_>>(),
        [keep_show.id.as_str()]
    );
    let seats = seat::Entity::find().all(conn).await.unwrap();
    assert!(seats.iter().all(|s| s.show_id.to_string() == keep_show.id));
    assert_eq!(seats.len(), 4);
    assert_eq!(app.count(booking::Entity).await, 4, "no booking is deleted");

    // Bookings are history: cancelled, snapshot intact, still listed.
    let mine = my_bookings(&mut ann).await;
    assert_eq!(mine.len(), 4);
    for b in &mine {
        if b.id == kept.id {
            assert_eq!(b.status, proto::BookingStatus::Confirmed as i32);
            continue;
        }
        assert_eq!(b.status, proto::BookingStatus::Cancelled as i32);
        assert_eq!(b.movie_title, "Metropolis");
        assert_eq!(b.theatre_name, "Odeon");
        assert!(b.show_id.is_empty());
        let reason = if b.id == earlier.id {
            proto::CancelReason::ByUser
        } else {
            proto::CancelReason::MovieDeleted
        };
        assert_eq!(b.cancel_reason, reason as i32);
    }
    let b1_after = mine.iter().find(|b| b.id == b1.id).unwrap();
    assert_eq!(b1_after.seat_ids, ["A1", "A2"]);
    assert_eq!(b1_after.starts_at, b1.starts_at);
    assert_eq!(b1_after.total_cents, 2400);

    assert_status(
        ann.catalog
            .get_show(proto::GetShowRequest {
                show_id: fx.show_id.clone(),
            })
            .await,
        Code::NotFound,
        "show",
    );

    // One MovieDeleted event naming what it removed, one BookingCancelled per booking.
    let mut events = app.outbox("theatre.v1.MovieDeleted").await;
    assert_eq!(events.len(), 1);
    let envelope = events.remove(0);
    assert_eq!(envelope.aggregate_id, fx.movie_id);
    let Some(proto::event_envelope::Payload::MovieDeleted(e)) = envelope.payload else {
        panic!("expected MovieDeleted");
    };
    let shows: HashSet<String> = e.deleted_show_ids.into_iter().collect();
    assert_eq!(
        shows,
        HashSet::from([fx.show_id.clone(), second.id.clone()])
    );
    let cancelled: HashSet<String> = e.cancelled_booking_ids.into_iter().collect();
    assert_eq!(cancelled, HashSet::from([b1.id.clone(), b2.id.clone()]));
    let by_deletion = app
        .outbox("theatre.v1.BookingCancelled")
        .await
        .into_iter()
        .filter_map(|envelope| match envelope.payload {
            Some(proto::event_envelope::Payload::BookingCancelled(c))
                if c.reason == proto::CancelReason::MovieDeleted as i32 =>
            {
                Some(c.booking_id)
            }
            _ => None,
        })
        .collect::<HashSet<_>>();
    assert_eq!(by_deletion, HashSet::from([b1.id, b2.id]));
}

async fn deleting_a_show_cancels_its_bookings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let b = book(&mut ann, &fx.show_id, &["B9"]).await.unwrap();
    let deleted = admin
        .catalog
        .delete_show(proto::DeleteShowRequest {
            show_id: fx.show_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.cancelled_bookings, 1);
    assert_eq!(app.count(seat::Entity).await, 0);
    assert_eq!(app.count(movie::Entity).await, 1, "the movie stays");
    let after = ann
        .booking
        .get_booking(proto::GetBookingRequest { booking_id: b.id })
        .await
        .unwrap()
        .into_inner()
        .booking
        .unwrap();
    assert_eq!(after.status, proto::BookingStatus::Cancelled as i32);
    assert_eq!(after.cancel_reason, proto::CancelReason::ShowDeleted as i32);
    assert_status(
        book(&mut ann, &fx.show_id, &["B1"]).await,
        Code::NotFound,
        "show",
    );
}

/// `t` without its fraction of a second, as the fixtures' start times are.
fn whole_seconds(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn show_at(
    movie: &str,
    theatre: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
) -> proto::CreateShowRequest {
    proto::CreateShowRequest {
        movie_id: movie.into(),
        theatre_id: theatre.into(),
        starts_at: Some(prost_types::Timestamp {
            seconds: starts_at.timestamp(),
            nanos: starts_at.timestamp_subsec_nanos() as i32,
        }),
        rows: vec![row("A", 4, 700)],
    }
}

/// The fixture's show runs 120 minutes from +24 h; with the 15-minute
/// changeover its theatre is occupied until +26 h 15 min.
async fn shows_in_one_theatre_cannot_overlap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let first = whole_seconds(app.clock_now() + chrono::Duration::hours(24));
    let minutes = |m: i64| first + chrono::Duration::minutes(m);
    let before = counts(&app).await;
    for starts in [
        minutes(-119),
        minutes(0),
        minutes(60),
        minutes(134) + chrono::Duration::seconds(59),
    ] {
        let refused = admin
            .catalog
            .create_show(show_at(&fx.movie_id, &fx.theatre_id, starts))
            .await;
        assert_status(refused, Code::FailedPrecondition, &fx.show_id);
    }
    assert_eq!(counts(&app).await, before, "nothing written");

    // Right after the changeover, right before the first show, and at the same
    // time in another theatre are all free.
    for (theatre, starts) in [
        (fx.theatre_id.clone(), minutes(135)),
        (fx.theatre_id.clone(), minutes(-135)),
        (app.create_theatre(&mut admin, "Other").await.id, minutes(0)),
    ] {
        admin
            .catalog
            .create_show(show_at(&fx.movie_id, &theatre, starts))
            .await
            .expect("a free slot");
    }

    let now = app.clock_now();
    let too_far = now + chrono::Duration::days(731);
    assert_status(
        admin
            .catalog
            .create_show(show_at(&fx.movie_id, &fx.theatre_id, too_far))
            .await,
        Code::InvalidArgument,
        "starts_at: must be at most 730 days ahead",
    );
    admin
        .catalog
        .create_show(show_at(
            &fx.movie_id,
            &fx.theatre_id,
            now + chrono::Duration::days(729),
        ))
        .await
        .expect("within the horizon");
}

async fn a_longer_movie_cannot_push_its_shows_into_the_next(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let other = app.create_movie(&mut admin, "Next").await;
    let next_starts = whole_seconds(app.clock_now() + chrono::Duration::minutes(24 * 60 + 150));
    let next = admin
        .catalog
        .create_show(show_at(&other.id, &fx.theatre_id, next_starts))
        .await
        .expect("after the first show and its changeover")
        .into_inner()
        .show
        .unwrap();
    let lengthen = |minutes: i32| proto::UpdateMovieRequest {
        movie_id: fx.movie_id.clone(),
        duration_minutes: Some(minutes),
        ..Default::default()
    };
    assert_status(
        admin.catalog.update_movie(lengthen(136)).await,
        Code::FailedPrecondition,
        &next.id,
    );
    let movie = movie::Entity::find_by_id(theatre::ids::MovieId(fx.movie_id.parse().unwrap()))
        .one(app.server.db().conn())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        movie.duration_minutes, 120,
        "the refused update changed nothing"
    );
    admin
        .catalog
        .update_movie(lengthen(135))
        .await
        .expect("ends exactly when the next show may start");
}

async fn concurrent_shows_for_one_slot_leave_exactly_one(backend: Backend) {
    const RACERS: i64 = 8;
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let mut setup = admin.clone();
    let movie = app.create_movie(&mut setup, "Contested").await;
    let theatre = app.create_theatre(&mut setup, "Contested").await;
    let base = app.clock_now() + chrono::Duration::hours(48);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS as usize));
    let racers = (0..RACERS).map(|i| {
        let (mut admin, barrier) = (admin.clone(), barrier.clone());
        // Every two of these overlap: they start ten minutes apart.
        let req = show_at(
            &movie.id,
            &theatre.id,
            base + chrono::Duration::minutes(10 * i),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            admin.catalog.create_show(req).await
        })
    });
    let mut created = 0;
    for racer in racers.collect::<Vec<_>>() {
        match racer.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(created, 1, "exactly one show got the slot");
    let theatre_id: uuid::Uuid = theatre.id.parse().unwrap();
    let shows = show::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.theatre_id == theatre::ids::TheatreId(theatre_id))
        .count();
    assert_eq!(shows, 1);
}
