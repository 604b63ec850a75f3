import test from 'ava';
import {
  concurrencyVerdict,
  decideSchedule,
  MISSED_COUNT_LIMIT,
  parseSchedule,
  type Schedule,
  type ScheduleInput,
} from '../../src/tracetrigger/schedule.ts';

function schedule(expression: string, timeZone?: string): Schedule {
  const parsed = parseSchedule(expression, timeZone);
  if (!parsed.ok) throw new Error(`${parsed.field}: ${parsed.message}`);
  return parsed.schedule;
}

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | undefined): string | undefined => d?.toISOString();

function nextTimes(s: Schedule, from: string, n: number): string[] {
  const out: string[] = [];
  let cursor = at(from);
  for (let i = 0; i < n; i++) {
    const next = s.next(cursor);
    if (next === undefined) break;
    out.push(next.toISOString());
    cursor = next;
  }
  return out;
}

// ---- parsing ----

test('five fields and the nicknames parse; the schedule says when it fires next', (t) => {
  t.deepEqual(nextTimes(schedule('*/15 * * * *'), '2026-01-01T00:07:00Z', 3), [
    '2026-01-01T00:15:00.000Z',
    '2026-01-01T00:30:00.000Z',
    '2026-01-01T00:45:00.000Z',
  ]);
  const from = '2026-01-15T10:20:00Z';
  t.is(iso(schedule('@hourly').next(at(from))), '2026-01-15T11:00:00.000Z');
  t.is(iso(schedule('@daily').next(at(from))), '2026-01-16T00:00:00.000Z');
  t.is(iso(schedule('@midnight').next(at(from))), '2026-01-16T00:00:00.000Z');
  t.is(iso(schedule('@weekly').next(at(from))), '2026-01-18T00:00:00.000Z'); // a Sunday
  t.is(iso(schedule('@monthly').next(at(from))), '2026-02-01T00:00:00.000Z');
  t.is(iso(schedule('@yearly').next(at(from))), '2027-01-01T00:00:00.000Z');
  t.is(iso(schedule('@annually').next(at(from))), '2027-01-01T00:00:00.000Z');
  t.is(iso(schedule('@HOURLY').next(at(from))), '2026-01-15T11:00:00.000Z');
});

test('next is strictly after the given time', (t) => {
  t.is(iso(schedule('*/5 * * * *').next(at('2026-01-01T00:10:00Z'))), '2026-01-01T00:15:00.000Z');
  t.is(iso(schedule('*/5 * * * *').next(at('2026-01-01T00:09:59.900Z'))), '2026-01-01T00:10:00.000Z');
});

test('latest includes the given instant and the seconds after a scheduled minute', (t) => {
  const s = schedule('*/5 * * * *');
  t.is(iso(s.latest(at('2026-01-01T00:10:00Z'))), '2026-01-01T00:10:00.000Z');
  t.is(iso(s.latest(at('2026-01-01T00:10:00.500Z'))), '2026-01-01T00:10:00.000Z');
  t.is(iso(s.latest(at('2026-01-01T00:14:59.999Z'))), '2026-01-01T00:10:00.000Z');
  t.is(iso(s.latest(at('2026-01-01T00:09:59.999Z'))), '2026-01-01T00:05:00.000Z');
});

test('day-of-month and day-of-week are OR-ed when both are restricted, as in cron', (t) => {
  // 2026-01-01 is a Thursday: the 1st of February is a Sunday, Mondays are the 5th, 12th, ...
  t.deepEqual(nextTimes(schedule('0 0 1 * 1'), '2026-01-25T00:00:00Z', 3), [
    '2026-01-26T00:00:00.000Z',
    '2026-02-01T00:00:00.000Z',
    '2026-02-02T00:00:00.000Z',
  ]);
});

test('bad schedules and time zones are refused with the field and what to write instead', (t) => {
  const cases: Array<[string, string | undefined, string, RegExp]> = [
    ['* * * *', undefined, 'spec.schedule', /4 fields; use exactly five/],
    ['0 * * * * *', undefined, 'spec.schedule', /6 fields; use exactly five/],
    ['61 * * * *', undefined, 'spec.schedule', /invalid schedule/],
    ['@reboot', undefined, 'spec.schedule', /unsupported schedule.*@hourly/],
    ['@every 5m', undefined, 'spec.schedule', /unsupported schedule/],
    ['0 0 30 2 *', undefined, 'spec.schedule', /never fires/],
    ['*/15 * * * *', 'Mars/Olympus_Mons', 'spec.timeZone', /unknown time zone.*IANA/],
  ];
  for (const [expression, zone, field, message] of cases) {
    const parsed = parseSchedule(expression, zone);
    t.false(parsed.ok, expression);
    if (!parsed.ok) {
      t.is(parsed.field, field, expression);
      t.regex(parsed.message, message, expression);
    }
  }
});

// ---- time zones and daylight saving ----

test('a schedule is read on the wall clock of its time zone', (t) => {
  // 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT).
  const s = schedule('0 9 * * *', 'America/New_York');
  t.is(iso(s.next(at('2026-01-10T00:00:00Z'))), '2026-01-10T14:00:00.000Z');
  t.is(iso(s.next(at('2026-07-10T00:00:00Z'))), '2026-07-10T13:00:00.000Z');
  t.is(iso(schedule('0 9 * * *', 'Asia/Kolkata').next(at('2026-01-10T00:00:00Z'))), '2026-01-10T03:30:00.000Z');
  t.is(iso(schedule('0 9 * * *').next(at('2026-01-10T00:00:00Z'))), '2026-01-10T09:00:00.000Z'); // Etc/UTC
});

test('spring forward in Berlin: 02:30 does not exist on 29 March 2026 and runs at 03:00 CEST instead', (t) => {
  // Clocks go from 02:00 CET (01:00 UTC) straight to 03:00 CEST.
  t.deepEqual(nextTimes(schedule('30 2 * * *', 'Europe/Berlin'), '2026-03-27T12:00:00Z', 4), [
    '2026-03-28T01:30:00.000Z', // 02:30 CET
    '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first instant after the gap
    '2026-03-30T00:30:00.000Z', // 02:30 CEST
    '2026-03-31T00:30:00.000Z',
  ]);
});

test('fall back in Berlin: 02:30 happens twice on 25 October 2026 and runs once', (t) => {
  // Clocks go from 03:00 CEST (01:00 UTC) back to 02:00 CET: 02:30 is 00:30 UTC and again 01:30 UTC.
  t.deepEqual(nextTimes(schedule('30 2 * * *', 'Europe/Berlin'), '2026-10-24T12:00:00Z', 3), [
    '2026-10-25T00:30:00.000Z',
    '2026-10-26T01:30:00.000Z',
    '2026-10-27T01:30:00.000Z',
  ]);
});

test('spring forward in New York: 02:30 on 8 March 2026 runs once, at 03:00 EDT', (t) => {
  t.deepEqual(nextTimes(schedule('30 2 * * *', 'America/New_York'), '2026-03-07T12:00:00Z', 3), [
    '2026-03-08T07:00:00.000Z', // 03:00 EDT
    '2026-03-09T06:30:00.000Z', // 02:30 EDT
    '2026-03-10T06:30:00.000Z',
  ]);
});

test('fall back in New York: 01:30 on 1 November 2026 runs once, at its first occurrence', (t) => {
  const s = schedule('30 1 * * *', 'America/New_York');
  t.deepEqual(nextTimes(s, '2026-10-31T12:00:00Z', 2), [
    '2026-11-01T05:30:00.000Z', // 01:30 EDT
    '2026-11-02T06:30:00.000Z', // 01:30 EST the next day: the second 01:30 of 1 November is not a run
  ]);
  // Looking back from after both 01:30s finds the first one only.
  t.is(iso(s.latest(at('2026-11-01T07:00:00Z'))), '2026-11-01T05:30:00.000Z');
});

test('an interval schedule follows the real clock across daylight saving: no gap, no double', (t) => {
  // Fall back in New York: the hour 01:00-02:00 happens twice, every half hour of both is a run.
  t.deepEqual(nextTimes(schedule('*/30 * * * *', 'America/New_York'), '2026-11-01T04:45:00Z', 5), [
    '2026-11-01T05:00:00.000Z',
    '2026-11-01T05:30:00.000Z',
    '2026-11-01T06:00:00.000Z',
    '2026-11-01T06:30:00.000Z',
    '2026-11-01T07:00:00.000Z',
  ]);
  // Spring forward: 01:30 EST is followed by 03:00 EDT, half an hour later in real time.
  t.deepEqual(nextTimes(schedule('*/30 * * * *', 'America/New_York'), '2026-03-08T06:15:00Z', 3), [
    '2026-03-08T06:30:00.000Z',
    '2026-03-08T07:00:00.000Z',
    '2026-03-08T07:30:00.000Z',
  ]);
});

test('a restart across the spring-forward gap starts the shifted 02:30 run once', (t) => {
  const s = schedule('30 2 * * *', 'Europe/Berlin');
  const base = { schedule: s, createdAt: at('2026-03-01T00:00:00Z'), activeRuns: [] };
  const d = decideSchedule({ ...base, now: at('2026-03-29T01:00:20Z'), lastScheduleTime: at('2026-03-28T01:30:00Z') });
  t.like(d, { action: 'start', missed: 0 });
  if (d.action === 'start') t.is(iso(d.scheduledTime), '2026-03-29T01:00:00.000Z');
  const after = decideSchedule({
    ...base,
    now: at('2026-03-29T03:00:00Z'),
    lastScheduleTime: at('2026-03-29T01:00:00Z'),
  });
  t.like(after, { action: 'idle' });
});

// ---- the decision ----

function input(over: Partial<ScheduleInput> & { now: Date }): ScheduleInput {
  return {
    schedule: schedule('*/15 * * * *'),
    createdAt: at('2026-01-01T00:00:00Z'),
    activeRuns: [],
    ...over,
  };
}

test('nothing is due before the first scheduled time after creation; requeue at it', (t) => {
  const d = decideSchedule(input({ createdAt: at('2026-01-01T00:03:00Z'), now: at('2026-01-01T00:14:00Z') }));
  t.deepEqual(d, { action: 'idle', requeueAt: at('2026-01-01T00:15:00Z') });
});

test('a time at creation itself is not due (CronJob counts from creation, exclusive)', (t) => {
  const d = decideSchedule(input({ createdAt: at('2026-01-01T00:15:00Z'), now: at('2026-01-01T00:15:10Z') }));
  t.is(d.action, 'idle');
});

test('at the scheduled time a run starts, and is not due again once recorded', (t) => {
  const now = at('2026-01-01T00:15:02Z');
  const d = decideSchedule(input({ now }));
  t.deepEqual(d, {
    action: 'start',
    scheduledTime: at('2026-01-01T00:15:00Z'),
    missed: 0,
    replace: [],
    requeueAt: at('2026-01-01T00:30:00Z'),
  });
  t.deepEqual(decideSchedule(input({ now, lastScheduleTime: at('2026-01-01T00:15:00Z') })), {
    action: 'idle',
    requeueAt: at('2026-01-01T00:30:00Z'),
  });
});

test('after a downtime only the most recent missed time starts; the others are counted as missed', (t) => {
  // Down from 00:20 to 02:07: 00:30 ... 02:00 are due (7 times); one run, for 02:00.
  const d = decideSchedule(input({ now: at('2026-01-01T02:07:00Z'), lastScheduleTime: at('2026-01-01T00:15:00Z') }));
  t.like(d, { action: 'start', missed: 6 });
  if (d.action === 'start') t.is(iso(d.scheduledTime), '2026-01-01T02:00:00.000Z');
  // Recording it leaves nothing due: no burst of catch-up runs.
  const again = decideSchedule(
    input({ now: at('2026-01-01T02:07:01Z'), lastScheduleTime: at('2026-01-01T02:00:00Z') }),
  );
  t.is(again.action, 'idle');
});

test('the missed count is capped', (t) => {
  const d = decideSchedule(
    input({
      schedule: schedule('* * * * *'),
      now: at('2026-01-02T00:00:30Z'),
      lastScheduleTime: at('2026-01-01T00:00:00Z'),
    }),
  );
  t.like(d, { action: 'start', missed: MISSED_COUNT_LIMIT });
});

test('startingDeadlineSeconds: within the deadline starts, past it is tooLate (counted, not started)', (t) => {
  const base = { lastScheduleTime: at('2026-01-01T00:00:00Z'), startingDeadlineSeconds: 60 };
  t.like(decideSchedule(input({ ...base, now: at('2026-01-01T00:16:00Z') })), { action: 'start' });
  const late = decideSchedule(input({ ...base, now: at('2026-01-01T00:16:01Z') }));
  t.like(late, { action: 'tooLate', missed: 0, requeueAt: at('2026-01-01T00:30:00Z') });
  if (late.action === 'tooLate') t.is(iso(late.scheduledTime), '2026-01-01T00:15:00.000Z');
  // After a long downtime the most recent time decides, and it is too late as well.
  t.like(decideSchedule(input({ ...base, now: at('2026-01-01T03:05:00Z') })), { action: 'tooLate', missed: 11 });
});

test('suspend starts nothing and records nothing; resuming starts the most recent missed time', (t) => {
  const base = { lastScheduleTime: at('2026-01-01T00:00:00Z'), now: at('2026-01-01T01:05:00Z') };
  t.deepEqual(decideSchedule(input({ ...base, suspend: true })), { action: 'suspended' });
  t.like(decideSchedule(input({ ...base, suspend: false })), { action: 'start', missed: 3 });
  // ... unless the deadline says it is too late by then.
  t.like(decideSchedule(input({ ...base, startingDeadlineSeconds: 120 })), { action: 'tooLate' });
});

test('Forbid (the default) does not start while a run is active and keeps the due time pending', (t) => {
  const base = { lastScheduleTime: at('2026-01-01T00:00:00Z'), now: at('2026-01-01T00:15:01Z') };
  const d = decideSchedule(input({ ...base, activeRuns: ['s-29442975'] }));
  t.like(d, { action: 'forbidden', active: ['s-29442975'], requeueAt: at('2026-01-01T00:30:00Z') });
  // The active run ends two minutes later: the pending time starts then, late.
  t.like(decideSchedule(input({ ...base, now: at('2026-01-01T00:17:00Z') })), { action: 'start' });
  // With a deadline that has passed by then, it is too late instead.
  t.like(decideSchedule(input({ ...base, now: at('2026-01-01T00:17:00Z'), startingDeadlineSeconds: 60 })), {
    action: 'tooLate',
  });
});

test('Allow starts alongside active runs; Replace starts and names the runs to stop', (t) => {
  const base = {
    lastScheduleTime: at('2026-01-01T00:00:00Z'),
    now: at('2026-01-01T00:15:01Z'),
    activeRuns: ['a', 'b'],
  };
  t.like(decideSchedule(input({ ...base, concurrencyPolicy: 'Allow' })), { action: 'start', replace: [] });
  t.like(decideSchedule(input({ ...base, concurrencyPolicy: 'Replace' })), { action: 'start', replace: ['a', 'b'] });
  t.like(decideSchedule(input({ ...base, concurrencyPolicy: 'Forbid' })), { action: 'forbidden' });
});

test('concurrencyVerdict: nothing active always starts', (t) => {
  for (const policy of ['Forbid', 'Allow', 'Replace'] as const) {
    t.deepEqual(concurrencyVerdict(policy, []), { start: true, replace: [] });
  }
  t.deepEqual(concurrencyVerdict('Forbid', ['x']), { start: false, replace: [] });
});
