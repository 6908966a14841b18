//! The service's policies: overload limits, login and sign-up throttling,
//! show scheduling. Plain values here; the code that enforces each one
//! (`limits`, `auth::throttle`, `catalog`) imports them from this floor.
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `THEATRE_MAX_IN_FLIGHT`: handlers running at once.
    pub max_in_flight: usize,
    /// `THEATRE_MAX_QUEUED`: calls waiting for a handler slot before new ones are shed.
    pub max_queued: usize,
    /// `THEATRE_RPC_DEADLINE_MS`: the longest a call may wait and run.
    pub rpc_deadline: Duration,
    /// `THEATRE_MAX_MESSAGE_BYTES`: the largest request message accepted.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_queued: 2048,
            rpc_deadline: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// `THEATRE_LOGIN_FAILURES_PER_EMAIL`: failures allowed per email per window (0: no limit).
    pub per_email: u32,
    /// `THEATRE_LOGIN_FAILURES_PER_PEER`: failures allowed per peer address per window (0: no limit).
    pub per_peer: u32,
    /// `THEATRE_LOGIN_WINDOW_SECS`.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_email: 5,
            per_peer: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Sign-ups allowed per peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignUpPolicy {
    /// `THEATRE_SIGNUPS_PER_PEER`: sign-up attempts per peer address per window (0: no limit).
    pub per_peer: u32,
    /// `THEATRE_SIGNUP_WINDOW_SECS`.
    pub window: Duration,
}

impl Default for SignUpPolicy {
    fn default() -> Self {
        Self {
            per_peer: 20,
            window: Duration::from_secs(3600),
        }
    }
}

/// How shows may be scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowPolicy {
    /// `THEATRE_SHOW_CHANGEOVER_MINUTES`: how long a theatre stays occupied
    /// after a show's movie ends (cleaning, the next audience coming in).
    pub changeover: Duration,
    /// `THEATRE_SHOW_HORIZON_DAYS`: how far ahead a show may be scheduled.
    pub horizon: Duration,
}

impl Default for ShowPolicy {
    fn default() -> Self {
        Self {
            changeover: Duration::from_secs(15 * 60),
            horizon: Duration::from_secs(730 * 24 * 3600),
        }
    }
}
