// The charts as `trace-operator plot` writes them, read back as SVG: one bar
// per non-empty bucket, each bar's label and height following its count, the
// same scale across a fleet's nodes, one heatmap cell per run and bucket.
import test from 'ava';
import { parseHTML } from 'linkedom';
import type { Histogram } from '../../src/tracejob/index.ts';
import { plotSvg, fileSource, parseTarget } from '../../src/plot/main.ts';
import type { TraceTriggerLike, TriggerRun } from '../../src/plot/trigger-runs.ts';

interface Drawn {
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
  fill: string | null;
  title: string;
}

/** The rects of the mark groups with class `cls`, in document order. */
function rects(svg: string, cls: string): Drawn[] {
  const { document } = parseHTML(`<html><body>${svg.replace(/^<\?xml[^>]*>/, '')}</body></html>`);
  return [...document.querySelectorAll(`g.${cls} rect`)].map((r) => ({
    label: r.getAttribute('aria-label') ?? '',
    x: Number(r.getAttribute('x')),
    y: Number(r.getAttribute('y')),
    width: Number(r.getAttribute('width')),
    height: Number(r.getAttribute('height')),
    fill: r.getAttribute('fill') ?? r.parentElement?.getAttribute('fill') ?? null,
    title: r.querySelector('title')?.textContent ?? '',
  }));
}

function texts(svg: string, cls: string): string[] {
  const { document } = parseHTML(`<html><body>${svg.replace(/^<\?xml[^>]*>/, '')}</body></html>`);
  return [...document.querySelectorAll(`g.${cls} text`)].map((t) => t.textContent ?? '');
}

const countOf = (label: string): number => Number(label.slice(label.lastIndexOf(':') + 1));

const biolatency: Histogram = {
  buckets: [
    { low: 64, high: 128, count: 2 },
    { low: 128, high: 256, count: 14 },
    { low: 256, high: 512, count: 40 },
    { low: 512, high: 1024, count: 22 },
    { low: 2048, high: 4096, count: 3 },
  ],
  total: 81,
  p50: 512,
  p90: 1024,
  p99: 4096,
};

const traceJob = (name: string, node: string, histogram: Histogram | undefined, phase = 'Succeeded'): object => ({
  apiVersion: 'observe.alexeldeib.xyz/v1alpha1',
  kind: 'TraceJob',
  metadata: { name, namespace: 'tracing' },
  spec: { hostname: node, program: 'x' },
  status: {
    phase,
    node,
    result:
      histogram === undefined
        ? undefined
        : {
            outcome: 'DeadlineReached',
            exitCode: 0,
            truncated: false,
            maps: [
              { name: '@usecs', kind: 'histogram', histograms: [histogram] },
              { name: '@calls', kind: 'scalar', value: '81' },
            ],
          },
  },
});

const list = (...items: object[]): string => JSON.stringify({ kind: 'List', apiVersion: 'v1', items });

/** Heights are proportional to counts, all bars stand on one baseline, and bars go left to right. */
function assertBarsFollow(
  t: import('ava').ExecutionContext,
  drawn: Drawn[],
  buckets: Histogram['buckets'],
  what: string,
): void {
  t.is(drawn.length, buckets.length, `${what}: one bar per non-empty bucket`);
  const perCount = drawn.map((d, i) => d.height / (buckets[i]?.count ?? NaN));
  drawn.forEach((d, i) => {
    t.is(countOf(d.label), buckets[i]?.count ?? NaN, `${what}: bar ${i} is labelled with its bucket's count`);
    t.is(d.title, d.label, `${what}: bar ${i} shows its count on hover`);
    t.true(Math.abs((perCount[i] ?? 0) - (perCount[0] ?? 0)) < 0.01, `${what}: bar ${i}'s height follows its count`);
    t.true(Math.abs(d.y + d.height - ((drawn[0]?.y ?? 0) + (drawn[0]?.height ?? 0))) < 0.01, `${what}: one baseline`);
    if (i > 0) t.true(d.x > (drawn[i - 1]?.x ?? Infinity), `${what}: buckets ascend left to right`);
  });
}

test('a TraceJob histogram: one bar per bucket, heights follow counts, p50/p90/p99 marked', async (t) => {
  const source = await fileSource(list(traceJob('biolatency', 'kwok-node-0', biolatency)));
  const svg = await plotSvg(source, parseTarget('tracejob/biolatency'), 'tracing');
  t.true(svg.startsWith('<?xml'), 'a standalone SVG document');
  const bars = rects(svg, 'bucket');
  assertBarsFollow(t, bars, biolatency.buckets, 'histogram');
  t.is(bars[0]?.label, '[64, 128) µs: 2', 'the label names the bucket as bpftrace prints it, with the unit');
  // [1K, 2K) is empty: it keeps its place, so the 2K bucket is one slot further right.
  const width = bars[0]?.width ?? 0;
  t.true((bars[4]?.x ?? 0) - (bars[3]?.x ?? 0) > 1.9 * width, 'the empty [1K, 2K) bucket keeps its slot');
  t.deepEqual(texts(svg, 'percentile-label'), ['p50 512 µs', 'p90 1K µs', 'p99 4K µs']);
  t.true(svg.includes('@usecs (µs)'), 'the x axis names the map and its unit');
});

test('equal percentiles share one marker', async (t) => {
  const h: Histogram = {
    buckets: [
      { low: 256, high: 512, count: 3 },
      { low: 512, high: 1024, count: 1 },
    ],
    total: 4,
    p50: 512,
    p90: 1024,
    p99: 1024,
  };
  const svg = await plotSvg(await fileSource(list(traceJob('two', 'n', h))), parseTarget('tj/two'), 'tracing');
  t.deepEqual(texts(svg, 'percentile-label'), ['p50 512 µs', 'p90 p99 1K µs']);
});

test('a TraceJob without a histogram says why nothing is drawn', async (t) => {
  const source = await fileSource(list(traceJob('running', 'n', undefined, 'Running')));
  const error = await t.throwsAsync(plotSvg(source, parseTarget('tracejob/running'), 'tracing'));
  t.regex(error.message, /no histogram to draw \(phase Running\)/);
});

const nodeA: Histogram = {
  buckets: [
    { low: 128, high: 256, count: 10 },
    { low: 256, high: 512, count: 30 },
  ],
  total: 40,
};
const nodeB: Histogram = {
  buckets: [
    { low: 256, high: 512, count: 5 },
    { low: 1024, high: 2048, count: 2 },
  ],
  total: 7,
};
const merged: Histogram = {
  buckets: [
    { low: 128, high: 256, count: 10 },
    { low: 256, high: 512, count: 35 },
    { low: 1024, high: 2048, count: 2 },
  ],
  total: 47,
  p50: 512,
  p90: 512,
  p99: 2048,
};

function run(id: string, time: string, histogram: Histogram, traceJobs: TriggerRun['traceJobs'] = []): TriggerRun {
  return {
    id,
    time,
    by: 'schedule',
    traceJobs,
    result: { maps: [{ name: '@usecs', kind: 'histogram', histograms: [histogram] }] },
  };
}

test('a fleet run: the merged histogram, then each node on one scale, the failed node marked', async (t) => {
  const trigger: TraceTriggerLike & { kind: string } = {
    kind: 'TraceTrigger',
    metadata: { name: 'disk', namespace: 'tracing' },
    spec: { schedule: '*/15 * * * *' },
    status: {
      runs: [
        run('r1', '2026-12-01T10:00:00Z', merged, [
          { name: 'disk-r1-a', node: 'node-a', phase: 'Succeeded' },
          { name: 'disk-r1-b', node: 'node-b', phase: 'Succeeded' },
          { name: 'disk-r1-c', node: 'node-c', phase: 'Failed' },
        ]),
      ],
    },
  };
  const source = await fileSource(
    list(
      trigger,
      traceJob('disk-r1-a', 'node-a', nodeA),
      traceJob('disk-r1-b', 'node-b', nodeB),
      traceJob('disk-r1-c', 'node-c', undefined, 'Failed'),
    ),
  );
  const svg = await plotSvg(source, parseTarget('tracetrigger/disk'), 'tracing');
  assertBarsFollow(t, rects(svg, 'bucket'), merged.buckets, 'merged');
  const perNode = rects(svg, 'node-bucket');
  t.is(perNode.length, nodeA.buckets.length + nodeB.buckets.length, 'one bar per bucket of each node');
  const a = perNode.filter((d) => d.label.startsWith('node-a '));
  const b = perNode.filter((d) => d.label.startsWith('node-b '));
  t.deepEqual(
    a.map((d) => countOf(d.label)),
    [10, 30],
  );
  t.deepEqual(
    b.map((d) => countOf(d.label)),
    [5, 2],
  );
  const ratio = perNode.map((d) => d.height / countOf(d.label));
  t.true(
    ratio.every((r) => Math.abs(r - (ratio[0] ?? 0)) < 0.01),
    'every node is drawn on the same y scale',
  );
  // Same x scale: the [256, 512) bucket sits at the same x for both nodes.
  t.is(a[1]?.x, b[0]?.x, 'every node is drawn on the same x scale');
  t.deepEqual(texts(svg, 'node-failed'), ['trace failed on node-c: no result']);
  t.true(
    texts(svg, 'node-label').some((l) => l.includes('node-c') && l.includes('Failed')),
    'the failed node is labelled',
  );
});

test('a scheduled trigger over 12 runs: a heatmap cell per run and bucket, colour by count', async (t) => {
  const runs = Array.from({ length: 12 }, (_, i) =>
    run(`r${i}`, new Date(Date.UTC(2026, 11, 1, 10, i * 15)).toISOString(), {
      buckets: [
        { low: 128, high: 256, count: 5 + i },
        { low: 256, high: 512, count: 30 - i },
        ...(i >= 6 ? [{ low: 1024, high: 2048, count: i }] : []),
      ],
      total: 0,
    }),
  );
  const trigger = {
    kind: 'TraceTrigger',
    metadata: { name: 'disk', namespace: 'tracing' },
    spec: { schedule: '*/15 * * * *' },
    status: { runs },
  };
  const svg = await plotSvg(await fileSource(list(trigger)), parseTarget('tracetrigger/disk'), 'tracing');
  const cells = rects(svg, 'cell');
  const expected = runs.flatMap((r) => r.result?.maps?.[0]?.histograms?.[0]?.buckets ?? []);
  t.is(cells.length, expected.length, 'one cell per run and non-empty bucket');
  t.deepEqual(
    cells.map((c) => countOf(c.label)),
    expected.map((b) => b.count),
    'each cell carries its count',
  );
  t.true(
    cells.every((c) => c.title === c.label),
    'hovering a cell shows its count',
  );
  // Time across: the runs' cells move right; buckets up: a higher bucket is higher on the page.
  const firstOfRun = runs.map((r) => cells.find((c) => c.label.startsWith(r.time.slice(0, 19).replace('T', ' '))));
  for (let i = 1; i < firstOfRun.length; i++)
    t.true((firstOfRun[i]?.x ?? 0) > (firstOfRun[i - 1]?.x ?? Infinity), `run ${i} is right of run ${i - 1}`);
  const low = cells.find((c) => c.label.includes('[128, 256)'));
  const high = cells.find((c) => c.label.includes('[1K, 2K)'));
  t.true((high?.y ?? Infinity) < (low?.y ?? 0), 'higher latency buckets are drawn higher');
  // [512, 1K) is empty in every run but keeps its row: 2 rows between [128,256) and [1K,2K).
  const next = cells.find((c) => c.label.includes('[256, 512)'));
  const row = (low?.y ?? 0) - (next?.y ?? 0);
  t.true(row > 0 && Math.abs((low?.y ?? 0) - (high?.y ?? 0) - 3 * row) < 0.01, 'an empty bucket keeps its row');
  // Colour = count: equal counts, equal colours; the largest count is not the smallest's colour.
  const byCount = new Map<number, Set<string | null>>();
  for (const c of cells) byCount.set(countOf(c.label), (byCount.get(countOf(c.label)) ?? new Set()).add(c.fill));
  t.true(
    [...byCount.values()].every((fills) => fills.size === 1),
    'equal counts have equal colours',
  );
  const counts = [...byCount.keys()].sort((x, y) => x - y);
  t.not(byCount.get(counts[0] ?? 0), byCount.get(counts[counts.length - 1] ?? 0));
  t.not([...(byCount.get(counts[0] ?? 0) ?? [])][0], [...(byCount.get(counts[counts.length - 1] ?? 0) ?? [])][0]);
  t.true(svg.includes('samples per bucket'), 'the colour legend says what colour means');
});

test('plot targets are tracejob/NAME or tracetrigger/NAME', (t) => {
  t.deepEqual(parseTarget('tj/x'), { kind: 'tracejob', name: 'x' });
  t.deepEqual(parseTarget('tracetrigger/y'), { kind: 'tracetrigger', name: 'y' });
  t.throws(() => parseTarget('pod/x'), { message: /unknown kind 'pod'/ });
  t.throws(() => parseTarget('x'), { message: /expected tracejob\/NAME/ });
});
