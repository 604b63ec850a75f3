// The fleet benchmark's pure parts (bench/lib/fleet-bench.ts): the time to a
// count from the poll samples, and the report table.
import test from 'ava';
import { fleetReport, timeToCount, type CountSample, type FleetSide } from '../../bench/lib/fleet-bench.ts';

const samples: CountSample[] = [
  { at: 1100, traceJobs: 5, jobs: 0 },
  { at: 1200, traceJobs: 20, jobs: 12 },
  { at: 1300, traceJobs: 20, jobs: 20 },
  { at: 1400, traceJobs: 20, jobs: 20 },
];

test('timeToCount is the first sample that reached the count, from the start', (t) => {
  t.is(timeToCount(samples, 'traceJobs', 20, 1000), 200);
  t.is(timeToCount(samples, 'jobs', 20, 1000), 300);
  t.is(timeToCount(samples, 'jobs', 12, 1000), 200);
  t.true(Number.isNaN(timeToCount(samples, 'jobs', 21, 1000)));
  t.true(Number.isNaN(timeToCount([], 'jobs', 1, 0)));
});

const sideOf = (jobsMs: number, extra: Partial<FleetSide> = {}): FleetSide => ({
  traceJobsMs: jobsMs / 2,
  jobsMs,
  traceJobs: 20,
  jobs: 20,
  timedOut: false,
  load: [1.5, 1, 1],
  ...extra,
});

test('fleetReport gives fleet over direct for each size and names timeouts and failures', (t) => {
  const text = fleetReport([
    { n: 20, nodesReadyMs: 900, direct: sideOf(500), fleet: sideOf(1500) },
    {
      n: 200,
      nodesReadyMs: 4000,
      direct: sideOf(4000),
      fleet: sideOf(Number.NaN, { timedOut: true, jobs: 150, traceJobs: 200 }),
    },
    { n: 50, nodesReadyMs: Number.NaN, error: 'failed: only 3 of 50 kwok nodes became Ready' },
  ]);
  const lines = text.split('\n');
  const row20 = lines.find((l) => l.startsWith('20 '));
  t.truthy(row20);
  t.regex(row20 ?? '', /750ms\s+1\.50s\s+500ms\s+3\.00×/);
  const row200 = lines.find((l) => l.startsWith('200 '));
  t.regex(row200 ?? '', /—\s+4\.00s\s+—/);
  t.true(lines.some((l) => l === 'N=200 fleet: timed out with 200 TraceJobs and 150 Jobs'));
  t.true(lines.some((l) => l.includes('N=50: failed: only 3 of 50')));
});
