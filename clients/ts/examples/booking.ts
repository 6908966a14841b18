// The booking flow with the TypeScript kit, over gRPC from Node:
//   THEATRE_URL=http://127.0.0.1:50051 THEATRE_ADMIN_EMAIL=… THEATRE_ADMIN_PASSWORD=… \
//     node dist/examples/booking.js
// An admin puts a show on; two customers sign up; Ann books A3 and A4; Ben
// asks for A4 and is told SEAT_TAKEN, naming the seat; Ann lists her
// bookings and cancels. Exits non-zero if the service answers otherwise.
import assert from "node:assert/strict";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";

import { BookingStatus, SeatStatus, codeName, refusal, theatreClients } from "@theatre/client";
import { grpcTransport } from "@theatre/client/node";

const url = process.env.THEATRE_URL ?? "http://127.0.0.1:50051";
const run = Date.now().toString(36);

/** Typed clients that log in as `email` and then send its token. */
async function session(email: string, password: string) {
  let token: string | undefined;
  const clients = theatreClients(grpcTransport(url, () => token));
  token = (await clients.auth.login({ email, password })).accessToken;
  return clients;
}

async function customer(name: string) {
  const email = `${name}-${run}@example.com`;
  const { auth } = theatreClients(grpcTransport(url));
  await auth.signUp({ email, password: "correct-horse-1", displayName: name });
  return session(email, "correct-horse-1");
}

const admin = await session(process.env.THEATRE_ADMIN_EMAIL!, process.env.THEATRE_ADMIN_PASSWORD!);
const { movie } = await admin.catalog.createMovie({
  title: "Metropolis",
  description: "Fritz Lang",
  durationMinutes: 153,
  genre: "Sci-Fi",
});
const { theatre } = await admin.catalog.createTheatre({ name: `Odeon ${run}`, city: "Lisbon" });
const { show } = await admin.catalog.createShow({
  movieId: movie!.id,
  theatreId: theatre!.id,
  startsAt: timestampFromDate(new Date(Date.now() + 7 * 24 * 3600 * 1000)),
  rows: [{ label: "A", seats: 10, priceCents: 1200n }],
});
console.log(`show ${show!.id}: ${show!.movieTitle} at ${show!.theatreName}, ${show!.totalSeats} seats`);

const ann = await customer("ann");
const ben = await customer("ben");
const { booking } = await ann.booking.createBooking({
  showId: show!.id,
  seatIds: ["A3", "A4"],
  idempotencyKey: `order-${run}`,
});
assert.equal(booking!.status, BookingStatus.CONFIRMED);
console.log(`ann booked ${booking!.seatIds.join(",")} for ${booking!.totalCents} cents: ${booking!.id}`);

try {
  await ben.booking.createBooking({ showId: show!.id, seatIds: ["A4", "A5"] });
  assert.fail("A4 was sold twice");
} catch (err) {
  const r = refusal(err);
  assert.equal(r.code, Code.FailedPrecondition);
  assert.equal(r.reason, "SEAT_TAKEN");
  assert.equal(r.metadata.seats, "A4");
  console.log(`ben asked for A4: ${codeName(r.code)} ${r.reason} seats=${r.metadata.seats}`);
}

const { seats } = await ben.catalog.getSeatMap({ showId: show!.id });
const taken = seats.filter((s) => s.status === SeatStatus.BOOKED).map((s) => s.seatId);
assert.deepEqual(taken, ["A3", "A4"]);
console.log(`seat map: ${taken.join(",")} booked of ${seats.length}`);

const { bookings } = await ann.booking.listMyBookings({ pageSize: 10 });
assert.deepEqual(bookings.map((b) => b.id), [booking!.id]);
const cancelled = await ann.booking.cancelBooking({ bookingId: booking!.id });
assert.equal(cancelled.booking!.status, BookingStatus.CANCELLED);
console.log(`ann cancelled ${booking!.id}`);
console.log("booking flow: ok");
