//! Publishes outbox rows to Kafka (rskafka), in order per key, at least once.
//!
//! Each pass takes up to a batch of unpublished rows in `seq` order, produces
//! them partition by partition (one produce call per partition, rows in order),
//! and marks as published only the rows whose partition acknowledged them. A
//! failed partition keeps its rows for the next pass, so a key's events are
//! never published out of order.
//!
//! Several instances (PostgreSQL): a pass runs inside a transaction that holds
//! a transaction-scoped advisory lock, so passes never overlap and order holds
//! across instances. A crash between the broker's acknowledgement and the
//! commit republishes those rows: consumers dedupe on the event id. SQLite: one instance; rows are read, published, then
//! marked in a short write transaction, so the relay never holds the single
//! SQLite writer while talking to Kafka.
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use rskafka::{
    BackoffConfig,
    client::{
        Client, ClientBuilder,
        partition::{Compression, PartitionClient, UnknownTopicHandling},
    },
    record::Record,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
    sea_query::{Expr, PgFunc},
};
use tokio::sync::watch;

use super::partition::partition_for;
use crate::{config::KafkaConfig, db::Database, entity::outbox_event};

/// Identifies the relay's advisory lock among the database's advisory locks.
const RELAY_LOCK_KEY: i64 = 0x0074_6865_6174_7265; // "theatre" in ASCII
/// Takes [`RELAY_LOCK_KEY`] for the pass's transaction.
const RELAY_LOCK_SQL: &str = include_str!("sql/relay_lock.sql");
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Relay gauges and counters, read by tests and the metrics exporter.
#[derive(Debug, Default)]
pub struct RelayStats {
    published: AtomicU64,
    backlog: AtomicU64,
    failures: AtomicU64,
    /// Milliseconds between an event's write and its acknowledgement (last batch).
    lag_ms: AtomicU64,
    /// Whether the last pass reached the broker.
    connected: AtomicBool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    pub published: u64,
    pub backlog: u64,
    pub failures: u64,
    pub lag_ms: u64,
}

impl RelayStats {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> RelayCounts {
        RelayCounts {
            published: self.published.load(Ordering::Relaxed),
            backlog: self.backlog.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            lag_ms: self.lag_ms.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("kafka: {0}")]
    Kafka(#[from] rskafka::client::error::Error),
}

/// Connected producers, one per topic partition.
struct Producers {
    _client: Client,
    partitions: BTreeMap<String, Vec<PartitionClient>>,
}

pub struct Relay {
    db: Database,
    config: KafkaConfig,
    stats: Arc<RelayStats>,
}

impl Relay {
    pub fn new(db: Database, config: KafkaConfig) -> Self {
        Self {
            db,
            config,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Runs until `stop` turns true, then makes one last pass to flush.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut producers: Option<Producers> = None;
        let mut backoff = self.config.poll_interval;
        let mut last_prune = tokio::time::Instant::now();
        loop {
            let stopping = *stop.borrow();
            let pass = async {
                if producers.is_none() {
                    producers = Some(connect(&self.config).await?);
                }
                self.pass(producers.as_ref().expect("connected above"))
                    .await
            };
            let wait = match pass.await {
                Ok(published) => {
                    self.stats.connected.store(true, Ordering::Relaxed);
                    backoff = self.config.poll_interval;
                    if published as u64 >= self.config.batch_size {
                        self.refresh_backlog().await;
                        Duration::ZERO
                    } else {
                        self.config.poll_interval
                    }
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay pass failed");
                    if matches!(e, RelayError::Kafka(_)) {
                        producers = None;
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                    self.refresh_backlog().await;
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            if last_prune.elapsed() >= PRUNE_EVERY.min(self.config.retention) {
                last_prune = tokio::time::Instant::now();
                self.prune().await;
            }
            if stopping {
                return;
            }
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// One batch; returns how many rows were published.
    async fn pass(&self, producers: &Producers) -> Result<usize, RelayError> {
        if self.db.backend() == DbBackend::Postgres {
            let tx = self.db.conn().begin().await?;
            let lock = Statement::from_sql_and_values(
                DbBackend::Postgres,
                RELAY_LOCK_SQL,
                [RELAY_LOCK_KEY.into()],
            );
            let leader = tx
                .query_one_raw(lock)
                .await?
                .map(|row| row.try_get::<bool>("", "leader"))
                .transpose()?
                .unwrap_or(false);
            if !leader {
                // Another instance is relaying; its pass knows the backlog, this one counts.
                self.refresh_backlog().await;
                return Ok(0);
            }
            let rows = self.claim(&tx).await?;
            let (acked, failure) = self.publish(producers, &rows).await;
            mark_published(&tx, &acked).await?;
            tx.commit().await?;
            self.record(&rows, &acked);
            failure.map_or(Ok(acked.len()), |e| Err(e.into()))
        } else {
            let rows = self.claim(self.db.conn()).await?;
            let (acked, failure) = self.publish(producers, &rows).await;
            if !acked.is_empty() {
                let tx = self.db.begin_write().await?;
                mark_published(&*tx, &acked).await?;
                tx.commit().await?;
            }
            self.record(&rows, &acked);
            failure.map_or(Ok(acked.len()), |e| Err(e.into()))
        }
    }

    /// The oldest unpublished rows, up to a batch. No row locks: on PostgreSQL
    /// the pass's advisory lock already keeps other instances' passes out, and
    /// nothing else writes unpublished rows (locking each one cost a WAL record
    /// per event).
    async fn claim(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<outbox_event::Model>, sea_orm::DbErr> {
        outbox_event::Entity::find()
            .filter(outbox_event::Column::PublishedAt.is_null())
            .order_by_asc(outbox_event::Column::Seq)
            .limit(self.config.batch_size)
            .all(conn)
            .await
    }

    fn topic(&self, row: &outbox_event::Model) -> &str {
        match row.aggregate_type.as_str() {
            "booking" => &self.config.bookings_topic,
            _ => &self.config.catalog_topic,
        }
    }

    /// Produces `rows` partition by partition; returns the acknowledged seqs
    /// and the first failure, if any.
    async fn publish(
        &self,
        producers: &Producers,
        rows: &[outbox_event::Model],
    ) -> (Vec<i64>, Option<rskafka::client::error::Error>) {
        let mut groups: BTreeMap<(&str, i32), Vec<&outbox_event::Model>> = BTreeMap::new();
        for row in rows {
            let topic = self.topic(row);
            let count = producers
                .partitions
                .get(topic)
                .map_or(1, |p| p.len() as i32);
            let partition = partition_for(row.aggregate_id.as_bytes(), count);
            groups.entry((topic, partition)).or_default().push(row);
        }
        let mut acked = Vec::with_capacity(rows.len());
        let mut failure = None;
        for ((topic, partition), group) in groups {
            let Some(client) = producers
                .partitions
                .get(topic)
                .and_then(|p| p.get(partition as usize))
            else {
                continue;
            };
            let records = group.iter().map(|row| to_record(row)).collect();
            match client.produce(records, Compression::NoCompression).await {
                Ok(_) => acked.extend(group.iter().map(|row| row.seq)),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        (acked, failure)
    }

    fn record(&self, rows: &[outbox_event::Model], acked: &[i64]) {
        self.stats
            .published
            .fetch_add(acked.len() as u64, Ordering::Relaxed);
        // A short batch was every unpublished row, so what is left is known
        // without a COUNT; after a full batch the loop counts.
        if (rows.len() as u64) < self.config.batch_size {
            let left = (rows.len() - acked.len()) as u64;
            self.stats.backlog.store(left, Ordering::Relaxed);
        }
        if let Some(oldest) = rows
            .iter()
            .filter(|r| acked.contains(&r.seq))
            .map(|r| r.created_at)
            .min()
        {
            let lag = (Utc::now() - oldest).num_milliseconds().max(0) as u64;
            self.stats.lag_ms.store(lag, Ordering::Relaxed);
        }
    }

    async fn refresh_backlog(&self) {
        if let Ok(pending) = super::outbox::unpublished(self.db.conn()).await {
            self.stats.backlog.store(pending.count, Ordering::Relaxed);
        }
    }

    async fn prune(&self) {
        let Ok(retention) = chrono::Duration::from_std(self.config.retention) else {
            return;
        };
        let cutoff = Utc::now() - retention;
        let result = async {
            let tx = self.db.begin_write().await?;
            let deleted = outbox_event::Entity::delete_many()
                .filter(outbox_event::Column::PublishedAt.lt(cutoff))
                .exec(&*tx)
                .await?
                .rows_affected;
            tx.commit().await?;
            Ok::<_, sea_orm::DbErr>(deleted)
        }
        .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned published outbox events"),
            Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
        }
    }
}

async fn mark_published(conn: &impl ConnectionTrait, seqs: &[i64]) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sea_query::ExprTrait;
    if seqs.is_empty() {
        return Ok(());
    }
    // PostgreSQL gets the seqs as one array parameter: an IN list of a batch's
    // length would be a different statement for every batch size, each one
    // prepared anew and crowding the connection's statement cache.
    let which = match conn.get_database_backend() {
        DbBackend::Postgres => Expr::col(outbox_event::Column::Seq).eq(PgFunc::any(seqs.to_vec())),
        _ => Expr::col(outbox_event::Column::Seq).is_in(seqs.iter().copied()),
    };
    outbox_event::Entity::update_many()
        .col_expr(outbox_event::Column::PublishedAt, Expr::value(Utc::now()))
        .filter(which)
        .exec(conn)
        .await?;
    Ok(())
}

/// What a record's value is, for consumers and schema-aware tooling that do
/// not know the topic's contract.
pub const CONTENT_TYPE: &str = "application/x-protobuf; messageType=theatre.v1.EventEnvelope";

fn to_record(row: &outbox_event::Model) -> Record {
    Record {
        key: Some(row.aggregate_id.clone().into_bytes()),
        value: Some(row.payload.clone()),
        headers: BTreeMap::from([
            ("event-type".to_owned(), row.event_type.clone().into_bytes()),
            ("event-id".to_owned(), row.id.to_string().into_bytes()),
            ("content-type".to_owned(), CONTENT_TYPE.as_bytes().to_vec()),
        ]),
        timestamp: row.created_at,
    }
}

/// Connects, creates missing topics, and opens a producer per partition.
async fn connect(config: &KafkaConfig) -> Result<Producers, RelayError> {
    let client = ClientBuilder::new(config.brokers.clone())
        .client_id("theatre-outbox-relay")
        .backoff_config(BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
            deadline: Some(Duration::from_secs(5)),
        })
        .build()
        .await?;
    let existing = client.list_topics().await?;
    let controller = client.controller_client()?;
    for topic in [&config.catalog_topic, &config.bookings_topic] {
        if !existing.iter().any(|t| &t.name == topic) {
            match controller
                .create_topic(topic.as_str(), config.partitions, 1, 5_000)
                .await
            {
                Ok(()) => tracing::info!(%topic, partitions = config.partitions, "created topic"),
                // Another instance may have created it in between.
                Err(e) if e.to_string().contains("TopicAlreadyExists") => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let topics = client.list_topics().await?;
    let mut partitions = BTreeMap::new();
    for topic in [&config.catalog_topic, &config.bookings_topic] {
        let count = topics
            .iter()
            .find(|t| &t.name == topic)
            .map_or(config.partitions, |t| t.partitions.len() as i32);
        let mut clients = Vec::with_capacity(count as usize);
        for partition in 0..count {
            clients.push(
                client
                    .partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry)
                    .await?,
            );
        }
        partitions.insert(topic.clone(), clients);
    }
    tracing::info!(brokers = ?config.brokers, "outbox relay connected to Kafka");
    Ok(Producers {
        _client: client,
        partitions,
    })
}
