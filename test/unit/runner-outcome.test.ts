// The runner's pure side: what bpftrace's lines say, and how a finished run
// is classified (trace-outcome.ts), without spawning bpftrace.
import test from 'ava';
import {
  buildTraceResult,
  classifyRun,
  newObservation,
  observeStderrLine,
  observeStdoutLines,
  type TraceEnd,
} from '../../src/runner/trace-outcome.ts';

const ended = (over: Partial<TraceEnd> = {}): TraceEnd => ({
  exit: { code: 0, signal: null },
  stop: {},
  bpftrace: 'bpftrace',
  gracePeriod: 30,
  ...over,
});

test('printf lines render as their text and are counted; a map is kept and marks the exit', (t) => {
  const o = newObservation();
  const batch = observeStdoutLines(o, [
    '{"type": "attached_probes", "data": {"probes": 1}}',
    '{"type": "printf", "data": "a\\n"}',
    '{"type": "printf", "data": "say \\"hi\\"\\n"}',
    '{"type": "printf", "data": "no newline"}',
    '{"type": "printf", "data": "two\\nlines\\n"}',
  ]);
  t.is(batch.text, 'Attaching 1 probe...\na\nsay "hi"\nno newlinetwo\nlines\n');
  t.false(batch.exiting);
  t.true(o.attached);
  t.is(o.outputLines, 4);
  const end = observeStdoutLines(o, ['', '{"type": "map", "data": {"@n": 3}}']);
  t.true(end.exiting);
  t.is(o.maps.get('@n')?.kind, 'scalar');
});

test('a clean exit is Completed, or DeadlineReached/Stopped when the runner asked', (t) => {
  const o = newObservation();
  t.is(classifyRun(o, ended()).outcome, 'Completed');
  t.is(classifyRun(o, ended({ stop: { reason: 'deadline' } })).outcome, 'DeadlineReached');
  t.is(classifyRun(o, ended({ stop: { reason: 'stop-file' } })).outcome, 'Stopped');
  // Ended by the SIGINT itself (no maps): still what was asked, with no message.
  const bySignal = classifyRun(o, ended({ exit: { code: null, signal: 'SIGINT' }, stop: { reason: 'signal' } }));
  t.deepEqual(bySignal, { outcome: 'Stopped', exitCode: 130 });
});

test('a kill says which maps may be missing', (t) => {
  const o = newObservation();
  const grace = classifyRun(
    o,
    ended({ exit: { code: null, signal: 'SIGKILL' }, stop: { reason: 'deadline', kill: 'grace' } }),
  );
  t.is(grace.outcome, 'DeadlineReached');
  t.is(grace.exitCode, 137);
  t.regex(grace.message ?? '', /30s grace period/);
  const second = classifyRun(
    o,
    ended({
      exit: { code: null, signal: 'SIGKILL' },
      stop: { reason: 'signal', kill: 'second-signal', secondSignal: 'SIGTERM' },
    }),
  );
  t.regex(second.message ?? '', /a second SIGTERM ended bpftrace/);
});

test('failures: compile, attach (also without ERROR:), environment, unknown', (t) => {
  const compile = newObservation();
  observeStderrLine(compile, 'stdin:1:1-4: ERROR: syntax error');
  t.is(classifyRun(compile, ended({ exit: { code: 1, signal: null } })).outcome, 'CompileError');

  const attach = newObservation();
  observeStdoutLines(attach, ['No probes to attach']);
  const a = classifyRun(attach, ended({ exit: { code: 1, signal: null } }));
  t.is(a.outcome, 'AttachError');
  t.is(a.message, 'No probes to attach');

  const env = newObservation();
  observeStderrLine(env, 'ERROR: bpftrace currently only supports running as the root user.');
  t.is(classifyRun(env, ended({ exit: { code: 1, signal: null } })).outcome, 'Error');

  const harmless = newObservation();
  observeStderrLine(harmless, "ERROR: couldn't set RLIMIT_MEMLOCK");
  t.deepEqual(harmless.errorLines, []);
  t.deepEqual(classifyRun(harmless, ended({ exit: { code: 3, signal: null } })), {
    outcome: 'Error',
    exitCode: 3,
    message: "ERROR: couldn't set RLIMIT_MEMLOCK",
  });
});

test('bpftrace that cannot be started, and lost events, are named', (t) => {
  const missing = Object.assign(new Error('spawn nope ENOENT'), { code: 'ENOENT' });
  const c = classifyRun(
    newObservation(),
    ended({ exit: { code: null, signal: null }, spawnError: missing, bpftrace: 'nope' }),
  );
  t.is(c.exitCode, 127);
  t.regex(c.message ?? '', /bpftrace not found \('nope'\)/);

  const o = newObservation();
  observeStdoutLines(o, ['{"type": "lost_events", "data": {"events": 12}}']);
  const lost = classifyRun(o, ended());
  t.is(lost.outcome, 'Completed');
  t.regex(lost.message ?? '', /lost 12 events/);
  const result = buildTraceResult(o, lost, { startedAt: new Date(0), finishedAt: new Date(1000) });
  t.is(result.finishedAt, '1970-01-01T00:00:01.000Z');
  t.is(result.outputLines, 0);
});
