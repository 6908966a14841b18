//! Database connection (SQLite or PostgreSQL), migrations at start-up, and
//! write transactions.
use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u64,
    pub idle: u64,
    pub max: u64,
}

#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    /// SQLite allows one writer at a time. Write transactions there start with
    /// `BEGIN IMMEDIATE`, taking the write lock up front (a deferred transaction
    /// that reads and then writes can fail with SQLITE_BUSY at once instead of
    /// waiting for the busy timeout), and queue on this in-process gate first so
    /// they wait in order rather than spin in SQLite's busy handler. PostgreSQL
    /// needs neither: row locks order its writers.
    write_gate: Option<Arc<Mutex<()>>>,
    statements: Arc<AtomicU64>,
    max_connections: u32,
    /// A one-connection pool of its own for health probes, so that a probe
    /// neither waits behind a busy pool nor for the pool's acquire timeout.
    probe: DatabaseConnection,
}

impl Database {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            // Pinging on every checkout was one extra round trip per
            // statement outside a transaction (four per booking); only
            // connections idle long enough to have been cut are pinged now.
            .test_before_acquire_if_idle_for(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
        let mut conn = sea_orm::Database::connect(options).await?;
        Migrator::up(&conn, None).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let write_gate =
            (conn.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let mut probe = ConnectOptions::new(url);
        probe
            .max_connections(1)
            .min_connections(0)
            .connect_lazy(true)
            .sqlx_logging(false);
        Ok(Self {
            conn,
            write_gate,
            statements,
            max_connections,
            probe: sea_orm::Database::connect(probe).await?,
        })
    }

    /// Whether the database answers within `timeout`, on the probe's own
    /// connection (opened again as needed, so recovery is seen at once).
    pub async fn answers_within(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.probe.ping()).await,
            Ok(Ok(()))
        )
    }

    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// SQL statements executed since start (migrations excluded); the cache
    /// tests use it to prove a read was served without the database.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Connections open and idle in the pool, and its configured maximum.
    pub fn pool_usage(&self) -> PoolUsage {
        let (open, idle) = match self.backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        PoolUsage {
            open: u64::from(open),
            idle: idle as u64,
            max: u64::from(self.max_connections),
        }
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Starts a transaction that will write. Dropping it without `commit` rolls back.
    pub async fn begin_write(&self) -> Result<WriteTx, DbErr> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let txn = if self.write_gate.is_some() {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            };
            self.conn.begin_with_options(options).await?
        } else {
            self.conn.begin().await?
        };
        Ok(WriteTx { txn, _gate: gate })
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.probe.close().await?;
        self.conn.close().await
    }
}

/// A write transaction; holds the SQLite write gate until it is committed or dropped.
pub struct WriteTx {
    // Field order matters: the transaction is dropped (rolled back) before the gate opens.
    txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}
