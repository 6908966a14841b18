"""Reads Theatre's events from Kafka with confluent-kafka, once each.

    python examples/consume_events.py --brokers 127.0.0.1:9092 --seen seen.db

Delivery is at least once: the relay may publish an event again after a crash,
and a consumer re-reads what it had not committed. So every event is applied
and its ``event_id`` recorded in one SQLite transaction, and an id already
recorded is skipped: a second delivery changes nothing. Offsets are committed
after that transaction. Every payload type of ``theatre.v1.EventEnvelope`` is
decoded; a payload this consumer does not know (a newer contract) is skipped,
and a ``schema_version`` above the one it was written for stops it, since it
would misread such events (events.proto says when the version changes).

With ``--idle N`` it stops after N seconds without a record and prints what
it did as one JSON line (the CI test reads it); without, it runs until ^C.
"""

import argparse
import collections
import json
import os
import sqlite3
import sys
import time

from confluent_kafka import Consumer, KafkaError

from theatre.v1 import booking_pb2, events_pb2

SCHEMA_VERSION = 1
CONTENT_TYPE = "application/x-protobuf; messageType=theatre.v1.EventEnvelope"


def describe(envelope: events_pb2.EventEnvelope) -> str:
    """What the event says, by payload type; a real consumer applies it here."""
    kind = envelope.WhichOneof("payload")
    p = getattr(envelope, kind)
    if kind in ("movie_created", "movie_updated"):
        return f"{kind} {p.movie.id}: {p.movie.title} ({p.movie.duration_minutes} min)"
    if kind == "movie_deleted":
        return f"movie_deleted {p.movie_id}: {len(p.deleted_show_ids)} shows, {len(p.cancelled_booking_ids)} bookings cancelled"
    if kind == "show_created":
        return f"show_created {p.show.id}: {p.show.movie_title} at {p.show.theatre_name}, {p.show.total_seats} seats"
    if kind == "show_deleted":
        return f"show_deleted {p.show_id} of movie {p.movie_id}: {len(p.cancelled_booking_ids)} bookings cancelled"
    if kind == "booking_confirmed":
        return f"booking_confirmed {p.booking_id}: {','.join(p.seat_ids)} of show {p.show_id}, {p.total_cents} cents"
    if kind == "booking_cancelled":
        reason = booking_pb2.CancelReason.Name(p.reason)
        return f"booking_cancelled {p.booking_id}: {','.join(p.seat_ids)} of show {p.show_id}, {reason}"
    raise AssertionError(f"a payload type this consumer lists but does not describe: {kind}")


class SeenStore:
    """The event ids already applied, in the same database as what they changed."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY, event_type TEXT)")

    def apply_once(self, envelope: events_pb2.EventEnvelope, apply) -> bool:
        """Runs ``apply`` and records the id in one transaction; False if seen before."""
        with self.db:
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO seen_events VALUES (?, ?)", (envelope.event_id, envelope.event_type)
            ).rowcount
            if inserted:
                apply(envelope)
        return bool(inserted)


def consume(args) -> dict:
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(args.topics.split(","))
    seen = SeenStore(args.seen)
    applied, duplicates, skipped = collections.Counter(), 0, 0
    last_record = time.monotonic()
    try:
        while not args.idle or time.monotonic() - last_record < args.idle:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise SystemExit(f"kafka: {msg.error()}")
            last_record = time.monotonic()
            headers = {k: v.decode() for k, v in msg.headers() or []}
            if headers.get("content-type") != CONTENT_TYPE:
                raise SystemExit(f"not a Theatre event: content-type {headers.get('content-type')!r}")
            envelope = events_pb2.EventEnvelope.FromString(msg.value())
            if envelope.schema_version > SCHEMA_VERSION:
                raise SystemExit(f"event {envelope.event_id} has schema_version {envelope.schema_version}: upgrade")
            if envelope.WhichOneof("payload") is None:
                skipped += 1  # a payload type newer than this consumer
            elif seen.apply_once(envelope, lambda e: print(describe(e), flush=True)):
                applied[envelope.event_type] += 1
            else:
                duplicates += 1
            consumer.commit(message=msg, asynchronous=False)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return {"applied": dict(applied), "duplicates": duplicates, "skipped": skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092"))
    parser.add_argument("--topics", default="theatre.movies,theatre.bookings")
    parser.add_argument("--group", default="theatre-example")
    parser.add_argument("--seen", default="seen-events.db", help="SQLite file of the event ids applied")
    parser.add_argument("--idle", type=float, default=0, help="stop after this many seconds without a record")
    summary = consume(parser.parse_args())
    print(json.dumps(summary), file=sys.stdout)


if __name__ == "__main__":
    main()
