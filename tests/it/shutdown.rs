//! SIGTERM in the middle of a booking load, against the real binary on
//! PostgreSQL with the Kafka relay on: calls already running finish, no
//! booking a client was told about is lost, no booking is committed behind a
//! client's error, and the outbox is flushed to Kafka before the process exits.

use std::{
    collections::{HashMap, HashSet},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::*;
use sea_orm::{ConnectionTrait, Statement};
use theatre::proto;
use tonic::{Code, transport::Channel};

const BOOKERS: usize = 6;
const SEATS_PER_ROW: usize = 100;

struct Attempt {
    key: String,
    result: Result<(), (Code, String)>,
}

async fn wait_until_serving(addr: &str) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never started listening on {addr}");
}

/// The single number `sql` selects, as `n`.
async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .expect("one row")
        .try_get::<i64>("", "n")
        .unwrap()
}

/// Books one seat at a time along row `row` until told to stop or out of seats.
async fn book_row(
    mut client: Client,
    show_id: String,
    row: char,
    booked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for seat in 1..=SEATS_PER_ROW {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("{}-{row}{seat}", client.user_id);
        let result = client
            .booking
            .create_booking(proto::CreateBookingRequest {
                show_id: show_id.clone(),
                seat_ids: vec![format!("{row}{seat}")],
                idempotency_key: key.clone(),
            })
            .await;
        if result.is_ok() {
            booked.fetch_add(1, Ordering::Relaxed);
        } else {
            // Once the server has gone, do not spin on a refused connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        attempts.push(Attempt {
            key,
            result: result
                .map(|_| ())
                .map_err(|s| (s.code(), s.message().to_owned())),
        });
    }
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_load_loses_no_accepted_booking() {
    let database_url = fresh_pg_database().await;
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let topic = format!("theatre-shutdown-{}", uuid::Uuid::now_v7().simple());
    let mut server = Command::new(env!("CARGO_BIN_EXE_theatre"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database_url)
        .env("THEATRE_ADDR", &addr)
        .env("THEATRE_METRICS_ADDR", &metrics_addr)
        .env("THEATRE_TOKEN_KEY_FILE", dir.path().join("theatre.key"))
        .env("THEATRE_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("THEATRE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("THEATRE_SHUTDOWN_GRACE_MS", "5000")
        .env("KAFKA_BROKERS", kafka_brokers().join(","))
        .env("THEATRE_KAFKA_TOPIC_CATALOG", format!("{topic}-catalog"))
        .env("THEATRE_KAFKA_TOPIC_BOOKINGS", format!("{topic}-bookings"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the theatre binary");
    // Drained while the server runs: a full pipe would block its log writer,
    // and the lines still queued at exit (its last ones) would be lost.
    let mut stderr_pipe = server.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut stderr).ok();
        stderr
    });
    let channel = wait_until_serving(&addr).await;

    let mut admin = Client::login(channel.clone(), ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let movie = admin
        .catalog
        .create_movie(proto::CreateMovieRequest {
            title: "Rush".into(),
            description: "A film".into(),
            duration_minutes: 100,
            genre: "Drama".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .movie
        .unwrap();
    let theatre = admin
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Odeon".into(),
            city: "Porto".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .theatre
        .unwrap();
    let rows: Vec<char> = ('A'..).take(BOOKERS).collect();
    let starts = chrono::Utc::now() + chrono::Duration::days(1);
    let show = admin
        .catalog
        .create_show(proto::CreateShowRequest {
            movie_id: movie.id,
            theatre_id: theatre.id,
            starts_at: Some(prost_types::Timestamp {
                seconds: starts.timestamp(),
                nanos: 0,
            }),
            rows: rows
                .iter()
                .map(|r| row(&r.to_string(), SEATS_PER_ROW as i32, 1000))
                .collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .show
        .unwrap();

    let booked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut bookers = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let email = format!("booker{i}@theatre.test");
        proto::auth_service_client::AuthServiceClient::new(channel.clone())
            .sign_up(proto::SignUpRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: format!("Booker {i}"),
            })
            .await
            .unwrap();
        // One connection per booker, as separate client processes would have.
        let own = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let client = Client::login(own, &email, PASSWORD).await;
        bookers.push(tokio::spawn(book_row(
            client,
            show.id.clone(),
            *row,
            booked.clone(),
            stop.clone(),
        )));
    }
    while booked.load(Ordering::Relaxed) < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Slow calls (argon2) that the server has started when the signal lands.
    let metrics_at = metrics_addr.parse().unwrap();
    let started_logins = |m: &Metrics| {
        m.value(r#"grpc_server_started_total{grpc_service="theatre.v1.AuthService",grpc_method="Login"}"#)
    };
    let before = started_logins(&scrape(metrics_at).await);
    let logins: Vec<_> = (0..4)
        .map(|_| {
            let mut auth = proto::auth_service_client::AuthServiceClient::new(channel.clone());
            tokio::spawn(async move {
                auth.login(proto::LoginRequest {
                    email: ADMIN_EMAIL.into(),
                    password: ADMIN_PASSWORD.into(),
                })
                .await
            })
        })
        .collect();
    while started_logins(&scrape(metrics_at).await) < before + 4.0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let signalled = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    let exit = tokio::task::spawn_blocking(move || {
        let status = server.wait().unwrap();
        (status, stderr_reader.join().unwrap())
    });
    let (status, stderr) = tokio::time::timeout(Duration::from_secs(30), exit)
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "exit {status:?}\n{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?}\n{stderr}"
    );
    stop.store(true, Ordering::Relaxed);

    for login in logins {
        login
            .await
            .unwrap()
            .expect("a call running at SIGTERM finishes");
    }
    let attempts: Vec<Attempt> = futures::future::join_all(bookers)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let confirmed: HashSet<&str> = attempts
        .iter()
        .filter(|a| a.result.is_ok())
        .map(|a| a.key.as_str())
        .collect();
    let refused: Vec<&Attempt> = attempts.iter().filter(|a| a.result.is_err()).collect();
    assert!(
        confirmed.len() >= 30 && !refused.is_empty(),
        "the signal must land mid-load: {} confirmed, {} refused",
        confirmed.len(),
        refused.len()
    );
    // One example message per status code, for the report below.
    let mut codes: HashMap<Code, &str> = HashMap::new();
    for attempt in &refused {
        let (code, message) = attempt.result.as_ref().unwrap_err();
        codes.entry(*code).or_insert(message);
        // Refused connections, and requests the client had queued on a
        // connection the server was closing and never sent ("operation was
        // canceled"), and, now and then, a connection that broke under the
        // client mid-stream as the process exited, which tonic's client
        // reports as INTERNAL "h2 protocol error" (a transport failure of the
        // client's, not a status the server sent); the database check below
        // proves none of them was committed.
        let broken_connection = *code == Code::Internal && message.contains("h2 protocol error");
        assert!(
            matches!(code, Code::Unavailable | Code::Cancelled) || broken_connection,
            "{code:?}: {message}"
        );
    }

    // The database agrees with what the clients were told, booking by booking.
    let db = sea_orm::Database::connect(&database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT idempotency_key, status FROM bookings",
        ))
        .await
        .unwrap();
    let stored: HashSet<String> = rows
        .iter()
        .map(|r| {
            assert_eq!(r.try_get::<String>("", "status").unwrap(), "CONFIRMED");
            r.try_get::<String>("", "idempotency_key").unwrap()
        })
        .collect();
    let stored: HashSet<&str> = stored.iter().map(String::as_str).collect();
    assert_eq!(
        stored, confirmed,
        "every confirmed booking is stored, and nothing else"
    );
    let held = count(
        &db,
        "SELECT COUNT(*) AS n FROM seats WHERE booking_id IS NOT NULL",
    )
    .await;
    assert_eq!(held as usize, confirmed.len());
    let unpublished = count(
        &db,
        "SELECT COUNT(*) AS n FROM outbox_events WHERE published_at IS NULL",
    )
    .await;
    assert_eq!(
        unpublished, 0,
        "the relay flushed the outbox before exiting"
    );
    eprintln!(
        "{} bookings confirmed, {} refused after the signal with {:?}; shutdown took {took:?}",
        confirmed.len(),
        refused.len(),
        codes
    );
}
