import test from 'ava';
import { percentiles } from '../../src/runner/histogram.ts';
import type { HistogramBucket, MapResult, TraceResult } from '../../src/tracejob/result.ts';
import { classifyNodeTrace, mergeRunResults, sumBuckets, type NodeTrace } from '../../src/tracetrigger/merge.ts';
import { RUN_RESULT_LIMITS } from '../../src/tracetrigger/run-result.ts';

function result(maps: MapResult[], over: Partial<TraceResult> = {}): TraceResult {
  return { outcome: 'DeadlineReached', exitCode: 0, maps, truncated: false, ...over };
}

function hist(name: string, buckets: HistogramBucket[], key?: string): MapResult {
  const total = buckets.reduce((s, b) => s + b.count, 0);
  return {
    name,
    kind: 'histogram',
    histograms: [{ ...(key === undefined ? {} : { key }), buckets, total, ...percentiles(buckets) }],
  };
}

function done(node: string, maps: MapResult[], over: Partial<TraceResult> = {}): NodeTrace {
  return { node, traceJob: `tj-${node}`, phase: 'Succeeded', result: result(maps, over) };
}

/** log2 buckets [2^i, 2^(i+1)) with the given counts, from i = 0. */
function log2(counts: number[]): HistogramBucket[] {
  return counts.map((count, i) => ({ low: 2 ** i, high: 2 ** (i + 1), count })).filter((b) => b.count > 0);
}

test('histograms of the same map are summed bucket by bucket with percentiles recomputed', (t) => {
  const merged = mergeRunResults([
    done('node-a', [hist('@usecs', log2([0, 10, 5]))]),
    done('node-b', [hist('@usecs', log2([3, 10, 0, 1]))]),
    done('node-c', [hist('@usecs', log2([0, 0, 0, 0, 0, 2]))]),
  ]);
  const expected = [
    { low: 1, high: 2, count: 3 },
    { low: 2, high: 4, count: 20 },
    { low: 4, high: 8, count: 5 },
    { low: 8, high: 16, count: 1 },
    { low: 32, high: 64, count: 2 },
  ];
  t.deepEqual(merged.maps, [
    { name: '@usecs', kind: 'histogram', histograms: [{ buckets: expected, total: 31, p50: 4, p90: 8, p99: 64 }] },
  ]);
  t.deepEqual(merged.nodes, { selected: 3, contributed: 3, failed: 0, running: 0 });
  t.true(merged.complete);
  t.false(merged.partial);
  t.false(merged.truncated);
  t.is(merged.failedNodes, undefined);
});

test('keyed histograms merge per key; the largest keys are kept', (t) => {
  const keyed = (parts: Array<[string, number[]]>): MapResult => ({
    name: '@lat',
    kind: 'histogram',
    histograms: parts.flatMap(([key, counts]) => hist('@lat', log2(counts), key).histograms ?? []),
  });
  const merged = mergeRunResults([
    done('a', [
      keyed([
        ['dd', [1]],
        ['cp', [0, 4]],
      ]),
    ]),
    done('b', [keyed([['dd', [2]]])]),
  ]);
  t.deepEqual(
    (merged.maps[0]?.histograms ?? []).map((h) => [h.key, h.total, h.buckets]),
    [
      ['cp', 4, [{ low: 2, high: 4, count: 4 }]],
      ['dd', 3, [{ low: 1, high: 2, count: 3 }]],
    ],
  );
});

test('buckets with different bounds are joined where they overlap, never double-counted', (t) => {
  // node b's result was coarsened: [4, 16) spans a's [4, 8) and [8, 16).
  t.deepEqual(
    sumBuckets([
      { low: 4, high: 8, count: 1 },
      { low: 8, high: 16, count: 2 },
      { low: 4, high: 16, count: 4 },
      { low: 16, high: 32, count: 1 },
      { high: 0, count: 1 },
      { low: 64, count: 3 },
      { low: 100, count: 1 },
      { low: 0, high: 1, count: 0 },
    ]),
    [
      { high: 0, count: 1 },
      { low: 4, high: 16, count: 7 },
      { low: 16, high: 32, count: 1 },
      { low: 64, count: 4 },
    ],
  );
});

test('integer scalars and keyed values are added exactly, even beyond 2^53', (t) => {
  const merged = mergeRunResults([
    done('a', [
      { name: '@events', kind: 'scalar', value: '9007199254740993' },
      {
        name: '@bytes',
        kind: 'keyed',
        entries: [
          { key: 'nginx', value: '10' },
          { key: 'sshd', value: '1' },
        ],
      },
    ]),
    done('b', [
      { name: '@events', kind: 'scalar', value: '7' },
      { name: '@bytes', kind: 'keyed', entries: [{ key: 'sshd', value: '20' }] },
    ]),
  ]);
  t.deepEqual(merged.maps, [
    { name: '@events', kind: 'scalar', value: '9007199254741000' },
    {
      name: '@bytes',
      kind: 'keyed',
      entries: [
        { key: 'sshd', value: '21' },
        { key: 'nginx', value: '10' },
      ],
    },
  ]);
});

test('maps the nodes disagree on are listed as unmerged; equal non-integers are kept', (t) => {
  const merged = mergeRunResults([
    done('a', [
      { name: '@kernel', kind: 'scalar', value: '6.12.0' },
      { name: '@comm', kind: 'scalar', value: 'bash' },
      { name: '@x', kind: 'scalar', value: '1' },
    ]),
    done('b', [
      { name: '@kernel', kind: 'scalar', value: '6.12.0' },
      { name: '@comm', kind: 'scalar', value: 'zsh' },
      hist('@x', log2([1])),
    ]),
  ]);
  t.deepEqual(merged.maps, [{ name: '@kernel', kind: 'scalar', value: '6.12.0' }]);
  t.deepEqual(merged.unmerged, ['@comm', '@x']);
});

test('a partly failed run says so, names the failed and running nodes, and merges only the good ones', (t) => {
  const merged = mergeRunResults([
    done('n1', [hist('@usecs', log2([1]))]),
    { node: 'n2', traceJob: 'tj-n2', phase: 'Failed', message: 'the trace pod was evicted' },
    done('n3', [hist('@usecs', log2([5]))], { outcome: 'AttachError', exitCode: 1, message: 'no tracepoint' }),
    { node: 'n4', traceJob: 'tj-n4', phase: 'Running' },
    { node: 'n5', traceJob: 'tj-n5' },
  ]);
  t.true(merged.partial);
  t.false(merged.complete);
  t.deepEqual(merged.nodes, { selected: 5, contributed: 1, failed: 2, running: 2 });
  t.deepEqual(merged.failedNodes, [
    { node: 'n2', traceJob: 'tj-n2', message: 'the trace pod was evicted' },
    { node: 'n3', traceJob: 'tj-n3', message: 'no tracepoint' },
  ]);
  t.deepEqual(merged.runningNodes, ['n4', 'n5']);
  t.is(merged.maps[0]?.histograms?.[0]?.total, 1);
});

test('classifyNodeTrace: Succeeded with a failing outcome counts as failed', (t) => {
  t.is(classifyNodeTrace({ node: 'a', traceJob: 'a', phase: 'Pending' }), 'running');
  t.is(classifyNodeTrace({ node: 'a', traceJob: 'a', phase: 'Succeeded' }), 'contributed');
  t.is(classifyNodeTrace(done('a', [], { outcome: 'Stopped' })), 'contributed');
  t.is(classifyNodeTrace(done('a', [], { outcome: 'CompileError' })), 'failed');
});

test('the merged result stays small: buckets, keys, maps, entries and listed nodes are capped', (t) => {
  const wide = log2(Array.from({ length: 50 }, () => 1)); // 50 buckets
  const keys = Array.from({ length: 12 }, (_, i) => hist('@k', log2([i + 1]), `key${i}`).histograms ?? []).flat();
  const maps: MapResult[] = [
    hist('@wide', wide),
    { name: '@keys', kind: 'histogram', histograms: keys },
    {
      name: '@entries',
      kind: 'keyed',
      entries: Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
    },
    ...Array.from({ length: 10 }, (_, i) => ({ name: `@s${i}`, kind: 'scalar' as const, value: '1' })),
  ];
  const traces: NodeTrace[] = [done('n000', maps)];
  for (let i = 1; i <= 30; i++) traces.push({ node: `n${String(i).padStart(3, '0')}`, traceJob: `t${i}` });
  const merged = mergeRunResults(traces);
  t.true(merged.truncated);
  t.is(merged.maps.length, RUN_RESULT_LIMITS.maps);
  const [w, k, e] = merged.maps;
  t.true((w?.histograms?.[0]?.buckets.length ?? 0) <= RUN_RESULT_LIMITS.bucketsPerHistogram);
  t.is(w?.histograms?.[0]?.total, 50); // cutting buckets keeps the total ...
  t.is(w?.histograms?.[0]?.p50, percentiles(wide).p50); // ... and the percentiles of the full sum
  t.is(k?.histograms?.length, RUN_RESULT_LIMITS.histogramsPerMap);
  t.is(k?.histograms?.[0]?.key, 'key11'); // largest total first
  t.is(e?.entries?.length, RUN_RESULT_LIMITS.entriesPerMap);
  t.is(e?.entries?.[0]?.value, '39');
  t.is(merged.runningNodes?.length, RUN_RESULT_LIMITS.listedNodes);
  t.is(merged.nodes.running, 30);
  t.true(JSON.stringify(merged).length < 8 * 1024, `${JSON.stringify(merged).length} bytes`);
});

test('a node result that was itself cut marks the merged result truncated', (t) => {
  const merged = mergeRunResults([done('a', [hist('@x', log2([1]))], { truncated: true })]);
  t.true(merged.truncated);
});

test('no traces: an empty, complete run', (t) => {
  t.deepEqual(mergeRunResults([]), {
    complete: true,
    partial: false,
    nodes: { selected: 0, contributed: 0, failed: 0, running: 0 },
    maps: [],
    truncated: false,
  });
});
