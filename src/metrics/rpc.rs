//! What a call is counted and logged as: its method's labels and path, and
//! its status code's name. The layer that counts and times calls is
//! `crate::telemetry`.
use std::borrow::Cow;

use super::MethodLabels;
use crate::methods;

/// Infrastructure methods, labelled by name like the contract's.
const INFRA_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

const UNKNOWN: MethodLabels = MethodLabels {
    grpc_service: "unknown",
    grpc_method: "unknown",
};

/// The method a request calls.
pub struct RpcMethod {
    pub labels: MethodLabels,
    /// The request path: served methods' paths are static, and only an
    /// unknown path (logged as sent) is copied.
    pub path: Cow<'static, str>,
}

/// A request's method: its contract method, or an infrastructure method by
/// path. Paths outside the served methods share one label, so random paths
/// cannot grow the series without bound.
pub fn rpc_method<B>(request: &http::Request<B>) -> RpcMethod {
    if let Some(method) = methods::resolved(request) {
        return RpcMethod {
            labels: MethodLabels {
                grpc_service: method.service,
                grpc_method: method.name,
            },
            path: Cow::Borrowed(method.path),
        };
    }
    let path = request.uri().path();
    let infra = INFRA_METHODS.iter().find(|known| **known == path);
    let labels = infra
        .and_then(|known| known.strip_prefix('/')?.split_once('/'))
        .map_or(UNKNOWN, |(grpc_service, grpc_method)| MethodLabels {
            grpc_service,
            grpc_method,
        });
    let path = match infra {
        Some(known) => Cow::Borrowed(*known),
        None => Cow::Owned(path.to_owned()),
    };
    RpcMethod { labels, path }
}

/// gRPC status codes by number, spelled as go-grpc-prometheus spells them.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The name of a gRPC status code, as go-grpc-prometheus spells it.
pub fn code_name(code: u16) -> &'static str {
    CODE_NAMES
        .get(usize::from(code))
        .copied()
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> MethodLabels {
        let request = methods::resolve(http::Request::get(path).body(()).unwrap());
        rpc_method(&request).labels
    }

    #[test]
    fn served_methods_get_their_labels_and_others_share_one() {
        let login = labels("/theatre.v1.AuthService/Login");
        assert_eq!(login.grpc_service, "theatre.v1.AuthService");
        assert_eq!(login.grpc_method, "Login");
        let watch = labels("/grpc.health.v1.Health/Watch");
        assert_eq!(watch.grpc_method, "Watch");
        assert_eq!(labels("/x.Y/Z").grpc_service, "unknown");
        assert_eq!(labels("/").grpc_method, "unknown");
    }
}
