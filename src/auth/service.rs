//! AuthService: sign-up, login, who-am-I and role changes.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    layer::{AdminCaller, caller},
    password,
    repo::{self, NewUser},
    throttle::{LoginThrottle, SignUpThrottle},
    token::TokenIssuer,
    validate::{self, Email},
};
use crate::{
    clock::Clock,
    config::{SignUpPolicy, ThrottlePolicy},
    entity::user::{self, Role},
    error::{AppError, AppResult, Reason},
    ids::UserId,
    metrics::Metrics,
    proto::{self, auth_service_server::AuthService},
    store::Store,
    validate::AllFields,
    wire::{self, timestamp},
};

pub struct AuthApi {
    store: Store,
    tokens: Arc<TokenIssuer>,
    throttle: LoginThrottle,
    signups: SignUpThrottle,
    metrics: Metrics,
}

impl AuthApi {
    pub fn new(
        store: Store,
        tokens: Arc<TokenIssuer>,
        clock: Arc<dyn Clock>,
        (throttle, signups): (ThrottlePolicy, SignUpPolicy),
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            tokens,
            throttle: LoginThrottle::new(throttle, clock.clone()),
            signups: SignUpThrottle::new(signups, clock),
            metrics,
        }
    }

    /// The user whose password this is; UNAUTHENTICATED for a wrong email or password.
    /// Unknown emails are checked against a dummy hash, so the time taken
    /// does not tell which accounts exist.
    async fn check_password(&self, email: &Email, password: String) -> AppResult<user::Model> {
        let user = repo::find_by_email(self.store.reader(), email).await?;
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let matched = password::verify(password, stored_hash).await?;
        match user {
            Some(user) if matched => Ok(user),
            _ => Err(AppError::Unauthenticated(
                Reason::BadCredentials,
                "invalid email or password".into(),
            )),
        }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_up(
        &self,
        request: Request<proto::SignUpRequest>,
    ) -> Result<Response<proto::SignUpResponse>, Status> {
        let peer = request.remote_addr().map(|addr| addr.ip());
        let req = request.into_inner();
        let (email, display_name, password) = (
            Email::parse(&req.email),
            validate::display_name(&req.display_name),
            validate::new_password(&req.password),
        )
            .all_fields()?;
        if let Err(refused) = self.signups.admit(peer) {
            self.metrics.signup_throttled();
            tracing::warn!(peer = ?peer, "sign-up throttled");
            return Err(refused.into());
        }
        let created = async {
            let new = NewUser {
                email,
                display_name,
                password_hash: password::hash(password).await?,
                role: Role::User,
            };
            self.store
                .write(async |tx| repo::create_user(tx, new).await)
                .await
        }
        .await;
        let user = match created {
            Ok(user) => user,
            Err(err @ AppError::AlreadyExists(..)) => return Err(err.into()),
            Err(err) => {
                self.signups.refund(peer);
                return Err(err.into());
            }
        };
        tracing::info!(user_id = %user.id, "user signed up");
        Ok(Response::new(proto::SignUpResponse {
            user: Some(user.into()),
        }))
    }

    async fn login(
        &self,
        request: Request<proto::LoginRequest>,
    ) -> Result<Response<proto::LoginResponse>, Status> {
        let peer = request.remote_addr().map(|addr| addr.ip());
        let req = request.into_inner();
        let email = Email::parse(&req.email)?;
        let password = validate::login_password(&req.password)?;
        if let Err((scope, refused)) = self.throttle.admit(email.as_str(), peer) {
            self.metrics.login_throttled(scope.label());
            tracing::warn!(scope = scope.label(), peer = ?peer, "login throttled");
            return Err(refused.into());
        }
        let user = match self.check_password(&email, password).await {
            Ok(user) => {
                self.throttle.succeeded(email.as_str(), peer);
                user
            }
            Err(err @ AppError::Unauthenticated(..)) => {
                self.metrics.login_failed();
                return Err(err.into());
            }
            Err(err) => {
                self.throttle.refund(email.as_str(), peer);
                return Err(err.into());
            }
        };
        let issued = self.tokens.issue(user.id, user.role)?;
        Ok(Response::new(proto::LoginResponse {
            access_token: issued.token,
            expires_at: Some(timestamp(issued.expires_at)),
            user: Some(user.into()),
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<proto::WhoAmIRequest>,
    ) -> Result<Response<proto::WhoAmIResponse>, Status> {
        let caller = caller(&request)?;
        let user = repo::find_by_id(self.store.reader(), caller.user_id).await?;
        Ok(Response::new(proto::WhoAmIResponse {
            user: Some(user.into()),
        }))
    }

    async fn check_token(
        &self,
        request: Request<proto::CheckTokenRequest>,
    ) -> Result<Response<proto::CheckTokenResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(proto::CheckTokenResponse {
            user_id: caller.user_id.to_string(),
            role: proto::Role::from(caller.role).into(),
        }))
    }

    async fn set_user_role(
        &self,
        request: Request<proto::SetUserRoleRequest>,
    ) -> Result<Response<proto::SetUserRoleResponse>, Status> {
        let admin = AdminCaller::of(&request)?;
        let req = request.into_inner();
        let user_id = UserId::parse("user_id", &req.user_id)?;
        let role = wire::auth::role(req.role)?;
        let user = self
            .store
            .write(async |tx| repo::set_role(tx, user_id, role).await)
            .await?;
        tracing::info!(user_id = %user.id, role = ?user.role, by = %admin.caller().user_id, "user role changed");
        Ok(Response::new(proto::SetUserRoleResponse {
            user: Some(user.into()),
        }))
    }
}
