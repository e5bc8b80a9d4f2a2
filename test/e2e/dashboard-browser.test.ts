/**
 * The dashboard in a real browser: `meterlink demo` as a child process (Mosquitto, socat ptys, simulators,
 * the agent with its dashboard and seeded history), and Debian's chromium, headless, driven by playwright-core
 * (which downloads nothing: it drives the system browser) from test/dashboard/browser-driver.ts. The page
 * loads, the live power changes, the three charts have data points, the page fits a phone's width, and the
 * console stays free of errors. Screenshots go to .tap/artifacts/ (git-ignored).
 *
 * Chromium missing is a failure with the fix, not a skip: CI installs it from scripts/debian-packages.txt.
 */
import t from 'tap';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, spawnMeterlink } from '../harness/cli.js';
import { spawnLogged } from '../harness/process.js';
import { tempDir } from '../harness/tmp.js';
import { waitFor } from '../harness/wait.js';
import type { BrowserReport } from '../dashboard/browser-driver.js';

const CHROMIUM = process.env.METERLINK_CHROMIUM ?? '/usr/bin/chromium';

t.test('dashboard of `meterlink demo` in headless chromium', async (t) => {
  const found = await access(CHROMIUM).then(
    () => true,
    () => false,
  );
  if (!found) {
    t.fail(
      `${CHROMIUM} not found: the browser test needs Debian's chromium (apt-get install chromium; it is in scripts/debian-packages.txt), or METERLINK_CHROMIUM=/path/to/chrome`,
    );
    return;
  }
  const demo = spawnMeterlink(['demo', '--no-tui', '--duration', '10m', '--dashboard', '127.0.0.1:0']);
  t.teardown(() => demo.kill('SIGKILL'));
  const url = await waitFor(() => /^demo: dashboard: open (\S+) in a browser$/m.exec(demo.output())?.[1], {
    what: 'the demo to print the dashboard URL',
    timeout: 90_000,
    interval: 100,
    progress: () => demo.output().length,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\n${demo.output()}`);
  });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback URL printed next to the view');

  const profile = await tempDir(t, 'meterlink-chromium-');
  const driver = spawnLogged(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'test/dashboard/browser-driver.ts'),
      url,
      join(repoRoot, '.tap/artifacts'),
      profile,
    ],
    { cwd: repoRoot },
  );
  t.teardown(() => driver.kill('SIGKILL'));
  await waitFor(() => driver.child.exitCode !== null || driver.child.signalCode !== null, {
    what: 'the browser driver to finish',
    timeout: 170_000,
    interval: 100,
  });
  const line = /^REPORT (.*)$/m.exec(driver.output())?.[1];
  if (driver.child.exitCode !== 0 || !line) {
    t.fail(
      `browser driver failed (exit ${driver.child.exitCode})\n${driver.output()}\ndemo:\n${demo.output().slice(-3000)}`,
    );
    return;
  }
  const r = JSON.parse(line) as BrowserReport;
  t.equal(r.status, 200, 'page served');
  t.match(r.title, /^meterlink · demo-meterbox$/, 'title names the box');
  t.not(
    r.laterPower.join('|'),
    r.firstPower.join('|'),
    `live power updated: ${r.firstPower.join(', ')} → ${r.laterPower.join(', ')}`,
  );
  t.match(r.badges.conn, /^cloud: (connected|connecting)$/, 'connection badge');
  t.match(r.badges.clock, /^clock: synchronised$/, 'clock badge');
  t.match(r.badges.buffer, /^buffer: [\d,.]+ waiting/, 'buffer badge');
  t.ok(r.points.power >= 1000, `power curve: ${r.points.power} minute points`);
  t.ok(r.points.hours >= 40, `energy per hour: ${r.points.hours} bars`);
  t.ok(r.points.days >= 7, `energy per day: ${r.points.days} bars`);
  t.equal(r.canvases, 3, 'three uPlot charts drawn');
  t.ok(r.phoneFits, 'fits a 390 px wide phone screen without scrolling sideways');
  t.same(r.problems, [], 'no console errors, page errors or failed requests');
  for (const s of r.screenshots) await t.resolves(access(s), `screenshot ${s}`);

  demo.kill('SIGINT');
  await waitFor(() => demo.child.exitCode !== null || demo.child.signalCode !== null, {
    what: 'the demo to stop',
    timeout: 30_000,
  });
  t.equal(demo.child.exitCode, 0, 'demo stopped cleanly by Ctrl-C', { output: demo.output().slice(-2000) });
});
