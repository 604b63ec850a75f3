// Limits on injected time: `now` is a number the test moves.
import test from 'ava';
import { decide, historyToDelete, recordCreation, type TriggerLimitState } from '../../src/tracetrigger/limits.ts';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const empty = (): TriggerLimitState => ({ traceJobs: new Map(), recentCreations: [] });
const input = (now: number, spec = {}, maxPerMinute?: number) => ({
  now,
  spec: { cooldownSeconds: 600, maxActive: 3, ...spec },
  maxPerMinute,
  applyCooldown: true,
});

test('an existing name is deduplicated, before any other limit', (t) => {
  const state = empty();
  recordCreation(state, { name: 'tj-a', targetHash: 'h1', createdAt: T0, finished: false });
  t.is(decide('tj-a', 'h1', input(T0 + 1000, { suspend: true }), state), 'deduplicated');
});

test('suspend suppresses everything new', (t) => {
  t.is(decide('tj', 'h', input(T0, { suspend: true }), empty()), 'suspended');
});

test('cooldown per target: suppressed inside the window, allowed after it, other targets unaffected', (t) => {
  const state = empty();
  recordCreation(state, { name: 'tj-a', targetHash: 'h1', createdAt: T0, finished: true });
  t.is(decide('tj-b', 'h1', input(T0 + 599_000), state), 'cooldown');
  t.is(decide('tj-b', 'h2', input(T0 + 1000), state), 'create');
  t.is(decide('tj-b', 'h1', input(T0 + 600_000), state), 'create');
  t.is(decide('tj-b', 'h1', { ...input(T0 + 1000), applyCooldown: false }, state), 'create');
  t.is(decide('tj-b', 'h1', input(T0 + 1000, { cooldownSeconds: 0 }), state), 'create');
});

test('maxActive counts unfinished TraceJobs only', (t) => {
  const state = empty();
  for (let i = 0; i < 3; i++)
    recordCreation(state, { name: `a${i}`, targetHash: `h${i}`, createdAt: T0, finished: false });
  t.is(decide('n', 'hx', input(T0), state), 'maxActive');
  const a0 = state.traceJobs.get('a0');
  if (a0 !== undefined) a0.finished = true;
  t.is(decide('n', 'hx', input(T0), state), 'create');
});

test('the operator-wide rate cap is a rolling minute', (t) => {
  const state = empty();
  state.recentCreations.push(T0, T0 + 10_000);
  t.is(decide('n', 'h', input(T0 + 20_000, { maxActive: 100 }, 2), state), 'rateLimited');
  t.is(decide('n', 'h', input(T0 + 60_001, { maxActive: 100 }, 2), state), 'create');
  t.is(decide('n', 'h', input(T0 + 20_000, { maxActive: 100 }, undefined), state), 'create');
});

test('a storm: decisions taken in sequence never exceed maxActive or the cap', (t) => {
  const state = empty();
  let created = 0;
  for (let i = 0; i < 200; i++) {
    const d = decide(`tj-${i}`, `h${i}`, input(T0 + i, { maxActive: 5 }, 4), state);
    if (d === 'create') {
      created++;
      recordCreation(state, { name: `tj-${i}`, targetHash: `h${i}`, createdAt: T0 + i, finished: false });
    }
  }
  t.is(created, 4);
});

test('history: oldest finished beyond the limit go, except inside the cooldown or the newest of a target', (t) => {
  const finished = [
    { name: 'old1', targetHash: 'a', createdAt: T0, phase: 'Succeeded' as const },
    { name: 'old2', targetHash: 'b', createdAt: T0 + 1000, phase: 'Succeeded' as const },
    { name: 'new1', targetHash: 'a', createdAt: T0 + 2000, phase: 'Succeeded' as const },
    { name: 'new2', targetHash: 'b', createdAt: T0 + 3000, phase: 'Succeeded' as const },
    { name: 'fail1', targetHash: 'c', createdAt: T0, phase: 'Failed' as const },
  ];
  const newest = new Map([
    ['a', 'new1'],
    ['b', 'new2'],
    ['c', 'fail1'],
  ]);
  const spec = { successfulRunsHistoryLimit: 1, failedRunsHistoryLimit: 0, cooldownSeconds: 60 };
  t.deepEqual(historyToDelete(finished, spec, T0 + 30_000, newest), [], 'all inside the cooldown');
  t.deepEqual(historyToDelete(finished, spec, T0 + 120_000, newest).sort(), ['old1', 'old2']);
});
