//! Accounts and roles on the wire.
use super::timestamp;
use crate::{
    entity::user::{self, Role},
    error::{AppError, AppResult},
    proto,
};

impl From<Role> for proto::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => Self::User,
            Role::Admin => Self::Admin,
        }
    }
}

/// A role a request names; `ROLE_UNSPECIFIED` and unknown numbers are refused.
pub fn role(raw: i32) -> AppResult<Role> {
    match proto::Role::try_from(raw) {
        Ok(proto::Role::User) => Ok(Role::User),
        Ok(proto::Role::Admin) => Ok(Role::Admin),
        _ => Err(AppError::invalid("role", "must be ROLE_USER or ROLE_ADMIN")),
    }
}

impl From<user::Model> for proto::User {
    fn from(u: user::Model) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            display_name: u.display_name,
            role: proto::Role::from(u.role).into(),
            created_at: Some(timestamp(u.created_at)),
        }
    }
}
