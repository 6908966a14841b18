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
//! # This instance's copy
//! Hits are also kept in this instance's memory ([`near`]), answered without
//! a Redis round trip and dropped as exactly as the Redis entries go stale:
//! a write waits for every other instance to drop its copies before it
//! answers.
//!
//! # Never a dependency
//! Every command has a short timeout and fails fast while disconnected; any
//! Redis error is logged, counted and answered from the database. fred
//! reconnects in the background, so the cache comes back without a restart.
pub mod keys;
pub mod near;
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
        Client, ClientLike, Config as RedisConfig, EventInterface, FunctionInterface,
        KeysInterface, PubsubInterface, ReconnectPolicy,
    },
    types::{Builder, Expiration, config::Options},
};
use tokio::sync::OnceCell;

use near::Near;

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
/// fail-fast) to FCALL but not to EVAL. Needs Redis 7. Loaded (replacing an
/// older version) when the instance starts, and by any call that finds a
/// function missing.
///
/// `theatre_cache_lookup` reads the counters (`keys`: epoch, then
/// generations), builds the value key exactly as [`Entry::key`] does from the
/// stem in `args[1]` (a missing counter is 0) and fetches it.
///
/// `theatre_cache_bump` increments every counter in `keys` and sets each one's
/// expiry to `args[1]` milliseconds. Kept for instances of the previous
/// release during an upgrade; this one announces instead.
///
/// `theatre_cache_announce` is an invalidation, one command per write: it
/// bumps the counters after the first two keys (the near cache's members and
/// sequence) as `theatre_cache_bump` does, then, if `args[5]` names copies
/// to drop and members other than `args[2]` hold current leases, publishes
/// on `args[3]` "i <seq> <writer> <token args[4]> <codes>" and returns those
/// members with the milliseconds their leases have left.
///
/// `theatre_cache_lease` renews member `args[1]`'s lease for `args[2]`
/// milliseconds and publishes "h <seq> <member> <nonce args[4]>", which comes
/// back to the member after every invalidation published before it.
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
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.register_function('theatre_cache_announce', function(keys, args)
  for i = 3, #keys do
    redis.call('INCR', keys[i])
    redis.call('PEXPIRE', keys[i], args[1])
  end
  local others = {}
  if args[5] == '' then return others end
  local now = now_ms()
  local live = redis.call('ZRANGEBYSCORE', keys[1], '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #live, 2 do
    if live[i] ~= args[2] then
      others[#others + 1] = live[i]
      others[#others + 1] = tonumber(live[i + 1]) - now
    end
  end
  if #others > 0 then
    local seq = redis.call('INCR', keys[2])
    redis.call('PUBLISH', args[3], 'i ' .. seq .. ' ' .. args[2] .. ' ' .. args[4] .. ' ' .. args[5])
  end
  return others
end)
redis.register_function('theatre_cache_lease', function(keys, args)
  local now = now_ms()
  redis.call('ZADD', keys[1], now + tonumber(args[2]), args[1])
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now - 60000)
  redis.call('PEXPIRE', keys[1], 86400000)
  local seq = redis.call('GET', keys[2]) or '0'
  redis.call('PUBLISH', args[3], 'h ' .. seq .. ' ' .. args[1] .. ' ' .. args[4])
  return 1
end)
redis.register_function('theatre_cache_leave', function(keys, args)
  return redis.call('ZREM', keys[1], args[1])
end)
"#;
const LOOKUP_FUNCTION: &str = "theatre_cache_lookup";
const ANNOUNCE_FUNCTION: &str = "theatre_cache_announce";
const LEASE_FUNCTION: &str = "theatre_cache_lease";
const LEAVE_FUNCTION: &str = "theatre_cache_leave";

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
    /// This instance's copies; `None` with `THEATRE_CACHE_NEAR_ENTRIES=0`.
    near: Option<Arc<Near>>,
    /// When the first invalidation of the current outage failed.
    failing_since: Mutex<Option<tokio::time::Instant>>,
    stats: Arc<CacheStats>,
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
        let client = Builder::from_config(redis_config.clone())
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
        } else if let Err(e) = client
            .with_options(&Options {
                fail_fast: true,
                timeout: Some(Duration::from_secs(1)),
                ..Default::default()
            })
            .function_load::<String, _>(true, LIBRARY)
            .await
        {
            // Loaded by the first call that misses a function instead.
            tracing::warn!(error = %e, "could not load the cache's Redis functions yet");
        }
        let options = Options {
            fail_fast: true,
            timeout: Some(config.timeout),
            max_attempts: Some(1),
            ..Default::default()
        };
        let near = (config.near_entries > 0)
            .then(|| Arc::new(Near::new(&config.prefix, config.near_entries)));
        let stats = Arc::<CacheStats>::default();
        let redis = Arc::new(Redis {
            client,
            options,
            config: config.clone(),
            flights: Mutex::default(),
            untrusted: AtomicBool::new(false),
            near,
            failing_since: Mutex::default(),
            stats: stats.clone(),
        });
        if redis.near.is_some() {
            let subscriber = Builder::from_config(redis_config)
                .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
                .build_subscriber_client()?;
            tokio::spawn(redis.clone().listen(subscriber));
        }
        Ok(Self {
            redis: Some(redis),
            stats,
            freed_here: Arc::default(),
        })
    }

    /// Gives up this instance's lease, so other instances' writes stop
    /// waiting for it (at shutdown).
    pub async fn leave(&self) {
        let Some(redis) = &self.redis else { return };
        let Some(near) = &redis.near else { return };
        near.stop();
        let members = redis.members_key();
        if let Err(e) = redis
            .fcall::<i64>(LEAVE_FUNCTION, vec![members], near.member().to_owned())
            .await
        {
            tracing::warn!(error = %e, "could not give up the near cache's lease; it runs out by itself");
        }
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

    /// This instance's copy of `entry`, encoded, when one may be served now
    /// (`catalog::near_reads` answers with it before tonic decodes the call).
    pub fn near_copy(&self, entry: &Entry) -> Option<bytes::Bytes> {
        let redis = self.redis.as_ref()?;
        if redis.untrusted.load(Ordering::SeqCst) {
            return None;
        }
        let copy = redis.near.as_ref()?.get(entry)?;
        self.stats.near_hit();
        Some(copy)
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
        if let Some(copy) = self.near_copy(&entry)
            && let Ok(message) = M::decode(copy)
        {
            return Ok(message);
        }
        let Some(near) = &redis.near else {
            return self.shared(redis, &entry, load).await.map(|(m, _)| m);
        };
        let stamp = near.stamp(&entry);
        let (message, encoded) = self.shared(redis, &entry, load).await?;
        if let Some(encoded) = encoded {
            let ttl = entry.ttl(&redis.config);
            near.put(entry, stamp, ttl, encoded);
        }
        Ok(message)
    }

    /// The Redis tier of [`Self::get_or_load`]: the response and, when it
    /// came through the cache rather than around it, its encoding (for this
    /// instance's copy).
    async fn shared<M, F, Fut>(
        &self,
        redis: &Redis,
        entry: &Entry,
        load: F,
    ) -> AppResult<(M, Option<bytes::Bytes>)>
    where
        M: prost::Message + Default,
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<M>>,
    {
        let key = match redis.lookup(entry).await {
            Ok(Lookup::Hit(bytes)) => match M::decode(bytes.as_slice()) {
                Ok(message) => {
                    self.stats.hit();
                    return Ok((message, Some(bytes.into())));
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?entry, "undecodable cache entry; reloading");
                    self.stats.error();
                    return Ok((load().await?, None));
                }
            },
            Ok(Lookup::Miss(key)) => key,
            Ok(Lookup::Bypass) => {
                tracing::warn!(
                    "Redis still unreachable after a missed invalidation; serving from the database"
                );
                self.stats.error();
                return Ok((load().await?, None));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis read failed; serving from the database");
                self.stats.error();
                return Ok((load().await?, None));
            }
        };
        self.stats.miss();
        let flight = redis.join_flight(&key);
        let mut led = false;
        let mut stored = true;
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
                    stored = false;
                }
                Ok::<_, crate::error::AppError>(bytes)
            })
            .await
            .map(|bytes| (M::decode(bytes.as_slice()), bytes));
        redis.leave_flight(&key, &flight);
        if !led {
            self.stats.coalesced();
        }
        match result {
            Ok((Ok(message), bytes)) => Ok((
                message,
                stored.then(|| bytes::Bytes::copy_from_slice(bytes)),
            )),
            Ok((Err(e), _)) => Err(crate::error::AppError::Internal(format!(
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
        let keys: Vec<String> = generations.iter().map(|g| g.key(redis.prefix())).collect();
        let codes = near::codes(&generations);
        if let Err(e) = redis.announce(keys, &codes).await {
            tracing::warn!(error = %e, "cache invalidation failed; cache bypassed until Redis recovers");
            self.stats.error();
            redis.untrusted.store(true, Ordering::SeqCst);
            redis.outlive_leases().await;
        }
        // After Redis moved: a copy fetched before now carries an old stamp.
        if let Some(near) = &redis.near {
            near.drop_codes(&codes);
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
        match self
            .announce(vec![keys::epoch_key(self.prefix())], near::ALL)
            .await
        {
            Ok(()) => {
                if let Some(near) = &self.near {
                    near.drop_codes(near::ALL);
                }
                *self.failing_since.lock().expect("poisoned") = None;
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

    fn members_key(&self) -> String {
        format!("{}near:members", self.prefix())
    }

    fn sequence_key(&self) -> String {
        format!("{}near:seq", self.prefix())
    }

    /// Bumps the counters `keys` (INCR and PEXPIRE each) in one command and,
    /// when other instances hold copies, waits until they dropped those that
    /// `codes` name (see [`near`]).
    async fn announce(&self, keys: Vec<String>, codes: &str) -> Result<(), fred::error::Error> {
        let ttl_ms = GENERATION_TTL.as_millis() as i64;
        let (member, codes, expected) = match &self.near {
            Some(near) => (near.member().to_owned(), codes, Some(near.expect_acks())),
            None => (String::new(), "", None),
        };
        let token = expected.as_ref().map_or(0, |e| e.token);
        let keys = [vec![self.members_key(), self.sequence_key()], keys].concat();
        let args = fred::types::Value::Array(vec![
            ttl_ms.into(),
            member.into(),
            self.near
                .as_ref()
                .map(|n| n.channel())
                .unwrap_or_default()
                .into(),
            token.to_string().into(),
            codes.into(),
        ]);
        let others: Vec<fred::types::Value> = self.fcall(ANNOUNCE_FUNCTION, keys, args).await?;
        let others: Vec<(String, u64)> = others
            .chunks_exact(2)
            .filter_map(|pair| Some((pair[0].as_string()?, pair[1].as_u64()?)))
            .collect();
        if let Some(expected) = expected
            && !others.is_empty()
        {
            let lapsed = expected.wait(others).await;
            self.stats.near_wait(lapsed);
        }
        Ok(())
    }

    /// After an invalidation that could not be announced, other instances
    /// may hold copies it should have dropped, and only their leases end
    /// them: the write answers once every lease taken before the outage has
    /// run out (at most [`near::LEASE`] after its first failed invalidation).
    /// Alone (no other instance heard on the channel), it answers at once.
    async fn outlive_leases(&self) {
        if !self
            .near
            .as_ref()
            .is_some_and(|near| near.others_may_hold_copies())
        {
            return;
        }
        let since = *self
            .failing_since
            .lock()
            .expect("poisoned")
            .get_or_insert_with(tokio::time::Instant::now);
        tokio::time::sleep_until(since + near::LEASE).await;
    }

    /// Reads the near cache's channels for as long as the process runs:
    /// invalidations from other instances (acked once their copies are
    /// dropped), acks for this one's writes, and its own lease renewals.
    async fn listen(self: Arc<Self>, subscriber: fred::clients::SubscriberClient) {
        let Some(near) = self.near.clone() else {
            return;
        };
        let mut messages = subscriber.message_rx();
        subscriber.connect();
        let _resubscribe = subscriber.manage_subscriptions();
        let channels = vec![near.channel().to_owned(), near.ack_channel(near.member())];
        while let Err(e) = subscriber.subscribe(channels.clone()).await {
            tracing::warn!(error = %e, "near cache cannot subscribe yet; serving no copies");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Only a member that hears the channel takes a lease: writers wait for it.
        tokio::spawn(self.clone().renew());
        let mut last = None;
        loop {
            match messages.recv().await {
                Ok(message) => {
                    let Some(text) = message.value.as_str() else {
                        continue;
                    };
                    if let Some(ack) = near.hear(&message.channel, &text, &mut last) {
                        let client = self.client.with_options(&self.options);
                        tokio::spawn(async move {
                            let _ = client.publish::<(), _, _>(ack.channel, ack.message).await;
                        });
                    }
                }
                // Messages were lost: the sequence check drops every copy at the next one.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => last = None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Renews this instance's lease every [`near::RENEW_EVERY`], once it listens.
    async fn renew(self: Arc<Self>) {
        let Some(near) = self.near.clone() else {
            return;
        };
        let lease_ms = near::LEASE.as_millis() as i64;
        let mut every = tokio::time::interval(near::RENEW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if near.left() {
                break;
            }
            let nonce = near.renewing();
            let args = fred::types::Value::Array(vec![
                near.member().into(),
                lease_ms.into(),
                near.channel().into(),
                nonce.to_string().into(),
            ]);
            let keys = vec![self.members_key(), self.sequence_key()];
            if let Err(e) = self.fcall::<i64>(LEASE_FUNCTION, keys, args).await {
                tracing::debug!(error = %e, "near cache lease not renewed");
            }
        }
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
