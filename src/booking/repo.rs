//! Booking queries. The seat claim is in `claim`.
mod claim;

use chrono::{DateTime, Utc};
pub use claim::create_booking;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::{
    db::{Database, WriteTx},
    entity::{
        booking::{self, CancelReason, Status},
        seat,
    },
    error::{AppError, AppResult},
    events::{self, Event},
    ids::{BookingId, UserId},
    proto,
};

/// The caller's bookings, newest first.
pub async fn list_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
) -> AppResult<Vec<booking::Model>> {
    Ok(booking::Entity::find()
        .filter(booking::Column::UserId.eq(user.0))
        .order_by_desc(booking::Column::CreatedAt)
        .order_by_desc(booking::Column::Id)
        .all(conn)
        .await?)
}

/// One of the caller's bookings; another user's booking is NOT_FOUND, not
/// PERMISSION_DENIED, so booking ids cannot be probed.
pub async fn get_for_user(
    conn: &impl ConnectionTrait,
    user: UserId,
    id: BookingId,
) -> AppResult<booking::Model> {
    booking::Entity::find_by_id(id.0)
        .filter(booking::Column::UserId.eq(user.0))
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))
}

pub async fn cancel_for_user(
    db: &Database,
    user: UserId,
    id: BookingId,
    now: DateTime<Utc>,
) -> AppResult<booking::Model> {
    let tx = db.begin_write().await?;
    let existing = booking::Entity::find_by_id(id.0)
        .filter(booking::Column::UserId.eq(user.0))
        .lock_exclusive()
        .one(&*tx)
        .await?
        .ok_or_else(|| AppError::not_found("booking", id))?;
    if existing.status == Status::Cancelled {
        return Err(AppError::FailedPrecondition(format!(
            "booking {id} is already cancelled"
        )));
    }
    if existing.starts_at <= now {
        return Err(AppError::FailedPrecondition(format!(
            "booking {id} cannot be cancelled: the show has already started"
        )));
    }
    let seat_ids = existing.seat_list();
    let show_id = existing.show_id;
    let mut row: booking::ActiveModel = existing.into();
    row.status = Set(Status::Cancelled);
    row.cancel_reason = Set(Some(CancelReason::ByUser));
    row.cancelled_at = Set(Some(now));
    let cancelled = row.update(&*tx).await?;
    seat::Entity::update_many()
        .set(seat::ActiveModel {
            booking_id: Set(None),
            ..Default::default()
        })
        .filter(seat::Column::BookingId.eq(id.0))
        .exec(&*tx)
        .await?;
    let event = booking_cancelled(id.0, user.0, show_id, seat_ids, CancelReason::ByUser);
    events::record(&*tx, now, event).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// Cancels every confirmed booking on `show_ids` (the shows are about to be
/// deleted) and records an event for each. Returns the cancelled booking ids.
pub async fn cancel_bookings_on_shows(
    tx: &WriteTx,
    show_ids: &[Uuid],
    reason: CancelReason,
    now: DateTime<Utc>,
) -> AppResult<Vec<Uuid>> {
    if show_ids.is_empty() {
        return Ok(Vec::new());
    }
    let affected = booking::Entity::find()
        .filter(booking::Column::ShowId.is_in(show_ids.to_vec()))
        .filter(booking::Column::Status.eq(Status::Confirmed))
        .order_by_asc(booking::Column::Id)
        .all(&**tx)
        .await?;
    if affected.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = affected.iter().map(|b| b.id).collect();
    booking::Entity::update_many()
        .set(booking::ActiveModel {
            status: Set(Status::Cancelled),
            cancel_reason: Set(Some(reason)),
            cancelled_at: Set(Some(now)),
            ..Default::default()
        })
        .filter(booking::Column::Id.is_in(ids.clone()))
        .exec(&**tx)
        .await?;
    for b in affected {
        let seat_ids = b.seat_list();
        let event = booking_cancelled(b.id, b.user_id, b.show_id, seat_ids, reason);
        events::record(&**tx, now, event).await?;
    }
    Ok(ids)
}

fn booking_cancelled(
    booking_id: Uuid,
    user_id: Uuid,
    show_id: Option<Uuid>,
    seat_ids: Vec<String>,
    reason: CancelReason,
) -> Event {
    Event::BookingCancelled(proto::BookingCancelled {
        booking_id: booking_id.to_string(),
        user_id: user_id.to_string(),
        show_id: show_id.map(|s| s.to_string()).unwrap_or_default(),
        seat_ids,
        reason: cancel_reason_to_proto(reason).into(),
    })
}

pub fn cancel_reason_to_proto(reason: CancelReason) -> proto::CancelReason {
    match reason {
        CancelReason::ByUser => proto::CancelReason::ByUser,
        CancelReason::ShowDeleted => proto::CancelReason::ShowDeleted,
        CancelReason::MovieDeleted => proto::CancelReason::MovieDeleted,
    }
}
