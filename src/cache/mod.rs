//! The Redis read-through cache for catalog reads (fred).
//!
//! # Why generations
//! Deleting a key after a commit races with a reader that loaded the old row
//! just before the commit and writes it back just after the delete, leaving a
//! stale entry for a whole TTL. Instead every value key embeds the current
//! values of the generation counters its data depends on (see [`keys`]), and
//! a write `INCR`s those counters after its transaction commits. A racing
//! reader can then only store its stale value under the *old* generation,
//! which no reader asks for again; once the write RPC has returned, every read
//! uses the new key. Orphaned values simply expire with their TTL.
//!
//! If an `INCR` fails (Redis down or slow), this instance no longer trusts the
//! cache: it serves from the database until Redis answers again, and then
//! first bumps a global epoch that every key also embeds, orphaning whatever
//! was cached before the missed invalidation.
//!
//! # Never a dependency
//! Every command has a short timeout and fails fast while disconnected; any
//! Redis error is logged, counted and answered from the database. fred
//! reconnects in the background, so the cache comes back without a restart.
pub mod keys;
pub mod stats;

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use fred::{
    prelude::{
        Client, ClientLike, Config as RedisConfig, FunctionInterface, KeysInterface,
        ReconnectPolicy,
    },
    types::{Builder, Expiration, config::Options},
};
use tokio::sync::OnceCell;

pub use keys::{Entry, Generation};
pub use stats::{CacheCounts, CacheStats};

use crate::{
    config::{CacheConfig, ConnectionUrl},
    domain::Event,
    error::AppResult,
    ids::ShowId,
};

/// The cache's Redis functions, one command and one round trip each. Functions
/// rather than EVAL, because fred applies per-command options (the timeout,
/// fail-fast) to FCALL but not to EVAL. Needs Redis 7.
///
/// `theatre_cache_lookup` reads the counters (`keys`: epoch, then
/// generations), builds the value key exactly as [`Entry::key`] does from the
/// stem in `args[1]` (a missing counter is 0) and fetches it.
///
/// `theatre_cache_bump` increments every counter in `keys` and sets each one's
/// expiry to `args[1]` milliseconds: an invalidation is one command, where a
/// pipeline of INCR and PEXPIRE pairs was four commands and two to three socket
/// writes per booking.
const LIBRARY: &str = r#"#!lua name=theatre_cache
redis.register_function('theatre_cache_lookup', function(keys, args)
  local counters = redis.call('MGET', unpack(keys))
  for i = 1, #counters do
    if not counters[i] then counters[i] = '0' end
  end
  local key = args[1] .. 'e' .. counters[1] .. ':g' .. table.concat(counters, '.', 2)
  return {key, redis.call('GET', key)}
end)
redis.register_function('theatre_cache_bump', function(keys, args)
  for i = 1, #keys do
    redis.call('INCR', keys[i])
    redis.call('PEXPIRE', keys[i], args[1])
  end
  return #keys
end)
"#;
const LOOKUP_FUNCTION: &str = "theatre_cache_lookup";
const BUMP_FUNCTION: &str = "theatre_cache_bump";

/// Generation keys outlive every value TTL by far, so a counter that expires
/// after a day without writes cannot make an old value key current again.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

type Flight = Arc<OnceCell<Vec<u8>>>;

struct Redis {
    client: Client,
    options: Options,
    config: CacheConfig,
    /// In-progress loads by value key: one database query per key at a time.
    flights: Mutex<HashMap<String, Flight>>,
    /// Set when an invalidation failed; see the module docs.
    untrusted: AtomicBool,
}

#[derive(Clone)]
pub struct Cache {
    redis: Option<Arc<Redis>>,
    stats: Arc<CacheStats>,
    /// Without Redis: how many writes of this instance freed seats, the
    /// stand-in for every [`Generation::FreedOf`] (one instance per database).
    freed_here: Arc<AtomicI64>,
}

impl Cache {
    /// Caching off: every read goes to the database.
    pub fn disabled() -> Self {
        Self {
            redis: None,
            stats: Arc::default(),
            freed_here: Arc::default(),
        }
    }

    /// Connects in the background; the service starts whether or not Redis is up.
    pub async fn connect(config: &CacheConfig) -> Result<Self, fred::error::Error> {
        let Some(url) = config.redis_url.as_ref().map(ConnectionUrl::expose) else {
            return Ok(Self::disabled());
        };
        let mut redis_config = RedisConfig::from_url(url)?;
        redis_config.fail_fast = false;
        let client = Builder::from_config(redis_config)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_millis(500);
                c.internal_command_timeout = Duration::from_millis(500);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build()?;
        client.connect();
        if tokio::time::timeout(Duration::from_secs(1), client.wait_for_connect())
            .await
            .map_or(true, |r| r.is_err())
        {
            tracing::warn!("Redis is not reachable yet; serving from the database until it is");
        }
        let options = Options {
            fail_fast: true,
            timeout: Some(config.timeout),
            max_attempts: Some(1),
            ..Default::default()
        };
        Ok(Self {
            redis: Some(Arc::new(Redis {
                client,
                options,
                config: config.clone(),
                flights: Mutex::default(),
                untrusted: AtomicBool::new(false),
            })),
            stats: Arc::default(),
            freed_here: Arc::default(),
        })
    }

    pub fn stats(&self) -> CacheCounts {
        self.stats.snapshot()
    }

    /// Whether Redis answers a PING within the command timeout.
    pub async fn ping(&self) -> bool {
        match &self.redis {
            Some(redis) => redis
                .client
                .with_options(&redis.options)
                .ping::<()>(None)
                .await
                .is_ok(),
            None => false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// Returns the cached response for `entry`, or loads, caches and returns it.
    /// Errors from `load` are passed through and never cached.
    pub async fn get_or_load<M, F, Fut>(&self, entry: Entry, load: F) -> AppResult<M>
    where
        M: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<M>>,
    {
        let Some(redis) = &self.redis else {
            return load().await;
        };
        let key = match redis.lookup(&entry).await {
            Ok(Lookup::Hit(bytes)) => match M::decode(bytes.as_slice()) {
                Ok(message) => {
                    self.stats.hit();
                    return Ok(message);
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?entry, "undecodable cache entry; reloading");
                    self.stats.error();
                    return load().await;
                }
            },
            Ok(Lookup::Miss(key)) => key,
            Ok(Lookup::Bypass) => {
                tracing::warn!(
                    "Redis still unreachable after a missed invalidation; serving from the database"
                );
                self.stats.error();
                return load().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis read failed; serving from the database");
                self.stats.error();
                return load().await;
            }
        };
        self.stats.miss();
        let flight = redis.join_flight(&key);
        let mut led = false;
        let result = flight
            .get_or_try_init(|| async {
                led = true;
                // A flight that finished just before this one started has
                // already stored the value: check again before querying.
                if let Ok(Some(bytes)) = redis.fetch(&key).await {
                    return Ok(bytes);
                }
                let message = load().await?;
                let bytes = message.encode_to_vec();
                if let Err(e) = redis.store(&key, &bytes, entry.ttl(&redis.config)).await {
                    tracing::warn!(error = %e, "Redis write failed; value not cached");
                    self.stats.error();
                }
                Ok::<_, crate::error::AppError>(bytes)
            })
            .await
            .map(|bytes| M::decode(bytes.as_slice()));
        redis.leave_flight(&key, &flight);
        if !led {
            self.stats.coalesced();
        }
        match result {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(e)) => Err(crate::error::AppError::Internal(format!(
                "cached value does not decode: {e}"
            ))),
            Err(e) => Err(e),
        }
    }

    /// The counters that say whether seats of `show` were freed since they
    /// were last read: Redis's epoch and [`Generation::FreedOf`] the show, or
    /// without Redis this instance's own count. `None` when that cannot be
    /// known now (Redis unreachable, or an invalidation was missed): then
    /// nothing may be refused on the strength of an earlier reading.
    ///
    /// A write bumps them after it commits and before it answers, so a
    /// reading taken after a cancellation has returned always differs from
    /// one taken before it.
    pub async fn freed_version(&self, show: ShowId) -> Option<Vec<i64>> {
        let Some(redis) = &self.redis else {
            return Some(vec![self.freed_here.load(Ordering::SeqCst)]);
        };
        // A missed invalidation may have been a freed seat's: the epoch bump
        // that recovers from it also moves every reading taken before.
        if !redis.trusted().await {
            return None;
        }
        let counters = vec![
            keys::epoch_key(redis.prefix()),
            Generation::FreedOf(show).key(redis.prefix()),
        ];
        match redis
            .client
            .with_options(&redis.options)
            .mget::<Vec<Option<i64>>, _>(counters)
            .await
        {
            Ok(values) => Some(values.into_iter().map(Option::unwrap_or_default).collect()),
            Err(e) => {
                tracing::warn!(error = %e, "Redis read failed; no booking refused from memory");
                self.stats.error();
                None
            }
        }
    }

    /// Marks everything `events` made stale (`Generation::stale_after`).
    /// `store::Store::write` calls it once the events' transaction has committed.
    pub async fn invalidate(&self, events: &[Event]) {
        let generations = Generation::stale_after_all(events);
        let Some(redis) = &self.redis else {
            if generations
                .iter()
                .any(|g| matches!(g, Generation::FreedOf(_)))
            {
                self.freed_here.fetch_add(1, Ordering::SeqCst);
            }
            return;
        };
        if generations.is_empty() {
            return;
        }
        self.stats.invalidation();
        if let Err(e) = redis.bump(&generations).await {
            tracing::warn!(error = %e, "cache invalidation failed; cache bypassed until Redis recovers");
            self.stats.error();
            redis.untrusted.store(true, Ordering::SeqCst);
        }
    }
}

enum Lookup {
    Hit(Vec<u8>),
    Miss(String),
    /// The cache is untrusted and Redis still unreachable.
    Bypass,
}

impl Redis {
    fn prefix(&self) -> &str {
        &self.config.prefix
    }

    async fn lookup(&self, entry: &Entry) -> Result<Lookup, fred::error::Error> {
        if !self.trusted().await {
            return Ok(Lookup::Bypass);
        }
        let mut counter_keys = vec![keys::epoch_key(self.prefix())];
        counter_keys.extend(entry.generations().iter().map(|g| g.key(self.prefix())));
        let stem = entry.key_stem(self.prefix());
        let (key, value): (String, Option<Vec<u8>>) =
            self.fcall(LOOKUP_FUNCTION, counter_keys, stem).await?;
        Ok(match value {
            Some(bytes) => Lookup::Hit(bytes),
            None => Lookup::Miss(key),
        })
    }

    /// Whether the cache can be trusted now. After a missed invalidation it
    /// is not until Redis answers again; then the epoch every key embeds is
    /// bumped first, orphaning everything cached before the miss.
    async fn trusted(&self) -> bool {
        if !self.untrusted.load(Ordering::SeqCst) {
            return true;
        }
        let client = self.client.with_options(&self.options);
        match client.incr::<i64, _>(keys::epoch_key(self.prefix())).await {
            Ok(_) => {
                self.untrusted.store(false, Ordering::SeqCst);
                tracing::info!("Redis is back; cache epoch bumped, caching resumed");
                true
            }
            Err(_) => false,
        }
    }

    async fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, fred::error::Error> {
        self.client.with_options(&self.options).get(key).await
    }

    async fn store(
        &self,
        key: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), fred::error::Error> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.client
            .with_options(&self.options)
            .set::<(), _, _>(key, bytes, Some(Expiration::PX(ttl_ms)), None, false)
            .await
    }

    /// One command for all counters: INCR and PEXPIRE each.
    async fn bump(&self, generations: &[Generation]) -> Result<(), fred::error::Error> {
        let keys: Vec<String> = generations.iter().map(|g| g.key(self.prefix())).collect();
        let ttl_ms = GENERATION_TTL.as_millis() as i64;
        self.fcall::<i64>(BUMP_FUNCTION, keys, ttl_ms)
            .await
            .map(drop)
    }

    /// Calls one of [`LIBRARY`]'s functions; a Redis that does not have the
    /// library (new, flushed, or holding an older version) gets it loaded
    /// once, and the call is repeated.
    async fn fcall<R>(
        &self,
        function: &str,
        keys: Vec<String>,
        args: impl Into<fred::types::Value> + Clone,
    ) -> Result<R, fred::error::Error>
    where
        R: fred::types::FromValue,
    {
        let client = self.client.with_options(&self.options);
        match client
            .fcall(function, keys.clone(), args.clone().into())
            .await
        {
            Err(e) if e.details().contains("Function not found") => {
                client.function_load::<String, _>(true, LIBRARY).await?;
                client.fcall(function, keys, args.into()).await
            }
            result => result,
        }
    }

    fn join_flight(&self, key: &str) -> Flight {
        let mut flights = self.flights.lock().expect("flight map poisoned");
        flights.entry(key.to_owned()).or_default().clone()
    }

    fn leave_flight(&self, key: &str, flight: &Flight) {
        let mut flights = self.flights.lock().expect("flight map poisoned");
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) && flight.initialized() {
            flights.remove(key);
        }
    }
}
