// The console in headless Chromium, as a person uses it: a run in the
// list, its steps and cost, an approval decided from the inbox, a run
// started from an agent's card, the cost page. A screenshot of every page.
// Usage: node console.mjs BASE_URL SCREENSHOT_DIR CHROMIUM
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [base, shots, executablePath] = process.argv.slice(2);
const api = async (method, path, body) => {
  const resp = await fetch(base + path, { method, headers: { 'Content-Type': 'application/json' }, body: body && JSON.stringify(body) });
  const data = await resp.json();
  assert.ok(resp.ok, `${method} ${path}: ${resp.status} ${JSON.stringify(data)}`);
  return data;
};
const settled = async (id) => api('GET', `/v1/runs/${id}?wait=20s`);

// Two runs before the browser opens: one that completes, one that waits
// for a person to approve its tool call.
const done = await api('POST', '/v1/runs', { agent: 'assistant', input: 'hello console', metadata: { customer: 'c-9' } });
assert.equal((await settled(done.id)).status, 'completed');
const waiting = await api('POST', '/v1/runs', { agent: 'shipper', input: 'ship order A-17' });
assert.equal((await settled(waiting.id)).status, 'waiting');

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const failures = [];
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
try {
  page.on('pageerror', (e) => failures.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') failures.push('console error: ' + m.text()); });
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // The list shows both runs, with their status, live.
  await page.goto(base + '/');
  await page.locator(`tr[data-run="${done.id}"]`).waitFor();
  await page.locator(`tr[data-run="${waiting.id}"] .status.waiting`).waitFor();
  await shot('runs');
  // Filtered by metadata and day: only the run of customer c-9.
  await page.fill('form.filters input[name="meta"]', 'customer=c-9');
  await page.fill('form.filters input[name="from"]', new Date().toISOString().slice(0, 10));
  await page.click('form.filters button');
  await page.locator(`tr[data-run="${waiting.id}"]`).waitFor({ state: 'detached' });
  assert.equal(await page.locator(`tr[data-run="${done.id}"]`).count(), 1, 'the run of customer c-9 stays');
  await page.fill('form.filters input[name="meta"]', '');
  await page.fill('form.filters input[name="from"]', '');
  await page.click('form.filters button');
  await page.locator(`tr[data-run="${waiting.id}"]`).waitFor();

  // The completed run: its steps, its output, its cost.
  await page.click(`a[href="#/run/${done.id}"]`);
  await page.locator('li.entry.run-completed').waitFor();
  await page.locator('.waterfall .bar.model').first().waitFor();
  const cost = await page.locator('dd.cost').textContent();
  assert.match(cost, /^\$0\.0\d+ — local \$/, `the run's cost: ${cost}`);
  assert.match(await page.locator('pre.output').textContent(), /Hello! You said: hello console/);
  await shot('run');

  // Fork it from its second step: the fork opens, ends, and compares
  // side by side with its source.
  const sourceURL = page.url();
  await page.locator('li.entry[data-step="2"] button.fork').click();
  await page.waitForURL((u) => u.toString() !== sourceURL && /#\/run\/run_/.test(u.toString()));
  await page.locator('.status.completed').first().waitFor();
  await page.locator('dd.forked').waitFor();
  await page.click('dd.forked a:has-text("compare")');
  await page.locator(`.compare section[data-run="${done.id}"] li.entry.run-completed`).waitFor();
  await page.locator('.compare section:nth-child(2) li.entry.run-completed').waitFor();
  await shot('fork-compare');

  // Fork it again from its first step, with other instructions.
  await page.goto(sourceURL);
  await page.locator('li.entry[data-step="1"] button.fork-with').click();
  await page.fill('li.entry[data-step="1"] form.fork-changes textarea', 'Answer in French.');
  await page.click('li.entry[data-step="1"] form.fork-changes button');
  await page.waitForURL((u) => u.toString() !== sourceURL && /#\/run\/run_/.test(u.toString()));
  await page.locator('.status.completed').first().waitFor();
  const changed = decodeURIComponent(page.url().split('#/run/')[1]);
  const stream = await (await fetch(`${base}/v1/runs/${changed}/events`)).text();
  const started = JSON.parse(stream.split('\n').find((l) => l.startsWith('data: ')).slice(6));
  assert.equal(started.data.fork.instructions, 'Answer in French.', 'the fork goes on with the instructions typed');

  // The inbox has the waiting approval; approving it lets the run end.
  await page.click('nav a[data-page="inbox"]');
  const item = page.locator(`section[data-run="${waiting.id}"]`);
  await item.waitFor();
  await shot('inbox');
  await item.locator('input[name="reason"]').fill('checked the order');
  await item.locator('button.approve').click();
  await item.waitFor({ state: 'detached' }); // decided: it leaves the inbox at once
  const after = await settled(waiting.id);
  assert.equal(after.status, 'completed', JSON.stringify(after));
  await page.goto(`${base}/#/run/${waiting.id}`);
  await page.locator('.status.completed').first().waitFor();
  await page.locator('li.entry.approval-decided').waitFor();
  await shot('run-approved');

  // Agents: their cards, who calls whom, and a run started from a card.
  await page.click('nav a[data-page="agents"]');
  const card = page.locator('section.card[data-agent="assistant"]');
  await card.waitFor();
  await page.locator('svg.team line.edge').first().waitFor({ state: 'attached' }); // a vertical line has no width
  assert.equal(await page.locator('.flow-graph[data-flow="review"] svg rect').count(), 2, 'the flow graph draws its two nodes');
  assert.equal(await page.locator('.flow-graph[data-flow="review"] svg .edge').count(), 2, 'and its two route edges');
  await shot('agents');
  await card.locator('input[name="input"]').fill('from the console');
  await card.locator('button').click();
  await page.waitForURL(/#\/run\/run_/);
  await page.locator('pre.output').waitFor();
  assert.match(await page.locator('pre.output').textContent(), /from the console/);

  // Tools: the ship call the approval let through (it failed: nothing listens).
  await page.click('nav a[data-page="tools"]');
  await page.locator('table.tools tr[data-tool="ship"]').waitFor();
  assert.match(await page.locator('table.tools tr[data-tool="ship"]').textContent(), /^ship11100%\d+ ms\$0\.002/, 'the ship tool: 1 call, failed');
  await shot('tools');

  // Cost: totals by agent, model and tool.
  await page.click('nav a[data-page="usage"]');
  await page.locator('table.usage[data-group="agent"] tr.total').waitFor();
  assert.equal(await page.locator('.days .day').count(), 14, 'cost over the last 14 days');
  assert.match(await page.locator('table.usage[data-group="model"] tbody').textContent(), /local/);
  assert.match(await page.locator('table.budgets tr[data-budget="assistant-daily"]').textContent(), /assistant-daily.*agent assistant\$0\.0\d+.*\$100.*24h/, 'the budget and its spend');
  await shot('cost');

  // Paging: older runs, then back to the newer page.
  await Promise.all(Array.from({ length: 50 }, (_, i) => api('POST', '/v1/runs', { agent: 'assistant', input: 'page filler ' + i })));
  await page.click('nav a[data-page="runs"]');
  await page.locator('a.older').waitFor();
  const firstRow = await page.locator('table.runs tbody tr').first().getAttribute('data-run');
  await page.click('a.older');
  await page.locator(`tr[data-run="${done.id}"]`).waitFor(); // the first runs are on the older page
  await page.click('a.newer');
  await page.locator(`tr[data-run="${firstRow}"]`).waitFor();

  assert.deepEqual(failures, [], 'the pages logged errors');
} catch (e) {
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true });
  console.error('errors the pages logged:', failures);
  throw e;
} finally {
  await browser.close();
}
console.log('console: ok');
