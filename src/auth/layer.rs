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
    error::{AppError, AppResult},
    methods::{self, Access},
};

/// The authenticated caller, put into the request extensions by the layer.
pub type Caller = VerifiedClaims;

/// Infrastructure services any client (load balancer, grpcurl) may call.
const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// The access rule for a request path: the contract's own declaration
/// (`crate::methods`). A `theatre.*` path the contract does not have fails
/// closed (ADMIN); other unknown paths need a valid token and then get
/// UNIMPLEMENTED from the router.
pub fn access_for(path: &str) -> Access {
    if let Some(method) = methods::find(path) {
        return method.access;
    }
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
        .ok_or_else(|| AppError::Unauthenticated("missing authorization bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| AppError::Unauthenticated("malformed authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AppError::Unauthenticated(
            "authorization header must be 'Bearer <token>'".into(),
        )),
    }
}

fn authorize<B>(tokens: &TokenIssuer, req: &http::Request<B>) -> AppResult<Option<Caller>> {
    let access = access_for(req.uri().path());
    if access == Access::Public {
        return Ok(None);
    }
    let caller = tokens.verify(bearer_token(req)?)?;
    if access == Access::Admin && caller.role != Role::Admin {
        return Err(AppError::PermissionDenied(format!(
            "{} requires the ADMIN role",
            req.uri().path()
        )));
    }
    Ok(Some(caller))
}

/// The caller the layer authenticated; UNAUTHENTICATED if the layer did not run.
pub fn caller<T>(req: &tonic::Request<T>) -> AppResult<Caller> {
    req.extensions()
        .get::<Caller>()
        .copied()
        .ok_or_else(|| AppError::Unauthenticated("missing authorization bearer token".into()))
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
            Ok(caller) => {
                if let Some(caller) = caller {
                    req.extensions_mut().insert(caller);
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

    #[test]
    fn unknown_paths_fail_closed() {
        assert_eq!(
            access_for("/theatre.v1.CatalogService/Unlisted"),
            Access::Admin
        );
        assert_eq!(access_for("/grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(access_for("/other.Service/Call"), Access::User);
    }
}
