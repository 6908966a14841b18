//! User queries.
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::validate::Email;
use crate::{
    domain::Event,
    entity::user::{self, Role},
    error::{AppError, AppResult, Reason},
    ids::UserId,
    store::Tx,
};

pub struct NewUser {
    pub email: Email,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
}

pub async fn create_user(tx: &mut Tx, new: NewUser) -> AppResult<user::Model> {
    let now = tx.now();
    let row = user::ActiveModel {
        id: Set(UserId::new()),
        email: Set(new.email.as_str().to_owned()),
        display_name: Set(new.display_name),
        password_hash: Set(new.password_hash),
        role: Set(new.role),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let created = row
        .insert(tx.conn())
        .await
        .map_err(AppError::from)
        .map_err(|e| {
            if e.is_unique_violation() {
                AppError::AlreadyExists(
                    Reason::EmailTaken,
                    "email: an account with this email already exists".into(),
                )
            } else {
                e
            }
        })?;
    tx.record(Event::AccountCreated {
        user: created.id,
        role: created.role,
    });
    Ok(created)
}

pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &Email,
) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(conn)
        .await?)
}

pub async fn find_by_id(conn: &impl ConnectionTrait, id: UserId) -> AppResult<user::Model> {
    user::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("user", id))
}

pub async fn set_role(tx: &mut Tx, id: UserId, role: Role) -> AppResult<user::Model> {
    let existing = find_by_id(tx.conn(), id).await?;
    let mut row: user::ActiveModel = existing.into();
    row.role = Set(role);
    row.updated_at = Set(tx.now());
    let updated = row.update(tx.conn()).await?;
    tx.record(Event::RoleChanged { user: id, role });
    Ok(updated)
}
