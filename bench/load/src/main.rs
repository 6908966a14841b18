//! The booking load of bench/run, at a fraction of k6's CPU per call: on this
//! two-core machine k6 spent 0.34-0.40 ms of CPU per booking, more than the
//! service (0.22-0.25 ms), and 1.9 cores to start the rush's 1,000 VUs, so
//! book and rush measured k6. One thread, the service's own generated client,
//! k6's workloads (bench/k6/scenarios.js) and k6's summary shape, so that
//! bench/report.py reads both alike.
//!
//!   SCENARIO=book|rush|rush_paced THEATRE_ADDR=… SEED=… OUT=… theatre-bench-load
//!
//! book: VUS workers for DURATION; worker n (from 1) owns the round's shows
//! n-1, n-1+VUS, … (BOOK_SEED) and books their seats in order, two at a time,
//! with the idempotency key ROUND-n-i. rush: VUS workers make ITERATIONS
//! attempts each at a random seat of the rush show. rush_paced: the rush's
//! calls started at RATE a second for DURATION, whatever their latency.
use std::{
    collections::BTreeMap,
    env,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use theatre::proto::{CreateBookingRequest, booking_service_client::BookingServiceClient};
use tonic::{
    Code, Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

/// HTTP/2 connections the workers share (k6 opened one per VU).
const CONNECTIONS: usize = 8;

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn number(name: &str, default: u64) -> u64 {
    var(name).map_or(default, |v| {
        v.trim_end_matches('s')
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn json_file(name: &str) -> Value {
    let path = var(name).unwrap_or_else(|| panic!("set {name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn seat_label(index: u64) -> String {
    format!(
        "{}{}",
        char::from(b'A' + (index / 100) as u8),
        index % 100 + 1
    )
}

/// The outcomes k6's `call` counts (bench/k6/lib.js), with latencies.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<&'static str, u64>,
    latencies_ms: Vec<f64>,
    losers_ms: Vec<f64>,
}

impl Tally {
    fn record(&mut self, code: Code, ms: f64) {
        let outcome = match code {
            Code::Ok => "ok",
            Code::FailedPrecondition => {
                self.losers_ms.push(ms);
                "failed_precondition"
            }
            Code::Internal | Code::Unavailable => "internal_or_unavailable",
            Code::ResourceExhausted => "resource_exhausted",
            _ => "other_errors",
        };
        *self.counts.entry("calls").or_default() += 1;
        *self.counts.entry(outcome).or_default() += 1;
        self.latencies_ms.push(ms);
    }
}

fn trend(values: &mut [f64]) -> Value {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        values
            .get(((values.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let avg = values.iter().sum::<f64>() / values.len().max(1) as f64;
    json!({"values": {"avg": avg, "p(50)": at(0.5), "p(95)": at(0.95), "p(99)": at(0.99), "max": at(1.0)}})
}

#[derive(Clone)]
struct Load {
    clients: Vec<BookingServiceClient<Channel>>,
    /// Each seeded user's `authorization` value, made once.
    bearers: Arc<Vec<MetadataValue<Ascii>>>,
    tally: Arc<Mutex<Tally>>,
}

impl Load {
    async fn book(&self, vu: u64, request: CreateBookingRequest) {
        let mut client = self.clients[vu as usize % self.clients.len()].clone();
        let bearer = &self.bearers[(vu as usize - 1) % self.bearers.len()];
        let mut request = Request::new(request);
        request
            .metadata_mut()
            .insert("authorization", bearer.clone());
        let start = Instant::now();
        let code = match client.create_booking(request).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        self.tally.lock().unwrap().record(code, ms);
    }
}

fn rush_request(seed: &Value) -> CreateBookingRequest {
    let rows = seed["rushRows"].as_u64().expect("rushRows");
    let seat = random() % (rows * 100);
    CreateBookingRequest {
        show_id: seed["rushShow"].as_str().expect("rushShow").into(),
        seat_ids: vec![seat_label(seat)],
        idempotency_key: String::new(),
    }
}

/// A xorshift step over a per-thread state: seats for the rush, not secrets.
fn random() -> u64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let scenario = var("SCENARIO").expect("set SCENARIO");
    let addr = var("THEATRE_ADDR").unwrap_or_else(|| "127.0.0.1:50051".into());
    let vus = number("VUS", 10);
    let duration = Duration::from_secs(number("DURATION", 10));
    let seed = Arc::new(json_file("SEED"));
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("THEATRE_ADDR")
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("connecting to the service");
        clients.push(BookingServiceClient::new(channel));
    }
    let bearers: Vec<MetadataValue<Ascii>> = seed["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            let token = u.as_str().expect("a token");
            format!("Bearer {token}").parse().expect("a token is ASCII")
        })
        .collect();
    let load = Load {
        clients,
        bearers: Arc::new(bearers),
        tally: Arc::default(),
    };
    let start = Instant::now();
    let mut workers = Vec::new();
    match scenario.as_str() {
        "book" => {
            let book = Arc::new(json_file("BOOK_SEED"));
            let round = number("ROUND", 1);
            for vu in 1..=vus {
                let (load, book) = (load.clone(), book.clone());
                workers.push(tokio::spawn(async move {
                    let shows = book["bookShows"].as_array().expect("bookShows");
                    let per_show = book["bookRows"].as_u64().expect("bookRows") * 100 / 2;
                    let owned = shows.len() as u64 / vus;
                    let mut iteration = 0;
                    while start.elapsed() < duration {
                        let nth = iteration / per_show;
                        assert!(
                            nth < owned,
                            "book: VU {vu} ran out of seats; seed more BOOK_SHOWS"
                        );
                        let show = shows[(vu - 1 + vus * nth) as usize]
                            .as_str()
                            .expect("a show id");
                        let first = (iteration % per_show) * 2;
                        let request = CreateBookingRequest {
                            show_id: show.into(),
                            seat_ids: vec![seat_label(first), seat_label(first + 1)],
                            idempotency_key: format!("{round}-{vu}-{iteration}"),
                        };
                        load.book(vu, request).await;
                        iteration += 1;
                    }
                }));
            }
        }
        "rush" => {
            let iterations = number("ITERATIONS", 4);
            for vu in 1..=vus {
                let (load, seed) = (load.clone(), seed.clone());
                workers.push(tokio::spawn(async move {
                    for _ in 0..iterations {
                        load.book(vu, rush_request(&seed)).await;
                    }
                }));
            }
        }
        "rush_paced" => {
            let rate = number("RATE", 100).max(1);
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut vu = 0;
            while start.elapsed() < duration {
                ticks.tick().await;
                vu = vu % vus + 1;
                let (load, seed) = (load.clone(), seed.clone());
                workers.push(tokio::spawn(async move {
                    load.book(vu, rush_request(&seed)).await;
                }));
            }
        }
        other => panic!("SCENARIO={other}: book, rush or rush_paced"),
    }
    for worker in workers {
        worker.await.expect("a worker panicked");
    }
    let elapsed = start.elapsed();
    let mut tally = std::mem::take(&mut *load.tally.lock().unwrap());
    let count =
        |name: &str| json!({"values": {"count": tally.counts.get(name).copied().unwrap_or(0)}});
    let mut metrics = serde_json::Map::new();
    for name in [
        "calls",
        "ok",
        "failed_precondition",
        "internal_or_unavailable",
        "resource_exhausted",
        "other_errors",
    ] {
        metrics.insert(name.into(), count(name));
    }
    metrics.insert("grpc_req_duration".into(), trend(&mut tally.latencies_ms));
    metrics.insert("loser_ms".into(), trend(&mut tally.losers_ms));
    let summary = json!({
        "state": {"testRunDurationMs": elapsed.as_secs_f64() * 1000.0},
        "metrics": metrics,
    });
    let calls = tally.counts.get("calls").copied().unwrap_or(0);
    let errors = [
        "internal_or_unavailable",
        "resource_exhausted",
        "other_errors",
    ]
    .iter()
    .map(|n| tally.counts.get(n).copied().unwrap_or(0))
    .sum::<u64>();
    println!(
        "{scenario}: {}",
        json!({
            "calls_per_s": (calls as f64 / elapsed.as_secs_f64()).round(),
            "p50": summary["metrics"]["grpc_req_duration"]["values"]["p(50)"],
            "p99": summary["metrics"]["grpc_req_duration"]["values"]["p(99)"],
            "errors": errors,
        })
    );
    if let Some(out) = var("OUT") {
        std::fs::write(&out, summary.to_string()).unwrap_or_else(|e| panic!("{out}: {e}"));
    }
}
