//! Readings of a show's freed counter ([`crate::cache::Cache::freed_version`])
//! shared by the refusals that wait for them.
//!
//! A refusal from memory may only rely on a reading that *started after it
//! was asked for* (`known`'s module docs: a cancellation that returned before
//! the booking arrived must show in the reading). In a rush, thousands of
//! refusals a second of one show each read the counter from Redis, one round
//! trip each, as much as a cached read costs. Here a show has at most one
//! reading in flight: a refusal that arrives while one is in flight waits for
//! the next, which starts when that one ends and serves every refusal that
//! arrived in the meantime. A reading is never joined once it has started, so
//! no refusal relies on a reading older than itself; at low load a refusal
//! starts its own reading at once, as before.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

use crate::{cache::Cache, ids::ShowId};

/// A reading's result: the counters, or `None` when they cannot be known.
type Reading = Option<Vec<i64>>;

/// One reading, and the refusals waiting for it.
struct Round {
    done: watch::Sender<Option<Reading>>,
}

impl Round {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            done: watch::Sender::new(None),
        })
    }

    async fn wait(&self) -> Reading {
        let mut done = self.done.subscribe();
        let reading = done
            .wait_for(Option::is_some)
            .await
            .expect("the round is alive while waited for");
        reading.clone().flatten()
    }
}

/// A show's readings: whether one is in flight, and the one that will start
/// when it ends, which refusals may still join.
#[derive(Default)]
struct ShowRounds {
    in_flight: bool,
    next: Option<Arc<Round>>,
}

pub struct FreedReadings {
    cache: Cache,
    shows: Arc<Mutex<HashMap<ShowId, ShowRounds>>>,
}

impl FreedReadings {
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            shows: Arc::default(),
        }
    }

    /// The show's freed counter, read after this call began.
    pub async fn read(&self, show: ShowId) -> Reading {
        let round = {
            let mut shows = self.shows.lock().expect("freed readings poisoned");
            let rounds = shows.entry(show).or_default();
            if rounds.in_flight {
                Some(rounds.next.get_or_insert_with(Round::new).clone())
            } else {
                rounds.in_flight = true;
                None
            }
        };
        match round {
            Some(round) => round.wait().await,
            None => {
                // Ends the reading even if this call is dropped mid-way.
                let _leading = Leading {
                    readings: self,
                    show,
                };
                self.cache.freed_version(show).await
            }
        }
    }

    /// Ends the show's reading in flight: starts the one refusals joined
    /// meanwhile, if any, in a task of its own so that the caller is answered.
    fn start_next(&self, show: ShowId) {
        let next = {
            let mut shows = self.shows.lock().expect("freed readings poisoned");
            let Some(rounds) = shows.get_mut(&show) else {
                return;
            };
            match rounds.next.take() {
                Some(next) => next,
                None => {
                    shows.remove(&show);
                    return;
                }
            }
        };
        let (cache, shows) = (self.cache.clone(), self.shows.clone());
        tokio::spawn(async move {
            let readings = FreedReadings { cache, shows };
            let _leading = Leading {
                readings: &readings,
                show,
            };
            let _answered = Answered(&next);
            let reading = readings.cache.freed_version(show).await;
            next.done.send_replace(Some(reading));
        });
    }
}

/// Ends the show's reading in flight when dropped.
struct Leading<'a> {
    readings: &'a FreedReadings,
    show: ShowId,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.readings.start_next(self.show);
    }
}

/// Answers a round's waiters with "cannot be known" (so the database
/// decides) if its reading was dropped before it ended, at shutdown.
struct Answered<'a>(&'a Round);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        if self.0.done.borrow().is_none() {
            self.0.done.send_replace(Some(None));
        }
    }
}
