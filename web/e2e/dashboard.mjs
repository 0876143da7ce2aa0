// End-to-end check of the dashboard against a running `tradelab serve`
// (fresh database, one job worker), in Debian's Chromium via playwright-core.
//
//   TRADELAB_URL=http://127.0.0.1:8080 TRADELAB_ADMIN_PASSWORD=... \
//   TRADELAB_NEW_PASSWORD=... TRADELAB_VIEWER_USER=vera TRADELAB_VIEWER_PASSWORD=... \
//   SCREENSHOT_DIR=/tmp/shots node e2e/dashboard.mjs
//
// Optional: CHROMIUM (browser path), TRADELAB_SYMBOL (backtest instrument,
// default orcl-1995-2014), TRADELAB_TRAIN_SYMBOL (default: the same),
// TRADELAB_TRAIN_STEPS (default 2000), E2E_TIMEOUT_SCALE (multiplies waits).
//
// Each step prints "ok - <step>"; the first failure prints "FAILED - <step>:
// <why>" and exits 1.

import { mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`FAILED - setup: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const BASE = env('TRADELAB_URL').replace(/\/$/, '');
const ADMIN_PASSWORD = env('TRADELAB_ADMIN_PASSWORD');
const NEW_PASSWORD = env('TRADELAB_NEW_PASSWORD');
const VIEWER_USER = env('TRADELAB_VIEWER_USER');
const VIEWER_PASSWORD = env('TRADELAB_VIEWER_PASSWORD');
const SHOTS = process.env.SCREENSHOT_DIR || '';
const SYMBOL = process.env.TRADELAB_SYMBOL || 'orcl-1995-2014';
const TRAIN_SYMBOL = process.env.TRADELAB_TRAIN_SYMBOL || SYMBOL;
const TRAIN_STEPS = process.env.TRADELAB_TRAIN_STEPS || '2000';
const SCALE = Number(process.env.E2E_TIMEOUT_SCALE || '1');
const AXE = require.resolve('axe-core/axe.min.js');
const CLIENT_ID = 'tradelab-dashboard';

// CI has two cores shared with the server and its worker: wait generously.
const T = { ui: 30_000 * SCALE, job: 15 * 60_000 * SCALE, backtest: 10 * 60_000 * SCALE };

let current = 'setup';
async function step(name, fn) {
  current = name;
  const started = Date.now();
  await fn();
  console.log(`ok - ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function check(cond, why) {
  if (!cond) throw new Error(why);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
// axe-core is injected as an inline script, which the app's Content
// Security Policy rightly refuses; the policy itself is checked below.
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
{
  const res = await fetch(`${BASE}/`);
  const csp = res.headers.get('content-security-policy') || '';
  if (!csp.includes("script-src 'self'") || !csp.includes("frame-ancestors 'none'")) {
    console.error(`FAILED - setup: the app is served without its Content Security Policy (got: ${csp || 'none'})`);
    process.exit(1);
  }
}
const page = await context.newPage();
page.setDefaultTimeout(T.ui);
const consoleErrors = [];
page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
page.on('pageerror', (e) => consoleErrors.push(String(e)));

// The token endpoint's answers, to check afterwards that sign-out revoked
// the refresh token the app held (the app itself keeps tokens in memory only).
let lastRefreshToken = null;
// The viewer's password once signed in (a first login may have changed it).
let viewerPassword = VIEWER_PASSWORD;
let trainingJobId = null;
// The JavaScript files the app fetched: the first load is what arrived
// before the overview was drawn (budget: 300 KB gzipped).
const scripts = new Set();
page.on('response', async (res) => {
  try {
    const url = new URL(res.url());
    if (url.origin === BASE && url.pathname.endsWith('.js')) scripts.add(url.pathname);
    if (url.pathname === '/oauth/token' && res.status() === 200) {
      const body = await res.json();
      if (body.refresh_token) lastRefreshToken = body.refresh_token;
    }
    if (url.pathname === '/v1/training-jobs' && res.status() === 202) trainingJobId = (await res.json()).id;
  } catch {
    /* bodies of navigations may be gone; not ours */
  }
});

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function axe(name) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  check(violations.length === 0, `accessibility violations on ${name}:\n  ${violations.join('\n  ')}`);
}

/** The server's login page, then (first login) its password page, if shown. */
async function serverLogin(user, password, newPassword, onChanged = () => {}) {
  await page.waitForSelector('#username', { timeout: T.ui });
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation({ timeout: T.ui }), page.click('button[value="login"]')]);
  if (await page.locator('#new_password').count()) {
    check(newPassword, `the server asks ${user} for a new password and none was given`);
    if (await page.locator('#current_password').count()) await page.fill('#current_password', password);
    await page.fill('#new_password', newPassword);
    await page.fill('#confirm', newPassword);
    await Promise.all([page.waitForNavigation({ timeout: T.ui }), page.click('form[action="/oauth/password"] button[type="submit"]')]);
    onChanged(newPassword);
  }
  const error = page.locator('.error');
  if ((await error.count()) && !page.url().startsWith(BASE + '/callback')) {
    const text = await error.first().textContent();
    if (text?.trim()) throw new Error(`the server refused the sign-in: ${text.trim()}`);
  }
}

/** Waits for the app to be signed in (after a redirect through the server). */
async function appSignedIn() {
  await page.waitForSelector('[data-testid="signed-in-user"]', { timeout: T.ui });
  check(!page.url().includes('/callback'), 'the app stayed on /callback');
}

/** Goes to a page with the app's own links: a reload would drop the in-memory tokens. */
async function nav(label, heading = label) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).first().waitFor();
  await settle();
}

/** Lets a page's first loads land before it is checked. */
async function settle() {
  await page.waitForFunction(() => !document.querySelector('main')?.textContent?.includes('Loading…'), null, { timeout: T.ui }).catch(() => {});
}

/** Whether the chart in `testId` has drawn anything on its biggest canvas. */
async function chartDrawn(testId) {
  return page.evaluate((id) => {
    const box = document.querySelector(`[data-testid="${id}"]`);
    if (!box) return { ok: false, why: 'no chart container' };
    const canvases = [...box.querySelectorAll('canvas')].filter((c) => c.width > 0 && c.height > 0);
    if (!canvases.length) return { ok: false, why: 'no canvas' };
    const c = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
    const blank = document.createElement('canvas');
    blank.width = c.width;
    blank.height = c.height;
    if (c.toDataURL() === blank.toDataURL()) return { ok: false, why: 'canvas is blank' };
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const [r, g, b, a] = data;
    let differing = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] !== r || data[i + 1] !== g || data[i + 2] !== b || data[i + 3] !== a) differing++;
    }
    return { ok: differing > 200, why: `${differing} pixels differ from the background` };
  }, testId);
}

async function refreshStillWorks(token) {
  const res = await fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: CLIENT_ID }),
  });
  return { ok: res.ok, status: res.status, body: await res.text() };
}

try {
  await step('open / and get sent to the server login page', async () => {
    await page.goto(BASE + '/');
    await page.waitForURL((u) => u.pathname.startsWith('/oauth/'), { timeout: T.ui });
    await page.waitForSelector('#username');
  });

  await step('sign in as admin and change the password on the server page', async () => {
    await serverLogin('admin', ADMIN_PASSWORD, NEW_PASSWORD);
    await appSignedIn();
    const who = await page.getByTestId('signed-in-user').textContent();
    check(who?.includes('admin'), `signed in as "${who}", not admin`);
    check(lastRefreshToken, 'the token endpoint gave no refresh token');
  });

  await step('overview page, within the first-load budget', async () => {
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await settle();
    await page.waitForLoadState('networkidle');
    check(scripts.size > 0, "the app's scripts were not seen");
    let bytes = 0;
    for (const p of scripts) {
      const res = await fetch(BASE + p);
      check(res.ok, `${p}: HTTP ${res.status}`);
      bytes += gzipSync(Buffer.from(await res.arrayBuffer())).length;
    }
    const kb = bytes / 1024;
    console.log(`first load: ${kb.toFixed(0)} KB of gzipped JavaScript in ${scripts.size} files`);
    check(kb < 300, `the first load is ${kb.toFixed(0)} KB of gzipped JavaScript, over the 300 KB budget`);
    await axe('overview');
    await shot('overview');
  });

  await step('the pages are reachable from the keyboard', async () => {
    // Tab from the top of the page to the Backtests link, open it with Enter.
    await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
    let reached = false;
    for (let i = 0; i < 25 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.textContent?.trim() === 'Backtests' && !!document.activeElement.closest('nav'));
    }
    check(reached, 'Tab never reached the Backtests link of the main navigation');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(outline !== 'none', 'the focused link shows no focus outline');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Backtests' }).waitFor();
    // The form's first control takes focus by Tab too.
    let inForm = false;
    for (let i = 0; i < 40 && !inForm; i++) {
      await page.keyboard.press('Tab');
      inForm = await page.evaluate(() => document.activeElement?.id === 'bt-subject');
    }
    check(inForm, "Tab never reached the backtest form's first field");
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  });

  for (const [label, name] of [
    ['Runs', 'runs'],
    ['Data', 'data'],
    ['Trading', 'trading'],
    ['Admin', 'admin'],
  ]) {
    await step(`${name} page`, async () => {
      await nav(label);
      if (name === 'admin') {
        await page.getByTestId('users-table').waitFor();
        const users = await page.getByTestId('users-table').textContent();
        check(users?.includes('admin'), 'the users table does not list admin');
        // The screenshot before the one-time password is on the page.
        await axe(name);
        await shot(name);
        // Add a user: the one-time password shows once; then disable them.
        await page.fill('#nu-username', 'e2e-added');
        await page.selectOption('#nu-role', 'researcher');
        await page.getByRole('button', { name: 'Add user' }).click();
        const shown = (await page.getByTestId('one-time-password').textContent()) ?? '';
        check(/One-time password: \S{12,}/.test(shown), `no one-time password shown: ${shown}`);
        await page.getByRole('button', { name: 'Disable e2e-added' }).click();
        await page.getByRole('button', { name: 'Enable e2e-added' }).waitFor({ timeout: T.ui });
        const row = await page.getByTestId('users-table').locator('tr', { hasText: 'e2e-added' }).textContent();
        check(/disabled/.test(row ?? ''), `the added user is not shown disabled: ${row}`);
        await axe('admin after adding a user');
        return;
      }
      await axe(name);
      await shot(name);
    });
  }

  await step('data page draws a price chart and the regimes', async () => {
    await nav('Data');
    await page.fill('#data-instrument', SYMBOL);
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    await page.getByTestId('data-price-chart').waitFor({ timeout: T.ui });
    let drawn;
    for (let i = 0; i < 40 && !(drawn = await chartDrawn('data-price-chart')).ok; i++) await page.waitForTimeout(500);
    check(drawn.ok, `the data price chart is not drawn: ${drawn.why}`);
    await page.getByTestId('data-validation').waitFor();
    const found = await page.getByTestId('data-validation').textContent();
    check(/rows read/.test(found ?? ''), `the validation findings are not shown: ${found}`);
    await page.getByTestId('data-regime-chart').waitFor({ timeout: T.ui });
    for (let i = 0; i < 40 && !(drawn = await chartDrawn('data-regime-chart')).ok; i++) await page.waitForTimeout(500);
    check(drawn.ok, `the regime chart is not drawn: ${drawn.why}`);
    const states = await page.getByTestId('regime-states-table').locator('tbody tr').count();
    check(states >= 2, `the regime states table has ${states} rows`);
    await axe('data with a chart');
    await shot('data');
  });

  await step('start an sma_crossover backtest and watch its progress arrive', async () => {
    await nav('Backtests');
    await axe('backtests');
    await shot('backtests');
    await page.selectOption('#bt-strategy', 'sma_crossover');
    await page.fill('#bt-symbols', SYMBOL);
    await page.getByRole('button', { name: 'Start backtest' }).click();
    const follow = page.getByTestId('backtest-follow');
    await follow.waitFor({ timeout: T.ui });
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid="event-count"]')?.textContent?.split(' ')[0] ?? 0) > 0,
      null,
      { timeout: T.backtest },
    );
  });

  await step('the backtest finishes and its report opens', async () => {
    await page.waitForURL((u) => /^\/backtests\/[^/]+$/.test(u.pathname), { timeout: T.backtest }).catch(async (e) => {
      const text = await page.getByTestId('backtest-follow').textContent().catch(() => '');
      throw new Error(`no report opened (${text?.trim()}): ${e.message}`);
    });
    await page.getByTestId('report-facts').waitFor();
    await page.getByTestId('metrics-table').waitFor();
    await page.getByTestId('trades-table').waitFor();
    const heads = await page.getByTestId('metrics-table').locator('thead th').allTextContents();
    check(heads.includes('buy_and_hold'), `buy-and-hold is not beside the strategy: ${heads.join(', ')}`);
    const stats = (await page.getByTestId('backtest-statistics').textContent()) ?? '';
    check(/sharpe low/.test(stats) && /difference p value/.test(stats), `the Sharpe interval and the difference from buy-and-hold are not shown: ${stats}`);
    check(/95% interval .*Against buy-and-hold: [+−]\d/.test(stats), `the statistics are not summed up in sentences: ${stats}`);
  });

  await step('the report draws the price chart with its trades, and the equity chart', async () => {
    await page.getByTestId('price-chart').waitFor();
    for (const id of ['price-chart', 'equity-chart']) {
      let drawn;
      for (let i = 0; i < 60 && !(drawn = await chartDrawn(id)).ok; i++) await page.waitForTimeout(500);
      check(drawn.ok, `${id} is not drawn: ${drawn.why}`);
    }
    await settle();
    await axe('backtest report');
    await shot('backtest-report');
  });

  await step('on a phone in dark mode the report reflows and passes axe', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `the report is ${overflow}px wider than a phone's screen`);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = (bg.match(/\d+/g) ?? ['255', '255', '255']).map(Number);
    check(r + g + b < 3 * 96, `dark mode kept a light background (${bg})`);
    for (const id of ['price-chart', 'equity-chart']) {
      const drawn = await chartDrawn(id);
      check(drawn.ok, `${id} is not drawn on a phone: ${drawn.why}`);
      // The chart follows the theme too: its background corner is dark.
      const corner = await page.evaluate((testId) => {
        const c = [...document.querySelectorAll(`[data-testid="${testId}"] canvas`)].sort((a, b) => b.width * b.height - a.width * a.height)[0];
        return [...c.getContext('2d').getImageData(2, 2, 1, 1).data];
      }, id);
      check(corner[3] === 255 && corner[0] + corner[1] + corner[2] < 3 * 96, `${id} kept a light background in dark mode (rgba ${corner})`);
    }
    await axe('backtest report on a phone, dark');
    await shot('phone-dark-report');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('train a tiny logreg model from the Jobs page', async () => {
    await nav('Jobs');
    await axe('jobs');
    await page.selectOption('#tr-agent', 'logreg');
    await page.fill('#tr-symbols', TRAIN_SYMBOL);
    await page.fill('#tr-steps', TRAIN_STEPS);
    await page.fill('#tr-seed', '7');
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByTestId('train-started').waitFor();
    check(trainingJobId, 'the training job id was not seen');
    await shot('jobs');
  });

  await step('the training job finishes', async () => {
    const sel = (status) => `[data-testid="job-live-${trainingJobId}"][data-status="${status}"], [data-testid="job-status-${trainingJobId}"][data-status="${status}"]`;
    const outcome = await Promise.race([
      page.waitForSelector(sel('finished'), { timeout: T.job }).then(() => 'finished'),
      page.waitForSelector(sel('failed'), { timeout: T.job }).then(() => 'failed'),
      page.waitForSelector(sel('cancelled'), { timeout: T.job }).then(() => 'cancelled'),
    ]);
    if (outcome !== 'finished') {
      const row = await page.locator(`tr:has([data-testid$="${trainingJobId}"])`).textContent();
      throw new Error(`the training job ${outcome}: ${row}`);
    }
  });

  await step("the training job's log shows what it ran and how it ended", async () => {
    await page.getByRole('button', { name: `Log of train job ${trainingJobId.slice(0, 8)}` }).click();
    await page.waitForSelector('[data-testid="job-log-panel"][data-complete="true"]', { timeout: T.ui });
    const text = (await page.getByTestId('job-log').textContent()) ?? '';
    check(/\[worker\] attempt 1 on worker .*tradelab .*train/.test(text), `the log does not open with the worker's note: ${text.slice(0, 300)}`);
    check(/\[worker\] finished\s*$/.test(text), `the log does not end with "finished": ${text.slice(-300)}`);
    await axe('jobs with a log');
    await shot('job-log');
  });

  await step('promote the model to production on the Models page', async () => {
    await nav('Models');
    await axe('models');
    const promote = page.getByRole('button', { name: /^Promote logreg version \d+ to production$/ }).first();
    await promote.waitFor();
    const label = await promote.getAttribute('aria-label');
    await promote.click();
    await page.getByTestId('models-notice').filter({ hasText: 'is now production' }).waitFor();
    const version = /version (\d+)/.exec(label ?? '')?.[1];
    const row = page.getByTestId('models-table').locator('tr', { hasText: 'logreg' }).filter({ has: page.locator('.badge-production') });
    await row.first().waitFor();
    check(version, 'no version in the promote button');
    await shot('models');
  });

  await step('evaluate the production model from the Backtests form; its report opens with the verdict beside the baselines', async () => {
    await nav('Backtests');
    await page.selectOption('#bt-subject', 'model');
    await page.waitForFunction(() => document.querySelector('#bt-model')?.value?.startsWith('logreg@'), null, { timeout: T.ui });
    const chosen = await page.locator('#bt-model option:checked').textContent();
    check(/production/.test(chosen ?? ''), `the production version is not chosen first: ${chosen}`);
    await axe('backtests, evaluating a model');
    await page.getByRole('button', { name: 'Start evaluation' }).click();
    await page.getByTestId('backtest-follow').waitFor({ timeout: T.ui });
    await page.waitForURL((u) => /^\/backtests\/[^/]+$/.test(u.pathname), { timeout: T.backtest }).catch(async (e) => {
      const text = await page.getByTestId('backtest-follow').textContent().catch(() => '');
      throw new Error(`no evaluation report opened (${text?.trim()}): ${e.message}`);
    });
    const verdict = (await page.getByTestId('evaluation-verdict').textContent({ timeout: T.ui })) ?? '';
    check(/^model vs buy-and-hold: Sharpe [+-]\d/.test(verdict.trim()), `no verdict on the evaluation: ${verdict}`);
    const facts = (await page.getByTestId('evaluation-facts').textContent()) ?? '';
    check(/Evaluation of model logreg@\d+ on its test split/.test(facts), `the evaluation does not say what was evaluated: ${facts}`);
    const heads = await page.getByTestId('metrics-table').locator('thead th').allTextContents();
    for (const b of ['logreg', 'buy_and_hold', 'sma_crossover', 'gbt']) check(heads.some((h) => h.startsWith(b)), `${b} is not in the metrics table: ${heads.join(', ')}`);
    const stats = (await page.getByTestId('backtest-statistics').textContent()) ?? '';
    check(/Deflated Sharpe ratio for 1 trial: \d/.test(stats), `the deflated Sharpe ratio is not stated: ${stats}`);
    let drawn;
    for (let i = 0; i < 60 && !(drawn = await chartDrawn('equity-chart')).ok; i++) await page.waitForTimeout(500);
    check(drawn.ok, `the evaluation's equity chart is not drawn: ${drawn.why}`);
    await settle();
    await axe('evaluation report');
    await shot('evaluation-report');
  });

  await step("a second version trained; comparing the two shows the evaluated one's test figures", async () => {
    await nav('Jobs');
    // The finished evaluation's row names the model and links its report by the verdict's call.
    const evaluation = (await page.getByTestId('evaluation-result').first().textContent({ timeout: T.ui })) ?? '';
    check(/^logreg@\d+: .*(buy-and-hold|flat)/.test(evaluation), `the evaluation job's result is not summed up: ${evaluation}`);
    await page.selectOption('#tr-agent', 'logreg');
    await page.fill('#tr-symbols', TRAIN_SYMBOL);
    await page.fill('#tr-steps', TRAIN_STEPS);
    await page.fill('#tr-seed', '8');
    trainingJobId = null;
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByTestId('train-started').waitFor();
    for (let i = 0; i < 100 && !trainingJobId; i++) await page.waitForTimeout(100);
    check(trainingJobId, 'the second training job id was not seen');
    await page.waitForSelector(`[data-testid="job-live-${trainingJobId}"][data-status="finished"], [data-testid="job-status-${trainingJobId}"][data-status="finished"]`, { timeout: T.job });
    await nav('Models');
    const production = await page.locator('#cmp-a option', { hasText: 'production' }).first().getAttribute('value');
    check(production, 'no production version in the comparison');
    await page.selectOption('#cmp-a', production);
    const other = await page.locator('#cmp-b option:not(:has-text("production"))').first().getAttribute('value');
    await page.selectOption('#cmp-b', other);
    const evaluated = page.getByTestId('compare-evaluations');
    await evaluated.filter({ hasText: 'model vs buy-and-hold' }).waitFor({ timeout: T.ui });
    const rows = await page.locator('table', { has: page.locator('caption', { hasText: 'Validation and test figures' }) }).locator('tbody th').allTextContents();
    for (const r of ['test.sharpe', 'test.deflated_sharpe', 'test.total_return']) check(rows.includes(r), `${r} is not compared: ${rows.join(', ')}`);
    const text = (await evaluated.textContent()) ?? '';
    check(/not evaluated yet/.test(text), `the unevaluated version is not said to be: ${text}`);
    await axe('models, comparing versions');
  });

  await step('sign out revokes the refresh token', async () => {
    const held = lastRefreshToken;
    check(held, 'no refresh token was seen before sign-out');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByTestId('signed-out').waitFor();
    check(!page.url().includes('/oauth/'), 'sign-out redirected to the server; it should stay on its own screen');
    const after = await refreshStillWorks(held);
    check(!after.ok, `the old refresh token still refreshes (HTTP ${after.status})`);
    check(after.status === 400 || after.status === 401, `unexpected answer to the revoked token: HTTP ${after.status} ${after.body}`);
  });

  await step('sign in as the viewer', async () => {
    // The server's login session belongs to admin: forget it.
    await context.clearCookies();
    await page.getByRole('button', { name: 'Sign in again' }).click();
    await serverLogin(VIEWER_USER, VIEWER_PASSWORD, process.env.TRADELAB_VIEWER_NEW_PASSWORD || `${VIEWER_PASSWORD}-e2e`, (p) => {
      viewerPassword = p;
    });
    await appSignedIn();
    const who = await page.getByTestId('signed-in-user').textContent();
    check(who?.includes(VIEWER_USER), `signed in as "${who}", not ${VIEWER_USER}`);
  });

  await step('the viewer sees no Admin item and no start controls', async () => {
    const navBar = page.getByRole('navigation', { name: 'Main' });
    check((await navBar.getByRole('link', { name: 'Admin', exact: true }).count()) === 0, 'the Admin nav item is shown to a viewer');
    await nav('Backtests');
    check((await page.getByTestId('backtest-form').count()) === 0, 'the start-backtest form is shown to a viewer');
    check((await page.getByRole('button', { name: 'Start backtest' }).count()) === 0, 'a start-backtest button is shown to a viewer');
    await nav('Jobs');
    await page.getByTestId('jobs-table').waitFor();
    check((await page.getByTestId('train-form').count()) === 0, 'the train form is shown to a viewer');
    check((await page.getByRole('button', { name: /^Cancel / }).count()) === 0, 'a cancel button is shown to a viewer');
    await nav('Models');
    await page.getByTestId('models-table').waitFor();
    check((await page.getByRole('button', { name: /^(Promote|Archive) / }).count()) === 0, 'promote/archive shown to a viewer');
  });

  await step('the viewer visiting /admin is told "not allowed"', async () => {
    await page.goto(BASE + '/admin');
    // A reload starts a new sign-in: silent with the server's session, else the login page.
    const landed = await Promise.race([
      page.waitForSelector('[data-testid="not-allowed"]', { timeout: T.ui }).then(() => 'app'),
      page.waitForSelector('#username', { timeout: T.ui }).then(() => 'login'),
    ]);
    if (landed === 'login') {
      await serverLogin(VIEWER_USER, viewerPassword);
      await page.waitForSelector('[data-testid="not-allowed"]', { timeout: T.ui });
    }
    const text = await page.getByTestId('not-allowed').textContent();
    check(/not allowed/i.test(text ?? ''), `the /admin page says: ${text}`);
    await axe('not allowed');
  });

  const appErrors = consoleErrors.filter((e) => !/Failed to load resource|401|403|404|net::ERR_ABORTED/.test(e));
  if (appErrors.length) console.log(`note - console errors seen:\n  ${appErrors.slice(0, 10).join('\n  ')}`);
  console.log('all steps passed');
  await browser.close();
} catch (e) {
  console.error(`FAILED - ${current}: ${e instanceof Error ? e.message : e}`);
  if (SHOTS) await shot(`failed-${current.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => {});
  await browser.close().catch(() => {});
  process.exit(1);
}
