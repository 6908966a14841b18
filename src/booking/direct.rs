//! A claim batch sent on a connection of the claims' own (tokio-postgres,
//! [`crate::db::Direct`]): the statement is prepared once per connection and
//! each batch is one Bind/Execute/Sync exchange, where the pool pays a second
//! exchange to hand the connection back. Several statements may be in flight
//! on one connection at once (the member-by-member retry pipelines them).
use tokio_postgres::{Client, Statement, types::ToSql};
use uuid::Uuid;

use super::batch::{CLAIM_BOOKINGS_SQL, Claim, Failed, Outcome, answers};
use crate::db::Direct;

/// One connection of the claims' own, opened when first needed and again
/// after the server closed it.
pub struct Link {
    direct: Direct,
    open: Option<Open>,
}

/// An open connection with the claim statement prepared on it.
pub struct Open {
    client: Client,
    claim: Statement,
    direct: Direct,
}

impl Link {
    pub fn new(direct: Direct) -> Self {
        Self { direct, open: None }
    }

    /// The connection, opened (and the statement prepared) if it is not.
    pub async fn open(&mut self) -> Result<&Open, Failed> {
        if self.open.as_ref().is_some_and(|o| o.client.is_closed()) {
            self.open = None;
        }
        if self.open.is_none() {
            let client = self.direct.connect().await.map_err(Failed::unsent)?;
            let claim = client
                .prepare(CLAIM_BOOKINGS_SQL)
                .await
                .map_err(Failed::unsent)?;
            let direct = self.direct.clone();
            self.open = Some(Open {
                client,
                claim,
                direct,
            });
        }
        Ok(self.open.as_ref().expect("opened above"))
    }
}

impl Open {
    /// `claim_bookings` for `claims`, each array bound with its own type.
    pub async fn call(&self, claims: &[&Claim]) -> Result<Vec<Outcome>, Failed> {
        let bookings = || claims.iter().map(|c| &c.booking);
        let texts = |f: &dyn Fn(&Claim) -> &str| -> Vec<String> {
            claims.iter().map(|c| f(c).to_owned()).collect()
        };
        let ids: Vec<Uuid> = bookings().map(|b| b.id.0).collect();
        let users: Vec<Uuid> = bookings().map(|b| b.user_id.0).collect();
        let shows: Vec<Option<Uuid>> = bookings().map(|b| b.show_id.map(|s| s.0)).collect();
        let counts: Vec<i32> = bookings().map(|b| b.seat_ids.0.len() as i32).collect();
        let seats: Vec<String> = bookings()
            .flat_map(|b| b.seat_ids.0.iter().map(|s| s.to_string()))
            .collect();
        let totals: Vec<i64> = bookings().map(|b| b.total_cents.0).collect();
        let titles = texts(&|c| &c.booking.movie_title);
        let theatres = texts(&|c| &c.booking.theatre_name);
        let starts: Vec<_> = bookings().map(|b| b.starts_at).collect();
        // '' for no key, as the pool binds it (the SQL file says why).
        let keys = texts(&|c| c.booking.idempotency_key.as_deref().unwrap_or_default());
        let event_ids: Vec<Uuid> = claims.iter().map(|c| c.event.id).collect();
        let aggregate_types = texts(&|c| c.event.aggregate_type);
        let aggregate_ids = texts(&|c| &c.event.aggregate_id);
        let event_types = texts(&|c| c.event.event_type);
        let payloads: Vec<&[u8]> = claims.iter().map(|c| c.event.payload.as_slice()).collect();
        let created: Vec<_> = bookings().map(|b| b.created_at).collect();
        let params: [&(dyn ToSql + Sync); 16] = [
            &ids,
            &users,
            &shows,
            &counts,
            &seats,
            &totals,
            &titles,
            &theatres,
            &starts,
            &keys,
            &event_ids,
            &aggregate_types,
            &aggregate_ids,
            &event_types,
            &payloads,
            &created,
        ];
        self.direct.counted();
        let rows = self
            .client
            .query(&self.claim, &params)
            .await
            .map_err(Failed::from_postgres)?;
        let rows = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(|err| Failed::unread(&err))?;
        answers(claims.len(), rows).map_err(|err| Failed::unread(&err))
    }
}
