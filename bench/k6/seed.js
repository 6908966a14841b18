// Creates what the scenarios use, through the public API, and writes it to
// $OUT: user tokens, shows to browse, and the rush show. With PART=book it
// creates only one book round's shows ($BOOK_SHOWS of them, in a theatre of
// their own): bench/run makes them after an ANALYZE, right before the round
// books them, as new shows arrive in a database whose statistics predate them.
import grpc from 'k6/net/grpc';
import { ADDR, bearer, newClient } from './lib.js';

const USERS = +(__ENV.USERS || 100);
const BROWSE_SHOWS = +(__ENV.BROWSE_SHOWS || 50);
const BOOK_SHOWS = +(__ENV.BOOK_SHOWS || 100);
const BOOK_ROWS = 10; // of 100 seats each
const RUSH_ROWS = 3; // 300 seats

const client = newClient();

export const options = { vus: 1, iterations: 1, setupTimeout: '600s' };

function must(response, what) {
  if (response.status !== grpc.StatusOK) {
    throw new Error(`${what}: ${response.status} ${JSON.stringify(response.error)}`);
  }
  return response.message;
}

function rows(n, seats) {
  return Array.from({ length: n }, (_, i) => ({
    label: String.fromCharCode(65 + i),
    seats,
    price_cents: 1000,
  }));
}

export function setup() {
  client.connect(ADDR, { plaintext: true });
  const run = `${Date.now().toString(36)}${__ENV.PART ? `-${__ENV.PART}-${__ENV.ROUND}` : ''}`;
  const login = (email, password) =>
    must(client.invoke('theatre.v1.AuthService/Login', { email, password }), 'login').accessToken;
  const admin = bearer(login(__ENV.ADMIN_EMAIL, __ENV.ADMIN_PASSWORD));
  const theatre = must(
    client.invoke('theatre.v1.CatalogService/CreateTheatre', { name: `Bench ${run}`, city: 'Lisbon' }, admin),
    'theatre',
  ).theatre.id;
  // One theatre is one room: each show gets a slot of its own (100 minutes and
  // the changeover fit in three hours).
  const firstSlot = Date.now() + 7 * 24 * 3600 * 1000;
  let slots = 0;
  const show = (title, seatRows) => {
    const movie = must(
      client.invoke(
        'theatre.v1.CatalogService/CreateMovie',
        { title, description: 'A benchmark film', duration_minutes: 100, genre: 'Drama' },
        admin,
      ),
      'movie',
    ).movie.id;
    const startsAt = new Date(firstSlot + 3 * 3600 * 1000 * slots++).toISOString();
    return must(
      client.invoke(
        'theatre.v1.CatalogService/CreateShow',
        { movie_id: movie, theatre_id: theatre, starts_at: startsAt, rows: seatRows },
        admin,
      ),
      'show',
    ).show.id;
  };
  const bookShows = [];
  if (__ENV.PART === 'book') {
    for (let i = 0; i < BOOK_SHOWS; i++) bookShows.push(show(`Book ${run} ${i}`, rows(BOOK_ROWS, 100)));
    return { bookShows, bookRows: BOOK_ROWS };
  }
  const users = [];
  for (let i = 0; i < USERS; i++) {
    const email = `bench-${run}-${i}@theatre.test`;
    must(
      client.invoke('theatre.v1.AuthService/SignUp', {
        email,
        password: 'bench-password-1',
        display_name: `Bench ${i}`,
      }),
      'sign up',
    );
    users.push(login(email, 'bench-password-1'));
  }
  const browseShows = [];
  for (let i = 0; i < BROWSE_SHOWS; i++) browseShows.push(show(`Browse ${run} ${i}`, rows(2, 20)));
  const rushShow = show(`Rush ${run}`, rows(RUSH_ROWS, 100));
  return { users, browseShows, rushShow, rushRows: RUSH_ROWS };
}

export default function () {}

export function handleSummary(data) {
  const out = {};
  out[__ENV.OUT] = JSON.stringify(data.setup_data);
  return out;
}
