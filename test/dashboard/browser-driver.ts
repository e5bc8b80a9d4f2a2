/**
 * The browser half of test/e2e/dashboard-browser.test.ts, run as its own process through tsx, so that the
 * browser's driver (a large bundle) stays out of the tap process and its coverage, and the test process only
 * reads one `REPORT` line.
 *
 *   node --import tsx test/dashboard/browser-driver.ts URL ARTIFACT_DIR PROFILE_DIR
 *
 * Drives Debian's chromium headless against the dashboard at URL and prints one line `REPORT {json}` with
 * what it saw; every wait is for an event on the page (bounded), never a sleep.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.METERLINK_CHROMIUM ?? '/usr/bin/chromium';
export const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Page-side functions run in the browser, not here (the page's CSP forbids evaluating strings). They use no
// named inner functions: tsx (esbuild keepNames) would wrap those in a `__name` helper the page lacks.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
const POWER_SHOWN = () =>
  /-?[\d,.]+ W/.test(document.querySelector('[data-testid="power-main"]')?.textContent ?? '');
const POWER_CHANGED = (a: { before: string; n: number }) =>
  window.meterlinkDashboard.liveUpdates > a.n &&
  [...document.querySelectorAll('[data-testid^="power-"]')].map((e: any) => e.textContent).join('|') !==
    a.before;
const CHART_POINTS = () => {
  const c = window.meterlinkDashboard && window.meterlinkDashboard.charts;
  if (!c || !c.power || !c.hours || !c.days) return false;
  const r = {
    power: c.power.data[1].filter((v: number | null) => v !== null).length,
    hours: c.hours.data[1].filter((v: number | null) => v !== null).length,
    days: c.days.data[1].filter((v: number | null) => v !== null).length,
  };
  return r.power >= 1000 && r.hours >= 40 && r.days >= 7 ? r : false;
};
const FITS = () => document.documentElement.scrollWidth <= window.innerWidth + 1;
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface BrowserReport {
  status: number | null;
  title: string;
  firstPower: string[];
  laterPower: string[];
  badges: { conn: string; clock: string; buffer: string };
  points: { power: number; hours: number; days: number };
  canvases: number;
  phoneFits: boolean;
  problems: string[];
  screenshots: string[];
}

async function main(url: string, artifacts: string, profile: string): Promise<BrowserReport> {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    page.on('requestfailed', (r) => {
      // The event stream is cut when the page closes; anything else failing is a problem.
      if (!r.url().includes('/api/stream'))
        problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    });
    const res = await page.goto(url, { waitUntil: 'load' });

    // Live: the power of each meter is shown, then changes (the simulated apartment's noise and appliances).
    await page.waitForFunction(POWER_SHOWN, null, { timeout: 60_000 });
    const power = page.locator('[data-testid^="power-"]');
    const firstPower = await power.allTextContents();
    const n = (await page.evaluate(() => window.meterlinkDashboard.liveUpdates)) as number;
    await page.waitForFunction(POWER_CHANGED, { before: firstPower.join('|'), n }, { timeout: 60_000 });
    const laterPower = await power.allTextContents();

    // History: the seeded week, then the live minutes.
    const handle = await page.waitForFunction(CHART_POINTS, null, { timeout: 60_000 });
    const points = (await handle.jsonValue()) as BrowserReport['points'];
    const canvases = await page.locator('.u-wrap canvas').count();
    const badges = {
      conn: (await page.locator('#conn').textContent()) ?? '',
      clock: (await page.locator('#clock').textContent()) ?? '',
      buffer: (await page.locator('#buffer').textContent()) ?? '',
    };
    await mkdir(artifacts, { recursive: true });
    const shots = [join(artifacts, 'dashboard.png'), join(artifacts, 'dashboard-phone.png')];
    await page.screenshot({ path: shots[0], fullPage: true });

    // A phone: nothing wider than the screen once the charts have resized.
    await page.setViewportSize({ width: 390, height: 844 });
    const phoneFits = await page.waitForFunction(FITS, null, { timeout: 10_000 }).then(
      () => true,
      () => false,
    );
    await page.screenshot({ path: shots[1], fullPage: true });
    return {
      status: res?.status() ?? null,
      title: await page.title(),
      firstPower,
      laterPower,
      badges,
      points,
      canvases,
      phoneFits,
      problems,
      screenshots: shots,
    };
  } finally {
    await context.close();
  }
}

const [url, artifacts, profile] = process.argv.slice(2);
if (!url || !artifacts || !profile) {
  console.error('usage: browser-driver.ts URL ARTIFACT_DIR PROFILE_DIR');
  process.exit(2);
}
main(url, artifacts, profile).then(
  (r) => console.log(`REPORT ${JSON.stringify(r)}`),
  (err: unknown) => {
    console.error((err as Error).stack ?? String(err));
    process.exit(1);
  },
);
