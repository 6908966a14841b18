//! The tower layer that authenticates every call and checks the caller's role
//! against the rule the contract declares for the method (`crate::methods`),
//! before any handler runs.
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::Status;
use tower::{Layer, Service};

use super::token::{TokenIssuer, VerifiedClaims};
use crate::{
    entity::user::Role,
    error::{AppError, AppResult, Reason},
    methods::{self, Access},
};

/// The authenticated caller, put into the request extensions by the layer.
pub type Caller = VerifiedClaims;

/// Proof that the layer found the caller to hold the ADMIN role for an
/// ADMIN method: only this module can make one, and it makes one only then.
/// Admin handlers start by taking it (`AdminCaller::of`), so a handler that
/// was reached some other way, or a method whose rule was loosened in the
/// contract by mistake, still refuses non-admins.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller(Caller);

impl AdminCaller {
    pub fn of<T>(req: &tonic::Request<T>) -> AppResult<Self> {
        match req.extensions().get::<Self>() {
            Some(admin) => Ok(*admin),
            None => {
                caller(req)?;
                Err(AppError::PermissionDenied(
                    "this call requires the ADMIN role".into(),
                ))
            }
        }
    }

    pub fn caller(&self) -> Caller {
        self.0
    }
}

/// Infrastructure services any client (load balancer, grpcurl) may call.
const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The access rule for a request path: the contract's own declaration
/// (`crate::methods`). A `theatre.*` path the contract does not have fails
/// closed (ADMIN); other unknown paths need a valid token and then get
/// UNIMPLEMENTED from the router.
pub fn access_for<B>(req: &http::Request<B>) -> Access {
    if let Some(method) = methods::resolved(req) {
        return method.access;
    }
    let path = req.uri().path();
    if PUBLIC_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
    {
        return Access::Public;
    }
    if path.starts_with("/theatre.") {
        return Access::Admin;
    }
    Access::User
}

fn bearer_token<B>(req: &http::Request<B>) -> AppResult<&str> {
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| {
            AppError::Unauthenticated(
                Reason::TokenMissing,
                "missing authorization bearer token".into(),
            )
        })?;
    let value = header.to_str().map_err(|_| {
        AppError::Unauthenticated(
            Reason::TokenMalformed,
            "malformed authorization header".into(),
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AppError::Unauthenticated(
            Reason::TokenMalformed,
            "authorization header must be 'Bearer <token>'".into(),
        )),
    }
}

/// What the layer puts into the request's extensions.
struct Proof {
    caller: Caller,
    admin: Option<AdminCaller>,
}

fn authorize<B>(tokens: &TokenIssuer, req: &http::Request<B>) -> AppResult<Option<Proof>> {
    let access = access_for(req);
    if access == Access::Public {
        return Ok(None);
    }
    let caller = tokens.verify(bearer_token(req)?)?;
    let admin = match access {
        Access::Admin if caller.role != Role::Admin => {
            return Err(AppError::PermissionDenied(format!(
                "{} requires the ADMIN role",
                req.uri().path()
            )));
        }
        Access::Admin => Some(AdminCaller(caller)),
        _ => None,
    };
    Ok(Some(Proof { caller, admin }))
}

/// The caller the layer authenticated; UNAUTHENTICATED if the layer did not run.
pub fn caller<T>(req: &tonic::Request<T>) -> AppResult<Caller> {
    req.extensions().get::<Caller>().copied().ok_or_else(|| {
        AppError::Unauthenticated(
            Reason::TokenMissing,
            "missing authorization bearer token".into(),
        )
    })
}

#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<TokenIssuer>,
}

impl AuthLayer {
    pub fn new(tokens: Arc<TokenIssuer>) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthMiddleware<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthMiddleware<S> {
    inner: S,
    tokens: Arc<TokenIssuer>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResBody> Service<http::Request<B>> for AuthMiddleware<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match authorize(&self.tokens, &req) {
            Ok(proof) => {
                if let Some(Proof { caller, admin }) = proof {
                    req.extensions_mut().insert(caller);
                    if let Some(admin) = admin {
                        req.extensions_mut().insert(admin);
                    }
                }
                Box::pin(self.inner.call(req))
            }
            Err(err) => {
                let status: Status = err.into();
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(path: &str) -> Access {
        access_for(&methods::resolve(
            http::Request::get(path).body(()).unwrap(),
        ))
    }

    #[test]
    fn only_the_layer_makes_an_admin_caller() {
        let user = Caller {
            user_id: crate::ids::UserId::new(),
            role: Role::Admin,
        };
        let bare = tonic::Request::new(());
        assert!(matches!(
            AdminCaller::of(&bare),
            Err(AppError::Unauthenticated(..))
        ));
        // A caller without the layer's proof is refused, whatever its role says.
        let mut with_caller = tonic::Request::new(());
        with_caller.extensions_mut().insert(user);
        assert!(matches!(
            AdminCaller::of(&with_caller),
            Err(AppError::PermissionDenied(_))
        ));
        with_caller.extensions_mut().insert(AdminCaller(user));
        assert_eq!(
            AdminCaller::of(&with_caller).unwrap().caller().user_id,
            user.user_id
        );
    }

    #[test]
    fn unknown_paths_fail_closed() {
        assert_eq!(access("/theatre.v1.CatalogService/Unlisted"), Access::Admin);
        assert_eq!(
            access("/theatre.v1.CatalogService/CreateMovie"),
            Access::Admin
        );
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(access("/other.Service/Call"), Access::User);
    }
}
