import test from 'ava';
import { Value } from '@sinclair/typebox/value';
import { RESULT_LIMITS, TraceResult } from '../../src/tracejob/result.ts';
import type { MapResult } from '../../src/tracejob/result.ts';
import {
  TERMINATION_MESSAGE_MAX_BYTES,
  formatResultLine,
  formatTerminationMessage,
  newNonce,
  terminationMessage,
} from '../../src/runner/result-format.ts';
import {
  findResultLines,
  parseRunnerOutput,
  parseTerminationMessage,
  stripResultLine,
} from '../../src/runner/result-parse.ts';
import { toMapResult, toMapResults, trimResult } from '../../src/runner/result-build.ts';

const sample: TraceResult = {
  outcome: 'DeadlineReached',
  exitCode: 0,
  startedAt: '2025-01-01T00:00:00.000Z',
  finishedAt: '2025-01-01T00:00:05.000Z',
  outputLines: 2,
  maps: [
    { name: '@opens', kind: 'keyed', entries: [{ key: 'bash', value: '18446744073709551615' }] },
    {
      name: '@usecs',
      kind: 'histogram',
      histograms: [{ buckets: [{ low: 64, high: 128, count: 3 }], total: 3, p50: 128, p90: 128, p99: 128 }],
    },
  ],
  truncated: false,
};

test('a result line round-trips', (t) => {
  const nonce = newNonce();
  const line = formatResultLine(sample, nonce);
  t.false(line.includes('\n'));
  t.deepEqual(parseRunnerOutput(`Attaching 2 probes...\nsome text\n${line}\n`), sample);
});

test('a result line is marked, compressed, and the older plain-JSON form still reads', (t) => {
  const nonce = newNonce();
  const line = formatResultLine(sample, nonce);
  t.regex(line, /^TRACE_OPERATOR_RESULT [0-9a-f]{32} z:[A-Za-z0-9_-]+$/);
  const big = bigResult();
  t.true(formatResultLine(big, nonce).length < JSON.stringify(big).length / 3);
  t.deepEqual(parseRunnerOutput(`${formatResultLine(big, nonce)}\n`), big);
  const older = `TRACE_OPERATOR_RESULT ${nonce} ${JSON.stringify(sample)}`;
  t.deepEqual(parseRunnerOutput(`x\n${older}\n`), sample);
  t.is(stripResultLine(`x\n${older}\n`), 'x\n');
  // Garbage after z: is no result.
  t.is(parseRunnerOutput(`TRACE_OPERATOR_RESULT ${nonce} z:notdeflate\n`), undefined);
});

test('the termination message says whether it holds the whole result', (t) => {
  const nonce = newNonce();
  t.deepEqual(terminationMessage(sample, nonce), { text: formatTerminationMessage(sample, nonce), complete: true });
  const big = terminationMessage(bigResult(), nonce);
  t.false(big.complete);
  t.true(Buffer.byteLength(big.text) <= TERMINATION_MESSAGE_MAX_BYTES);
});

test('a fake result line printed by the program is not taken', (t) => {
  const nonce = newNonce();
  const fake = formatResultLine({ ...sample, outcome: 'CompileError', exitCode: 1 }, newNonce());
  const logs = `${fake}\nTRACE_OPERATOR_RESULT deadbeefdeadbeef {"broken": \n${formatResultLine(sample, nonce)}\n`;
  // The last line wins without a termination message ...
  t.deepEqual(parseRunnerOutput(logs), sample);
  // ... and with one, its nonce picks the line even if a fake one came later (e.g. logs reordered by a tool).
  const termination = formatTerminationMessage(sample, nonce);
  t.deepEqual(parseRunnerOutput(`${formatResultLine(sample, nonce)}\n${fake}\n`, termination), sample);
});

test('the termination message stands in when the logs are gone', (t) => {
  const nonce = newNonce();
  const termination = formatTerminationMessage(sample, nonce);
  t.deepEqual(parseTerminationMessage(termination), { nonce, result: sample });
  t.deepEqual(parseRunnerOutput('', termination), sample);
  // A fake line with another nonce is ignored in favour of the termination message.
  t.deepEqual(
    parseRunnerOutput(`${formatResultLine({ ...sample, outcome: 'Error' }, newNonce())}\n`, termination),
    sample,
  );
});

test('logs from a tty pod (CRLF) and with timestamps are read', (t) => {
  const nonce = newNonce();
  const line = formatResultLine(sample, nonce);
  t.deepEqual(parseRunnerOutput(`text\r\n${line}\r\n`), sample);
  t.deepEqual(parseRunnerOutput(`2025-01-01T00:00:05.123456789Z ${line}\n`), sample);
});

test('a result line glued to unterminated program text is not a result line', (t) => {
  const line = formatResultLine(sample, newNonce());
  t.is(parseRunnerOutput(`no newline here${line}\n`), undefined);
  t.deepEqual(findResultLines(`x\n${line}`).length, 1);
});

test('garbage and invalid results give undefined', (t) => {
  t.is(parseRunnerOutput('nothing here'), undefined);
  t.is(parseRunnerOutput(`TRACE_OPERATOR_RESULT ${newNonce()} {"outcome":"Nope","maps":[]}\n`), undefined);
  t.is(parseTerminationMessage('not json'), undefined);
  t.is(parseTerminationMessage('{"nonce":"xyz","result":{}}'), undefined);
  t.throws(() => formatResultLine(sample, 'not a nonce'));
});

function bigResult(): TraceResult {
  const maps: MapResult[] = [];
  for (let m = 0; m < 40; m++) {
    maps.push(
      toMapResult({
        name: `@map${m}`,
        kind: 'keyed',
        entries: Array.from({ length: 200 }, (_, i) => ({
          key: `process-name-${i}-${'k'.repeat(300)}`,
          value: String(i * 1000),
        })),
      }),
    );
  }
  maps.push(
    toMapResult({
      name: '@lat',
      kind: 'histogram',
      histograms: Array.from({ length: 30 }, (_, k) => ({
        key: `dev${k}`,
        buckets: Array.from({ length: 100 }, (_, i) => ({ min: i * 10, max: i * 10 + 9, count: i + k })),
      })),
    }),
  );
  const built = toMapResults(maps.map((m) => ({ name: m.name, kind: 'scalar' as const, value: 'x' })));
  return {
    outcome: 'Completed',
    exitCode: 0,
    maps: [...maps.slice(0, RESULT_LIMITS.maps - 1), maps.at(-1) as MapResult],
    truncated: built.truncated,
    message: 'm'.repeat(1024),
  };
}

test('map results respect the result limits', (t) => {
  const result = bigResult();
  t.true(
    Value.Check(TraceResult, result),
    [...Value.Errors(TraceResult, result)].map((e) => `${e.path} ${e.message}`).join('\n'),
  );
  const keyed = result.maps[0];
  t.is(keyed?.entries?.length, RESULT_LIMITS.entriesPerMap);
  t.is(keyed?.entries?.[0]?.value, '199000'); // largest first
  t.true(keyed?.truncated);
  const hist = result.maps.at(-1);
  t.is(hist?.histograms?.length, RESULT_LIMITS.histogramsPerMap);
  t.true((hist?.histograms?.[0]?.buckets.length ?? 99) <= RESULT_LIMITS.bucketsPerHistogram);
  t.is(hist?.histograms?.[0]?.key, 'dev29'); // the largest histograms are kept
  t.is(
    toMapResults(Array.from({ length: 40 }, (_, i) => ({ name: `@m${i}`, kind: 'scalar' as const, value: '1' }))).maps
      .length,
    RESULT_LIMITS.maps,
  );
});

test('the termination message is trimmed below the limit and still parses', (t) => {
  const nonce = newNonce();
  const result = bigResult();
  const message = formatTerminationMessage(result, nonce);
  t.true(Buffer.byteLength(message) <= TERMINATION_MESSAGE_MAX_BYTES, `${Buffer.byteLength(message)} bytes`);
  const parsed = parseTerminationMessage(message);
  t.truthy(parsed);
  t.true(parsed?.result.truncated);
  t.is(parsed?.result.outcome, 'Completed');
  t.true((parsed?.result.maps.length ?? 0) > 0);
  // The full result still comes from the logs.
  t.deepEqual(parseRunnerOutput(`${formatResultLine(result, nonce)}\n`, message), result);
});

test('trimming leaves a small result alone and always fits', (t) => {
  t.is(trimResult(sample, 4096), sample);
  const tiny = trimResult(bigResult(), 300);
  t.true(Buffer.byteLength(JSON.stringify(tiny)) <= 1400);
  t.deepEqual(tiny.maps, []);
  t.true(tiny.truncated);
});

test("stripping the runner's result line keeps the program's look-alikes", (t) => {
  const nonce = newNonce();
  const fake = formatResultLine({ ...sample, outcome: 'Error' }, newNonce());
  const own = formatResultLine(sample, nonce);
  t.is(stripResultLine(`a\n${fake}\nb\n${own}\n`), `a\n${fake}\nb\n`);
  t.is(stripResultLine(`a\r\n${own}\r\n${fake}\r\n`, formatTerminationMessage(sample, nonce)), `a\r\n${fake}\r\n`);
  t.is(stripResultLine('no result\n'), 'no result\n');
});
