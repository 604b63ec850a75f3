// The dashboard's TraceTrigger views in a real browser: the heatmap of a
// scheduled trigger's runs and one fleet run's merged and per-node
// histograms. The TraceJobs of the latest run are real traces the manager
// runs on kwok nodes (ended by kwok as in the controller tests). The
// trigger's status.runs (design §7: id, time, by, traceJobs, merged result)
// is written by this test through the status subresource, standing in for
// the trigger controller: the trigger is suspended so nothing else writes
// it, and the API server validates what is written against the real CRD.
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Histogram, TraceResult } from '../../src/tracejob/index.ts';
import { launchBrowser, screenshot, type Browser } from '../support/browser.ts';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { startDashboard, type RunningDashboard } from '../support/dashboard.ts';
import { eventually } from '../support/eventually.ts';
import { installCrd, startManager, type RunningManager } from '../support/manager.ts';
import { finishTracePod } from '../support/trace-pod.ts';
import { apply, getJson, waitForPhase, waitForTracePod } from '../support/tracejobs.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TRIGGER_CRD = path.join(repoRoot, 'config/crd/bases/observe.alexeldeib.xyz_tracetriggers.yaml');

let ns = '';
let cleanup: () => Promise<void> = async () => {};
let manager: RunningManager | undefined;
let dashboard: RunningDashboard | undefined;
let browser: Browser | undefined;
const extraNodes = ['kwok-dash-2', 'kwok-dash-3'];
const nodes = ['kwok-node-0', 'kwok-node-1', ...extraNodes];

test.before(async () => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
  if (!existsSync(TRIGGER_CRD)) throw new Error(`the TraceTrigger CRD (${TRIGGER_CRD}) is missing`);
  await installCrd();
  const established = await kubectl([
    'wait',
    '--for=condition=Established',
    'crd/tracetriggers.observe.alexeldeib.xyz',
    '--timeout=60s',
  ]);
  if (established.exitCode !== 0) throw new Error(`the TraceTrigger CRD is not established: ${established.stderr}`);
  // Two more simulated nodes, so the fleet run has four.
  for (const name of extraNodes)
    await apply('default', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok-dash' },
      },
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
  await kubectl(['delete', 'node', ...extraNodes, '--ignore-not-found', '--wait=false']);
});

const PROGRAM = [
  'tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; }',
  'tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ {',
  '  @usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000); delete(@start[args->dev, args->sector]);',
  '}',
].join('\n');

function histogram(counts: Record<number, number>): Histogram {
  const buckets = Object.entries(counts)
    .map(([low, count]) => ({ low: Number(low), high: Number(low) * 2, count }))
    .filter((b) => b.count > 0)
    .sort((a, b) => a.low - b.low);
  const total = buckets.reduce((s, b) => s + b.count, 0);
  const rank = (q: number): number | undefined => {
    let seen = 0;
    for (const b of buckets) {
      seen += b.count;
      if (seen >= Math.ceil(q * total)) return b.high;
    }
    return undefined;
  };
  const p = (q: number): { [k: string]: number } => {
    const v = rank(q);
    return v === undefined ? {} : { [`p${Math.round(q * 100)}`]: v };
  };
  return { buckets, total, ...p(0.5), ...p(0.9), ...p(0.99) };
}

function merge(hs: Histogram[]): Histogram {
  const counts: Record<number, number> = {};
  for (const h of hs) for (const b of h.buckets) counts[b.low ?? 0] = (counts[b.low ?? 0] ?? 0) + b.count;
  return histogram(counts);
}

const usecs = (h: Histogram): TraceResult['maps'] => [{ name: '@usecs', kind: 'histogram', histograms: [h] }];

/** Twelve runs every 15 minutes; latency drifts up (a disk getting slower). */
function olderRun(i: number): { id: string; time: string; h: Histogram } {
  const time = new Date(Date.UTC(2026, 11, 1, 18, 0) + i * 15 * 60_000).toISOString();
  const drift = i / 11;
  return {
    id: time.replace(/[-:]/g, '').slice(0, 13),
    time,
    h: histogram({
      64: Math.round(40 * (1 - drift)) + 6,
      128: Math.round(160 * (1 - drift)) + 30,
      256: 220,
      512: Math.round(60 + 180 * drift),
      1024: Math.round(8 + 120 * drift * drift),
      2048: Math.round(2 + 40 * drift * drift),
      4096: i >= 9 ? 6 + i : 0,
    }),
  };
}

test.serial('a scheduled trigger: a heatmap of its runs, and the latest fleet run on one scale per node', async (t) => {
  await apply(ns, {
    apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
    kind: 'TraceTrigger',
    metadata: { name: 'disk-latency', namespace: ns },
    spec: {
      schedule: '*/15 * * * *',
      nodeSelector: { matchLabels: { 'kubernetes.io/os': 'linux' } },
      suspend: true,
      template: { spec: { program: PROGRAM, deadline: 60 } },
    },
  });
  const trigger = await getJson<{ metadata: { uid: string } }>(ns, 'tracetrigger', 'disk-latency');
  const uid = trigger?.metadata.uid ?? '';

  // The latest run: one real TraceJob per node, owned by the trigger; three end with maps, one fails.
  const perNode: Record<string, Histogram | undefined> = {
    'kwok-node-0': histogram({ 128: 20, 256: 150, 512: 120, 1024: 80, 2048: 22, 4096: 9 }),
    'kwok-node-1': histogram({ 128: 35, 256: 180, 512: 90, 1024: 30, 2048: 6 }),
    'kwok-dash-2': undefined,
    'kwok-dash-3': histogram({ 256: 60, 512: 140, 1024: 110, 2048: 50, 4096: 21, 8192: 4 }),
  };
  const runId = '20261201T2100';
  const name = (node: string): string => `disk-latency-${runId.toLowerCase()}-${node}`;
  for (const node of nodes)
    await apply(ns, {
      apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
      kind: 'TraceJob',
      metadata: {
        name: name(node),
        namespace: ns,
        ownerReferences: [
          {
            apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
            kind: 'TraceTrigger',
            name: 'disk-latency',
            uid,
            controller: true,
          },
        ],
      },
      spec: { hostname: node, program: PROGRAM, deadline: 60 },
    });
  for (const node of nodes) {
    const tj = await waitForPhase(ns, name(node), 'Running');
    const pod = await waitForTracePod(ns, tj.status?.id ?? '');
    const ref = { name: pod.metadata?.name ?? '', container: pod.spec?.containers[0]?.name ?? '' };
    const h = perNode[node];
    await finishTracePod(
      ns,
      ref,
      h === undefined
        ? {
            exitCode: 1,
            text: 'ERROR: Could not attach probe tracepoint:block:block_rq_complete',
            result: {
              outcome: 'AttachError',
              exitCode: 1,
              message: 'Could not attach probe tracepoint:block:block_rq_complete',
              maps: [],
              truncated: false,
            },
          }
        : {
            exitCode: 0,
            text: 'Attaching 2 probes...',
            result: { outcome: 'DeadlineReached', exitCode: 0, maps: usecs(h), truncated: false },
          },
    );
  }
  for (const node of nodes) await waitForPhase(ns, name(node), perNode[node] === undefined ? 'Failed' : 'Succeeded');

  const good = nodes.filter((n) => perNode[n] !== undefined);
  const latestMerged = merge(good.map((n) => perNode[n] as Histogram));
  const runs = [
    {
      id: runId,
      time: '2026-12-01T21:00:00Z',
      by: 'schedule',
      phase: 'Failed',
      traceJobs: nodes.map((n) => ({
        name: name(n),
        node: n,
        phase: perNode[n] === undefined ? 'Failed' : 'Succeeded',
      })),
      result: {
        complete: true,
        partial: true,
        nodes: { selected: 4, contributed: 3, failed: 1, running: 0 },
        failedNodes: [{ node: 'kwok-dash-2', traceJob: name('kwok-dash-2'), message: 'AttachError' }],
        maps: usecs(latestMerged),
        truncated: false,
      },
    },
    ...Array.from({ length: 11 }, (_, i) => olderRun(10 - i)).map((r) => ({
      id: r.id,
      time: r.time,
      by: 'schedule',
      phase: 'Succeeded',
      traceJobs: nodes.map((n) => ({ name: `disk-latency-${r.id.toLowerCase()}-${n}`, node: n, phase: 'Succeeded' })),
      result: {
        complete: true,
        partial: false,
        nodes: { selected: 4, contributed: 4, failed: 0, running: 0 },
        maps: usecs(r.h),
        truncated: false,
      },
    })),
  ];
  const patched = await kubectl(
    [
      'patch',
      'tracetrigger',
      'disk-latency',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { runs } }),
    ],
    { namespace: ns },
  );
  t.is(patched.exitCode, 0, `the runs are valid TraceTrigger status: ${patched.stderr}`);

  const page = await (browser as Browser).context.newPage();
  await page.goto(dashboard?.url ?? '');
  await page.locator('#tracetriggers tr[data-name="disk-latency"]').waitFor({ timeout: 30_000 });
  await page.locator('#tracetriggers a', { hasText: 'disk-latency' }).click();

  // Heatmap: one cell per run and non-empty bucket, each with its count.
  const cells = page.locator('#heatmap g.cell rect');
  await cells.first().waitFor({ timeout: 30_000 });
  const labels = await cells.evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
  const expected = [...runs]
    .sort((a, b) => a.time.localeCompare(b.time))
    .flatMap((r) => r.result.maps[0]?.histograms?.[0]?.buckets ?? []);
  t.true(runs.length >= 10, 'the heatmap covers at least 10 runs');
  t.is(labels.length, expected.length, 'one cell per run and bucket');
  t.deepEqual(
    labels.map((l) => Number(l.slice(l.lastIndexOf(':') + 1))),
    expected.map((b) => b.count),
    'each cell has the count of its run and bucket',
  );
  await cells.nth(labels.length - 1).hover();
  const lastLabel = labels[labels.length - 1] ?? '';
  await eventually('hovering a cell shows its count', async () =>
    ((await page.locator('#heatmap g[aria-label="tip"]').textContent()) ?? '').includes(
      lastLabel.slice(lastLabel.indexOf('['), lastLabel.length),
    )
      ? true
      : undefined,
  );
  await screenshot(page.locator('main'), 'dashboard-tracetrigger-heatmap');

  // The latest run: merged bars, then one small chart per node on one scale, the failed node marked.
  const fleet = page.locator(`#fleet[data-run="${runId}"]`);
  await fleet.locator('g.node-bucket rect').first().waitFor({ timeout: 30_000 });
  const merged = await fleet
    .locator('g.bucket rect')
    .evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') ?? ''));
  t.deepEqual(
    merged.map((l) => Number(l.slice(l.lastIndexOf(':') + 1))),
    latestMerged.buckets.map((b) => b.count),
    'the merged histogram has the merged counts',
  );
  const nodeBars = await fleet
    .locator('g.node-bucket rect')
    .evaluateAll((rs) =>
      rs.map((r) => ({ label: r.getAttribute('aria-label') ?? '', height: Number(r.getAttribute('height')) })),
    );
  for (const n of good) {
    const mine = nodeBars.filter((b) => b.label.startsWith(`${n} `));
    t.deepEqual(
      mine.map((b) => Number(b.label.slice(b.label.lastIndexOf(':') + 1))),
      (perNode[n] as Histogram).buckets.map((b) => b.count),
      `${n}'s small chart has its own TraceJob's counts`,
    );
  }
  const ratios = nodeBars.map((b) => b.height / Number(b.label.slice(b.label.lastIndexOf(':') + 1)));
  t.true(
    ratios.every((r) => Math.abs(r - (ratios[0] ?? 0)) < 0.05),
    'all nodes are drawn on one y scale',
  );
  t.deepEqual(await fleet.locator('g.node-failed text').allTextContents(), ['trace failed on kwok-dash-2: no result']);
  await screenshot(fleet, 'dashboard-tracetrigger-fleet');
  await page.close();
});
