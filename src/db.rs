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
    sqlx::{
        postgres::{PgConnectOptions, PgSslMode},
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres_rustls::MakeRustlsConnect;

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
    /// Where the seat claims may open connections of their own.
    direct: Option<Direct>,
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
            })
            .map_sqlx_postgres_opts(without_loopback_tls);
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
            .sqlx_logging(false)
            .map_sqlx_postgres_opts(without_loopback_tls);
        let direct = match conn.get_database_backend() {
            DbBackend::Postgres => Direct::for_claims(url, statements.clone()).await,
            _ => None,
        };
        Ok(Self {
            conn,
            write_gate,
            statements,
            max_connections,
            probe: sea_orm::Database::connect(probe).await?,
            direct,
        })
    }

    /// Where the seat claims open connections of their own, if they do
    /// (PostgreSQL, where [`Direct::for_claims`] allows it).
    pub fn direct(&self) -> Option<&Direct> {
        self.direct.as_ref()
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

/// Connections outside the pool, straight from tokio-postgres: the seat
/// claims' hot path (`src/booking/direct.rs`). sqlx sends a `Sync` and waits
/// for its answer each time a connection goes back to the pool, and does not
/// pipeline; tokio-postgres sends one statement per claim batch and lets
/// several ride one connection.
#[derive(Clone)]
pub struct Direct {
    config: Arc<tokio_postgres::Config>,
    /// TLS where the pool would speak it (`None`: plain text).
    tls: Option<MakeRustlsConnect>,
    statements: Arc<AtomicU64>,
}

impl Direct {
    /// The claims' own connections for `url`, if they can speak as the pool
    /// does: the URL is one tokio-postgres reads the same way (it knows none
    /// of sqlx's own parameters nor libpq's environment), it names the user,
    /// and its `sslmode` is one both speak alike (see [`Direct::from_url`]).
    /// A first connection is opened to make sure (a password sqlx would find
    /// in `PGPASSWORD`, say); otherwise the claims use the pool, and the log
    /// says why.
    pub async fn for_claims(url: &str, statements: Arc<AtomicU64>) -> Option<Self> {
        let direct = match Self::from_url(url) {
            Ok((config, tls)) => Self {
                config: Arc::new(config),
                tls: tls.then(any_certificate),
                statements,
            },
            Err(why) => {
                tracing::info!("seat claims use the connection pool: {why}");
                return None;
            }
        };
        match direct.connect().await {
            Ok(_) => {
                let tls = direct.tls.is_some();
                tracing::info!(tls, "seat claims use connections of their own");
                Some(direct)
            }
            Err(err) => {
                tracing::warn!(error = %err, "seat claims use the connection pool: a connection of their own failed");
                None
            }
        }
    }

    /// The configuration, and whether it speaks TLS, chosen as the pool
    /// chooses: plain text for `disable`, and on this host for `prefer`
    /// ([`without_loopback_tls`]); otherwise TLS for `prefer` (where the
    /// server offers it) and `require`, the certificate not verified, as
    /// sqlx (and libpq without a root certificate) does for those modes.
    /// `allow`, `verify-ca` and `verify-full` stay with the pool.
    fn from_url(url: &str) -> Result<(tokio_postgres::Config, bool), &'static str> {
        use tokio_postgres::config::SslMode;
        let pool: PgConnectOptions = url.parse().map_err(|_| "sqlx cannot read the URL either")?;
        let (mode, tls) = match without_loopback_tls(pool).get_ssl_mode() {
            PgSslMode::Disable => (SslMode::Disable, false),
            PgSslMode::Prefer => (SslMode::Prefer, true),
            PgSslMode::Require => (SslMode::Require, true),
            _ => return Err("the URL's sslmode is one only the pool speaks"),
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| "the URL has parameters only sqlx knows")?;
        if config.get_user().is_none() {
            return Err("the URL names no user");
        }
        config
            .ssl_mode(mode)
            .connect_timeout(Duration::from_secs(5));
        Ok((config, tls))
    }

    /// A new connection; its I/O runs on a task of its own until the client
    /// is dropped or the server closes it.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        fn run(
            connection: impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
        ) {
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "a seat-claim connection closed");
                }
            });
        }
        let client = match &self.tls {
            None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                run(connection);
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                run(connection);
                client
            }
        };
        Ok(client)
    }

    /// Whether these connections speak TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Counts a statement sent, with the pool's ([`Database::statements`]).
    pub fn counted(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }
}

/// TLS as sqlx speaks it for `sslmode=prefer` and `require`: encrypted, the
/// server's certificate not checked (the handshake's signatures are).
fn any_certificate() -> MakeRustlsConnect {
    use rustls::{
        DigitallySignedStruct, SignatureScheme,
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        crypto::{CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature},
        pki_types::{CertificateDer, ServerName, UnixTime},
    };

    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            signed: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                signed,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            signed: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                signed,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

/// Whether `host` names this machine: a loopback address, `localhost`, or
/// a Unix socket's directory.
pub fn on_this_host(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `sslmode=prefer` (the default) means TLS if the server offers it, which a
/// Debian server does, with its snakeoil certificate. On loopback or a Unix
/// socket that encryption protects nothing, and it cost the booking path a
/// third of its throughput here (BENCHMARKS.md, "The seat claims'
/// connections"); so on this host, and only where the URL left the choice to
/// the server, the pool speaks plain. `require` and stronger are kept as
/// asked, and so is TLS to any other host.
fn without_loopback_tls(options: PgConnectOptions) -> PgConnectOptions {
    let local = options.get_socket().is_some() || on_this_host(options.get_host());
    if local && matches!(options.get_ssl_mode(), PgSslMode::Prefer) {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode the pool will use for `url`, by the URL's own name for it.
    fn mode(url: &str) -> &'static str {
        match without_loopback_tls(url.parse().expect("a PostgreSQL URL")).get_ssl_mode() {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyFull => "verify-full",
            _ => "another",
        }
    }

    /// Whether the claims get connections of their own for `url`, and with TLS.
    fn direct(url: &str) -> Result<bool, &'static str> {
        Direct::from_url(url).map(|(_, tls)| tls)
    }

    #[test]
    fn direct_connections_only_where_they_speak_as_the_pool_would() {
        // Plain text where the pool speaks it.
        assert_eq!(direct("postgres://u@127.0.0.1:5432/db"), Ok(false));
        assert_eq!(direct("postgres://u@localhost/db"), Ok(false));
        assert_eq!(direct("postgresql://u@%2Frun%2Fpostgresql/db"), Ok(false));
        assert_eq!(
            direct("postgres://u@db.example.com/db?sslmode=disable"),
            Ok(false)
        );
        // TLS where the pool speaks it.
        assert_eq!(direct("postgres://u@db.example.com/db"), Ok(true));
        assert_eq!(
            direct("postgres://u@127.0.0.1/db?sslmode=require"),
            Ok(true)
        );
        // What only the pool speaks: a verified certificate, sqlx's own
        // parameter, a user sqlx would take from the environment.
        assert!(direct("postgres://u@db.example.com/db?sslmode=verify-full").is_err());
        assert!(direct("postgres://u@127.0.0.1/db?statement-cache-capacity=100").is_err());
        assert!(direct("postgres://127.0.0.1/db").is_err());
    }

    #[test]
    fn the_pool_skips_tls_only_on_this_host_and_only_if_the_url_allows() {
        assert_eq!(mode("postgres://u@127.0.0.1/db"), "disable");
        assert_eq!(mode("postgres://u@localhost/db"), "disable");
        assert_eq!(mode("postgres://u@[::1]:5432/db"), "disable");
        assert_eq!(mode("postgres://u@%2Frun%2Fpostgresql/db"), "disable");
        assert_eq!(mode("postgres://u@db.example.com/db"), "prefer");
        assert_eq!(mode("postgres://u@10.0.0.7/db"), "prefer");
        assert_eq!(mode("postgres://u@127.0.0.1/db?sslmode=require"), "require");
        assert_eq!(
            mode("postgres://u@db.example.com/db?sslmode=verify-full"),
            "verify-full"
        );
    }
}
