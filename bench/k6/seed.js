// Creates what the scenarios use, through the public API, and writes it to
// $OUT: user tokens, shows to browse, shows to book, and the rush show.
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
  const run = Date.now().toString(36);
  const login = (email, password) =>
    must(client.invoke('theatre.v1.AuthService/Login', { email, password }), 'login').accessToken;
  const admin = bearer(login(__ENV.ADMIN_EMAIL, __ENV.ADMIN_PASSWORD));
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
  const theatre = must(
    client.invoke('theatre.v1.CatalogService/CreateTheatre', { name: `Bench ${run}`, city: 'Lisbon' }, admin),
    'theatre',
  ).theatre.id;
  const startsAt = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString();
  const show = (title, seatRows) => {
    const movie = must(
      client.invoke(
        'theatre.v1.CatalogService/CreateMovie',
        { title, description: 'A benchmark film', duration_minutes: 100, genre: 'Drama' },
        admin,
      ),
      'movie',
    ).movie.id;
    return must(
      client.invoke(
        'theatre.v1.CatalogService/CreateShow',
        { movie_id: movie, theatre_id: theatre, starts_at: startsAt, rows: seatRows },
        admin,
      ),
      'show',
    ).show.id;
  };
  const browseShows = [];
  for (let i = 0; i < BROWSE_SHOWS; i++) browseShows.push(show(`Browse ${run} ${i}`, rows(2, 20)));
  const bookShows = [];
  for (let i = 0; i < BOOK_SHOWS; i++) bookShows.push(show(`Book ${run} ${i}`, rows(BOOK_ROWS, 100)));
  const rushShow = show(`Rush ${run}`, rows(RUSH_ROWS, 100));
  return { users, browseShows, bookShows, bookRows: BOOK_ROWS, rushShow, rushRows: RUSH_ROWS };
}

export default function () {}

export function handleSummary(data) {
  const out = {};
  out[__ENV.OUT] = JSON.stringify(data.setup_data);
  return out;
}
