import test from 'ava';
import {
  DEFAULT_PID_FILE,
  UsageError,
  parseRunLocalArgs,
  parseRunnerArgs,
  parseStopArgs,
} from '../../src/runner/args.ts';

test('the container command written by the mapping parses', (t) => {
  const options = parseRunnerArgs([
    '--program=/programs/program.bt',
    '--deadline=3600',
    '--grace-period=30',
    '--stop-file=/programs/stop',
    '--termination-log=/dev/termination-log',
    '--pod-uid=8d6a3c2e-1f4b-4e5a-9c7d-0b1e2f3a4b5c',
    '--container-id=abc123',
    '--',
    'arg1',
    '--not-a-flag',
    '-5',
  ]);
  t.deepEqual(options, {
    program: '/programs/program.bt',
    deadline: 3600,
    gracePeriod: 30,
    stopFile: '/programs/stop',
    terminationLog: '/dev/termination-log',
    podUid: '8d6a3c2e-1f4b-4e5a-9c7d-0b1e2f3a4b5c',
    containerId: 'abc123',
    bpftrace: 'bpftrace',
    pidFile: DEFAULT_PID_FILE,
    args: ['arg1', '--not-a-flag', '-5'],
    help: false,
  });
});

test('runner defaults and the space-separated form', (t) => {
  const options = parseRunnerArgs(['--bpftrace', '/usr/bin/bpftrace', '--pid-file', '/run/r.pid', '--deadline', '0.5']);
  t.is(options.program, '/programs/program.bt');
  t.is(options.deadline, 0.5);
  t.is(options.gracePeriod, 30);
  t.is(options.bpftrace, '/usr/bin/bpftrace');
  t.is(options.pidFile, '/run/r.pid');
  t.is(options.stopFile, undefined);
  t.deepEqual(options.args, []);
  t.true(parseRunnerArgs(['--help']).help);
});

test('runner flag errors say what is wrong', (t) => {
  const cases: [string[], RegExp][] = [
    [['--deadline=soon'], /--deadline must be a positive number of seconds, got 'soon'/],
    [['--deadline=0'], /positive/],
    [['--grace-period=-1'], /--grace-period must be a non-negative/],
    [['--frobnicate'], /unknown flag '--frobnicate' for 'runner'/],
    [['stray'], /unexpected argument 'stray'.*after '--'/],
    [['--program'], /needs a value/],
    [['--program='], /must not be empty/],
    [['--deadline=1', '--deadline=2'], /given twice/],
    [['--help=yes'], /takes no value/],
  ];
  for (const [argv, message] of cases)
    t.throws(() => parseRunnerArgs(argv), { instanceOf: UsageError, message }, argv.join(' '));
});

test('stop flags', (t) => {
  t.deepEqual(parseStopArgs(['--timeout=30']), {
    timeout: 30,
    pidFile: DEFAULT_PID_FILE,
    request: false,
    help: false,
  });
  t.deepEqual(parseStopArgs(['--timeout', '5', '--pid-file=/tmp/x.pid', '--request']), {
    timeout: 5,
    pidFile: '/tmp/x.pid',
    request: true,
    help: false,
  });
  t.is(parseStopArgs([]).timeout, 30);
  t.throws(() => parseStopArgs(['1234']), { instanceOf: UsageError });
  t.throws(() => parseStopArgs(['--', '1234']), { instanceOf: UsageError, message: /takes no arguments/ });
});

test('run-local flags', (t) => {
  t.deepEqual(parseRunLocalArgs(['-f', 'job.yaml', '--deadline', '5', '--result', 'json']), {
    file: 'job.yaml',
    program: undefined,
    deadline: 5,
    gracePeriod: undefined,
    result: 'json',
    bpftrace: 'bpftrace',
    args: [],
    help: false,
  });
  const e = parseRunLocalArgs(['-e', 'BEGIN { exit(); }', '--', 'x']);
  t.is(e.program, 'BEGIN { exit(); }');
  t.deepEqual(e.args, ['x']);
  t.is(e.result, 'line');
  t.is(parseRunLocalArgs(['--filename=job.yaml']).file, 'job.yaml');
  t.throws(() => parseRunLocalArgs([]), { instanceOf: UsageError, message: /either -f FILE/ });
  t.throws(() => parseRunLocalArgs(['-f', 'a', '-e', 'b']), { instanceOf: UsageError, message: /either -f FILE/ });
  t.throws(() => parseRunLocalArgs(['-f', 'a', '--result=yaml']), {
    instanceOf: UsageError,
    message: /--result must be 'json'/,
  });
  t.true(parseRunLocalArgs(['--help']).help);
});
