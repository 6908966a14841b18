"""The server enforces every buf.validate rule the contract declares.

Run by tests/it/rules.rs against a live server (THEATRE_TARGET, the admin's
THEATRE_ADMIN_EMAIL and THEATRE_ADMIN_PASSWORD) with the Python kit installed.
For every request message of every RPC, each field's declared rules are read
from the descriptors and turned into values that break them (a string one
character too long, a number one past its bound, a list one item too long, a
duplicate, a non-UUID, an unset required message, an enum value out of range)
and values exactly at the limits. The official protovalidate engine is the
judge of what the contract says, and each value is sent to the server:

- a value protovalidate refuses must be refused by the server with
  INVALID_ARGUMENT, naming the same field in its BadRequest;
- a value protovalidate accepts at a limit must not be refused for that field.

The server may refuse more than the contract can say (a blank title once
trimmed, a show start in the past by the server's clock); those rules are
written in the fields' comments. Prints one JSON line; exits 1 on a mismatch.
"""

import json
import os
import sys
import time
import uuid

import grpc
from buf.validate import validate_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from theatre.v1 import auth_pb2, booking_pb2, catalog_pb2
from theatre_client import Session, invalid_fields, refusal

target = os.environ["THEATRE_TARGET"]
admin = Session(target)
admin.login(os.environ["THEATRE_ADMIN_EMAIL"], os.environ["THEATRE_ADMIN_PASSWORD"])
serial = iter(range(10**9))


def email(n=None):
    """A fresh email the server accepts, exactly `n` characters long if given."""
    base = f"u{next(serial)}-{time.time_ns()}@example.com"
    if n is None:
        return base
    if n < len("a@b.cd"):
        return None
    local, domain = "a" * min(64, n - 6), ""
    rest = n - len(local) - 1 - len(".com")
    labels = []
    while rest > 0:
        label = min(60, rest)
        labels.append("b" * label)
        rest -= label + 1
    domain = ".".join(labels + ["com"])
    value = f"{local}@{domain}"
    return value if len(value) == n else None


def in_a_week():
    ts = Timestamp()
    ts.FromSeconds(int(time.time()) + 7 * 24 * 3600)
    return ts


def rows(n=1):
    return [catalog_pb2.SeatRow(label=chr(ord("A") + i % 26) * (1 + i // 26), seats=10, price_cents=900) for i in range(n)]


def some_id():
    return str(uuid.uuid4())


#: A request of each RPC that breaks no declared rule.
BASELINES = {
    "theatre.v1.SignUpRequest": lambda: auth_pb2.SignUpRequest(email=email(), password="correct-horse-1", display_name="Ann"),
    "theatre.v1.LoginRequest": lambda: auth_pb2.LoginRequest(email=email(), password="correct-horse-1"),
    "theatre.v1.SetUserRoleRequest": lambda: auth_pb2.SetUserRoleRequest(user_id=some_id(), role=auth_pb2.ROLE_USER),
    "theatre.v1.CreateMovieRequest": lambda: catalog_pb2.CreateMovieRequest(title="T", duration_minutes=90, genre="Drama"),
    "theatre.v1.UpdateMovieRequest": lambda: catalog_pb2.UpdateMovieRequest(movie_id=some_id(), title="T"),
    "theatre.v1.DeleteMovieRequest": lambda: catalog_pb2.DeleteMovieRequest(movie_id=some_id()),
    "theatre.v1.GetMovieRequest": lambda: catalog_pb2.GetMovieRequest(movie_id=some_id()),
    "theatre.v1.ListMoviesRequest": lambda: catalog_pb2.ListMoviesRequest(page_size=10),
    "theatre.v1.CreateTheatreRequest": lambda: catalog_pb2.CreateTheatreRequest(name=f"Odeon {next(serial)}", city="Lisbon"),
    "theatre.v1.ListTheatresRequest": lambda: catalog_pb2.ListTheatresRequest(page_size=10),
    "theatre.v1.CreateShowRequest": lambda: catalog_pb2.CreateShowRequest(
        movie_id=some_id(), theatre_id=some_id(), starts_at=in_a_week(), rows=rows()
    ),
    "theatre.v1.DeleteShowRequest": lambda: catalog_pb2.DeleteShowRequest(show_id=some_id()),
    "theatre.v1.GetShowRequest": lambda: catalog_pb2.GetShowRequest(show_id=some_id()),
    "theatre.v1.ListShowsRequest": lambda: catalog_pb2.ListShowsRequest(movie_id=some_id(), page_size=10),
    "theatre.v1.GetSeatMapRequest": lambda: catalog_pb2.GetSeatMapRequest(show_id=some_id()),
    "theatre.v1.CreateBookingRequest": lambda: booking_pb2.CreateBookingRequest(show_id=some_id(), seat_ids=["A1"]),
    "theatre.v1.ListMyBookingsRequest": lambda: booking_pb2.ListMyBookingsRequest(page_size=10),
    "theatre.v1.GetBookingRequest": lambda: booking_pb2.GetBookingRequest(booking_id=some_id()),
    "theatre.v1.CancelBookingRequest": lambda: booking_pb2.CancelBookingRequest(booking_id=some_id()),
}



def rules_of(field):
    options = field.GetOptions()
    return options.Extensions[validate_pb2.field] if options.HasExtension(validate_pb2.field) else None


def text(field, n):
    """A string of `n` characters that is otherwise valid for `field`, if there is one."""
    if field.name == "email":
        return email(n)
    if field.name == "label":
        return ("A" * min(n, 3)).center(n) if n >= 1 else ""
    return "a" * n


def scalar_cases(field, r):
    """(rule, value) at and just past each limit of one scalar field's rules."""
    kind = r.WhichOneof("type")
    if kind == "string":
        s = r.string
        if s.HasField("min_len"):
            yield "string.min_len", "a" * (s.min_len - 1)
            yield "string.min_len", text(field, s.min_len)
        if s.HasField("max_len"):
            yield "string.max_len", "a" * (s.max_len + 1)
            yield "string.max_len", text(field, s.max_len)
        if s.uuid:
            yield "string.uuid", "not-a-uuid"
        if s.pattern:
            # Some match and some do not: protovalidate says which.
            for value in ["", "a", "A0", "A10", "ABCD", "A1B", " B "]:
                yield "string.pattern", value
    elif kind in ("int32", "int64"):
        n = getattr(r, kind)
        if n.HasField("gte"):
            yield f"{kind}.gte", n.gte - 1
            yield f"{kind}.gte", n.gte
        if n.HasField("lte"):
            yield f"{kind}.lte", n.lte + 1
            yield f"{kind}.lte", n.lte
    elif kind == "enum":
        yield "enum.not_in", 0
        yield "enum.defined_only", 99


def repeated_cases(field, r):
    """(rule, items) at and just past the limits of a list field's rules."""
    rep = r.repeated
    item = rows(1)[0] if field.name == "rows" else "A1"
    make = (lambda n: rows(n)) if field.name == "rows" else (lambda n: [f"A{i + 1}" for i in range(n)])
    if rep.HasField("min_items"):
        yield "repeated.min_items", make(rep.min_items - 1)
        yield "repeated.min_items", make(rep.min_items)
    if rep.HasField("max_items"):
        yield "repeated.max_items", make(rep.max_items)
        yield "repeated.max_items", make(rep.max_items + 1)
    if rep.unique:
        yield "repeated.unique", [item, item]


def cases(message_factory):
    """(rule, field path, request, value) for every declared rule of every field."""
    sample = message_factory()
    for field in sample.DESCRIPTOR.fields:
        r = rules_of(field)
        if field.message_type is not None and field.message_type.full_name == "theatre.v1.SeatRow":
            for sub in field.message_type.fields:
                for rule, value in scalar_cases(sub, rules_of(sub)) if rules_of(sub) else []:
                    msg = message_factory()
                    setattr(getattr(msg, field.name)[0], sub.name, value)
                    yield rule, f"{field.name}[0].{sub.name}", msg, value
        if r is None:
            continue
        if r.required:
            msg = message_factory()
            msg.ClearField(field.name)
            yield "required", field.name, msg, None
        if not field.is_repeated:
            for rule, value in scalar_cases(field, r):
                if value is None:
                    continue  # no valid value of that length (an email of 3 characters)
                msg = message_factory()
                setattr(msg, field.name, value)
                yield rule, field.name, msg, value
            continue
        for rule, items in repeated_cases(field, r):
            msg = message_factory()
            del getattr(msg, field.name)[:]
            getattr(msg, field.name).extend(items)
            yield rule, field.name, msg, f"{len(items)} items"
        if r.repeated.HasField("items"):
            for rule, value in scalar_cases(field, r.repeated.items):
                msg = message_factory()
                getattr(msg, field.name)[0] = value
                yield f"repeated.items.{rule}", f"{field.name}[0]", msg, value


def leaves(rules, prefix=""):
    """The dotted names of the rules set in a FieldRules: string.min_len, repeated.unique, ..."""
    for descriptor, value in rules.ListFields():
        name = prefix + descriptor.name
        if descriptor.message_type is not None:
            yield from leaves(value, name + ".")
        elif name != "ignore":  # when a rule applies, not a rule itself
            yield name


def declared_rules(message_factory):
    """(field path, rule) for every rule on the request's fields, nested rows included."""
    for field in message_factory().DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.full_name == "theatre.v1.SeatRow":
            for sub in field.message_type.fields:
                for rule in leaves(rules_of(sub)) if rules_of(sub) else []:
                    yield f"{field.name}[0].{sub.name}", rule
        for rule in leaves(rules_of(field)) if rules_of(field) else []:
            # A rule on a list's items is broken through its first item.
            yield (f"{field.name}[0]" if rule.startswith("repeated.items.") else field.name), rule


def methods():
    for module in (auth_pb2, catalog_pb2, booking_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            stub = {"AuthService": admin.auth, "CatalogService": admin.catalog, "BookingService": admin.booking}[
                service.name
            ]
            for method in service.methods:
                yield method.input_type.full_name, getattr(stub, method.name)


def names(error, field):
    """True if the refusal's BadRequest names `field` (or an item of it)."""
    return any(f == field or f.startswith(field + "[") or field.startswith(f + "[") for f in refusal(error).fields)


failures, refused, passed = [], 0, 0
every_rule, unbroken = set(), set()
for request_type, call in methods():
    if request_type not in BASELINES:
        continue
    base = BASELINES[request_type]()
    if invalid_fields(base):
        failures.append(f"{request_type}: the baseline breaks {invalid_fields(base)}")
        continue
    rules = {(request_type, field, rule) for field, rule in declared_rules(BASELINES[request_type])}
    every_rule |= rules
    unbroken |= rules
    for rule, field, msg, value in cases(BASELINES[request_type]):
        broken = invalid_fields(msg)
        case = f"{request_type} {field}={value!r} ({rule})"
        try:
            call(msg)
            outcome = None
        except grpc.RpcError as error:
            outcome = error
        if broken:
            refused += 1
            unbroken.discard((request_type, field, rule))
            if outcome is None or outcome.code() != grpc.StatusCode.INVALID_ARGUMENT:
                failures.append(f"{case}: the contract refuses it ({broken}) but the server answered {outcome and outcome.code()}")
            elif not all(names(outcome, path) for path in broken):
                failures.append(f"{case}: the contract names {broken}, the server {refusal(outcome).fields}")
        else:
            passed += 1
            if outcome is not None and outcome.code() == grpc.StatusCode.INVALID_ARGUMENT and names(outcome, field):
                failures.append(f"{case}: the contract allows it but the server refused: {refusal(outcome).fields} {outcome.details()}")

# A declared rule no case broke would go unchecked: the generator must learn it.
failures += [f"{t} {f}: no case breaks its rule {r}" for t, f, r in sorted(unbroken)]
print(json.dumps({"rules": len(every_rule), "refused": refused, "allowed": passed, "failures": failures}))
sys.exit(1 if failures else 0)
