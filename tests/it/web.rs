//! The seat-map page (web/, built by web/build), served by the service itself
//! (THEATRE_WEB_DIR) and driven in headless Chromium by puppeteer-core: two
//! customers race for one seat in two browser sessions and exactly one wins;
//! the loser is told the seat was just taken; the winner cancels from "My
//! bookings". Screenshots of the seat map before and after are written to
//! target/web-screenshots.

use crate::common::*;
use sea_orm::EntityTrait;
use theatre::entity::booking;

on_both_backends!(two_browsers_race_for_one_seat_and_one_wins);

async fn two_browsers_race_for_one_seat_and_one_wins(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.web_dir = Some(repo("web/dist"))).await;
    let mut admin = app.admin().await;
    let fx = app
        .show_fixture_with(
            &mut admin,
            vec![row("A", 8, 1200), row("B", 8, 1200), row("C", 8, 900)],
        )
        .await;
    // Seats someone else has: the page shows them taken from the start.
    let mut cat = app.user("cat").await;
    book(&mut cat, &fx.show_id, &["B3", "B4", "B5", "C4"])
        .await
        .unwrap();
    let ann = app.user("ann").await;
    let ben = app.user("ben").await;
    let users = serde_json::json!([
        { "email": "ann@theatre.test", "password": PASSWORD },
        { "email": "ben@theatre.test", "password": PASSWORD },
    ]);
    let shots = repo("target/web-screenshots").join(format!("{backend:?}").to_lowercase());
    let stdout = run_to_end(
        "node".into(),
        vec![repo("web/test/race.mjs").display().to_string()],
        vec![
            ("RACE_PAGE", format!("http://{}/web/", app.server.addr())),
            ("RACE_SHOW", fx.show_id.clone()),
            ("RACE_SEAT", "C5".into()),
            ("RACE_TAKEN", "B3,B4,B5,C4".into()),
            ("RACE_USERS", users.to_string()),
            ("RACE_SHOTS", shots.display().to_string()),
        ],
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_ne!(report["winner"], report["loser"], "{report}");
    assert_eq!(report["seatAfterCancel"], "available", "{report}");

    // In the database: one booking of C5, by the winner, cancelled by them;
    // the loser's refused booking left nothing.
    let bookings: Vec<_> = booking::Entity::find()
        .all(app.server.db().conn())
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.user_id.to_string() != cat.user_id)
        .collect();
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    let winner = if report["winner"] == "ann@theatre.test" {
        &ann
    } else {
        &ben
    };
    assert_eq!(bookings[0].user_id.to_string(), winner.user_id);
    assert!(bookings[0].cancelled_at.is_some());
    for name in [
        "seat-map-before",
        "seat-map-after-winner",
        "seat-map-after-loser",
        "bookings-after-cancel",
    ] {
        let png = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "{}",
            png.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_is_served_under_web_only_when_configured() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.web_dir = Some(repo("web/dist"))).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get =
        |addr: std::net::SocketAddr, path: &str| http.get(format!("http://{addr}{path}")).send();
    let addr = app.server.addr();
    let page = get(addr, "/web/").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<title>Theatre"));
    let script = get(addr, "/web/main.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()["content-type"], "text/javascript");
    let bare = get(addr, "/web").await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/web/");
    assert_eq!(get(addr, "/web/missing.js").await.unwrap().status(), 404);
    // The API is untouched beside it.
    assert_eq!(get(addr, "/movies").await.unwrap().status(), 401);

    let off = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(get(off.server.addr(), "/web/").await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_web_dir_without_the_page_stops_the_start() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_owned();
    let db = tempfile::tempdir().unwrap();
    let config = theatre::Config {
        web_dir: Some(dir.clone()),
        ..theatre::Config::for_test(
            format!("sqlite://{}?mode=rwc", db.path().join("t.db").display()),
            db.path(),
        )
    };
    let err = theatre::App::new(config)
        .start()
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("THEATRE_WEB_DIR"), "{err}");
}
