//! Login throttling, so passwords cannot be guessed at speed.
//!
//! Failed logins are counted per email and per peer address in a window that
//! opens with the first failure. Once either count reaches its limit, logins
//! for that email (or from that peer) are refused *before* the password is
//! checked, with RESOURCE_EXHAUSTED and the time left in the window, so a
//! locked-out guesser costs no argon2 work either.
//!
//! An attempt is counted when it is admitted and refunded when it succeeds:
//! a burst of parallel guesses cannot slip past the limit while the first
//! ones are still being verified.
//!
//! Sign-ups are throttled per peer address the same way, counting every
//! admitted attempt: each one costs an argon2 hash, and each answer tells
//! whether an email has an account (see the README's "Accounts" section).
//!
//! The counts live in this process. Behind several instances an attacker gets
//! the limit once per instance; that bound is still far below what guessing
//! needs, and it keeps Redis optional.
use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};

use crate::{
    clock::Clock,
    config::{SignUpPolicy, ThrottlePolicy},
    error::{AppError, Reason},
};

/// Past this many tracked keys, closed windows are dropped on the next insert.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: DateTime<Utc>,
    failures: u32,
}

/// Failure counts for one kind of key.
struct Counts<K> {
    limit: u32,
    windows: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: HashMap::new(),
        }
    }

    /// Time left before `key` may try again, if it is locked out.
    fn locked_for(
        &mut self,
        key: &K,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let open = self.windows.get(key).filter(|w| w.opened + window > now)?;
        (open.failures >= self.limit)
            .then(|| (open.opened + window - now).to_std().unwrap_or_default())
    }

    fn count(&mut self, key: &K, now: DateTime<Utc>, window: chrono::Duration) {
        if self.limit == 0 {
            return;
        }
        if self.windows.len() > PRUNE_ABOVE {
            self.windows.retain(|_, w| w.opened + window > now);
        }
        let entry = self.windows.entry(key.clone()).or_insert(Window {
            opened: now,
            failures: 0,
        });
        if entry.opened + window <= now {
            *entry = Window {
                opened: now,
                failures: 0,
            };
        }
        entry.failures += 1;
    }

    fn refund(&mut self, key: &K) {
        if let Some(w) = self.windows.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

struct State {
    emails: Counts<String>,
    peers: Counts<IpAddr>,
}

/// Which limit refused a login (the metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Email,
    Peer,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Peer => "peer",
        }
    }
}

pub struct LoginThrottle {
    window: chrono::Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            window: chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX),
            clock,
            state: Mutex::new(State {
                emails: Counts::new(policy.per_email),
                peers: Counts::new(policy.per_peer),
            }),
        }
    }

    /// Admits a login attempt (counting it as a failure until [`Self::succeeded`])
    /// or refuses it with the scope that is locked out.
    pub fn admit(&self, email: &str, peer: Option<IpAddr>) -> Result<(), (Scope, AppError)> {
        let now = self.clock.now();
        let mut state = self.state.lock().expect("throttle lock poisoned");
        let email = email.to_owned();
        let locked = match state.emails.locked_for(&email, now, self.window) {
            Some(left) => Some((Scope::Email, left)),
            None => peer
                .and_then(|peer| state.peers.locked_for(&peer, now, self.window))
                .map(|left| (Scope::Peer, left)),
        };
        if let Some((scope, retry_after)) = locked {
            let message = match scope {
                Scope::Email => "too many failed logins for this email, retry later",
                Scope::Peer => "too many failed logins from this address, retry later",
            };
            return Err((
                scope,
                AppError::ResourceExhausted {
                    reason: Reason::LoginThrottled,
                    message: message.into(),
                    retry_after,
                },
            ));
        }
        state.emails.count(&email, now, self.window);
        if let Some(peer) = peer {
            state.peers.count(&peer, now, self.window);
        }
        Ok(())
    }

    /// The admitted attempt was right: the email starts afresh.
    pub fn succeeded(&self, email: &str, peer: Option<IpAddr>) {
        self.refund(email, peer);
        let mut state = self.state.lock().expect("throttle lock poisoned");
        state.emails.windows.remove(email);
    }

    /// The admitted attempt ended without a verdict on the password (a
    /// database error, say): it does not count against anyone.
    pub fn refund(&self, email: &str, peer: Option<IpAddr>) {
        let mut state = self.state.lock().expect("throttle lock poisoned");
        state.emails.refund(&email.to_owned());
        if let Some(peer) = peer {
            state.peers.refund(&peer);
        }
    }
}

/// Sign-up attempts per peer address.
pub struct SignUpThrottle {
    window: chrono::Duration,
    clock: Arc<dyn Clock>,
    peers: Mutex<Counts<IpAddr>>,
}

impl SignUpThrottle {
    pub fn new(policy: SignUpPolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            window: chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX),
            clock,
            peers: Mutex::new(Counts::new(policy.per_peer)),
        }
    }

    /// Admits a sign-up from `peer` (counting it) or refuses it with the time
    /// left in the peer's window.
    pub fn admit(&self, peer: Option<IpAddr>) -> Result<(), AppError> {
        let Some(peer) = peer else { return Ok(()) };
        let now = self.clock.now();
        let mut peers = self.peers.lock().expect("throttle lock poisoned");
        if let Some(retry_after) = peers.locked_for(&peer, now, self.window) {
            return Err(AppError::ResourceExhausted {
                reason: Reason::SignupThrottled,
                message: "too many sign-ups from this address, retry later".into(),
                retry_after,
            });
        }
        peers.count(&peer, now, self.window);
        Ok(())
    }

    /// The admitted attempt ended without an answer (a database error, say).
    pub fn refund(&self, peer: Option<IpAddr>) {
        if let Some(peer) = peer {
            self.peers
                .lock()
                .expect("throttle lock poisoned")
                .refund(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn throttle(per_email: u32, per_peer: u32) -> (LoginThrottle, ManualClock) {
        let clock = ManualClock::new(Utc::now());
        let policy = ThrottlePolicy {
            per_email,
            per_peer,
            window: Duration::from_secs(60),
        };
        (LoginThrottle::new(policy, Arc::new(clock.clone())), clock)
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn an_email_is_locked_after_its_failures_until_the_window_ends() {
        let (t, clock) = throttle(3, 0);
        for _ in 0..3 {
            t.admit("a@x.test", PEER).unwrap();
        }
        let (scope, err) = t.admit("a@x.test", PEER).unwrap_err();
        assert_eq!(scope, Scope::Email);
        let AppError::ResourceExhausted { retry_after, .. } = err else {
            panic!("expected RESOURCE_EXHAUSTED, got {err:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(60));
        t.admit("b@x.test", PEER)
            .expect("other emails are not locked");
        clock.advance(chrono::Duration::seconds(60));
        t.admit("a@x.test", PEER).expect("a new window opens");
    }

    #[test]
    fn success_refunds_the_attempt() {
        let (t, _) = throttle(2, 2);
        for _ in 0..5 {
            t.admit("a@x.test", PEER).unwrap();
            t.succeeded("a@x.test", PEER);
        }
        t.admit("a@x.test", PEER).unwrap();
        t.admit("b@x.test", PEER).unwrap();
        let (scope, _) = t.admit("c@x.test", PEER).unwrap_err();
        assert_eq!(scope, Scope::Peer, "two failures from one peer");
    }
}
