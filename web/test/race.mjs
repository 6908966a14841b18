// Two customers race for one seat in two headless Chromium sessions of the
// seat-map page; exactly one may win. Driven by tests/it/web.rs, which starts
// the service with the page, puts one show on and signs the two customers up:
//   RACE_PAGE=http://127.0.0.1:PORT/web/ RACE_SHOW=<show id> RACE_SEAT=C5
//   RACE_USERS='[{"email":…,"password":…},{…}]' RACE_SHOTS=target/web-screenshots
//   RACE_TAKEN=B3,B4 (seats booked before the race, shown taken from the start)
// Both log in, pick the show, select the seat and press Book at the same time.
// The winner sees the booking and cancels it from "My bookings"; the loser sees
// SEAT_TAKEN naming the seat and a seat map that shows it taken. Screenshots of
// the seat map before and after go to RACE_SHOTS. Prints one JSON line of what
// each page showed; exits non-zero when a page did not show what it should.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";

import puppeteer from "puppeteer-core";

const env = (name) => process.env[name] ?? assert.fail(`${name} is not set`);
const [pageUrl, showId, seat, shots] = ["RACE_PAGE", "RACE_SHOW", "RACE_SEAT", "RACE_SHOTS"].map(env);
const users = JSON.parse(env("RACE_USERS"));
const taken = env("RACE_TAKEN").split(",");
await mkdir(shots, { recursive: true });

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Root in CI has no user namespace for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  defaultViewport: { width: 1000, height: 900 },
});
const failures = [];

/** Waits until the page has no action under way (it re-renders what they load). */
const settled = (page) => page.waitForSelector("body[data-ready]:not([data-busy])");

/** Runs one step of `page`'s script; a failure says which step, with a screenshot. */
async function step(page, name, action) {
  try {
    return await action();
  } catch (err) {
    await page.screenshot({ path: path.join(shots, "failed-step.png"), fullPage: true }).catch(() => {});
    throw new Error(`${name}: ${err.message}`);
  }
}

/** A logged-in page (its own browser context: its own session) with `seat` selected. */
async function customer({ email, password }) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (err) => failures.push(`${email}: ${err.message}`));
  const seatButton = `#seatmap[data-show="${showId}"] button[data-seat="${seat}"]`;
  await step(page, `${email} opens the page`, async () => {
    await page.goto(pageUrl, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready]");
  });
  await step(page, `${email} logs in`, async () => {
    await page.type("#email", email);
    await page.type("#password", password);
    await page.click("#login");
    await page.waitForSelector("#booking:not([hidden]) #shows option");
    await settled(page);
  });
  await step(page, `${email} picks the show`, async () => {
    await page.select("#shows", showId);
    await settled(page);
    await page.waitForSelector(`${seatButton}[data-state="available"]`);
  });
  await step(page, `${email} selects ${seat}`, async () => {
    await page.click(seatButton);
    await page.waitForSelector(`${seatButton}[data-state="selected"]`);
  });
  return page;
}

const shot = (page, name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const outcomeOf = (page) =>
  page.$eval("#message", (m) => ({ outcome: m.dataset.outcome, text: m.textContent }));
const seatState = (page) =>
  page.$eval(`#seatmap button[data-seat="${seat}"]`, (b) => b.dataset.state);

try {
  const pages = await Promise.all(users.map(customer));
  const shownTaken = await pages[0].$$eval('#seatmap button[data-state="booked"]', (b) => b.map((s) => s.dataset.seat));
  assert.deepEqual(shownTaken, taken, "the seats booked before are shown taken");
  await shot(pages[0], "seat-map-before");

  // The race: both Book buttons at once, both bookings in flight together.
  await Promise.all(
    pages.map((page, i) =>
      step(page, `${users[i].email} books`, async () => {
        await page.click("#book");
        await page.waitForSelector("#message[data-outcome]");
      }),
    ),
  );
  const outcomes = await Promise.all(pages.map(outcomeOf));
  const winner = outcomes.findIndex((o) => o.outcome === "BOOKED");
  const loser = outcomes.findIndex((o) => o.outcome === "SEAT_TAKEN");
  assert.ok(winner >= 0 && loser >= 0 && winner !== loser, `one winner and one loser: ${JSON.stringify(outcomes)}`);
  assert.match(outcomes[loser].text, new RegExp(`${seat} was just taken`));

  // Both seat maps now show the seat taken (the loser's was reloaded after the refusal).
  for (const page of pages) {
    await step(page, `${seat} is shown taken`, () =>
      page.waitForFunction(
        (s) => document.querySelector(`#seatmap button[data-seat="${s}"]`)?.dataset.state === "booked",
        {},
        seat,
      ),
    );
  }
  await shot(pages[winner], "seat-map-after-winner");
  await shot(pages[loser], "seat-map-after-loser");
  const loserBookings = await pages[loser].$$eval("#bookings li", (items) => items.length);
  assert.equal(loserBookings, 0, "the loser has no booking");

  // The winner cancels from "My bookings"; the seat is free again.
  const winnerPage = pages[winner];
  await step(winnerPage, "the winner cancels", async () => {
    await settled(winnerPage);
    await winnerPage.click('#bookings li[data-status="CONFIRMED"] button[data-cancel]');
    await winnerPage.waitForSelector('#message[data-outcome="CANCELLED"]');
    await winnerPage.waitForSelector('#bookings li[data-status="CANCELLED"]');
    await winnerPage.waitForFunction(
      (s) => document.querySelector(`#seatmap button[data-seat="${s}"]`)?.dataset.state === "available",
      {},
      seat,
    );
  });
  await shot(winnerPage, "bookings-after-cancel");

  assert.deepEqual(failures, [], "no script errors on the pages");
  console.log(
    JSON.stringify({
      winner: users[winner].email,
      loser: users[loser].email,
      outcomes,
      seatAfterCancel: await seatState(winnerPage),
    }),
  );
} finally {
  await browser.close();
}
