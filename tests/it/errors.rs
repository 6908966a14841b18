//! Errors a program can branch on (AIP-193): every refusal carries a
//! `google.rpc.ErrorInfo` with a stable reason in the domain `theatre.v1`,
//! and NOT_FOUND names the resource (`ResourceInfo`).
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::*;
use theatre::proto;

on_both_backends!(every_refusal_names_its_reason);

/// Asserts `result` failed with `code` and the ErrorInfo `reason`; returns
/// the status for further checks.
fn reason<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) -> Status {
    let status = result.expect_err("a refusal");
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "theatre.v1");
    status
}

/// The fields a status's BadRequest names, in order.
fn bad_fields(status: &Status) -> Vec<String> {
    let bad = status.get_details_bad_request().expect("BadRequest");
    bad.field_violations.into_iter().map(|v| v.field).collect()
}

async fn every_refusal_names_its_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let mut auth = app.anonymous_auth();

    let again = auth
        .sign_up(proto::SignUpRequest {
            email: "ann@theatre.test".into(),
            password: PASSWORD.into(),
            display_name: "Ann".into(),
        })
        .await;
    reason(again, Code::AlreadyExists, "EMAIL_TAKEN");
    let wrong = auth
        .login(proto::LoginRequest {
            email: "ann@theatre.test".into(),
            password: "not-the-password".into(),
        })
        .await;
    reason(wrong, Code::Unauthenticated, "BAD_CREDENTIALS");
    let mut no_token = proto::catalog_service_client::CatalogServiceClient::new(app.channel());
    reason(
        no_token
            .list_movies(proto::ListMoviesRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
    );
    let mut forged = app.with_token("v4.public.not-a-token", "");
    reason(
        forged
            .catalog
            .list_movies(proto::ListMoviesRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
    );
    let denied = ann
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Mine".into(),
            city: "Porto".into(),
        })
        .await;
    reason(denied, Code::PermissionDenied, "ADMIN_REQUIRED");
    let bad = ann
        .catalog
        .get_movie(proto::GetMovieRequest {
            movie_id: "not-an-id".into(),
        })
        .await;
    let bad = reason(bad, Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(
        bad.get_details_error_info().unwrap().metadata["field"],
        "movie_id"
    );

    // Every invalid field at once, not only the first.
    let many = admin
        .catalog
        .create_movie(proto::CreateMovieRequest {
            title: " ".into(),
            description: String::new(),
            duration_minutes: 0,
            genre: String::new(),
        })
        .await;
    let many = reason(many, Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(bad_fields(&many), ["title", "duration_minutes", "genre"]);
    assert_eq!(
        many.get_details_error_info().unwrap().metadata["field"],
        "title,duration_minutes,genre"
    );
    let patch = admin
        .catalog
        .update_movie(proto::UpdateMovieRequest {
            movie_id: "not-a-movie".into(),
            title: Some(String::new()),
            duration_minutes: Some(-1),
            ..Default::default()
        })
        .await;
    let patch = reason(patch, Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(
        bad_fields(&patch),
        ["movie_id", "title", "duration_minutes"]
    );
    let booking = book(&mut ann, "not-a-show", &["A1", "A1"]).await;
    let booking = reason(booking, Code::InvalidArgument, "INVALID_FIELD");
    assert_eq!(bad_fields(&booking), ["show_id", "seat_ids[1]"]);

    let missing = ann
        .catalog
        .get_movie(proto::GetMovieRequest {
            movie_id: "01a2355f-0000-7000-8000-000000000000".into(),
        })
        .await;
    let missing = reason(missing, Code::NotFound, "MOVIE_NOT_FOUND");
    let resource = missing.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(resource.resource_type, "movie");
    assert_eq!(
        resource.resource_name,
        "01a2355f-0000-7000-8000-000000000000"
    );

    book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();
    let mut bob = app.user("bob").await;
    let taken = reason(
        book(&mut bob, &fx.show_id, &["A1", "A2"]).await,
        Code::FailedPrecondition,
        "SEAT_TAKEN",
    );
    assert_eq!(
        taken.get_details_error_info().unwrap().metadata["seats"],
        "A1"
    );

    let mine = ann
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let id = mine.bookings[0].id.clone();
    let cancel = || proto::CancelBookingRequest {
        booking_id: id.clone(),
    };
    ann.booking.cancel_booking(cancel()).await.unwrap();
    reason(
        ann.booking.cancel_booking(cancel()).await,
        Code::FailedPrecondition,
        "BOOKING_CANCELLED",
    );

    // After the token's lifetime (an hour in the tests' config).
    app.clock.advance(chrono::Duration::minutes(61));
    reason(
        ann.catalog
            .list_movies(proto::ListMoviesRequest::default())
            .await,
        Code::Unauthenticated,
        "TOKEN_EXPIRED",
    );
    // Past the show's start (the fixture's show is a day ahead), with a fresh token.
    app.clock.advance(chrono::Duration::days(30));
    let mut carl = app.user("carl").await;
    reason(
        book(&mut carl, &fx.show_id, &["B1"]).await,
        Code::FailedPrecondition,
        "SHOW_STARTED",
    );
}

#[tokio::test]
async fn throttled_logins_and_unbound_paths_name_their_reason() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.user("ann").await;
    let mut auth = app.anonymous_auth();
    let mut last = None;
    for _ in 0..10 {
        let r = auth
            .login(proto::LoginRequest {
                email: "ann@theatre.test".into(),
                password: "not-the-password".into(),
            })
            .await;
        if r.as_ref()
            .is_err_and(|s| s.code() == Code::ResourceExhausted)
        {
            last = Some(r);
            break;
        }
    }
    reason(
        last.expect("throttled"),
        Code::ResourceExhausted,
        "LOGIN_THROTTLED",
    );

    // Over HTTP/JSON the same ErrorInfo is in `details`.
    let body: serde_json::Value =
        reqwest::get(format!("http://{}/no/such/path", app.server.addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let info = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .expect("ErrorInfo");
    assert_eq!(info["reason"], "ROUTE_NOT_FOUND");
    assert_eq!(info["domain"], "theatre.v1");
}
