// Drives the server's GraphiQL page in Debian's headless Chromium: it must render, run a query,
// open the Docs explorer and show the Headers tab, all without contacting any other origin
// (the page is meant to work offline, from assets embedded in the binary) and without errors.
// Usage: node graphiql.mjs BASE_URL SCREENSHOT_PATH
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
if (!base || !shot) {
  console.error('usage: node graphiql.mjs BASE_URL SCREENSHOT_PATH');
  process.exit(2);
}
const origin = new URL(base).origin;
const QUERY = '{ contactStats { total whatsappWindowOpen } }';

// data: and blob: URLs never leave the page (GraphiQL's fonts and icons are data: URLs); a
// WebSocket is the same origin when only the scheme differs (ws:// for http://).
function sameOrigin(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  return u.origin.replace(/^ws/, 'http') === origin;
}

const requests = [];
const foreign = [];
const errors = [];
const record = (url) => {
  requests.push(url);
  if (!sameOrigin(url)) foreign.push(url);
};
// Called after every step so a stray request or error fails at once, not as a later timeout.
function assertClean() {
  if (foreign.length) throw new Error(`requests to another origin than ${origin}:\n  ${foreign.join('\n  ')}`);
  if (errors.length) throw new Error(`page errors:\n  ${errors.join('\n  ')}`);
}
const ok = (msg) => console.log(`ok - ${msg}`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // CI runs as root, where Chromium's sandbox refuses to start; /dev/shm is small in containers.
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // On the context, so workers and popups are recorded too.
  context.on('request', (req) => record(req.url()));
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('websocket', (ws) => record(ws.url()));
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });

  // From the root, as a person types it: `/` redirects to `/graphql`.
  const response = await page.goto(`${base}/`, { waitUntil: 'load' });
  if (!response?.ok()) throw new Error(`GET ${base}/ answered ${response?.status()}`);
  if (new URL(page.url()).pathname !== '/graphql') throw new Error(`/ led to ${page.url()}`);
  assertClean();
  ok(`page loaded: ${await page.title()}`);

  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror');
  assertClean();
  ok('GraphiQL rendered');

  const examples = await page.evaluate(
    () => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue(),
  );
  for (const operation of ['query OpenWindows', 'mutation CreateContact', 'mutation RecordInbound']) {
    if (!examples.includes(operation)) throw new Error(`the default tab lacks ${operation}`);
  }
  ok('default tab holds the example operations');

  // What a person did: the cursor in an example operation, select all, type an anonymous
  // query and run it at once with Ctrl+Enter. GraphiQL still named the example's operation
  // (`Unknown operation named "OpenWindows"`); the page must run what the editor holds.
  await page.evaluate(() => {
    const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
    const line = cm.getValue().split('\n').findIndex((l) => l.startsWith('query OpenWindows'));
    cm.focus();
    cm.setCursor({ line: line + 2, ch: 4 });
  });
  await page.waitForTimeout(300); // lets GraphiQL note the operation under the cursor
  await page.keyboard.press('Control+A');
  await page.keyboard.type('{ contactStats { total } }');
  await page.keyboard.press('Control+Enter');
  const typed = await page
    .waitForFunction(() => {
      const cm = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror;
      const text = cm ? cm.getValue() : '';
      return (text.includes('"contactStats"') || text.includes('"errors"')) && text;
    }, null, { timeout: 20_000 })
    .then((handle) => handle.jsonValue());
  if (typed.includes('"errors"')) throw new Error(`the typed query failed: ${typed}`);
  assertClean();
  ok(`typed anonymous query ran at once: ${JSON.stringify(JSON.parse(typed).data)}`);

  // GraphiQL may still be restoring its tabs: set the query until it stays put (three polls
  // in a row), so the click runs this query and not the example document.
  await page.waitForFunction(
    (q) => {
      const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
      if (cm.getValue() !== q) {
        cm.setValue(q);
        window.__queryStable = 0;
        return false;
      }
      window.__queryStable = (window.__queryStable || 0) + 1;
      return window.__queryStable >= 3;
    },
    QUERY,
    { polling: 200 },
  );
  await page.click('.graphiql-execute-button');
  // Read CodeMirror's value rather than the DOM, which only holds the lines in view.
  const result = await page
    .waitForFunction(() => {
      const cm = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror;
      const text = cm ? cm.getValue() : (document.querySelector('.result-window')?.textContent ?? '');
      return text.includes('"contactStats"') && text.includes('"total"') && text;
    }, null, { timeout: 20_000 })
    .then((handle) => handle.jsonValue())
    .catch(async (err) => {
      assertClean();
      const state = await page.evaluate(() => ({
        query: document.querySelector('.graphiql-query-editor .CodeMirror')?.CodeMirror?.getValue(),
        response: document.querySelector('.graphiql-response')?.textContent?.slice(0, 300),
      }));
      throw new Error(`no contactStats result within 20 s (${err.message}); editor and response: ${JSON.stringify(state)}`);
    });
  assertClean();
  ok(`query executed: ${JSON.stringify(JSON.parse(result).data)}`);

  await page.click('[aria-label="Show Documentation Explorer"]');
  await page.locator('.graphiql-doc-explorer').getByText(/Root Types|Query/).first().waitFor();
  assertClean();
  ok('Docs explorer opens');

  await page.getByText('Headers', { exact: true }).waitFor();
  assertClean();
  ok('Headers tab exists');

  await page.screenshot({ path: shot, fullPage: true });
  assertClean();
  ok(`${requests.length} requests, all to ${origin}; no page or console errors`);
  ok(`screenshot saved to ${shot}`);
} catch (err) {
  console.error(`FAIL - ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
