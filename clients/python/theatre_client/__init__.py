"""Typed clients of the Theatre API (theatre.v1) over gRPC.

The messages and stubs are generated (``theatre.v1.*_pb2``, ``*_pb2_grpc``);
this module adds what every client needs: stubs on one channel that send the
bearer token, and a refusal's stable reason read from its google.rpc details.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from theatre.v1 import auth_pb2, auth_pb2_grpc, booking_pb2_grpc, catalog_pb2_grpc

#: The domain of every ErrorInfo the service sends.
ERROR_DOMAIN = "theatre.v1"

#: Codes of faults that are not the caller's: the same call may succeed later.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <token>`` once the session has a token."""

    def __init__(self, session: "Session"):
        self._session = session

    def intercept_unary_unary(self, continuation, details, request):
        if self._session.token:
            metadata = list(details.metadata or []) + [("authorization", f"Bearer {self._session.token}")]
            # grpc hands interceptors a namedtuple of the call's details.
            details = details._replace(metadata=metadata)
        return continuation(details, request)


class Session:
    """The three services on one channel; after ``login`` every call sends the token.

    >>> theatre = Session("127.0.0.1:50051")
    >>> theatre.login("ann@example.com", "correct-horse-1")
    >>> theatre.catalog.ListMovies(catalog_pb2.ListMoviesRequest(page_size=20))
    """

    def __init__(self, target: str, token: Optional[str] = None, channel: Optional[grpc.Channel] = None):
        self.token = token
        self.channel = channel or grpc.insecure_channel(target)
        intercepted = grpc.intercept_channel(self.channel, _Bearer(self))
        self.auth = auth_pb2_grpc.AuthServiceStub(intercepted)
        self.catalog = catalog_pb2_grpc.CatalogServiceStub(intercepted)
        self.booking = booking_pb2_grpc.BookingServiceStub(intercepted)

    def login(self, email: str, password: str) -> auth_pb2.LoginResponse:
        response = self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))
        self.token = response.access_token
        return response

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


@dataclasses.dataclass
class Refusal:
    """What a program can branch on in a failed call (AIP-193)."""

    code: grpc.StatusCode
    #: Stable: SEAT_TAKEN, SHOW_STARTED, TOKEN_EXPIRED, ... (README, options.proto).
    reason: str
    metadata: dict
    message: str
    #: The fields a BadRequest names, the subjects a PreconditionFailure names.
    fields: list
    subjects: list
    #: Seconds to wait before retrying, where the service said (RetryInfo).
    retry_after: Optional[float] = None

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


def refusal(error: grpc.RpcError) -> Refusal:
    """Reads the google.rpc details of a failed call."""
    found = Refusal(error.code(), "", {}, error.details() or "", [], [])
    status = rpc_status.from_call(error)
    for any_detail in status.details if status else []:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.RetryInfo,
        ):
            if any_detail.Is(kind.DESCRIPTOR):
                detail = kind()
                any_detail.Unpack(detail)
                _read(found, detail)
    return found


def invalid_fields(request) -> list:
    """The fields of ``request`` that break the contract's buf.validate rules.

    Checked here, before sending, with the official protovalidate engine (the
    ``validate`` extra); the server enforces the same rules, and may refuse
    more (a title that is blank once trimmed, a show start in the past).
    """
    import protovalidate  # the optional extra

    def step(element) -> str:
        # A list item's index (or a map key) is the element's subscript.
        subscript = element.subscript
        return element.field_name + (f"[{subscript.value}]" if subscript is not None else "")

    return [".".join(map(step, v.proto.field.elements)) for v in protovalidate.collect_violations(request)]


def _read(found: Refusal, detail) -> None:
    if isinstance(detail, error_details_pb2.ErrorInfo) and detail.domain == ERROR_DOMAIN:
        found.reason = detail.reason
        found.metadata = dict(detail.metadata)
    elif isinstance(detail, error_details_pb2.BadRequest):
        found.fields = [v.field for v in detail.field_violations]
    elif isinstance(detail, error_details_pb2.PreconditionFailure):
        found.subjects = [v.subject for v in detail.violations]
    elif isinstance(detail, error_details_pb2.RetryInfo):
        found.retry_after = detail.retry_delay.ToTimedelta().total_seconds()
