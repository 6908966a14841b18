//! The test harness: spawns the real server in-process on an ephemeral port
//! against a fresh database (a temp SQLite file, or a new PostgreSQL database
//! on 127.0.0.1:5432) and hands out authenticated gRPC clients.
#![allow(dead_code)]

mod kits;
mod pg;

pub use kits::{kit_env, repo, run_to_end};
pub use pg::{DroppedAtEnd, empty_pg_database, fresh_pg_database, pg_base_url};

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{EntityTrait, PaginatorTrait};
use theatre::{
    App, Config, RunningServer,
    clock::ManualClock,
    config::{AdminBootstrap, ConnectionUrl, Secret},
    proto::{
        self, auth_service_client::AuthServiceClient, booking_service_client::BookingServiceClient,
        catalog_service_client::CatalogServiceClient,
    },
};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub const ADMIN_EMAIL: &str = "admin@theatre.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "correct-horse-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

pub(crate) use on_both_backends;

pub struct TestApp {
    pub server: RunningServer,
    config: Config,
    pub clock: ManualClock,
    pub backend: Backend,
    channel: Channel,
    /// Shows made by `create_show` so far: each gets a slot of its own, so
    /// fixtures never clash in a theatre.
    shows_created: std::sync::atomic::AtomicI64,
    _dir: tempfile::TempDir,
    /// Last, so the server's fields go first.
    _database: Option<DroppedAtEnd>,
}

#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A signed-in user with typed clients that send its token.
#[derive(Clone)]
pub struct Client {
    pub user_id: String,
    pub token: String,
    pub auth: AuthServiceClient<Authed>,
    pub catalog: CatalogServiceClient<Authed>,
    pub booking: BookingServiceClient<Authed>,
}

impl Client {
    /// Logs in on `channel` and returns clients that send the new token.
    pub async fn login(channel: Channel, email: &str, password: &str) -> Self {
        let res = AuthServiceClient::new(channel.clone())
            .login(proto::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .expect("login")
            .into_inner();
        Self::on(channel, &res.access_token, &res.user.unwrap().id)
    }

    /// The same user's clients on another instance.
    pub async fn there(server: &RunningServer, client: &Client) -> Self {
        let channel = Channel::from_shared(format!("http://{}", server.addr()))
            .unwrap()
            .connect()
            .await
            .expect("connect to the other instance");
        Self::on(channel, &client.token, &client.user_id)
    }

    /// Typed clients on `channel` that send `token`.
    pub fn on(channel: Channel, token: &str, user_id: &str) -> Self {
        let bearer = Bearer(format!("Bearer {token}").parse().expect("ascii token"));
        Client {
            user_id: user_id.to_owned(),
            token: token.to_owned(),
            auth: AuthServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            catalog: CatalogServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            booking: BookingServiceClient::with_interceptor(channel, bearer),
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with the test defaults changed by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("theatre.db").display()
            ),
            Backend::Postgres => fresh_pg_database().await,
        };
        let database = (backend == Backend::Postgres).then(|| DroppedAtEnd(database_url.clone()));
        let mut config = Config {
            bootstrap_admin: Some(AdminBootstrap {
                email: ADMIN_EMAIL.into(),
                password: Secret::new(ADMIN_PASSWORD.into()),
            }),
            ..Config::for_test(database_url, dir.path())
        };
        configure(&mut config);
        let clock = ManualClock::new(Utc::now());
        let server = App::new(config.clone())
            .with_clock(Arc::new(clock.clone()))
            .start()
            .await
            .expect("server starts");
        let channel = Channel::from_shared(format!("http://{}", server.addr()))
            .unwrap()
            .connect()
            .await
            .expect("connect to server");
        Self {
            server,
            config,
            clock,
            backend,
            channel,
            shows_created: Default::default(),
            _dir: dir,
            _database: database,
        }
    }

    /// A second instance of the service on the same database and settings,
    /// as in a deployment with several replicas.
    pub async fn sibling(&self) -> RunningServer {
        App::new(self.config.clone())
            .with_clock(Arc::new(self.clock.clone()))
            .start()
            .await
            .expect("sibling starts")
    }

    /// The Prometheus text from the metrics listener.
    pub async fn scrape(&self) -> Metrics {
        scrape(self.server.metrics_addr().expect("metrics enabled")).await
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Clients that send no token at all.
    pub fn anonymous_auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel())
    }

    /// Clients that send `token` verbatim (for garbled/tampered token tests).
    pub fn with_token(&self, token: &str, user_id: &str) -> Client {
        Client::on(self.channel(), token, user_id)
    }

    pub async fn login(&self, email: &str, password: &str) -> Client {
        Client::login(self.channel(), email, password).await
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Signs up `name@theatre.test` and logs in.
    pub async fn user(&self, name: &str) -> Client {
        let email = format!("{name}@theatre.test");
        self.anonymous_auth()
            .sign_up(proto::SignUpRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: name.into(),
            })
            .await
            .expect("sign up");
        self.login(&email, PASSWORD).await
    }

    /// Signs up and logs in `{prefix}0` .. `{prefix}{n-1}`, a few at a time:
    /// each is two argon2 runs, and a hundred at once on a two-core machine
    /// (beside other tests doing the same) can outlast the server's RPC deadline.
    pub async fn users(&self, prefix: &str, n: usize) -> Vec<Client> {
        use futures::StreamExt;
        futures::stream::iter(0..n)
            .map(|i| async move { self.user(&format!("{prefix}{i}")).await })
            .buffered(4)
            .collect()
            .await
    }

    /// Event types in the outbox, in the order they were written.
    pub async fn outbox_types(&self) -> Vec<String> {
        use sea_orm::QueryOrder;
        theatre::entity::outbox_event::Entity::find()
            .order_by_asc(theatre::entity::outbox_event::Column::Id)
            .all(self.server.db().conn())
            .await
            .expect("read outbox")
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// Decoded outbox events of one type, checking each row's key and id
    /// against its envelope.
    pub async fn outbox(&self, event_type: &str) -> Vec<proto::EventEnvelope> {
        use prost::Message;
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
        use theatre::entity::outbox_event;
        outbox_event::Entity::find()
            .filter(outbox_event::Column::EventType.eq(event_type))
            .order_by_asc(outbox_event::Column::Id)
            .all(self.server.db().conn())
            .await
            .expect("read outbox")
            .into_iter()
            .map(|row| {
                let envelope =
                    proto::EventEnvelope::decode(row.payload.as_slice()).expect("envelope");
                assert_eq!(envelope.event_id, row.id.to_string());
                assert_eq!(envelope.aggregate_id, row.aggregate_id);
                assert_eq!(envelope.event_type, event_type);
                assert!(row.published_at.is_none());
                envelope
            })
            .collect()
    }

    /// Rows in a table, read straight from the database.
    pub async fn count<E: EntityTrait>(&self, _table: E) -> u64
    where
        E::Model: Sync,
    {
        E::find()
            .count(self.server.db().conn())
            .await
            .expect("count rows")
    }
}

/// The shared Redis of the test machine (scripts/test starts it).
pub fn redis_url() -> String {
    std::env::var("THEATRE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Caching on `url` under a key prefix of its own, so tests never share entries.
pub fn use_redis(config: &mut Config, url: &str) {
    config.cache.redis_url = Some(ConnectionUrl::new(url));
    config.cache.prefix = format!("theatre-test:{}:", uuid::Uuid::now_v7().simple());
    // Generous for a loaded 2-core CI machine; the outage tests don't depend on it.
    config.cache.timeout = Duration::from_millis(250);
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps a helper server process, if one is running.
fn stop_child(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        child.kill().ok();
        child.wait().ok();
    }
}

/// A redis-server of the test's own on a free port, to stop and restart.
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = free_port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if self.cli(&["ping"]).contains("PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asserts a call failed with `code` and a message containing `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needle: &str) {
    match result {
        Ok(v) => panic!("expected {code:?} ({needle}), got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            assert!(
                status.message().contains(needle),
                "message {:?} should contain {needle:?}",
                status.message()
            );
        }
    }
}

/// A catalog fixture: one movie, one theatre, one show with the given rows.
pub struct ShowFixture {
    pub movie_id: String,
    pub theatre_id: String,
    pub show_id: String,
}

pub fn row(label: &str, seats: i32, price_cents: i64) -> proto::SeatRow {
    proto::SeatRow {
        label: label.into(),
        seats,
        price_cents,
    }
}

pub fn starts_in_hours(app: &TestApp, hours: i64) -> prost_types::Timestamp {
    let t = app.clock_now() + chrono::Duration::hours(hours);
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

impl TestApp {
    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use theatre::clock::Clock;
        self.clock.now()
    }

    pub async fn create_movie(&self, admin: &mut Client, title: &str) -> proto::Movie {
        admin
            .catalog
            .create_movie(proto::CreateMovieRequest {
                title: title.into(),
                description: format!("{title}, the film"),
                duration_minutes: 120,
                genre: "Drama".into(),
            })
            .await
            .expect("create movie")
            .into_inner()
            .movie
            .unwrap()
    }

    /// Gives a movie a new title (an UpdateMovie of that field alone).
    pub async fn rename_movie(&self, admin: &mut Client, movie_id: &str, title: &str) {
        admin
            .catalog
            .update_movie(proto::UpdateMovieRequest {
                movie_id: movie_id.into(),
                title: Some(title.into()),
                ..Default::default()
            })
            .await
            .expect("rename movie");
    }

    pub async fn create_theatre(&self, admin: &mut Client, name: &str) -> proto::Theatre {
        admin
            .catalog
            .create_theatre(proto::CreateTheatreRequest {
                name: name.into(),
                city: "Lisbon".into(),
            })
            .await
            .expect("create theatre")
            .into_inner()
            .theatre
            .unwrap()
    }

    pub async fn create_show(
        &self,
        admin: &mut Client,
        movie_id: &str,
        theatre_id: &str,
        rows: Vec<proto::SeatRow>,
    ) -> proto::Show {
        let slot = self
            .shows_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        admin
            .catalog
            .create_show(proto::CreateShowRequest {
                movie_id: movie_id.into(),
                theatre_id: theatre_id.into(),
                starts_at: Some(starts_in_hours(self, 24 + 4 * slot)),
                rows,
            })
            .await
            .expect("create show")
            .into_inner()
            .show
            .unwrap()
    }

    /// Another show of the fixture's movie in its theatre, at a slot of its own.
    pub async fn another_show(
        &self,
        admin: &mut Client,
        fx: &ShowFixture,
        rows: Vec<proto::SeatRow>,
    ) -> proto::Show {
        self.create_show(admin, &fx.movie_id, &fx.theatre_id, rows)
            .await
    }

    /// A movie, a theatre and a show of rows A and B with 10 seats each.
    pub async fn show_fixture(&self, admin: &mut Client) -> ShowFixture {
        self.show_fixture_with(admin, vec![row("A", 10, 1200), row("B", 10, 900)])
            .await
    }

    /// A movie, a theatre and a show of `rows` in it.
    pub async fn show_fixture_with(
        &self,
        admin: &mut Client,
        rows: Vec<proto::SeatRow>,
    ) -> ShowFixture {
        let movie = self.create_movie(admin, "Metropolis").await;
        let theatre = self.create_theatre(admin, "Odeon").await;
        let show = self.create_show(admin, &movie.id, &theatre.id, rows).await;
        ShowFixture {
            movie_id: movie.id,
            theatre_id: theatre.id,
            show_id: show.id,
        }
    }
}

/// Full rows of 100 seats at one price, labelled `labels`.
pub fn hall(labels: std::ops::RangeInclusive<char>, price_cents: i64) -> Vec<proto::SeatRow> {
    labels
        .map(|label| row(&label.to_string(), 100, price_cents))
        .collect()
}

pub async fn book(
    client: &mut Client,
    show_id: &str,
    seats: &[&str],
) -> Result<proto::Booking, Status> {
    client
        .booking
        .create_booking(proto::CreateBookingRequest {
            show_id: show_id.into(),
            seat_ids: seats.iter().map(|s| s.to_string()).collect(),
            idempotency_key: String::new(),
        })
        .await
        .map(|r| r.into_inner().booking.unwrap())
}

/// Seat ids the seat map reports as booked.
/// The booked seat ids of a seat map in proto3 JSON (grpc-web or HTTP/JSON).
pub fn booked_in_json(seat_map: &serde_json::Value) -> Vec<String> {
    seat_map["seats"]
        .as_array()
        .expect("a seat map")
        .iter()
        .filter(|s| s["status"] == "SEAT_STATUS_BOOKED")
        .map(|s| s["seatId"].as_str().expect("seatId").to_owned())
        .collect()
}

/// The client's bookings, newest first (the first page).
pub async fn my_bookings(client: &mut Client) -> Vec<proto::Booking> {
    client
        .booking
        .list_my_bookings(proto::ListMyBookingsRequest::default())
        .await
        .expect("list my bookings")
        .into_inner()
        .bookings
}

pub async fn booked_seats(client: &mut Client, show_id: &str) -> Vec<String> {
    client
        .catalog
        .get_seat_map(proto::GetSeatMapRequest {
            show_id: show_id.into(),
        })
        .await
        .expect("seat map")
        .into_inner()
        .seats
        .into_iter()
        .filter(|s| s.status == proto::SeatStatus::Booked as i32)
        .map(|s| s.seat_id)
        .collect()
}

/// The Kafka-compatible broker of the test machine (scripts/test starts tansu).
pub fn kafka_brokers() -> Vec<String> {
    vec![std::env::var("THEATRE_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())]
}

/// Relays events to `brokers` under topic names of this test's own.
pub fn use_kafka(config: &mut Config, brokers: Vec<String>) {
    let run = uuid::Uuid::now_v7().simple().to_string();
    config.kafka.brokers = brokers;
    config.kafka.catalog_topic = format!("t{run}.movies");
    config.kafka.bookings_topic = format!("t{run}.bookings");
    config.kafka.partitions = 3;
    config.kafka.poll_interval = Duration::from_millis(20);
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub event: proto::EventEnvelope,
}

/// Reads `topic` from the beginning with a real Kafka client until `expected`
/// records have arrived (or `deadline` passes), in offset order per partition.
pub async fn consume(
    brokers: &[String],
    topic: &str,
    expected: usize,
    deadline: Duration,
) -> Vec<Consumed> {
    use prost::Message;
    use rskafka::client::{ClientBuilder, partition::UnknownTopicHandling};
    let client = ClientBuilder::new(brokers.to_vec())
        .build()
        .await
        .expect("kafka client");
    let end = tokio::time::Instant::now() + deadline;
    let partitions = loop {
        let topics = client.list_topics().await.expect("list topics");
        if let Some(t) = topics.iter().find(|t| t.name == topic) {
            break t.partitions.len() as i32;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "topic {topic} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut out: Vec<Consumed> = Vec::new();
    let mut next = vec![0i64; partitions as usize];
    let mut readers = Vec::new();
    for p in 0..partitions {
        readers.push(
            client
                .partition_client(topic, p, UnknownTopicHandling::Retry)
                .await
                .expect("partition client"),
        );
    }
    while out.len() < expected && tokio::time::Instant::now() < end {
        for (p, reader) in readers.iter().enumerate() {
            let (records, _high) = reader
                .fetch_records(next[p], 1..1_000_000, 50)
                .await
                .expect("fetch");
            for r in records {
                next[p] = r.offset + 1;
                let record = r.record;
                out.push(Consumed {
                    partition: p as i32,
                    offset: r.offset,
                    key: String::from_utf8(record.key.unwrap_or_default()).unwrap(),
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
                        .collect(),
                    event: proto::EventEnvelope::decode(
                        record.value.unwrap_or_default().as_slice(),
                    )
                    .expect("envelope"),
                });
            }
        }
    }
    // Give a duplicate, if any, the chance to show up.
    for (p, reader) in readers.iter().enumerate() {
        let (records, _) = reader
            .fetch_records(next[p], 1..1_000_000, 200)
            .await
            .expect("fetch");
        assert!(
            records.is_empty(),
            "unexpected extra records on {topic}/{p}"
        );
    }
    out
}

/// A tansu broker of the test's own on a free port, to start late or stop.
pub struct OwnKafka {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnKafka {
    /// Reserves a port; the broker is not running until `start`.
    pub fn reserve() -> Self {
        let port = free_port();
        Self { port, child: None }
    }

    pub fn brokers(&self) -> Vec<String> {
        vec![format!("127.0.0.1:{}", self.port)]
    }

    pub fn start(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let child = std::process::Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tansu must be installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tansu did not start on port {}", self.port);
    }
}

fn tansu_binary() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = format!("{home}/.cargo/bin/tansu");
    if std::path::Path::new(&cargo_bin).exists() {
        cargo_bin
    } else {
        "tansu".to_owned()
    }
}

impl Drop for OwnKafka {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl TestApp {
    pub fn database_url(&self) -> &str {
        self.config.database_url.expose()
    }

    /// The (catalog, bookings) topics this app publishes to.
    pub fn topics(&self) -> (String, String) {
        (
            self.config.kafka.catalog_topic.clone(),
            self.config.kafka.bookings_topic.clone(),
        )
    }

    /// Waits until the relay has published everything (backlog 0, `published` ≥ n).
    pub async fn wait_published(&self, n: u64, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let stats = self.server.relay_stats().expect("relay running");
            if stats.backlog == 0 && stats.published >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "relay did not catch up: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A scraped `/metrics` page.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the sample written exactly as `series` (name and labels),
    /// or 0 when the series has not appeared yet.
    pub fn value(&self, series: &str) -> f64 {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().expect("numeric sample"))
            })
            .unwrap_or(0.0)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.lines().any(|line| line.starts_with(name))
    }
}

/// `GET /metrics` over plain HTTP/1.1, as Prometheus scrapes it.
pub async fn scrape(addr: std::net::SocketAddr) -> Metrics {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics listener");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: theatre\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    Metrics(body.to_owned())
}

/// A TCP relay between the service and PostgreSQL that a test can break, as
/// a crashed server or a lost network does: `cut` resets every relayed
/// connection and refuses new ones; `stall` keeps every connection open but
/// lets nothing through (a partition, a frozen server); `restore` ends both.
pub struct DbLink {
    pub port: u16,
    target: std::net::SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl DbLink {
    /// Relays a free loopback port to the server of `url` (`postgres://user@host:port/…`).
    pub async fn start(url: &str) -> Self {
        let target = authority(url)
            .parse()
            .expect("the PostgreSQL URL names an ip:port");
        let mut link = Self {
            port: free_port(),
            target,
            stalled: tokio::sync::watch::Sender::new(false),
            tasks: Default::default(),
            listener: None,
        };
        link.restore().await;
        link
    }

    /// `url` with its server replaced by this link.
    pub fn url(&self, url: &str) -> String {
        url.replacen(authority(url), &format!("127.0.0.1:{}", self.port), 1)
    }

    pub fn cut(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Ends a cut or a stall: stalled connections are closed (the server
    /// dropped them meanwhile) and new ones are relayed again.
    pub async fn restore(&mut self) {
        if *self.stalled.borrow() {
            self.cut();
            self.stalled.send_replace(false);
        }
        if self.listener.is_some() {
            return;
        }
        // An aborted listener task closes its socket when the runtime next
        // gets to it, so the port may still be taken for a moment.
        let mut bound = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await;
        for _ in 0..100 {
            if bound.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            bound = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await;
        }
        let listener = bound.expect("bind the link's port");
        let (target, tasks, stalled) = (self.target, self.tasks.clone(), self.stalled.clone());
        self.listener = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut stalled = stalled.subscribe();
                let relay = tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = async { stalled.wait_for(|s| *s).await.map(|_| ()) } => {
                            std::future::pending::<()>().await
                        }
                    }
                });
                tasks.lock().unwrap().push(relay);
            }
        }));
    }
}

impl Drop for DbLink {
    fn drop(&mut self) {
        self.cut();
    }
}

/// The `host:port` of a `scheme://[user@]host:port/…` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('/').next().unwrap_or(rest);
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}
