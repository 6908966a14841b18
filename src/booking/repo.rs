//! Booking queries. The seat claim is in `claim`.
mod claim;

pub use claim::Booker;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::{
    domain::{BookingCancelled, Event},
    entity::{
        booking::{self, CancelReason, Status},
        seat,
    },
    error::{AppError, AppResult, Reason},
    ids::{BookingId, ShowId, UserId},
    page::PageRequest,
    store::Tx,
};

/// The caller's bookings, newest first.
/// The user's bookings, newest first: by id, a UUIDv7, whose order is the
/// order they were made in (and unique, so it is the cursor).
pub async fn list_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
    page: &PageRequest<Uuid>,
) -> AppResult<(Vec<booking::Model>, bool)> {
    let mut query = booking::Entity::find()
        .filter(booking::Column::UserId.eq(user))
        .order_by_desc(booking::Column::Id);
    if let Some(after) = page.after {
        query = query.filter(booking::Column::Id.lt(after));
    }
    Ok(page.of(query.limit(page.size + 1).all(conn).await?))
}

/// One of the caller's bookings; another user's booking is NOT_FOUND, not
/// PERMISSION_DENIED, so booking ids cannot be probed.
pub async fn get_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
    id: BookingId,
) -> AppResult<booking::Model> {
    booking::Entity::find_by_id(id)
        .filter(booking::Column::UserId.eq(user))
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))
}

pub async fn cancel_for_user(
    tx: &mut Tx,
    user: UserId,
    id: BookingId,
) -> AppResult<booking::Model> {
    let now = tx.now();
    let existing = booking::Entity::find_by_id(id)
        .filter(booking::Column::UserId.eq(user))
        .lock_exclusive()
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))?;
    if existing.status == Status::Cancelled {
        return Err(AppError::FailedPrecondition(
            Reason::BookingCancelled,
            format!("booking {id} is already cancelled"),
        ));
    }
    if existing.starts_at <= now {
        return Err(AppError::FailedPrecondition(
            Reason::ShowStarted,
            format!("booking {id} cannot be cancelled: the show has already started"),
        ));
    }
    let seat_ids = existing.seat_ids.clone();
    let show_id = existing.show_id;
    let mut row: booking::ActiveModel = existing.into();
    row.status = Set(Status::Cancelled);
    row.cancel_reason = Set(Some(CancelReason::ByUser));
    row.cancelled_at = Set(Some(now));
    let cancelled = row.update(tx.conn()).await?;
    seat::Entity::update_many()
        .set(seat::ActiveModel {
            booking_id: Set(None),
            ..Default::default()
        })
        .filter(seat::Column::BookingId.eq(id))
        .exec(tx.conn())
        .await?;
    tx.record(Event::BookingCancelled(BookingCancelled {
        booking: id,
        user,
        show: show_id,
        seats: seat_ids.0,
        reason: CancelReason::ByUser,
    }));
    Ok(cancelled)
}

/// Cancels every confirmed booking on `show_ids` (the shows are about to be
/// deleted) and records an event for each. Returns the cancelled booking ids.
pub async fn cancel_bookings_on_shows(
    tx: &mut Tx,
    show_ids: &[ShowId],
    reason: CancelReason,
) -> AppResult<Vec<BookingId>> {
    if show_ids.is_empty() {
        return Ok(Vec::new());
    }
    let affected = booking::Entity::find()
        .filter(booking::Column::ShowId.is_in(show_ids.to_vec()))
        .filter(booking::Column::Status.eq(Status::Confirmed))
        .order_by_asc(booking::Column::Id)
        .all(tx.conn())
        .await?;
    if affected.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<BookingId> = affected.iter().map(|b| b.id).collect();
    booking::Entity::update_many()
        .set(booking::ActiveModel {
            status: Set(Status::Cancelled),
            cancel_reason: Set(Some(reason)),
            cancelled_at: Set(Some(tx.now())),
            ..Default::default()
        })
        .filter(booking::Column::Id.is_in(ids.clone()))
        .exec(tx.conn())
        .await?;
    for b in affected {
        tx.record(Event::BookingCancelled(BookingCancelled {
            booking: b.id,
            user: b.user_id,
            show: b.show_id,
            seats: b.seat_ids.0,
            reason,
        }));
    }
    Ok(ids)
}
