//! Account provisioning outside sign-up: the `user create` command and the
//! start-up admin.
use super::{
    password,
    repo::{self, NewUser},
    validate::{self, Email},
};
use crate::{
    entity::user::{self, Role},
    error::{AppError, AppResult},
    store::Store,
};

/// Creates a user or, if the email is taken, gives the existing account `role`.
pub async fn ensure_user(
    store: &Store,
    email: &str,
    password: &str,
    display_name: &str,
    role: Role,
) -> AppResult<user::Model> {
    let email = Email::parse(email)?;
    if let Some(existing) = repo::find_by_email(store.reader(), &email).await? {
        let id = existing.id;
        return store
            .write(async |tx| repo::set_role(tx, id, role).await)
            .await;
    }
    let new = NewUser {
        email,
        display_name: validate::display_name(display_name)?,
        password_hash: password::hash(validate::new_password(password)?).await?,
        role,
    };
    store
        .write(async |tx| repo::create_user(tx, new).await)
        .await
}

/// Gives the account of `email` the role `role`; `NOT_FOUND` if there is none.
pub async fn set_role_by_email(store: &Store, email: &str, role: Role) -> AppResult<user::Model> {
    let email = Email::parse(email)?;
    let existing = repo::find_by_email(store.reader(), &email)
        .await?
        .ok_or_else(|| AppError::not_found("user with email", &email))?;
    let id = existing.id;
    store
        .write(async |tx| repo::set_role(tx, id, role).await)
        .await
}
