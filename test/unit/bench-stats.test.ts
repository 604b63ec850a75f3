// The benchmark's statistics, formatting and metrics parsing (bench/lib).
import test from 'ava';
import { diffRequests, meanRequestSeconds, parseMetrics, requestCounts, sumMetric } from '../../bench/lib/prom.ts';
import { cpuSplit, type CpuSnapshot } from '../../bench/lib/procfs.ts';
import {
  fairRatio,
  formatBytes,
  formatMs,
  formatRatio,
  linearFit,
  quantile,
  ratio,
  renderTable,
  summarize,
} from '../../bench/lib/stats.ts';

test('quantiles use the nearest rank', (t) => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  t.is(quantile(values, 0.5), 50);
  t.is(quantile(values, 0.9), 90);
  t.is(quantile(values, 0.99), 99);
  t.is(quantile(values, 1), 100);
  t.is(quantile(values, 0), 1);
  t.is(quantile([7], 0.99), 7);
  t.true(Number.isNaN(quantile([], 0.5)));
  t.throws(() => quantile([1], 1.5), { instanceOf: RangeError });
});

test('summarize gives count, percentiles, max and mean', (t) => {
  const s = summarize([3, 1, 2, 4]);
  t.deepEqual(s, { count: 4, p50: 2, p90: 4, p99: 4, max: 4, mean: 2.5 });
  t.is(summarize([]).count, 0);
  t.true(Number.isNaN(summarize([]).p50));
});

test('linearFit finds slope and intercept, and refuses a single x', (t) => {
  const fit = linearFit([
    { x: 100, y: 1100 },
    { x: 1000, y: 2000 },
    { x: 10_000, y: 11_000 },
  ]);
  t.truthy(fit);
  t.is(Math.round((fit?.slope ?? 0) * 1000) / 1000, 1);
  t.is(Math.round(fit?.intercept ?? 0), 1000);
  t.is(linearFit([{ x: 1, y: 1 }]), undefined);
  t.is(
    linearFit([
      { x: 1, y: 1 },
      { x: 1, y: 2 },
    ]),
    undefined,
  );
});

test('ratio and the formatters say "—" for what cannot be computed', (t) => {
  t.is(ratio(1, 4), 0.25);
  t.true(Number.isNaN(ratio(1, 0)));
  t.is(formatRatio(ratio(3, 2)), '1.50×');
  t.is(formatRatio(Number.NaN), '—');
  t.is(formatMs(850.4), '850ms');
  t.is(formatMs(1234), '1.23s');
  t.is(formatMs(12_345), '12.3s');
  t.is(formatMs(245_000), '4m05s');
  t.is(formatMs(Number.NaN), '—');
  t.is(formatBytes(512), '512B');
  t.is(formatBytes(100 * 1024 ** 2), '100.0MiB');
  t.is(formatBytes(-2048), '-2.0KiB');
});

test('renderTable aligns columns, numbers to the right, with a rule under the header', (t) => {
  const text = renderTable([
    ['N', 'who', 'rate'],
    ['100', 'operator', '21.8'],
    ['10000', 'ceiling', '—'],
  ]);
  t.is(
    text,
    ['N      who       rate', '-----  --------  ----', '100    operator  21.8', '10000  ceiling      —'].join('\n'),
  );
});

const EXPOSITION = `# HELP rest_client_requests_total Number of HTTP requests
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="201",method="POST",host="127.0.0.1:6443"} 400
rest_client_requests_total{code="200",method="PUT",host="127.0.0.1:6443"} 305
rest_client_requests_total{code="409",method="PUT",host="127.0.0.1:6443"} 2
rest_client_requests_total{code="200",method="GET",host="127.0.0.1:6443"} 120
rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:6443"} 1
workqueue_depth{name="tracejob",controller="tracejob"} 0
nodejs_heap_size_used_bytes 59768832
label_with_escapes{msg="a \\"quoted\\" value, with comma"} 1 1700000000000
`;

test('parseMetrics reads labels (escapes, commas) and values, skipping comments and timestamps', (t) => {
  const samples = parseMetrics(EXPOSITION);
  t.is(samples.length, 8);
  t.is(sumMetric(samples, 'nodejs_heap_size_used_bytes'), 59_768_832);
  t.is(sumMetric(samples, 'rest_client_requests_total', { method: 'PUT' }), 307);
  t.is(sumMetric(samples, 'rest_client_requests_total', { code: (c) => c.startsWith('2') }), 825);
  t.is(samples.find((s) => s.name === 'label_with_escapes')?.labels['msg'], 'a "quoted" value, with comma');
  t.is(sumMetric(samples, 'label_with_escapes'), 1);
});

test('requestCounts splits writes from reads and diffRequests subtracts', (t) => {
  const after = requestCounts(parseMetrics(EXPOSITION));
  t.is(after.writes, 707);
  t.is(after.reads, 121);
  t.deepEqual(after.writesByCode, { '201': 400, '200': 305, '409': 2 });
  const before = requestCounts(parseMetrics('rest_client_requests_total{code="201",method="POST",host="h"} 100\n'));
  const d = diffRequests(before, after);
  t.is(d.writes, 607);
  t.deepEqual(d.byMethod, { POST: 300, PUT: 307, GET: 121 });
});

test('cpuSplit turns two snapshots into cores per process and what no process explains', (t) => {
  const a: CpuSnapshot = { atMs: 0, processes: { api: 10, etcd: 5 }, machine: { busy: 100, total: 200 } };
  const b: CpuSnapshot = {
    atMs: 2000,
    processes: { api: 12, etcd: 5.5, gone: 1 },
    machine: { busy: 103.5, total: 204 },
  };
  const s = cpuSplit(a, b);
  t.is(s.seconds, 2);
  t.deepEqual(s.cores, { api: 1, etcd: 0.25 });
  t.is(s.machineCores, 2);
  t.is(s.machineBusyCores, 1.75);
  t.is(s.otherCores, 0.5);
});

test('meanRequestSeconds divides the duration sum by the count, per verb, between two scrapes', (t) => {
  const before = parseMetrics(
    'rest_client_request_duration_seconds_sum{verb="PUT",host="h"} 1\nrest_client_request_duration_seconds_count{verb="PUT",host="h"} 10\n',
  );
  const after = parseMetrics(
    'rest_client_request_duration_seconds_sum{verb="PUT",host="h"} 5\nrest_client_request_duration_seconds_count{verb="PUT",host="h"} 30\nrest_client_request_duration_seconds_sum{verb="GET",host="h"} 0\nrest_client_request_duration_seconds_count{verb="GET",host="h"} 0\n',
  );
  t.deepEqual(meanRequestSeconds(after, before), { PUT: { count: 20, meanSeconds: 0.2 } });
  t.deepEqual(meanRequestSeconds(after), { PUT: { count: 30, meanSeconds: 5 / 30 } });
});

test('a ceiling run more disturbed than the operator run is left out of the ratio', (t) => {
  const quiet = { rate: 20, otherCores: 0.01 };
  const disturbed = { rate: 15.8, otherCores: 0.48 };
  t.deepEqual(fairRatio({ rate: 16.9, otherCores: 0.04 }, [disturbed, quiet]), {
    ratio: 16.9 / 20,
    disturbed: [0],
    operatorDisturbed: false,
  });
  // Alike within the margin: both count.
  t.is(fairRatio({ rate: 18, otherCores: 0.05 }, [quiet, { rate: 16, otherCores: 0.12 }]).ratio, 1);
  // Every ceiling run disturbed: none can be left out, so all count and none is flagged.
  t.deepEqual(fairRatio({ rate: 10, otherCores: 0 }, [disturbed]), {
    ratio: 10 / 15.8,
    disturbed: [],
    operatorDisturbed: false,
  });
  // The operator run the disturbed one: flagged, since the ratio then flatters the ceiling.
  t.true(fairRatio({ rate: 10, otherCores: 0.5 }, [quiet]).operatorDisturbed);
  t.true(Number.isNaN(fairRatio({ rate: 10, otherCores: 0 }, []).ratio));
});
