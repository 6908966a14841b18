// The seat-map page: log in (or sign up), pick a movie and a show, see which
// seats are taken, book some, see why a booking was refused (a seat someone
// else just took), list and cancel your bookings. It speaks grpc-web through
// the TypeScript kit to the service that serves it, or to `?api=<origin>`
// when it is served elsewhere (that origin must be in THEATRE_CORS_ORIGINS).
import {
  type Booking,
  BookingStatus,
  Code,
  type Seat,
  SeatStatus,
  type Show,
  refusal,
  theatreClients,
  timestampDate,
} from "@theatre/client";
import { grpcWebTransport } from "@theatre/client/web";

const api = new URLSearchParams(location.search).get("api") ?? location.origin;
const TOKEN = "theatre.token";
let token = sessionStorage.getItem(TOKEN) ?? undefined;
const client = theatreClients(grpcWebTransport(api, () => token));

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const selected = new Set<string>();
let seats: Seat[] = [];

const money = (cents: bigint) => `€${(Number(cents) / 100).toFixed(2)}`;
const when = (show: { startsAt?: Parameters<typeof timestampDate>[0] }) =>
  show.startsAt ? timestampDate(show.startsAt).toLocaleString() : "";

/** Shows an outcome; `outcome` is what a test (or a screen reader) can key on. */
function say(text: string, outcome: string, error = false) {
  const message = $<HTMLParagraphElement>("message");
  message.textContent = text;
  message.dataset.outcome = outcome;
  message.classList.toggle("error", error);
  message.hidden = false;
}

/** Says why a call failed, in the customer's words where we know the reason. */
function sayRefusal(err: unknown) {
  const r = refusal(err);
  if (r.reason === "TOKEN_EXPIRED" || r.code === Code.Unauthenticated) {
    logOut();
  }
  const words: Record<string, string> = {
    SEAT_TAKEN: `Sorry, ${r.metadata.seats ?? "a seat"} was just taken by someone else. The seat map is up to date again: pick other seats.`,
    SHOW_STARTED: "This show has already started.",
    BAD_CREDENTIALS: "Wrong email or password.",
    EMAIL_TAKEN: "That email already has an account: log in instead.",
    LOGIN_THROTTLED: "Too many attempts: try again later.",
    TOKEN_EXPIRED: "Your session has ended: log in again.",
  };
  say(words[r.reason] ?? `${r.message} (${r.reason || Code[r.code]})`, r.reason || Code[r.code], true);
}

function showSignedIn(signedIn: boolean) {
  $("login-form").hidden = signedIn;
  for (const id of ["booking", "mine", "logout", "who"]) $(id).hidden = !signedIn;
}

async function enter() {
  const me = await client.auth.whoAmI({});
  $("who").textContent = me.user?.displayName ?? "";
  showSignedIn(true);
  await Promise.all([loadMovies(), loadBookings()]);
}

function logOut() {
  token = undefined;
  sessionStorage.removeItem(TOKEN);
  showSignedIn(false);
}

async function logIn(email: string, password: string) {
  token = (await client.auth.login({ email, password })).accessToken;
  sessionStorage.setItem(TOKEN, token);
  await enter();
}

function fill(select: HTMLSelectElement, options: [string, string][]) {
  select.replaceChildren(
    ...options.map(([value, label]) => Object.assign(document.createElement("option"), { value, textContent: label })),
  );
}

async function loadMovies() {
  const { movies } = await client.catalog.listMovies({ pageSize: 100 });
  fill($("movies"), movies.map((m) => [m.id, `${m.title} (${m.durationMinutes} min)`]));
  await loadShows();
}

/** Lists the movie's shows with their free seats, keeping the chosen show chosen. */
async function loadShows() {
  const movieId = $<HTMLSelectElement>("movies").value;
  const picker = $<HTMLSelectElement>("shows");
  const chosen = picker.value;
  const shows: Show[] = movieId ? (await client.catalog.listShows({ movieId, pageSize: 100 })).shows : [];
  fill(picker, shows.map((s) => [s.id, `${when(s)} · ${s.theatreName} · ${s.availableSeats} of ${s.totalSeats} free`]));
  if (shows.some((s) => s.id === chosen)) picker.value = chosen;
  await loadSeatMap();
}

async function loadSeatMap() {
  const showId = $<HTMLSelectElement>("shows").value;
  seats = showId ? (await client.catalog.getSeatMap({ showId })).seats : [];
  for (const seat of seats) if (seat.status === SeatStatus.BOOKED) selected.delete(seat.seatId);
  renderSeatMap();
}

function renderSeatMap() {
  const rows = new Map<string, Seat[]>();
  for (const seat of seats) rows.set(seat.row, [...(rows.get(seat.row) ?? []), seat]);
  const map = $("seatmap");
  map.dataset.show = $<HTMLSelectElement>("shows").value;
  map.replaceChildren(
    ...[...rows].map(([label, row]) => {
      const line = Object.assign(document.createElement("div"), { className: "row" });
      line.append(Object.assign(document.createElement("span"), { className: "row-label", textContent: label }));
      for (const seat of row) line.append(seatButton(seat));
      return line;
    }),
  );
  const chosen = seats.filter((s) => selected.has(s.seatId));
  const total = chosen.reduce((sum, s) => sum + s.priceCents, 0n);
  $("selection").textContent = chosen.length
    ? `${chosen.map((s) => s.seatId).join(", ")}: ${money(total)}`
    : "No seats selected";
  $<HTMLButtonElement>("book").disabled = chosen.length === 0;
}

function seatButton(seat: Seat) {
  const taken = seat.status === SeatStatus.BOOKED;
  const state = taken ? "booked" : selected.has(seat.seatId) ? "selected" : "available";
  const button = Object.assign(document.createElement("button"), {
    type: "button",
    className: `seat ${state}`,
    textContent: String(seat.number),
    title: `${seat.seatId}, ${money(seat.priceCents)}${taken ? ", taken" : ""}`,
    disabled: taken,
  });
  button.dataset.seat = seat.seatId;
  button.dataset.state = state;
  button.addEventListener("click", () => {
    if (!selected.delete(seat.seatId)) selected.add(seat.seatId);
    renderSeatMap();
  });
  return button;
}

async function book() {
  const showId = $<HTMLSelectElement>("shows").value;
  const seatIds = [...selected];
  $<HTMLButtonElement>("book").disabled = true;
  try {
    const { booking } = await client.booking.createBooking({ showId, seatIds, idempotencyKey: crypto.randomUUID() });
    selected.clear();
    say(`Booked ${booking!.seatIds.join(", ")} for ${money(booking!.totalCents)}. Enjoy the show!`, "BOOKED");
  } catch (err) {
    sayRefusal(err);
  }
  await Promise.all([loadShows(), loadBookings()]);
}

async function loadBookings() {
  const { bookings } = await client.booking.listMyBookings({ pageSize: 50 });
  $("bookings").replaceChildren(...bookings.map(bookingItem));
}

function bookingItem(booking: Booking) {
  const cancelled = booking.status === BookingStatus.CANCELLED;
  const item = Object.assign(document.createElement("li"), { className: cancelled ? "cancelled" : "" });
  item.dataset.booking = booking.id;
  item.dataset.status = BookingStatus[booking.status];
  item.append(
    Object.assign(document.createElement("span"), {
      textContent: `${booking.movieTitle} · ${booking.theatreName} · ${when(booking)} · ${booking.seatIds.join(", ")} · ${money(booking.totalCents)}${cancelled ? " · cancelled" : ""}`,
    }),
  );
  if (!cancelled) {
    const cancel = Object.assign(document.createElement("button"), { type: "button", textContent: "Cancel" });
    cancel.dataset.cancel = booking.id;
    cancel.addEventListener(
      "click",
      act(async () => {
        try {
          await client.booking.cancelBooking({ bookingId: booking.id });
          say(`Cancelled ${booking.seatIds.join(", ")}.`, "CANCELLED");
        } catch (err) {
          sayRefusal(err);
        }
        await Promise.all([loadShows(), loadBookings()]);
      }),
    );
    item.append(cancel);
  }
  return item;
}

let pending = 0;

/**
 * Runs a UI action, turning any refusal into the message line. While any
 * action runs the body carries `data-busy`, so a test (or a style) can wait
 * for the page to settle before it clicks what the action re-renders.
 */
const act = (action: () => Promise<void>) => async () => {
  pending += 1;
  document.body.dataset.busy = "true";
  try {
    await action();
  } catch (err) {
    sayRefusal(err);
  } finally {
    pending -= 1;
    if (pending === 0) delete document.body.dataset.busy;
  }
};

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act(() => logIn($<HTMLInputElement>("email").value, $<HTMLInputElement>("password").value))();
});
$("signup").addEventListener(
  "click",
  act(async () => {
    const email = $<HTMLInputElement>("email").value;
    const password = $<HTMLInputElement>("password").value;
    const displayName = $<HTMLInputElement>("display-name").value || email.split("@")[0];
    await client.auth.signUp({ email, password, displayName });
    await logIn(email, password);
  }),
);
$("logout").addEventListener("click", logOut);
$("movies").addEventListener("change", act(loadShows));
$("shows").addEventListener("change", act(async () => (selected.clear(), loadSeatMap())));
$("book").addEventListener("click", act(book));

if (token) act(enter)();
document.body.dataset.ready = "true";
