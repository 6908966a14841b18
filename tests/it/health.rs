//! grpc.health.v1 follows the real dependencies: the database is required,
//! Redis and Kafka degrade their own entries only, shutdown is NOT_SERVING.

use std::time::Duration;

use crate::common::*;
use sea_orm::ConnectionTrait;
use theatre::{config::ConnectionUrl, proto};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    let response = HealthClient::new(app.channel())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

/// Polls until `service` reports `want` (health is checked every 50 ms in tests).
async fn wait_for(app: &TestApp, service: &str, want: ServingStatus) {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while status(app, service).await != want {
        assert!(
            tokio::time::Instant::now() < end,
            "{service:?} never became {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn optional_dependencies_degrade_only_their_own_entries() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let kafka = OwnKafka::reserve(); // never started: the relay cannot connect
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        use_redis(c, &url);
        use_kafka(c, kafka.brokers());
    })
    .await;
    assert_eq!(status(&app, "").await, ServingStatus::Serving);
    assert_eq!(
        status(&app, "theatre.v1.BookingService").await,
        ServingStatus::Serving
    );
    assert_eq!(status(&app, "theatre.cache").await, ServingStatus::Serving);
    assert_eq!(
        status(&app, "theatre.events").await,
        ServingStatus::NotServing
    );

    // Watch follows Redis going away and coming back.
    let mut watch = HealthClient::new(app.channel())
        .watch(HealthCheckRequest {
            service: "theatre.cache".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap().status;
    assert_eq!(first, ServingStatus::Serving as i32);
    redis.stop();
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("watch reports the change")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    assert_eq!(
        status(&app, "").await,
        ServingStatus::Serving,
        "still serving, degraded"
    );
    redis.restart();
    wait_for(&app, "theatre.cache", ServingStatus::Serving).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_database_is_not_serving() {
    let app = TestApp::spawn(Backend::Postgres).await;
    assert_eq!(status(&app, "").await, ServingStatus::Serving);
    let url = app.database_url().to_owned();
    let (base, name) = url.rsplit_once('/').unwrap();
    let admin = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    wait_for(&app, "", ServingStatus::NotServing).await;
    assert_eq!(
        status(&app, "theatre.v1.CatalogService").await,
        ServingStatus::NotServing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_reports_not_serving_to_watchers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut watch = HealthClient::new(app.channel())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    let server = app.server;
    let shutdown = tokio::spawn(server.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("watchers hear about the shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The open Watch would hold a graceful shutdown forever; the grace period ends it.
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown finishes within the grace period")
        .unwrap()
        .unwrap();
}

/// How long `service` takes to report `want` (at most 10 s).
async fn time_until(app: &TestApp, service: &str, want: ServingStatus) -> Duration {
    let start = tokio::time::Instant::now();
    wait_for(app, service, want).await;
    start.elapsed()
}

/// The probe has its own connection and timeout (300 ms in tests, every 50
/// ms): a lost database shows within about one probe, whether its connections
/// reset or hang, not after the pool's 5 s acquire timeout (or never), and its
/// return as fast. Calls meanwhile are UNAVAILABLE with a retry delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_database_is_noticed_within_a_probe_and_its_return_as_fast() {
    let mut link = DbLink::start(&pg_base_url()).await;
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.database_url = ConnectionUrl::new(link.url(c.database_url.expose()));
    })
    .await;
    let mut admin = app.admin().await;
    assert_eq!(status(&app, "").await, ServingStatus::Serving);

    link.cut();
    let lost = time_until(&app, "", ServingStatus::NotServing).await;
    assert!(
        lost < Duration::from_secs(2),
        "took {lost:?} to notice a reset"
    );
    assert_status(list_theatres(&mut admin).await, Code::Unavailable, "retry");
    link.restore().await;
    let back = time_until(&app, "", ServingStatus::Serving).await;
    assert!(back < Duration::from_secs(2), "took {back:?} to recover");
    succeeds_again(&mut admin).await;

    link.stall();
    let lost = time_until(&app, "", ServingStatus::NotServing).await;
    assert!(
        lost < Duration::from_secs(2),
        "took {lost:?} to notice a hang"
    );
    link.restore().await;
    let back = time_until(&app, "", ServingStatus::Serving).await;
    assert!(back < Duration::from_secs(2), "took {back:?} to recover");
    succeeds_again(&mut admin).await;
}

async fn list_theatres(
    client: &mut Client,
) -> Result<tonic::Response<proto::ListTheatresResponse>, tonic::Status> {
    client
        .catalog
        .list_theatres(proto::ListTheatresRequest::default())
        .await
}

/// Waits until a call succeeds, for at most 5 s.
async fn succeeds_again(client: &mut Client) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while list_theatres(client).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("calls succeed again once the database is back");
}
