//! Every RPC gets a request id (the caller's or a fresh one, returned in the
//! response) and one "rpc finished" log line with method, status and latency;
//! a line logged while serving a call names the call; no log line ever holds
//! a password, a token or a password hash.

use std::sync::{Arc, Mutex};

use crate::common::*;
use theatre::proto;
use tonic::{Code, Request};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs the process's log subscriber (nextest runs each test in a
    /// process of its own) writing into a fresh capture.
    fn install(filter: &str) -> Self {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .event_format(theatre::logs::TextLine::default())
            .init();
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpcs_are_traced_with_request_ids_and_no_secrets_are_logged() {
    let logs = Captured::install("debug,sqlx=info,h2=info,hyper=info,tower=info");

    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut auth = app.anonymous_auth();

    // A caller's request id is kept and returned.
    let mut login = Request::new(proto::LoginRequest {
        email: ADMIN_EMAIL.into(),
        password: ADMIN_PASSWORD.into(),
    });
    login
        .metadata_mut()
        .insert("x-request-id", "req-telemetry-1".parse().unwrap());
    let response = auth.login(login).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "req-telemetry-1"
    );
    let admin_token = response.into_inner().access_token;

    // Without one, a UUIDv7 is made and returned, errors included.
    let wrong = auth
        .login(proto::LoginRequest {
            email: ADMIN_EMAIL.into(),
            password: "wrong-password-zz".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let generated = wrong
        .metadata()
        .get("x-request-id")
        .expect("request id on errors")
        .to_str()
        .unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(generated).unwrap().get_version_num(),
        7
    );

    // A line the handler logs names its call.
    let mut sign_up = Request::new(proto::SignUpRequest {
        email: "cid@theatre.test".into(),
        password: PASSWORD.into(),
        display_name: "Cid".into(),
    });
    sign_up
        .metadata_mut()
        .insert("x-request-id", "req-telemetry-2".parse().unwrap());
    auth.sign_up(sign_up).await.unwrap();

    // A broader flow with secrets in requests and metadata.
    let mut ann = app.user("ann").await;
    ann.auth.who_am_i(proto::WhoAmIRequest {}).await.unwrap();
    let mut admin = app.with_token(&admin_token, "");
    let fx = app.show_fixture(&mut admin).await;
    book(&mut ann, &fx.show_id, &["A1"]).await.unwrap();
    let short = auth
        .sign_up(proto::SignUpRequest {
            email: "bob@theatre.test".into(),
            password: "shortpw".into(),
            display_name: "Bob".into(),
        })
        .await;
    assert_status(short, Code::InvalidArgument, "password");

    let text = logs.text();
    let finished: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("rpc finished"))
        .collect();
    assert!(
        finished
            .iter()
            .any(|l| l.contains("method=/theatre.v1.AuthService/Login ")
                && l.contains("request_id=req-telemetry-1 ")
                && l.contains("grpc_status=0 ")
                && l.contains("latency_us=")),
        "{text}"
    );
    assert!(
        finished
            .iter()
            .any(|l| l.contains(generated) && l.contains("grpc_status=16 ")),
        "{text}"
    );
    assert!(
        finished
            .iter()
            .any(|l| l.contains("BookingService/CreateBooking")),
        "{text}"
    );

    assert!(
        text.lines().any(|l| l.contains("user signed up")
            && l.ends_with(" method=/theatre.v1.AuthService/SignUp request_id=req-telemetry-2")),
        "{text}"
    );
    // The call's own line does not repeat the call's fields.
    assert!(
        finished.iter().all(|l| l.matches("method=").count() == 1),
        "{text}"
    );

    for secret in [
        ADMIN_PASSWORD,
        PASSWORD,
        "wrong-password-zz",
        "shortpw",
        admin_token.as_str(),
        ann.token.as_str(),
        "v4.public.",
        "$argon2",
        "k4.secret",
    ] {
        assert!(!text.contains(secret), "a log line contains {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_start_up_log_says_when_browsers_will_be_refused() {
    let logs = Captured::install("info");
    let _open = TestApp::spawn(Backend::Sqlite).await;
    assert!(!logs.text().contains("no browser origin is allowed"));
    let _closed = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_origins = theatre::config::CorsOrigins::None;
    })
    .await;
    let text = logs.text();
    assert!(text.contains("no browser origin is allowed"), "{text}");
    assert!(text.contains("THEATRE_CORS_ORIGINS"), "{text}");
}
