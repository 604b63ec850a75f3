// The dashboard's TraceTrigger views in a real browser, on runs the real
// trigger controller makes: a trigger over a pool of four kwok nodes of this
// file's own is fired twelve times (annotation observe.alexeldeib.xyz/fire);
// each run's TraceJobs are ended by kwok with results the test chooses (a
// latency that drifts up), the controller merges them into status.runs, and
// the page draws the heatmap of the runs and the latest fleet run (one node
// of which fails) as merged plus per-node charts.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import type { Histogram, TraceJob, TraceResult } from '../../src/tracejob/index.ts';
import type { TraceTrigger } from '../../src/tracetrigger/index.ts';
import { RUN_LABEL_KEY } from '../../src/tracetrigger/run.ts';
import { launchBrowser, screenshot, SCREENSHOT_DIR, type Browser } from '../support/browser.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { runPlot, startDashboard, svgLabels, type RunningDashboard } from '../support/dashboard.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { finishTracePod } from '../support/trace-pod.ts';
import { apply, getJson, listJson } from '../support/tracejobs.ts';

const PLOTS = path.join(path.dirname(SCREENSHOT_DIR), 'plots');
const DOCS = path.join(path.dirname(path.dirname(SCREENSHOT_DIR)), 'docs', 'images');
const POOL = `dash15-${randomBytes(3).toString('hex')}`;
const POOL_LABEL = 'trace-operator.test/dashboard-pool';
const FIRE = 'observe.alexeldeib.xyz/fire';
const nodes = ['a', 'b', 'c', 'd'].map((x) => `${POOL}-${x}`);
let ns = '';
let cleanup: () => Promise<void> = async () => {};
let manager: RunningManager | undefined;
let dashboard: RunningDashboard | undefined;
let browser: Browser | undefined;

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  await installCrd(); // both CRDs, Established
  const created = await kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: nodes.map((name) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok', [POOL_LABEL]: POOL },
        },
      })),
    }),
  });
  if (created.exitCode !== 0) throw new Error(`could not create the kwok nodes: ${created.stderr}`);
  await eventually('the pool nodes are Ready', async () => {
    const list = await listJson<{ status?: { conditions?: { type: string; status: string }[] } }>(
      '',
      'nodes',
      `${POOL_LABEL}=${POOL}`,
    );
    const ready = list.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length === nodes.length ? true : undefined;
  });
  const namespace = await createTestNamespace('dash-tt');
  ns = namespace.name;
  cleanup = namespace.cleanup;
  manager = await startManager({ namespaces: [ns] });
  dashboard = await startDashboard({ namespace: ns });
  browser = await launchBrowser();
});

test.after.always(async () => {
  await browser?.close();
  await dashboard?.stop();
  await manager?.stop();
  await cleanup();
  await kubectl(['delete', 'nodes', '-l', `${POOL_LABEL}=${POOL}`, '--wait=false']);
});

const PROGRAM = [
  'tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; }',
  'tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ {',
  '  @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000); delete(@start[args->dev, args->sector]);',
  '}',
].join('\n');

/** A log2 histogram from {low: count}. */
function histogram(counts: Record<number, number>): Histogram {
  const buckets = Object.entries(counts)
    .map(([low, count]) => ({ low: Number(low), high: Number(low) * 2, count }))
    .filter((b) => b.count > 0)
    .sort((a, b) => a.low - b.low);
  return { buckets, total: buckets.reduce((s, b) => s + b.count, 0) };
}

/** Node k's latency in run i (of 12): it drifts up run by run, and node d is the slowest. */
function latency(i: number, k: number): Histogram {
  const drift = i / 11;
  const slow = k === 3 ? 1.6 : 1;
  return histogram({
    64: Math.round((10 * (1 - drift) + 2) / slow),
    128: Math.round(40 * (1 - drift) + 8 + k * 2),
    256: 55 + k * 5,
    512: Math.round((15 + 45 * drift) * slow),
    1024: Math.round((2 + 30 * drift * drift) * slow),
    2048: Math.round((1 + 10 * drift * drift) * slow),
    4096: i >= 8 ? Math.round((i - 6) * slow) : 0,
  });
}

const result = (h: Histogram): TraceResult => ({
  outcome: 'DeadlineReached',
  exitCode: 0,
  maps: [{ name: '@usecs', kind: 'histogram', histograms: [h] }],
  truncated: false,
});

const failure: TraceResult = {
  outcome: 'AttachError',
  exitCode: 1,
  message: 'Could not attach probe tracepoint:block:block_rq_complete',
  maps: [],
  truncated: false,
};

async function finishTraceJob(tj: TraceJob, end: TraceResult): Promise<void> {
  const running = await eventually(
    `TraceJob ${tj.metadata.name} has a running pod`,
    async () => {
      const id = (await getJson<TraceJob>(ns, 'tracejob', tj.metadata.name))?.status?.id;
      if (id === undefined) return undefined;
      return (await listJson<V1Pod>(ns, 'pods', `iovisor.org/kubectl-trace-id=${id}`)).find(
        (p) => p.status?.phase === 'Running',
      );
    },
    90_000,
  );
  await finishTracePod(
    ns,
    { name: running.metadata?.name ?? '', container: running.spec?.containers[0]?.name ?? '' },
    {
      exitCode: end.exitCode,
      text: end.exitCode === 0 ? 'Attaching 2 probes...' : `ERROR: ${end.message}`,
      result: end,
    },
  );
}

const count = (label: string): number => Number(label.slice(label.lastIndexOf(':') + 1));

test.serial(
  'a fleet trigger: a heatmap of its 12 runs, and the latest run merged and per node on one scale',
  async (t) => {
    t.timeout(420_000);
    await apply(ns, {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceTrigger',
      metadata: { name: 'disk-latency', namespace: ns },
      spec: {
        nodeSelector: { matchLabels: { [POOL_LABEL]: POOL } },
        successfulRunsHistoryLimit: 12,
        failedRunsHistoryLimit: 3,
        template: { spec: { program: PROGRAM, deadline: 60 } },
      },
    });
    const perNodeLast = new Map<string, Histogram | undefined>();
    for (let i = 0; i < 12; i++) {
      const value = `run-${String(i + 1).padStart(2, '0')}`;
      const annotated = await kubectl(['annotate', 'tracetrigger', 'disk-latency', `${FIRE}=${value}`, '--overwrite'], {
        namespace: ns,
      });
      if (annotated.exitCode !== 0) throw new Error(`could not fire: ${annotated.stderr}`);
      const runId = `fire-${value}`;
      const tjs = await eventually(`run ${runId} has its 4 TraceJobs`, async () => {
        const list = await listJson<TraceJob>(ns, 'tracejobs', `${RUN_LABEL_KEY}=${runId}`);
        return list.length === nodes.length ? list : undefined;
      });
      for (const tj of tjs) {
        const k = nodes.indexOf(tj.spec.hostname ?? '');
        const failed = i === 11 && k === 2;
        const h = latency(i, k);
        if (i === 11) perNodeLast.set(tj.spec.hostname ?? '', failed ? undefined : h);
        await finishTraceJob(tj, failed ? failure : result(h));
      }
      await eventually(
        `run ${runId} is complete`,
        async () => {
          const tr = await getJson<TraceTrigger>(ns, 'tracetrigger', 'disk-latency');
          return tr?.status?.runs?.find((r) => r.id === runId)?.result?.complete === true ? true : undefined;
        },
        120_000,
      );
    }
    const trigger = await getJson<TraceTrigger>(ns, 'tracetrigger', 'disk-latency');
    const runs = trigger?.status?.runs ?? [];
    t.is(runs.length, 12, 'the trigger keeps all 12 runs');

    const page = await (browser as Browser).context.newPage();
    await page.goto(dashboard?.url ?? '');
    await page.locator('#tracetriggers tr[data-name="disk-latency"]').waitFor({ timeout: 30_000 });
    await page.locator('#tracetriggers a', { hasText: 'disk-latency' }).click();

    // Heatmap: one cell per run and non-empty bucket of the run's merged histogram, each with its count.
    const cells = page.locator('#heatmap g.cell rect');
    await cells.first().waitFor({ timeout: 30_000 });
    const labels = await cells.evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
    const expected = [...runs]
      .sort((a, b) => a.time.localeCompare(b.time))
      .flatMap((r) => r.result?.maps.find((m) => m.name === '@usecs')?.histograms?.[0]?.buckets ?? []);
    t.true(expected.length > 12 * 3, 'the runs have merged histograms');
    t.is(labels.length, expected.length, 'one cell per run and bucket');
    t.deepEqual(
      labels.map(count),
      expected.map((b) => b.count),
      'each cell has the count of its run and bucket',
    );
    await cells.nth(labels.length - 1).hover();
    const last = labels[labels.length - 1] ?? '';
    await eventually('hovering a cell shows its bucket and count', async () =>
      ((await page.locator('#heatmap g[aria-label="tip"]').textContent()) ?? '').includes(last.slice(last.indexOf('[')))
        ? true
        : undefined,
    );
    await screenshot(page.locator('#trigger-overview'), 'dashboard-tracetrigger-heatmap');

    // The latest run: merged bars, then one small chart per node on one scale, the failed node marked.
    const latest = [...runs].sort((a, b) => b.time.localeCompare(a.time))[0];
    const fleet = page.locator(`#fleet[data-run="${latest?.id ?? ''}"]`);
    await fleet.locator('g.node-bucket rect').first().waitFor({ timeout: 30_000 });
    const merged = await fleet
      .locator('g.bucket rect')
      .evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
    t.deepEqual(
      merged.map(count),
      (latest?.result?.maps[0]?.histograms?.[0]?.buckets ?? []).map((b) => b.count),
      "the merged histogram has the run's merged counts",
    );
    const nodeBars = await fleet
      .locator('g.node-bucket rect')
      .evaluateAll((rs) =>
        rs.map((r) => ({ label: r.getAttribute('aria-label') ?? '', height: Number(r.getAttribute('height')) })),
      );
    for (const [node, h] of perNodeLast) {
      if (h === undefined) continue;
      t.deepEqual(
        nodeBars.filter((b) => b.label.startsWith(`${node} `)).map((b) => count(b.label)),
        h.buckets.map((b) => b.count),
        `${node}'s small chart has its own TraceJob's counts`,
      );
    }
    const ratios = nodeBars.map((b) => b.height / count(b.label));
    t.true(
      ratios.every((r) => Math.abs(r - (ratios[0] ?? 0)) < 0.05),
      'all nodes are drawn on one y scale',
    );
    t.deepEqual(await fleet.locator('g.node-failed text').allTextContents(), [
      `trace failed on ${nodes[2]}: no result`,
    ]);
    await screenshot(fleet, 'dashboard-tracetrigger-fleet');
    await page.close();

    // The same pictures from the command line: the heatmap (the default with runs), and one run's fleet chart.
    await mkdir(PLOTS, { recursive: true });
    const heatmapFile = path.join(PLOTS, 'tracetrigger-heatmap.svg');
    const hm = await runPlot(['tracetrigger/disk-latency', '-n', ns, '-o', heatmapFile]);
    t.is(hm.exitCode, 0, hm.stderr);
    t.deepEqual(
      svgLabels(await readFile(heatmapFile, 'utf8'), 'cell').map(count),
      expected.map((b) => b.count),
    );
    const fleetFile = path.join(PLOTS, 'tracetrigger-fleet.svg');
    const fr = await runPlot(['tracetrigger/disk-latency', '-n', ns, '--run', latest?.id ?? '', '-o', fleetFile]);
    t.is(fr.exitCode, 0, fr.stderr);
    t.deepEqual(svgLabels(await readFile(fleetFile, 'utf8'), 'bucket').map(count), merged.map(count));
    for (const [name, args] of [
      ['plot-tracetrigger-heatmap.png', []],
      ['plot-tracetrigger-fleet.png', ['--run', latest?.id ?? '']],
    ] as const) {
      const r = await runPlot(['tracetrigger/disk-latency', '-n', ns, ...args, '-o', path.join(PLOTS, name)]);
      t.is(r.exitCode, 0, r.stderr);
      if (process.env['UPDATE_DOCS_IMAGES'] === '1') await copyFile(path.join(PLOTS, name), path.join(DOCS, name));
    }
  },
);
