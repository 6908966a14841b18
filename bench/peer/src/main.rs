//! T, the ceiling of a unary call on this machine: a tonic server with the
//! service's tonic version, allocator, runtime and socket settings, serving
//! nothing but `grpc.health.v1.Health/Check`. bench/run drives it with h2load
//! beside the service's own Health/Check and CheckToken, so that the cost of
//! everything Theatre adds to a call (its layers, auth, metrics) is measured
//! against the bare framework in the same run.
//!
//!   theatre-bench-peer 127.0.0.1:50152
use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50152".to_owned());
    let (health, service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = TcpListener::bind(&addr).await?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(service)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
