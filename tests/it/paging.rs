//! AIP-158 on every list: pages of the size asked for (capped at 100), each
//! row once across the pages, and page tokens that only continue the listing
//! they came from.
use tonic::Code;

use crate::common::*;
use theatre::proto;

on_both_backends!(
    theatres_shows_and_bookings_page_through_every_row_once,
    page_tokens_only_continue_their_own_listing,
);

/// Collects every page of a listing of `size` rows a page: the rows' ids
/// and each page's length.
async fn pages<F, Fut>(size: i32, mut list: F) -> (Vec<String>, Vec<usize>)
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, String)>,
{
    let (mut ids, mut lengths, mut token) = (Vec::new(), Vec::new(), String::new());
    loop {
        let (page, next) = list(size, token).await;
        lengths.push(page.len());
        ids.extend(page);
        if next.is_empty() {
            return (ids, lengths);
        }
        token = next;
    }
}

async fn theatres_shows_and_bookings_page_through_every_row_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Serial").await;
    let mut theatres = Vec::new();
    let mut shows = Vec::new();
    for i in 0..7 {
        let theatre = app.create_theatre(&mut admin, &format!("Hall {i}")).await;
        let show = app
            .create_show(&mut admin, &movie.id, &theatre.id, vec![row("A", 10, 500)])
            .await;
        theatres.push(theatre.id);
        shows.push(show.id);
    }
    let mut ann = app.user("ann").await;
    let mut booked = Vec::new();
    for seat in 1..=7 {
        booked.push(
            book(&mut ann, &shows[0], &[&format!("A{seat}")])
                .await
                .unwrap()
                .id,
        );
    }

    let catalog = ann.catalog.clone();
    let (seen, lengths) = pages(3, |page_size, page_token| {
        let mut c = catalog.clone();
        async move {
            let r = c
                .list_theatres(proto::ListTheatresRequest {
                    page_size,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            (
                r.theatres.into_iter().map(|t| t.id).collect(),
                r.next_page_token,
            )
        }
    })
    .await;
    assert_eq!(lengths, [3, 3, 1]);
    assert_eq!(seen, theatres, "every theatre once, by city then name");

    let movie_id = movie.id.clone();
    let (seen, lengths) = pages(3, |page_size, page_token| {
        let mut c = catalog.clone();
        let movie_id = movie_id.clone();
        async move {
            let r = c
                .list_shows(proto::ListShowsRequest {
                    movie_id,
                    page_size,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            (
                r.shows.into_iter().map(|s| s.id).collect(),
                r.next_page_token,
            )
        }
    })
    .await;
    assert_eq!(lengths, [3, 3, 1]);
    assert_eq!(seen, shows, "every show once, by start time");

    let bookings = ann.booking.clone();
    let (seen, lengths) = pages(3, |page_size, page_token| {
        let mut b = bookings.clone();
        async move {
            let r = b
                .list_my_bookings(proto::ListMyBookingsRequest {
                    page_size,
                    page_token,
                })
                .await
                .unwrap()
                .into_inner();
            (
                r.bookings.into_iter().map(|b| b.id).collect(),
                r.next_page_token,
            )
        }
    })
    .await;
    assert_eq!(lengths, [3, 3, 1]);
    booked.reverse();
    assert_eq!(seen, booked, "every booking once, newest first");

    // Above the maximum is capped, not refused.
    let all = ann
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.bookings.len(), 7);
    assert!(all.next_page_token.is_empty());
}

async fn page_tokens_only_continue_their_own_listing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut bob = app.user("bob").await;
    for seat in ["A1", "A2"] {
        book(&mut ann, &fx.show_id, &[seat]).await.unwrap();
    }
    let first = ann
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.bookings.len(), 1);
    let token = first.next_page_token;
    assert!(!token.is_empty());

    // Another user cannot continue Ann's listing with her token.
    let theirs = bob
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest {
            page_size: 1,
            page_token: token.clone(),
        })
        .await;
    assert_status(theirs, Code::InvalidArgument, "page_token");
    // Nor can a token from one list continue another.
    let elsewhere = ann
        .catalog
        .list_movies(proto::ListMoviesRequest {
            page_size: 1,
            page_token: token.clone(),
        })
        .await;
    assert_status(elsewhere, Code::InvalidArgument, "page_token");
    // A token changed by one character is refused.
    let mut forged: Vec<char> = token.chars().collect();
    forged[2] = if forged[2] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let r = ann
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest {
            page_size: 1,
            page_token: forged,
        })
        .await;
    assert_status(r, Code::InvalidArgument, "page_token");
    // Her own token still works.
    let second = ann
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest {
            page_size: 1,
            page_token: token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.bookings.len(), 1);
    assert_ne!(second.bookings[0].id, first.bookings[0].id);
}
