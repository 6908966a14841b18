//! Builds and runs the gRPC server: auth layer, services, health, reflection.
use std::{net::SocketAddr, sync::Arc};

use futures_util::StreamExt;
use sea_orm::DbErr;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

use crate::{
    auth::{
        AuthLayer, TokenIssuer,
        accounts::ensure_user,
        service::AuthApi,
        token::{KeyError, load_key},
    },
    booking::service::BookingApi,
    cache::{Cache, CacheCounts},
    catalog::{near_reads::NearReadsLayer, service::CatalogApi},
    clock::{Clock, SystemClock},
    config::{Config, CorsOrigins},
    conn::Conn,
    cors::BrowserCorsLayer,
    db::Database,
    entity::user::Role,
    error::AppError,
    events::{Relay, RelayCounts, RelayStats},
    health::{HealthMonitor, report_shutting_down},
    limits::LimitLayer,
    metrics::{
        Metrics,
        exporter::{Exporter, MetricsServer},
    },
    page::Pages,
    proto::{
        self, auth_service_server::AuthServiceServer, booking_service_server::BookingServiceServer,
        catalog_service_server::CatalogServiceServer,
    },
    rest::JsonLayer,
    store::Store,
    telemetry::CallLayer,
    web::WebLayer,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("metrics listener (THEATRE_METRICS_ADDR={addr}): {error}")]
    MetricsListen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("admin bootstrap (THEATRE_ADMIN_EMAIL/THEATRE_ADMIN_PASSWORD): {0}")]
    Bootstrap(AppError),
    #[error("cache (REDIS_URL): {0}")]
    Cache(#[from] fred::error::Error),
    #[error("THEATRE_WEB_DIR={0}: no index.html there (build the page with web/build)")]
    WebDir(std::path::PathBuf),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so grpcurl can decode BadRequest/PreconditionFailure.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// What every handler shares.
struct Deps {
    store: Store,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    pages: Pages,
}

/// The three `theatre.v1` services, each refusing messages over the size limit.
fn theatre_services(config: &Config, deps: Deps, tokens: Arc<TokenIssuer>) -> Routes {
    let max_message = config.limits.max_message_bytes;
    let Deps {
        store,
        clock,
        metrics,
        pages,
    } = deps;
    let auth = AuthApi::new(
        store.clone(),
        tokens,
        clock,
        (config.login_throttle, config.signup_throttle),
        metrics.clone(),
    );
    let catalog = CatalogApi::new(store.clone(), config.shows, pages.clone());
    let booking = BookingApi::new(store, metrics, pages);
    Routes::new(AuthServiceServer::new(auth).max_decoding_message_size(max_message))
        .add_service(CatalogServiceServer::new(catalog).max_decoding_message_size(max_message))
        .add_service(BookingServiceServer::new(booking).max_decoding_message_size(max_message))
}

/// The service, configured but not yet started.
pub struct App {
    config: Config,
    clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the wall clock (tests move time forward with a `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Connects and migrates the database, loads the token key, ensures the
    /// bootstrap admin, binds the listener and starts serving in the background.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        let Self { config, clock } = self;
        // A page that is not there is a setting to fix, found before any connection is made.
        if let Some(dir) = config
            .web_dir
            .as_ref()
            .filter(|d| !d.join("index.html").is_file())
        {
            return Err(StartError::WebDir(dir.clone()));
        }
        let db = Database::connect(config.database_url.expose(), config.db_max_connections).await?;
        let tokens = Arc::new(TokenIssuer::new(
            load_key(&config.token_key)?,
            config.token_ttl,
            clock.clone(),
        ));
        let cache = Cache::connect(&config.cache).await?;
        let store = Store::new(db.clone(), cache.clone(), clock.clone());
        if let Some(admin) = &config.bootstrap_admin {
            let user = ensure_user(
                &store,
                &admin.email,
                admin.password.expose(),
                "Administrator",
                Role::Admin,
            )
            .await
            .map_err(StartError::Bootstrap)?;
            tracing::info!(user_id = %user.id, "bootstrap admin ensured");
        }

        let pages = Pages::from_secret(tokens.secret_bytes());
        let (health, health_service) = tonic_health::server::health_reporter();
        let metrics = Metrics::default();

        let deps = Deps {
            store,
            clock: clock.clone(),
            metrics: metrics.clone(),
            pages: pages.clone(),
        };
        let routes = theatre_services(&config, deps, tokens.clone())
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            // v1alpha too: many grpcurl and IDE builds still only speak it.
            .add_service(reflection().build_v1alpha()?);

        // Outermost first: CORS answers browser preflights before anything else,
        // the page's files (THEATRE_WEB_DIR) are answered next,
        // HTTP/JSON and grpc-web are translated to gRPC, then every call goes
        // through the same layers: request id, trace, metrics, limits, auth.
        let router = Server::builder()
            .accept_http1(true)
            .layer(BrowserCorsLayer::new(
                &config.cors_origins,
                &config.cors_headers,
            ))
            .layer(WebLayer::new(config.web_dir.as_deref()))
            .layer(JsonLayer::new(config.limits.max_message_bytes))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(CallLayer::new(metrics.clone()))
            // Shed before authenticating: under overload, refusing is the cheapest answer.
            .layer(LimitLayer::new(config.limits, metrics.clone()))
            .layer(AuthLayer::new(tokens))
            // Innermost: cached reads answered from this instance's copy.
            .layer(NearReadsLayer::new(cache.clone(), pages))
            .add_routes(routes);

        let (stop_relay, relay_stopped) = watch::channel(false);
        let relay = if config.kafka.brokers.is_empty() {
            tracing::info!("KAFKA_BROKERS not set: events wait in the outbox");
            None
        } else {
            let relay = Relay::new(db.clone(), config.kafka.clone());
            let stats = relay.stats();
            Some((stats, tokio::spawn(relay.run(relay_stopped))))
        };

        let (stop_monitor, monitor_stopped) = watch::channel(false);
        let mut monitor = HealthMonitor::new(
            health.clone(),
            db.clone(),
            cache.clone(),
            relay.as_ref().map(|(stats, _)| stats.clone()),
            config.health_interval,
            config.health_timeout,
        );
        // Statuses are real before the first request arrives.
        monitor.check().await;
        let monitor = tokio::spawn(monitor.run(monitor_stopped));

        let exporter = Exporter {
            metrics,
            db: db.clone(),
            cache: cache.clone(),
            relay: relay.as_ref().map(|(stats, _)| stats.clone()),
            clock,
        };
        let metrics_server = match config.metrics_addr {
            Some(addr) => Some(
                MetricsServer::start(addr, exporter)
                    .await
                    .map_err(|error| StartError::MetricsListen { addr, error })?,
            ),
            None => None,
        };

        if config.cors_origins == CorsOrigins::None {
            tracing::info!(
                "no browser origin is allowed: browser calls (grpc-web, HTTP/JSON from a page) \
                 will be refused; set THEATRE_CORS_ORIGINS to the frontends' origins, \
                 such as https://app.example.com"
            );
        }
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .map(|stream| stream.map(Conn));
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    stopped.await.ok();
                })
                .await
        });
        let metrics_addr = metrics_server.as_ref().map(MetricsServer::addr);
        tracing::info!(%addr, metrics = ?metrics_addr, backend = ?db.backend(), cache = cache.enabled(), "theatre serving");
        Ok(RunningServer {
            addr,
            metrics_server,
            cache,
            relay,
            stop_relay,
            stop_monitor,
            monitor: Some(monitor),
            shutdown_grace: config.shutdown_grace,
            stop: Some(stop),
            serve,
            health,
            db,
        })
    }
}

/// A started server; dropping it leaves the server running until the runtime ends.
pub struct RunningServer {
    addr: SocketAddr,
    metrics_server: Option<MetricsServer>,
    cache: Cache,
    relay: Option<(Arc<RelayStats>, JoinHandle<()>)>,
    stop_relay: watch::Sender<bool>,
    stop_monitor: watch::Sender<bool>,
    monitor: Option<JoinHandle<()>>,
    shutdown_grace: std::time::Duration,
    stop: Option<oneshot::Sender<()>>,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
    health: tonic_health::server::HealthReporter,
    db: Database,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served; `None` when `THEATRE_METRICS_ADDR=off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::addr)
    }

    /// The database the server uses (tests inspect rows through it).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Cache hit/miss/error/invalidation counters.
    pub fn cache_stats(&self) -> CacheCounts {
        self.cache.stats()
    }

    /// Outbox relay gauges; `None` without `KAFKA_BROKERS`.
    pub fn relay_stats(&self) -> Option<RelayCounts> {
        self.relay.as_ref().map(|(stats, _)| stats.snapshot())
    }

    /// Reports NOT_SERVING, stops accepting, lets in-flight calls finish, closes the pool.
    pub async fn shutdown(mut self) -> Result<(), tonic::transport::Error> {
        // Stop the monitor first so it cannot report SERVING again.
        let _ = self.stop_monitor.send(true);
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.await;
        }
        report_shutting_down(&self.health).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful shutdown waits for every open stream, and a health Watch
        // never ends by itself: past the grace period, connections are dropped.
        let result = match tokio::time::timeout(self.shutdown_grace, &mut self.serve).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => {
                tracing::error!(error = %join, "server task failed");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(grace = ?self.shutdown_grace, "calls still open after the grace period; closing their connections");
                self.serve.abort();
                Ok(())
            }
        };
        // Other instances' writes stop waiting for this one's copies.
        self.cache.leave().await;
        // Let the relay make a last pass, then stop it.
        let _ = self.stop_relay.send(true);
        if let Some((_, relay)) = self.relay.take()
            && tokio::time::timeout(std::time::Duration::from_secs(10), relay)
                .await
                .is_err()
        {
            tracing::warn!("outbox relay did not stop within 10s");
        }
        // Scrapes keep working while calls drain and the relay flushes.
        if let Some(metrics) = self.metrics_server.take() {
            metrics.stop().await;
        }
        if let Err(e) = self.db.close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
        result
    }
}
