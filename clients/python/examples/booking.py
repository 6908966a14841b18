"""The booking flow with the Python kit, over gRPC.

    THEATRE_TARGET=127.0.0.1:50051 THEATRE_ADMIN_EMAIL=... THEATRE_ADMIN_PASSWORD=... \\
        python examples/booking.py

An admin puts a show on; two customers sign up; Ann books A3 and A4; Ben asks
for A4 and is told SEAT_TAKEN, naming the seat; Ann lists her bookings and
cancels. Exits non-zero if the service answers otherwise.
"""

import os
import time
from datetime import datetime, timedelta, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from theatre.v1 import auth_pb2, booking_pb2, catalog_pb2
from theatre_client import Session, refusal

target = os.environ.get("THEATRE_TARGET", "127.0.0.1:50051")
run = format(time.time_ns(), "x")


def customer(name: str) -> Session:
    email = f"{name}-{run}@example.com"
    session = Session(target)
    session.auth.SignUp(auth_pb2.SignUpRequest(email=email, password="correct-horse-1", display_name=name))
    session.login(email, "correct-horse-1")
    return session


admin = Session(target)
admin.login(os.environ["THEATRE_ADMIN_EMAIL"], os.environ["THEATRE_ADMIN_PASSWORD"])
movie = admin.catalog.CreateMovie(
    catalog_pb2.CreateMovieRequest(title="Metropolis", description="Fritz Lang", duration_minutes=153, genre="Sci-Fi")
).movie
theatre = admin.catalog.CreateTheatre(catalog_pb2.CreateTheatreRequest(name=f"Odeon {run}", city="Lisbon")).theatre
starts_at = Timestamp()
starts_at.FromDatetime(datetime.now(timezone.utc) + timedelta(days=7))
show = admin.catalog.CreateShow(
    catalog_pb2.CreateShowRequest(
        movie_id=movie.id,
        theatre_id=theatre.id,
        starts_at=starts_at,
        rows=[catalog_pb2.SeatRow(label="A", seats=10, price_cents=1200)],
    )
).show
print(f"show {show.id}: {show.movie_title} at {show.theatre_name}, {show.total_seats} seats")

ann, ben = customer("ann"), customer("ben")
booking = ann.booking.CreateBooking(
    booking_pb2.CreateBookingRequest(show_id=show.id, seat_ids=["A3", "A4"], idempotency_key=f"order-{run}")
).booking
assert booking.status == booking_pb2.BOOKING_STATUS_CONFIRMED, booking
print(f"ann booked {','.join(booking.seat_ids)} for {booking.total_cents} cents: {booking.id}")

try:
    ben.booking.CreateBooking(booking_pb2.CreateBookingRequest(show_id=show.id, seat_ids=["A4", "A5"]))
    raise SystemExit("A4 was sold twice")
except grpc.RpcError as error:
    why = refusal(error)
    assert why.code == grpc.StatusCode.FAILED_PRECONDITION, why
    assert why.reason == "SEAT_TAKEN" and why.metadata["seats"] == "A4", why
    print(f"ben asked for A4: {why.code.name} {why.reason} seats={why.metadata['seats']}")

seats = ben.catalog.GetSeatMap(catalog_pb2.GetSeatMapRequest(show_id=show.id)).seats
taken = [s.seat_id for s in seats if s.status == catalog_pb2.SEAT_STATUS_BOOKED]
assert taken == ["A3", "A4"], taken
print(f"seat map: {','.join(taken)} booked of {len(seats)}")

mine = ann.booking.ListMyBookings(booking_pb2.ListMyBookingsRequest(page_size=10)).bookings
assert [b.id for b in mine] == [booking.id], mine
cancelled = ann.booking.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=booking.id)).booking
assert cancelled.status == booking_pb2.BOOKING_STATUS_CANCELLED, cancelled
print(f"ann cancelled {booking.id}")
print("booking flow: ok")
