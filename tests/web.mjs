// node tests/web.mjs CASES.json OUTDIR: the page (web/index.html + web/worker.js + web/run.wasm) in a real
// headless Chromium, driven by playwright-core, served from 127.0.0.1 by this script. CASES.json
// (written by tests/web.sh) lists {name, query, expect} with expect the exact stdout of ./run (base64) for the
// same model, prompt and settings, or {name, query, error: true} for a file that must be refused with
// a message in the page, or {name, query, rate: true} to print the page's tokens/s (make bench). Files are served by their absolute paths, from OUTDIR and $SHARED only, and
// the page from /web/. Prints a line per check and "web: N passed, M failed".
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { argv, exit } from 'node:process';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const [casesPath, outDir] = argv.slice(2);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cases = JSON.parse(await readFile(casesPath, 'utf8'));
// served: the page, the test's own files and the shared test data, nothing else
const allowed = [path.join(root, 'web'), path.resolve(outDir), path.resolve(process.env.SHARED || '../shared')];
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const file = path.resolve(url.pathname.startsWith('/web/') ? path.join(root, url.pathname) : decodeURIComponent(url.pathname));
  try {
    if (!allowed.some((dir) => file.startsWith(dir + path.sep))) throw new Error('outside the served folders');
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404), res.end('not found');
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
let passed = 0, failed = 0;
const check = (ok, what) => { ok ? passed++ : failed++; console.log(`${ok ? 'ok  ' : 'FAIL'} web: ${what}`); };

for (const c of cases) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/web/index.html?${c.query}&autorun=1`);
  await page.waitForSelector('#story[data-done="1"]', { timeout: 180000 });
  const story = await page.$eval('#story', (e) => ({ text: e.textContent, rate: e.dataset.tokPerS, failed: e.dataset.failed }));
  story.bytes = Buffer.from(await page.evaluate(() => (window.storyBytes ? Array.from(window.storyBytes) : []))).toString('base64');
  const error = await page.$eval('#error', (e) => e.textContent);
  if (c.rate) { // make bench: the page's tokens/s alone
    console.log(`rate: ${c.name} ${error ? 'failed: ' + error : story.rate}`);
    await page.close();
    continue;
  }
  if (c.error) {
    check(story.failed === '1' && error.length > 0 && !story.text, `${c.name}: refused in the page ("${error}")`);
    continue;
  }
  const want = Buffer.from(c.expect, 'base64');
  check(story.bytes === c.expect && story.text === new TextDecoder().decode(want),
    `${c.name}: the story is ./run's, byte for byte (${want.length} bytes), and the page shows it` +
    (story.bytes === c.expect ? '' : `\n  page:  ${JSON.stringify(story.text)}\n  ./run: ${JSON.stringify(new TextDecoder().decode(want))}`));
  check(Number(story.rate) > 0, `${c.name}: data-tok-per-s ${story.rate}`);
  await page.waitForSelector('#story[data-inspected="1"]', { timeout: 180000 });
  // looking inside: click a piece, then its candidates and the shaded text are shown
  const pieces = await page.$$eval('#tokens span', (s) => s.length);
  await page.click(`#tokens span[data-pos="${Math.min(5, pieces - 1)}"]`);
  const rows = await page.$$eval('#candidates tr', (r) => r.length);
  const shaded = await page.$$eval('#tokens span', (s) => s.filter((e) => /rgba\(211, 84, 0, 0\.[0-9]*[1-9]/.test(e.style.background) ||
                                                                      e.style.background.startsWith('rgb(211, 84, 0)')).length);
  const neurons = await page.$$eval('#neurons td[data-neuron]', (n) => n.map((e) => `${e.dataset.neuron} ${e.dataset.value}`));
  // the grid of every head: a click on the cell of the last layer's last head selects it
  const [layers, heads, cell] = await page.evaluate(() => [$('layer').options.length, $('head').options.length - 1, CELL]);
  await page.click('#heads', { position: { x: cell.label + (heads - 1) * (cell.w + cell.gap) + cell.w / 2,
                                           y: 14 + (layers - 1) * (cell.h + cell.gap) + cell.h / 2 } });
  const picked = await page.evaluate(() => [$('layer').value, $('head').value]);
  check(picked[0] === String(layers - 1) && picked[1] === String(heads - 1), `${c.name}: a click in the grid of heads picks layer ${picked[0]} head ${picked[1]}`);
  check(pieces > 5 && rows === 6 && shaded > 0, `${c.name}: ${pieces} pieces; a click shows 5 candidates and shades ${shaded} of them`);
  if (c.neurons) { // the page's neurons of the clicked piece: those numpy reads in ./run -m dump's mlp.npy (to 1e-4: wasm's plain bits against the native kernels')
    const same = neurons.length === c.neurons.length && neurons.every((text, k) => {
      const [id, value] = text.split(' '), [l, n, v] = c.neurons[k];
      return id === `${l}.${n}` && Math.abs(Number(value) - v) <= 1e-4 * Math.max(1, Math.abs(v));
    });
    check(same, `${c.name}: the clicked piece's top neurons ${neurons.slice(0, 3).join(', ')}... are numpy's` +
      (same ? '' : `\n  page:  ${neurons}\n  numpy: ${JSON.stringify(c.neurons)}`));
  }
  if (c.again) { // the same page again, another seed: the worker (and the files it kept) serve a second story
    await page.fill('#seed', String(c.again_seed));
    await page.click('#run');
    await page.waitForSelector('#story[data-inspected="1"]', { timeout: 180000 });
    const bytes = Buffer.from(await page.evaluate(() => Array.from(window.storyBytes))).toString('base64');
    check(bytes === c.again, `${c.name}: a second story in the same page (seed ${c.again_seed}) is ./run's too`);
  }
  check(errors.length === 0, `${c.name}: no console error${errors.length ? ': ' + errors.join('; ') : ''}`);
  if (c.screenshot) await page.screenshot({ path: path.join(outDir, c.screenshot), fullPage: true });
  await page.close();
}
await browser.close();
server.close();
if (passed + failed) console.log(`web: ${passed} passed, ${failed} failed`);
exit(failed ? 1 : 0);
