//! The `/metrics` HTTP listener, separate from the gRPC port so scrapes need
//! no token and can be firewalled apart.
use std::{future::IntoFuture, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use super::{Metrics, Snapshot};
use crate::{cache::Cache, clock::Clock, db::Database, events::RelayStats, events::outbox};

/// A scrape never waits longer than this for the outbox query.
const OUTBOX_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// Everything a scrape reads.
pub struct Exporter {
    pub metrics: Metrics,
    pub db: Database,
    pub cache: Cache,
    pub relay: Option<Arc<RelayStats>>,
    pub clock: Arc<dyn Clock>,
}

impl Exporter {
    pub async fn snapshot(&self) -> Snapshot {
        let outbox =
            tokio::time::timeout(OUTBOX_QUERY_TIMEOUT, outbox::unpublished(self.db.conn()))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|pending| {
                    let age = pending.oldest.map_or(0.0, |oldest| {
                        (self.clock.now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
                    });
                    (pending.count, age)
                });
        Snapshot {
            pool: Some(self.db.pool_usage()),
            statements: self.db.statements(),
            cache: self.cache.enabled().then(|| self.cache.stats()),
            relay: self
                .relay
                .as_ref()
                .map(|relay| (relay.snapshot(), relay.connected())),
            outbox,
        }
    }

    pub async fn render(&self) -> String {
        self.metrics.render(&self.snapshot().await)
    }
}

async fn scrape(State(exporter): State<Arc<Exporter>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        exporter.render().await,
    )
}

/// The running `/metrics` listener.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `GET /metrics` from `exporter` in the background.
    pub async fn start(addr: SocketAddr, exporter: Exporter) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(Arc::new(exporter));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .into_future(),
        );
        Ok(Self { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Ok(Err(e)) = self.task.await {
            tracing::warn!(error = %e, "metrics listener failed");
        }
    }
}
