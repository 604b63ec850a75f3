// Structured JSON logs: one object per line, levels, bound fields, errors.
import test from 'ava';
import { FakeClock } from '../support/fake-clock.ts';
import { createLogger, nopLogger, parseLogLevel } from '../../src/runtime/logger.ts';

function capture(): { lines: () => Record<string, unknown>[]; stream: { write(chunk: string): boolean } } {
  let text = '';
  return {
    stream: {
      write(chunk: string) {
        text += chunk;
        return true;
      },
    },
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('each call writes one JSON line with ts, level, msg first, then fields', (t) => {
  const out = capture();
  const log = createLogger({ stream: out.stream, clock: new FakeClock(Date.UTC(2024, 0, 2, 3, 4, 5)) });
  log.info('reconciled', { key: 'ns/a', n: 3 });
  const [line] = out.lines();
  t.deepEqual(line, { ts: '2024-01-02T03:04:05.000Z', level: 'info', msg: 'reconciled', key: 'ns/a', n: 3 });
  t.deepEqual(Object.keys(line ?? {}).slice(0, 3), ['ts', 'level', 'msg']);
});

test('levels below the configured one are dropped', (t) => {
  const out = capture();
  const log = createLogger({ stream: out.stream, level: 'warn' });
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.error('e');
  t.deepEqual(
    out.lines().map((l) => l['level']),
    ['warn', 'error'],
  );
  t.false(log.enabled('info'));
  t.true(log.enabled('error'));
});

test('child loggers bind fields; call fields override bound ones but never ts/level/msg', (t) => {
  const out = capture();
  const log = createLogger({ stream: out.stream, fields: { app: 'trace-operator' } });
  const child = log.child({ controller: 'tracejob' }).child({ reconcileID: 'r1', key: 'ns/a' });
  child.info('hello', { key: 'ns/b', msg: 'ignored', level: 'ignored', skipped: undefined });
  const [line] = out.lines();
  t.deepEqual(line, {
    ts: line?.['ts'],
    level: 'info',
    msg: 'hello',
    app: 'trace-operator',
    controller: 'tracejob',
    reconcileID: 'r1',
    key: 'ns/b',
  });
});

test('errors are written with name, message, stack, own props and causes', (t) => {
  const out = capture();
  const log = createLogger({ stream: out.stream });
  const cause = new Error('socket hang up');
  const error = Object.assign(new Error('create failed', { cause }), { status: 409, reason: 'AlreadyExists' });
  log.error('boom', { err: error });
  const err = out.lines()[0]?.['err'] as Record<string, unknown>;
  t.is(err['message'], 'create failed');
  t.is(err['name'], 'Error');
  t.is(err['status'], 409);
  t.is(err['reason'], 'AlreadyExists');
  t.regex(String(err['stack']), /create failed/);
  t.is((err['cause'] as Record<string, unknown>)['message'], 'socket hang up');
});

test('unserializable fields do not lose the line', (t) => {
  const out = capture();
  const log = createLogger({ stream: out.stream });
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  log.info('still here', { cyclic, big: 10n, fine: 'yes' });
  t.deepEqual(out.lines()[0], {
    ts: out.lines()[0]?.['ts'],
    level: 'info',
    msg: 'still here',
    cyclic: '[unserializable]',
    big: '10',
    fine: 'yes',
  });
});

test('parseLogLevel accepts the four levels and names them on error', (t) => {
  t.is(parseLogLevel(' DEBUG '), 'debug');
  t.throws(() => parseLogLevel('trace'), { message: /debug, info, warn, error/ });
  nopLogger.child({ a: 1 }).error('nothing');
  t.false(nopLogger.enabled('error'));
});
