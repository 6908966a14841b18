//! The unit of work: every write goes through [`Store::write`], which runs it
//! in one transaction, appends the domain events it recorded to the outbox in
//! that same transaction, commits, and then tells the cache what the events
//! made stale. A write path therefore cannot forget its outbox row or its
//! cache invalidation, and one that records no event at all is refused (rolled
//! back, `INTERNAL`): every write is news to someone, and a test of the path
//! sees it fail.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use crate::{
    cache::Cache,
    clock::Clock,
    db::{Database, WriteTx},
    domain::Event,
    error::{AppError, AppResult},
    events::outbox,
};

/// The database, the cache and the clock, as the handlers use them.
#[derive(Clone)]
pub struct Store {
    db: Database,
    cache: Cache,
    clock: Arc<dyn Clock>,
}

/// A write in progress: the transaction, the moment it is made at, and the
/// events it has recorded so far.
pub struct Tx {
    txn: WriteTx,
    now: DateTime<Utc>,
    events: Vec<Event>,
}

impl Tx {
    /// The moment this write happens at (one per write: rows and events agree).
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Records what this write did; it reaches the outbox and the cache only
    /// if the write commits.
    pub fn record(&mut self, event: Event) {
        self.events.push(event);
    }

    /// The transaction, for queries.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Store {
    pub fn new(db: Database, cache: Cache, clock: Arc<dyn Clock>) -> Self {
        Self { db, cache, clock }
    }

    /// The pool, for reads outside a write.
    pub fn reader(&self) -> &DatabaseConnection {
        self.db.conn()
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn backend(&self) -> sea_orm::DbBackend {
        self.db.backend()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `work` as one transaction; see the module docs. An error from
    /// `work` rolls everything back, events included.
    pub async fn write<T>(&self, work: impl AsyncFnOnce(&mut Tx) -> AppResult<T>) -> AppResult<T> {
        self.write_at(self.clock.now(), work).await
    }

    /// [`Store::write`] made at `now`, for a write whose values were prepared
    /// before its transaction began.
    pub async fn write_at<T>(
        &self,
        now: DateTime<Utc>,
        work: impl AsyncFnOnce(&mut Tx) -> AppResult<T>,
    ) -> AppResult<T> {
        let mut tx = Tx {
            txn: self.db.begin_write().await?,
            now,
            events: Vec::new(),
        };
        let value = work(&mut tx).await?;
        let Tx { txn, now, events } = tx;
        if events.is_empty() {
            return Err(AppError::Internal("a write recorded no event".into()));
        }
        outbox::append(&*txn, now, &events).await?;
        txn.commit().await?;
        self.cache.invalidate(&events).await;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;
    use crate::clock::SystemClock;

    async fn store() -> Store {
        let db = Database::connect("sqlite::memory:", 1).await.unwrap();
        Store::new(db, Cache::disabled(), Arc::new(SystemClock))
    }

    async fn theatres(store: &Store) -> i64 {
        let row = store
            .reader()
            .query_one_raw(Statement::from_string(
                store.backend(),
                "SELECT COUNT(*) AS n FROM theatres",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    #[tokio::test]
    async fn a_write_that_records_no_event_is_refused_and_rolled_back() {
        let store = store().await;
        let result = store
            .write(async |tx| {
                let insert = "INSERT INTO theatres (id, name, city, created_at) \
                              VALUES ('00000000-0000-7000-8000-000000000001', 'Odeon', 'Lisbon', '2026-01-01T00:00:00Z')";
                tx.conn().execute_unprepared(insert).await?;
                Ok(())
            })
            .await;
        assert!(matches!(result, Err(AppError::Internal(_))), "{result:?}");
        assert_eq!(theatres(&store).await, 0, "the write was rolled back");
    }
}
