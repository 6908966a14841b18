//! Limits: load shedding, the server deadline, the message size limit and
//! login throttling, each answered with a precise status and no side effect.

use std::time::Duration;

use crate::common::*;
use theatre::proto;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

fn login(email: &str, password: &str) -> proto::LoginRequest {
    proto::LoginRequest {
        email: email.into(),
        password: password.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_shed_with_resource_exhausted_while_probes_answer() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.max_in_flight = 1;
        c.limits.max_queued = 1;
    })
    .await;
    // Each login spends tens of milliseconds in argon2: twelve at once cannot
    // all fit in one running and one waiting slot.
    let calls = (0..12).map(|_| {
        let mut auth = app.anonymous_auth();
        async move { auth.login(login(ADMIN_EMAIL, ADMIN_PASSWORD)).await }
    });
    let health = HealthClient::new(app.channel())
        .check(HealthCheckRequest::default())
        .await;
    let results = futures::future::join_all(calls).await;
    assert!(health.is_ok(), "probes are never shed");
    let mut served = 0;
    let mut shed = 0;
    for result in results {
        match result {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(status.message().contains("capacity"), "{status:?}");
                let retry = status.get_details_retry_info().expect("retry info");
                assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));
                shed += 1;
            }
        }
    }
    assert!(served >= 2 && shed >= 1, "served {served}, shed {shed}");
    let m = app.scrape().await;
    assert_eq!(m.value("theatre_rpc_shed_total"), shed as f64);
    assert_eq!(
        m.value(r#"grpc_server_handled_total{grpc_service="theatre.v1.AuthService",grpc_method="Login",grpc_code="ResourceExhausted"}"#),
        shed as f64
    );
    // Capacity frees up again once the burst is over.
    app.admin().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_past_the_server_deadline_fail_and_write_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.rpc_deadline = Duration::from_millis(5);
    })
    .await;
    let users = app.count(theatre::entity::user::Entity).await;
    // Sign-up hashes the password (tens of milliseconds) before it inserts.
    let result = app
        .anonymous_auth()
        .sign_up(proto::SignUpRequest {
            email: "slow@theatre.test".into(),
            password: PASSWORD.into(),
            display_name: "Slow".into(),
        })
        .await;
    assert_status(result, Code::DeadlineExceeded, "THEATRE_RPC_DEADLINE_MS");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.count(theatre::entity::user::Entity).await, users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_requests_are_refused_and_write_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.max_message_bytes = 4096;
    })
    .await;
    let mut admin = app.admin().await;
    let result = admin
        .catalog
        .create_movie(proto::CreateMovieRequest {
            title: "Long".into(),
            description: "x".repeat(10_000),
            duration_minutes: 100,
            genre: "Drama".into(),
        })
        .await;
    assert_status(result, Code::ResourceExhausted, "THEATRE_MAX_MESSAGE_BYTES");
    assert_eq!(app.count(theatre::entity::movie::Entity).await, 0);
    app.create_movie(&mut admin, "Short").await;
}

async fn repeated_failed_logins_are_throttled_per_email_and_per_peer(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.login_throttle.per_email = 3;
        c.login_throttle.per_peer = 5;
        c.login_throttle.window = Duration::from_secs(900);
    })
    .await;
    for name in ["alice", "bob", "carol"] {
        app.user(name).await;
    }
    let mut auth = app.anonymous_auth();
    for _ in 0..3 {
        let wrong = auth
            .login(login("alice@theatre.test", "wrong-password"))
            .await;
        assert_status(wrong, Code::Unauthenticated, "invalid email or password");
    }
    // Even the right password is refused now, before it is checked.
    let locked = auth
        .login(login("alice@theatre.test", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert!(locked.message().contains("this email"), "{locked:?}");
    let retry = locked.get_details_retry_info().expect("retry info");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(900)));

    auth.login(login("bob@theatre.test", PASSWORD))
        .await
        .expect("other accounts are not locked");
    for _ in 0..2 {
        let wrong = auth
            .login(login("carol@theatre.test", "wrong-password"))
            .await;
        assert_status(wrong, Code::Unauthenticated, "invalid email or password");
    }
    // Five failures from this address: every account is refused from here.
    let peer = auth.login(login("bob@theatre.test", PASSWORD)).await;
    assert_status(peer, Code::ResourceExhausted, "this address");

    let m = app.scrape().await;
    assert_eq!(
        m.value(r#"theatre_logins_throttled_total{reason="email"}"#),
        1.0
    );
    assert_eq!(
        m.value(r#"theatre_logins_throttled_total{reason="peer"}"#),
        1.0
    );
    assert_eq!(m.value("theatre_login_failures_total"), 5.0);

    app.clock.advance(chrono::Duration::seconds(900));
    auth.login(login("alice@theatre.test", PASSWORD))
        .await
        .expect("the window has passed");
}

fn sign_up(name: &str) -> proto::SignUpRequest {
    proto::SignUpRequest {
        email: format!("{name}@theatre.test"),
        password: PASSWORD.into(),
        display_name: name.into(),
    }
}

/// Every sign-up from an address counts, the ones that find the email taken
/// included: probing which emails have accounts is as limited as creating them.
async fn sign_ups_are_throttled_per_peer(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signup_throttle.per_peer = 3;
        c.signup_throttle.window = Duration::from_secs(3600);
    })
    .await;
    let mut auth = app.anonymous_auth();
    let bad = auth.sign_up(proto::SignUpRequest {
        email: "not-an-email".into(),
        ..sign_up("x")
    });
    assert_status(bad.await, Code::InvalidArgument, "email");
    auth.sign_up(sign_up("dora")).await.expect("first sign-up");
    assert_status(
        auth.sign_up(sign_up("dora")).await,
        Code::AlreadyExists,
        "email",
    );
    auth.sign_up(sign_up("eve")).await.expect("third attempt");
    let users = app.count(theatre::entity::user::Entity).await;

    let refused = auth.sign_up(sign_up("fred")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("sign-ups from this address"));
    let retry = refused.get_details_retry_info().expect("retry info");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(3600)));
    // A taken email is refused the same way: the answer no longer tells.
    assert_status(
        auth.sign_up(sign_up("dora")).await,
        Code::ResourceExhausted,
        "sign-ups",
    );
    assert_eq!(
        app.count(theatre::entity::user::Entity).await,
        users,
        "nothing written"
    );
    assert_eq!(
        app.scrape().await.value("theatre_signups_throttled_total"),
        2.0
    );

    app.clock.advance(chrono::Duration::seconds(3600));
    auth.sign_up(sign_up("fred"))
        .await
        .expect("the window has passed");
}

on_both_backends!(
    repeated_failed_logins_are_throttled_per_email_and_per_peer,
    sign_ups_are_throttled_per_peer,
);
