//! The near cache: this instance's own copy of cached reads, answered without
//! a Redis round trip, and exactly as fresh as the Redis tier.
//!
//! # Exact across instances
//! A write on one instance must never be followed by a stale read on another,
//! which the Redis generations guarantee (see the parent module) and a copy in
//! one instance's memory does not by itself. Invalidation follows Chubby's
//! cache leases:
//!
//! - Every instance holding copies is a *member*: it holds a lease in Redis (a
//!   sorted set scored by expiry, renewed every [`RENEW_EVERY`]) and listens
//!   on one pub/sub channel.
//! - A write's invalidation is one Redis function (`theatre_cache_announce`):
//!   it bumps the generations as before, reads the members whose lease is
//!   current and, if there are any but the writer, publishes which
//!   generations moved.
//! - The writer then waits, before its RPC answers, until each of those
//!   members has acknowledged (it dropped its copies, then published an ack)
//!   or its lease has run out.
//!
//! A member serves copies only while
//! - its lease is current by its own clock, counted from *before* the renewal
//!   was sent and shortened by [`MARGIN`] (Redis counts from when it ran it,
//!   later), so it stops before any writer stops waiting for it;
//! - the renewal came back on the channel: the channel delivered everything
//!   published before it (invalidations and heartbeats share one ordered
//!   stream);
//! - no message was missed: every invalidation carries a sequence number from
//!   Redis and every heartbeat the current one, so a gap (a reconnect, a
//!   lagging reader) drops every copy.
//!
//! Copies are stamped with local counters read before their value was
//! fetched, and dropping copies bumps counters, so a fetch that races an
//! invalidation never stores a copy that looks current.
//!
//! The cost is on writes only while other members are live: one publish, and
//! the ack round trip of the slowest member. A member that vanished without
//! leaving holds writes up to [`LEASE`].
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::keys::{Entry, Generation};

/// How long a renewal keeps a member's lease in Redis.
pub const LEASE: Duration = Duration::from_secs(1);
/// How often a member renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_millis(200);
/// How much sooner than Redis a member stops trusting its lease: clock rates
/// differ a little between hosts, and the reader task may run late.
const MARGIN: Duration = Duration::from_millis(200);
/// Per-show seat generations share this many local counters: a collision only
/// drops a copy that was still good.
const SLOTS: usize = 64;

/// The local counters a copy's stamp is read from: `[all, first, second]`.
type Stamp = [u64; 3];

struct Counters {
    all: AtomicU64,
    movies: AtomicU64,
    shows: AtomicU64,
    seats: AtomicU64,
    seats_of: [AtomicU64; SLOTS],
}

impl Counters {
    fn new() -> Self {
        Self {
            all: AtomicU64::new(0),
            movies: AtomicU64::new(0),
            shows: AtomicU64::new(0),
            seats: AtomicU64::new(0),
            seats_of: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn seats_of(&self, show: uuid::Uuid) -> &AtomicU64 {
        // UUIDv7's low bits are random.
        &self.seats_of[show.as_u128() as usize % SLOTS]
    }

    fn stamp(&self, entry: &Entry) -> Stamp {
        let read = |c: &AtomicU64| c.load(Ordering::SeqCst);
        let (first, second) = match entry {
            Entry::Movie(_) | Entry::MoviePage { .. } => (read(&self.movies), 0),
            Entry::Show(id) | Entry::SeatMap(id) => (read(&self.shows), read(self.seats_of(id.0))),
            Entry::ShowList { .. } => (read(&self.shows), read(&self.seats)),
        };
        [read(&self.all), first, second]
    }

    /// Moves the counter `code` (from [`code`]) names; an unknown code moves all.
    fn bump(&self, code: &str) {
        let counter = match code {
            "m" => &self.movies,
            "s" => &self.shows,
            "t" => &self.seats,
            _ => match code.strip_prefix("t:").map(uuid::Uuid::try_parse) {
                Some(Ok(show)) => self.seats_of(show),
                _ => &self.all,
            },
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// What an invalidation message says moved: the counters' codes.
fn code(generation: &Generation) -> Option<String> {
    match generation {
        Generation::Movies => Some("m".into()),
        Generation::Shows => Some("s".into()),
        Generation::Seats => Some("t".into()),
        Generation::SeatsOf(show) => Some(format!("t:{show}")),
        // Not a cached read's: `booking::known` asks Redis for it.
        Generation::FreedOf(_) => None,
    }
}

/// Every copy: dropped by a flush of the whole cache.
pub const ALL: &str = "e";

/// The codes of `generations`, space-separated; empty when no copy depends on them.
pub fn codes(generations: &[Generation]) -> String {
    generations
        .iter()
        .filter_map(code)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A copy: the encoded response, as Redis holds it.
#[derive(Clone)]
struct Held {
    stamp: Stamp,
    ttl: Duration,
    encoded: Bytes,
}

struct ByTtl;

impl moka::Expiry<Entry, Held> for ByTtl {
    fn expire_after_create(&self, _: &Entry, held: &Held, _: Instant) -> Option<Duration> {
        Some(held.ttl)
    }

    fn expire_after_update(
        &self,
        _: &Entry,
        held: &Held,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(held.ttl)
    }
}

/// An ack from a member, or a heartbeat of this one, as read off the channel.
pub struct Ack {
    pub channel: String,
    pub message: String,
}

pub struct Near {
    member: String,
    channel: String,
    copies: moka::sync::Cache<Entry, Held>,
    counters: Counters,
    /// Nanoseconds after `base` until which copies may be served; 0 at first.
    serve_until: AtomicU64,
    base: Instant,
    /// Set by [`Near::stop`]: the lease is no longer renewed.
    left: AtomicBool,
    /// When another member's heartbeat was last heard (nanoseconds after `base`).
    others_heard: AtomicU64,
    /// Renewals in flight: nonce and when it was sent.
    renewals: Mutex<VecDeque<(u64, Instant)>>,
    next_nonce: AtomicU64,
    /// Writes waiting for acks, by token.
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<String>>>,
    next_token: AtomicU64,
}

impl Near {
    pub fn new(prefix: &str, capacity: u64) -> Self {
        Self {
            member: uuid::Uuid::now_v7().simple().to_string(),
            channel: format!("{prefix}near"),
            copies: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(ByTtl)
                .build(),
            counters: Counters::new(),
            serve_until: AtomicU64::new(0),
            others_heard: AtomicU64::new(0),
            left: AtomicBool::new(false),
            base: Instant::now(),
            renewals: Mutex::default(),
            next_nonce: AtomicU64::new(0),
            waiting: Mutex::default(),
            next_token: AtomicU64::new(0),
        }
    }

    pub fn member(&self) -> &str {
        &self.member
    }

    /// The channel invalidations and heartbeats are published on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The channel `member`'s acks are published on.
    pub fn ack_channel(&self, member: &str) -> String {
        format!("{}:ack:{member}", self.channel)
    }

    fn since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether this instance's lease lets it serve copies now.
    pub fn serving(&self) -> bool {
        self.since_base(Instant::now()) < self.serve_until.load(Ordering::SeqCst)
    }

    /// Whether another instance may hold copies now: this one is not sure
    /// it hears the channel, or heard another's heartbeat within two leases.
    pub fn others_may_hold_copies(&self) -> bool {
        let heard = self.others_heard.load(Ordering::SeqCst);
        let recently = self.since_base(Instant::now()).saturating_sub(heard)
            < u64::try_from((2 * LEASE).as_nanos()).unwrap_or(u64::MAX);
        !self.serving() || (heard > 0 && recently)
    }

    /// The stamp a copy loaded from now on would carry.
    pub fn stamp(&self, entry: &Entry) -> Stamp {
        self.counters.stamp(entry)
    }

    /// The copy of `entry` (the encoded response), if there is one, nothing
    /// dropped it since it was fetched, and the lease is current.
    pub fn get(&self, entry: &Entry) -> Option<Bytes> {
        if !self.serving() {
            return None;
        }
        let held = self.copies.get(entry)?;
        (held.stamp == self.counters.stamp(entry)).then_some(held.encoded)
    }

    /// Keeps `encoded`, fetched after `stamp` was read, as the copy of `entry`.
    pub fn put(&self, entry: Entry, stamp: Stamp, ttl: Duration, encoded: Bytes) {
        if stamp != self.counters.stamp(&entry) || !self.serving() {
            return;
        }
        self.copies.insert(
            entry,
            Held {
                stamp,
                ttl,
                encoded,
            },
        );
    }

    /// Drops the copies that depend on `codes` (from [`codes`] or [`ALL`]).
    pub fn drop_codes(&self, codes: &str) {
        codes
            .split(' ')
            .filter(|c| !c.is_empty())
            .for_each(|c| self.counters.bump(c));
    }

    fn drop_all(&self) {
        self.counters.bump(ALL);
    }

    /// Stops serving copies and renewing the lease (this instance leaves).
    pub fn stop(&self) {
        self.left.store(true, Ordering::SeqCst);
        self.serve_until.store(0, Ordering::SeqCst);
        self.drop_all();
    }

    /// Whether [`Near::stop`] was called.
    pub fn left(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// A renewal about to be sent: its nonce, with the time it left.
    pub fn renewing(&self) -> u64 {
        let nonce = self.next_nonce.fetch_add(1, Ordering::SeqCst);
        let mut renewals = self.renewals.lock().expect("renewals poisoned");
        if renewals.len() >= 16 {
            renewals.pop_front();
        }
        renewals.push_back((nonce, Instant::now()));
        nonce
    }

    /// The renewal `nonce` came back on the channel: the lease holds until
    /// it was sent plus [`LEASE`] less [`MARGIN`]. After a lapse every copy
    /// is dropped first, since invalidations may have been missed meanwhile.
    fn renewed(&self, nonce: u64) {
        let sent = {
            let renewals = self.renewals.lock().expect("renewals poisoned");
            renewals
                .iter()
                .find(|(n, _)| *n == nonce)
                .map(|(_, at)| *at)
        };
        let Some(sent) = sent else { return };
        if !self.serving() {
            self.drop_all();
        }
        let until = self.since_base(sent + LEASE - MARGIN);
        self.serve_until.fetch_max(until, Ordering::SeqCst);
    }

    /// Reads one message off the channels; `last` is the sequence number of
    /// the last invalidation heard. Returns the ack to publish, if any.
    pub fn hear(&self, channel: &str, text: &str, last: &mut Option<u64>) -> Option<Ack> {
        if channel != self.channel {
            // An ack for one of this instance's writes: "<token> <member>".
            let (token, member) = text.split_once(' ')?;
            let token: u64 = token.parse().ok()?;
            let waiting = self.waiting.lock().expect("waiting poisoned");
            if let Some(tx) = waiting.get(&token) {
                let _ = tx.send(member.to_owned());
            }
            return None;
        }
        let mut words = text.splitn(5, ' ');
        let kind = words.next()?;
        let Some(seq) = words.next().and_then(|s| s.parse::<u64>().ok()) else {
            self.drop_all();
            return None;
        };
        // An invalidation moves the sequence by one; a heartbeat repeats it.
        let expected = match kind {
            "i" => last.map(|l| l + 1),
            _ => *last,
        };
        if expected != Some(seq) {
            self.drop_all();
        }
        *last = Some(seq);
        let (member, rest) = (words.next()?, words.next()?);
        match kind {
            // "i <seq> <writer> <token> <codes>"
            "i" if member != self.member => {
                self.drop_codes(words.next().unwrap_or(ALL));
                Some(Ack {
                    channel: self.ack_channel(member),
                    message: format!("{rest} {}", self.member),
                })
            }
            // "h <seq> <member> <nonce>"
            "h" if member == self.member => {
                self.renewed(rest.parse().ok()?);
                None
            }
            "h" => {
                let now = self.since_base(Instant::now());
                self.others_heard.fetch_max(now, Ordering::SeqCst);
                None
            }
            "i" => None,
            _ => {
                self.drop_all();
                None
            }
        }
    }

    /// Registers a write about to announce, so acks that arrive before the
    /// announcement's reply are kept. Dropping the result forgets it.
    pub fn expect_acks(self: &Arc<Self>) -> Expected {
        let token = self.next_token.fetch_add(1, Ordering::SeqCst);
        let (tx, acks) = mpsc::unbounded_channel();
        self.waiting
            .lock()
            .expect("waiting poisoned")
            .insert(token, tx);
        Expected {
            near: self.clone(),
            token,
            acks,
        }
    }
}

/// A write's acks, expected from the members its announcement reached.
pub struct Expected {
    near: Arc<Near>,
    pub token: u64,
    acks: mpsc::UnboundedReceiver<String>,
}

impl Expected {
    /// Waits until every member in `others` (member, milliseconds its lease
    /// had left when Redis ran the announcement) acked or its lease ran out.
    /// Returns how many never acked.
    pub async fn wait(mut self, others: Vec<(String, u64)>) -> usize {
        let mut lapsed = 0;
        let now = tokio::time::Instant::now();
        let mut due: HashMap<String, tokio::time::Instant> = others
            .into_iter()
            .map(|(member, ms)| (member, now + Duration::from_millis(ms)))
            .collect();
        while let Some(&next) = due.values().min() {
            tokio::select! {
                member = self.acks.recv() => match member {
                    Some(member) => { due.remove(&member); }
                    None => break,
                },
                () = tokio::time::sleep_until(next) => {
                    let now = tokio::time::Instant::now();
                    let before = due.len();
                    due.retain(|_, until| *until > now);
                    lapsed += before - due.len();
                }
            }
        }
        lapsed
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.near
            .waiting
            .lock()
            .expect("waiting poisoned")
            .remove(&self.token);
    }
}
