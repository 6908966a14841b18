// The benchmark workloads; $SCENARIO picks one, $VUS and $DURATION size it.
//   empty  - CheckToken: an authenticated RPC that does no work (ceiling E)
//   browse - ListMovies + GetShow + GetSeatMap on a warm cache
//   browse_paced - the same at a fixed arrival rate ($RATE iterations/s)
//   rest_browse - browse's three calls over HTTP/JSON (GET /movies,
//            /shows/{id}, /shows/{id}/seats) on the same port
//   book   - every VU books distinct seats, two at a time, on shows of its own
//   rush   - every VU races for the 300 seats of one show
//   rush_paced - the same calls at a fixed arrival rate ($RATE/s), after the
//            rush sold the show out: every call is a loser
//   login  - Login, which is argon2id verification
import exec from 'k6/execution';
import { bearer, call, connectOnce, get, newClient, summaryTrendStats, writeSummary } from './lib.js';

const seed = JSON.parse(open(__ENV.SEED));
// The book round's own shows (seed.js PART=book).
const book = __ENV.BOOK_SEED ? JSON.parse(open(__ENV.BOOK_SEED)) : null;
const SCENARIO = __ENV.SCENARIO;
const VUS = +(__ENV.VUS || 10);
const ROUND = +(__ENV.ROUND || 1);
const client = newClient();

// An open model: $RATE iterations a second whatever the latency, to see it
// when the machine is not saturated by closed-loop VUs.
const paced = (duration) => ({
  executor: 'constant-arrival-rate',
  rate: +(__ENV.RATE || 100),
  timeUnit: '1s',
  duration: __ENV.DURATION || duration,
  preAllocatedVUs: VUS,
  maxVUs: VUS,
});
const executors = {
  rush: { executor: 'per-vu-iterations', vus: VUS, iterations: +(__ENV.ITERATIONS || 4), maxDuration: '120s' },
  // The rush's losers, after the rush.
  rush_paced: paced('10s'),
  // browse's iterations (3 RPCs each).
  browse_paced: paced('20s'),
};
export const options = {
  scenarios: {
    [SCENARIO]: executors[SCENARIO] || {
      executor: 'constant-vus',
      vus: VUS,
      duration: __ENV.DURATION || '20s',
    },
  },
  summaryTrendStats,
  discardResponseBodies: false,
};

const userToken = () => seed.users[(__VU - 1) % seed.users.length];
const token = () => bearer(userToken());
const pickShow = (shows) => shows[Math.floor(Math.random() * shows.length)];

function seatLabel(index, seatsPerRow) {
  return String.fromCharCode(65 + Math.floor(index / seatsPerRow)) + ((index % seatsPerRow) + 1);
}

const workloads = {
  empty() {
    call(client, 'theatre.v1.AuthService/CheckToken', {}, token());
  },
  browse() {
    const auth = token();
    const show = pickShow(seed.browseShows);
    call(client, 'theatre.v1.CatalogService/ListMovies', { page_size: 20 }, auth);
    call(client, 'theatre.v1.CatalogService/GetShow', { show_id: show }, auth);
    call(client, 'theatre.v1.CatalogService/GetSeatMap', { show_id: show }, auth);
  },
  browse_paced() {
    workloads.browse();
  },
  rest_browse() {
    const auth = userToken();
    const show = pickShow(seed.browseShows);
    get('/movies?pageSize=20', auth);
    get(`/shows/${show}`, auth);
    get(`/shows/${show}/seats`, auth);
  },
  book() {
    // The round's shows were created for it, after an ANALYZE (bench/run), so
    // the planner has no statistics for them. VU n owns shows n-1, n-1+VUS, ...
    // and books their seats in order, two per booking.
    const perShow = (book.bookRows * 100) / 2;
    const owned = Math.floor(book.bookShows.length / VUS);
    const nth = Math.floor(__ITER / perShow);
    if (nth >= owned) exec.test.abort(`book: VU ${__VU} ran out of seats; seed more BOOK_SHOWS`);
    const show = book.bookShows[(__VU - 1) + VUS * nth];
    const first = (__ITER % perShow) * 2;
    call(
      client,
      'theatre.v1.BookingService/CreateBooking',
      {
        show_id: show,
        seat_ids: [seatLabel(first, 100), seatLabel(first + 1, 100)],
        idempotency_key: `${ROUND}-${__VU}-${__ITER}`,
      },
      token(),
    );
  },
  rush() {
    const seat = Math.floor(Math.random() * seed.rushRows * 100);
    call(
      client,
      'theatre.v1.BookingService/CreateBooking',
      { show_id: seed.rushShow, seat_ids: [seatLabel(seat, 100)], idempotency_key: '' },
      token(),
    );
  },
  rush_paced() {
    workloads.rush();
  },
  login() {
    call(client, 'theatre.v1.AuthService/Login', { email: __ENV.ADMIN_EMAIL, password: __ENV.ADMIN_PASSWORD });
  },
};

export default function () {
  if (SCENARIO !== 'rest_browse') connectOnce(client);
  workloads[SCENARIO]();
}

export function handleSummary(data) {
  return writeSummary(data);
}
