// The dashboard in a real browser (Debian's Chromium, headless) against the
// local control plane and a running manager, with kwok playing the node: the
// trace pod's log is a file kwok's kubelet serves (and follows), and the
// trace's end is played by kwok as in the controller tests (see
// test/support/trace-pod.ts).
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { TraceResult } from '../../src/tracejob/index.ts';
import { launchBrowser, screenshot, SCREENSHOT_DIR, type Browser } from '../support/browser.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { runPlot, startDashboard, svgLabels, type RunningDashboard } from '../support/dashboard.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { appendLog, finishTracePod, serveLog } from '../support/trace-pod.ts';
import { apply, condition, getTraceJob, waitForPhase, waitForTraceJob, waitForTracePod } from '../support/tracejobs.ts';

const PLOTS = path.join(path.dirname(SCREENSHOT_DIR), 'plots');
const DOCS = path.join(path.dirname(path.dirname(SCREENSHOT_DIR)), 'docs', 'images');
let ns = '';
let cleanup: () => Promise<void> = async () => {};
let manager: RunningManager | undefined;
let dashboard: RunningDashboard | undefined;
let browser: Browser | undefined;
/** Every URL the page requested, to check that nothing came from outside. */
const requested: string[] = [];

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd();
  const namespace = await createTestNamespace('dash-tj');
  ns = namespace.name;
  cleanup = namespace.cleanup;
  manager = await startManager({ namespaces: [ns] });
  dashboard = await startDashboard();
  browser = await launchBrowser();
  browser.context.on('request', (r) => requested.push(r.url()));
});

test.after.always(async () => {
  await browser?.close();
  await dashboard?.stop();
  await manager?.stop();
  await cleanup();
});

function traceJob(name: string): object {
  return {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceJob',
    metadata: { name, namespace: ns },
    spec: {
      hostname: 'kwok-node-0',
      deadline: 3600,
      program: [
        'tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; }',
        'tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ {',
        '  @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000);',
        '  delete(@start[args->dev, args->sector]); @ios = count(); @bytes_by_comm[comm] = sum(args->nr_sector * 512);',
        '}',
      ].join('\n'),
    },
  };
}

/** What the runner reports after a stop: a latency histogram, a scalar and a keyed map. */
const stoppedResult: TraceResult = {
  outcome: 'Stopped',
  exitCode: 0,
  maps: [
    {
      name: '@usecs',
      kind: 'histogram',
      histograms: [
        {
          buckets: [
            { low: 32, high: 64, count: 4 },
            { low: 64, high: 128, count: 19 },
            { low: 128, high: 256, count: 57 },
            { low: 256, high: 512, count: 88 },
            { low: 512, high: 1024, count: 41 },
            { low: 1024, high: 2048, count: 12 },
            { low: 4096, high: 8192, count: 3 },
          ],
          total: 224,
          p50: 512,
          p90: 1024,
          p99: 8192,
        },
      ],
    },
    { name: '@ios', kind: 'scalar', value: '224' },
    {
      name: '@bytes_by_comm',
      kind: 'keyed',
      entries: [
        { key: 'postgres', value: '9437184' },
        { key: 'jbd2/sda1-8', value: '2097152' },
        { key: 'kworker/u8:2', value: '524288' },
      ],
    },
  ],
  truncated: false,
};

async function phaseOnPage(page: Page): Promise<string | null> {
  return page.locator('#phase').getAttribute('data-phase');
}

test.serial('the list shows a TraceJob as it is applied, without a reload', async (t) => {
  const page = await (browser as Browser).context.newPage();
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });
  await page.goto(`${dashboard?.url}#/?namespace=${ns}`);
  await page.locator('#tracejobs .empty').waitFor();
  const loads = navigations;
  await apply(ns, traceJob('biolatency'));
  const row = page.locator(`#tracejobs tr[data-name="biolatency"]`);
  await row.waitFor({ timeout: 30_000 });
  await page.locator(`#tracejobs tr[data-name="biolatency"][data-phase="Running"]`).waitFor({ timeout: 60_000 });
  t.is(navigations, loads, 'the row appeared and changed phase without reloading the page');
  t.is(await row.locator('td').nth(3).textContent(), 'kwok-node-0', 'the node column shows the node');
  await screenshot(page, 'dashboard-list');
  await page.close();
});

test.serial("a running trace's output is followed, Stop ends it, and its maps are drawn bar by bar", async (t) => {
  const page = await (browser as Browser).context.newPage();
  const tj = await waitForPhase(ns, 'biolatency', 'Running');
  const id = tj.status?.id ?? '';
  const pod = await waitForTracePod(ns, id);
  const podRef = { name: pod.metadata?.name ?? '', container: pod.spec?.containers[0]?.name ?? '' };
  const logFile = await serveLog(ns, podRef, 'Attaching 2 probes...\nTracing block I/O... Hit Ctrl-C to end.');
  await page.goto(`${dashboard?.url}#/tracejob/${ns}/biolatency`);
  const output = page.locator('#output');
  await eventually('the page shows the trace output', async () =>
    (await output.textContent())?.includes('Attaching 2 probes...') === true ? true : undefined,
  );
  await appendLog(logFile, '12:00:01 postgres 8 KiB 412 us\n12:00:02 jbd2/sda1-8 4 KiB 97 us');
  await eventually(
    'lines the trace prints later appear on the page without a reload',
    async () => ((await output.textContent())?.includes('12:00:02 jbd2/sda1-8') === true ? true : undefined),
    30_000,
  );
  t.is(await phaseOnPage(page), 'Running');
  await screenshot(page, 'dashboard-tracejob-running');

  await page.locator('#stop').click();
  await page.locator('#stop-ok').waitFor();
  const requestedStop = await waitForTraceJob(
    ns,
    'biolatency',
    'has its stop request passed to the runner',
    (x) => x.spec.stop === true && condition(x, 'StopRequested')?.status === 'True',
  );
  t.is(requestedStop.spec.stop, true, 'the Stop button patched spec.stop');
  // The runner would now SIGINT bpftrace, which prints its maps and exits; kwok plays that exit.
  await finishTracePod(ns, podRef, { exitCode: 0, text: 'Attaching 2 probes...\n\n@ios: 224', result: stoppedResult });
  await waitForPhase(ns, 'biolatency', 'Succeeded');
  await page.locator('#phase[data-phase="Succeeded"]').waitFor({ timeout: 30_000 });
  t.true(await page.locator('#stop').isDisabled(), 'a finished trace cannot be stopped');

  const bars = page.locator('#charts .chart[data-map="@usecs"] g.bucket rect');
  await bars.first().waitFor();
  const drawn = await bars.evaluateAll((rects) =>
    rects.map((r) => ({
      label: r.getAttribute('aria-label') ?? '',
      height: Number(r.getAttribute('height')),
    })),
  );
  const stored = (await getTraceJob(ns, 'biolatency'))?.status?.result?.maps[0]?.histograms?.[0]?.buckets ?? [];
  t.is(stored.length, 7, 'the kept result has the histogram');
  t.is(drawn.length, stored.length, 'one bar per bucket of the stored result');
  const perSample = (drawn[0]?.height ?? 0) / (stored[0]?.count ?? 1);
  drawn.forEach((bar, i) => {
    const count = Number(bar.label.slice(bar.label.lastIndexOf(':') + 1));
    t.is(count, stored[i]?.count ?? NaN, `bar ${i} carries the count of bucket ${i} of the result`);
    t.true(Math.abs(bar.height - perSample * count) < 0.05, `bar ${i}'s height is its count on the y scale`);
  });
  // Hovering a bar shows its bucket and count (Plot's tip).
  await bars.nth(3).hover();
  const tip = page.locator('#charts .chart[data-map="@usecs"] g[aria-label="tip"]');
  await eventually('the tip shows the hovered bar', async () =>
    ((await tip.textContent()) ?? '').includes('[256, 512) µs: 88') ? true : undefined,
  );
  const markers = await page.locator('#charts g.percentile-label text').allTextContents();
  t.deepEqual(markers, ['p50 512 µs', 'p90 1K µs', 'p99 8K µs']);
  t.is(await page.locator('[data-map="@ios"] td').nth(1).textContent(), '224', 'a scalar map is a table');
  t.deepEqual(
    await page.locator('[data-map="@bytes_by_comm"] tbody td:first-child').allTextContents(),
    ['postgres', 'jbd2/sda1-8', 'kworker/u8:2'],
    'a keyed map is a table',
  );
  t.true((await page.locator('#conditions tr[data-type="StopRequested"]').count()) === 1, 'the conditions are shown');
  await eventually('the Events are shown', async () =>
    (await page.locator('#events tbody tr').count()) > 0 ? true : undefined,
  );
  await screenshot(page, 'dashboard-tracejob-finished');
  await page.close();

  // kubectl get -o wide shows the first histogram's p50 and p99.
  const wide = await kubectl(['get', 'tracejob', 'biolatency', '-o', 'wide'], { namespace: ns });
  const [header = '', line = ''] = wide.stdout.split('\n');
  const column = (name: string): string => line.slice(header.indexOf(name)).split(/\s/)[0] ?? '';
  t.is(column('P50'), '512', 'kubectl get -o wide shows P50');
  t.is(column('P99'), '8192', 'kubectl get -o wide shows P99');
});

test.serial('`trace-operator plot tracejob/NAME` draws the same bars as SVG and PNG', async (t) => {
  await mkdir(PLOTS, { recursive: true });
  const svgFile = path.join(PLOTS, 'tracejob-biolatency.svg');
  const svg = await runPlot(['tracejob/biolatency', '-n', ns, '-o', svgFile]);
  t.is(svg.exitCode, 0, svg.stderr);
  const stored = (await getTraceJob(ns, 'biolatency'))?.status?.result?.maps[0]?.histograms?.[0]?.buckets ?? [];
  const labels = svgLabels(await readFile(svgFile, 'utf8'), 'bucket');
  t.deepEqual(
    labels.map((l) => Number(l.slice(l.lastIndexOf(':') + 1))),
    stored.map((b) => b.count),
    'one bar per bucket, each with its count',
  );
  const png = await runPlot(['tracejob/biolatency', '-n', ns, '-o', path.join(PLOTS, 'tracejob-biolatency.png')]);
  t.is(png.exitCode, 0, png.stderr);
  const bytes = await readFile(path.join(PLOTS, 'tracejob-biolatency.png'));
  t.is(bytes.subarray(1, 4).toString(), 'PNG', 'a PNG file');
  if (process.env['UPDATE_DOCS_IMAGES'] === '1')
    await copyFile(path.join(PLOTS, 'tracejob-biolatency.png'), path.join(DOCS, 'plot-tracejob.png'));
  const missing = await runPlot(['tracejob/nope', '-n', ns]);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /tracejob .*\/nope not found/);
});

test.serial('the page loaded nothing from outside this machine', (t) => {
  t.true(requested.length > 0);
  const outside = requested.filter((u) => !u.startsWith(dashboard?.origin ?? '-') && !u.startsWith('data:'));
  // (the cross-origin test below opens a page of its own local server; it runs after this check)
  t.deepEqual(outside, [], 'every request went to the dashboard itself');
});

test.serial('a write from another origin is refused, and the trace is not touched', async (t) => {
  await apply(ns, traceJob('untouched'));
  await waitForPhase(ns, 'untouched', 'Running');
  const d = dashboard as RunningDashboard;
  const token = await d.token();
  const stop = (headers: Record<string, string>): Promise<Response> =>
    fetch(`${d.origin}/api/tracejobs/${ns}/untouched/stop`, { method: 'POST', headers, body: '{}' });
  const foreign = await stop({ origin: 'http://evil.example', 'x-dashboard-token': token });
  t.is(foreign.status, 403, 'another Origin is refused even with the token');
  t.regex(((await foreign.json()) as { message: string }).message, /cross-site request refused/);
  const noToken = await stop({ origin: d.origin });
  t.is(noToken.status, 403, 'this Origin without the session token is refused');
  t.regex(((await noToken.json()) as { message: string }).message, /session's token/);
  const noOrigin = await stop({ 'x-dashboard-token': token });
  t.is(noOrigin.status, 403, 'a request without Origin is refused');
  const rebound = await new Promise<number>((resolve, reject) =>
    http
      .get(`${d.origin}/`, { headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject),
  );
  t.is(rebound, 421, 'a page reached under another host name (DNS rebinding) is not served');

  // A real cross-site page in the browser (another local server): it can send a simple POST, but not read the token.
  const evilSite = http.createServer((_req, res) => res.end('<!doctype html><title>another site</title>'));
  await new Promise<void>((resolve) => evilSite.listen(0, '127.0.0.1', resolve));
  const page = await (browser as Browser).context.newPage();
  await page.goto(`http://127.0.0.1:${(evilSite.address() as AddressInfo).port}/`);
  const evilOrigin = `http://127.0.0.1:${(evilSite.address() as AddressInfo).port}`;
  // The browser sends it; the answer is a refusal it may not even read (CORP), and the server logs why.
  await page.evaluate(async (url) => {
    await fetch(url, { method: 'POST', mode: 'no-cors', body: '{}' }).catch(() => undefined);
  }, `${d.origin}/api/tracejobs/${ns}/untouched/stop`);
  await page.close();
  evilSite.close();
  await eventually('the dashboard logs the refusal of the cross-site page', async () =>
    d
      .logs()
      .split('\n')
      .some((l) => l.includes('write refused') && l.includes(`"origin":"${evilOrigin}"`))
      ? true
      : undefined,
  );
  t.not((await getTraceJob(ns, 'untouched'))?.spec.stop, true, 'spec.stop was not set');
});
