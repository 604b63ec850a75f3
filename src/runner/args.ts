// Flags of the runner, stop and run-local commands. The runner's flags are a
// contract with the TraceJob mapping (the trace container's command line):
//   trace-operator runner --program=/programs/program.bt --deadline=<s>
//     --grace-period=<s> --stop-file=/programs/stop
//     --termination-log=/dev/termination-log [--pod-uid=<uid> --container-id=<id>]
//     [--bpftrace=<path>] [--pid-file=<path>] [-- arg1 arg2 ...]

export class UsageError extends Error {
  override name = 'UsageError';
}

interface FlagSpec {
  /** Names including dashes, e.g. ["--program"] or ["-f", "--filename"]. */
  names: readonly string[];
  /** Whether the flag takes a value. */
  value: boolean;
}

interface ParsedFlags {
  values: Map<string, string>;
  booleans: Set<string>;
  rest: string[];
}

/** Parses `--name=value`, `--name value`, `-f value` and a final `-- rest...`. The key is the flag's first name. */
function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], command: string): ParsedFlags {
  const values = new Map<string, string>();
  const booleans = new Set<string>();
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) for (const name of spec.names) byName.set(name, spec);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') return { values, booleans, rest: argv.slice(i + 1) };
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(name);
    if (spec === undefined) {
      throw new UsageError(
        arg.startsWith('-')
          ? `unknown flag '${name}' for '${command}'`
          : `unexpected argument '${arg}' for '${command}' (program arguments go after '--')`,
      );
    }
    const key = spec.names[0] ?? name;
    if (!spec.value) {
      if (eq > 0) throw new UsageError(`flag '${name}' takes no value`);
      booleans.add(key);
      continue;
    }
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`flag '${name}' needs a value`);
    if (values.has(key)) throw new UsageError(`flag '${name}' given twice`);
    values.set(key, value);
  }
  return { values, booleans, rest: [] };
}

/** A duration in seconds: a non-negative number, fractions allowed (tests use them). */
export function parseSeconds(text: string, flag: string, { positive = false } = {}): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value) || (positive && value <= 0)) {
    throw new UsageError(
      `${flag} must be a ${positive ? 'positive' : 'non-negative'} number of seconds, got '${text}'`,
    );
  }
  return value;
}

export interface RunnerOptions {
  program: string;
  /** Seconds after start when the trace is stopped; undefined: no deadline. */
  deadline: number | undefined;
  gracePeriod: number;
  stopFile: string | undefined;
  terminationLog: string | undefined;
  podUid: string | undefined;
  containerId: string | undefined;
  bpftrace: string;
  pidFile: string;
  /** bpftrace positional parameters $1, $2, ... */
  args: string[];
  help: boolean;
}

export const DEFAULT_PROGRAM = '/programs/program.bt';
export const DEFAULT_PID_FILE = '/tmp/trace-operator-runner.pid';
export const DEFAULT_GRACE_PERIOD = 30;

export const RUNNER_USAGE = `usage: trace-operator runner [flags] [-- program arguments...]

Runs a bpftrace program, stops it at the deadline, on SIGINT/SIGTERM or when the
stop file appears (bpftrace then prints its maps), and ends stdout with a
TRACE_OPERATOR_RESULT line.

flags:
  --program=PATH          bpftrace program file (default ${DEFAULT_PROGRAM})
  --deadline=SECONDS      stop the trace this long after start (default: none)
  --grace-period=SECONDS  how long bpftrace may take to print its maps once stopped (default ${DEFAULT_GRACE_PERIOD})
  --stop-file=PATH        stop the trace when this file appears (polled every second)
  --termination-log=PATH  write the result's summary here (Kubernetes termination message)
  --pod-uid=UID           the target pod's UID (with --container-id)
  --container-id=ID       the target container, for $container_pid in the program
  --bpftrace=PATH         the bpftrace binary (default: bpftrace on PATH)
  --pid-file=PATH         where to write the runner's PID for 'stop' (default ${DEFAULT_PID_FILE})
`;

export function parseRunnerArgs(argv: readonly string[]): RunnerOptions {
  const specs: FlagSpec[] = [
    { names: ['--program'], value: true },
    { names: ['--deadline'], value: true },
    { names: ['--grace-period'], value: true },
    { names: ['--stop-file'], value: true },
    { names: ['--termination-log'], value: true },
    { names: ['--pod-uid'], value: true },
    { names: ['--container-id'], value: true },
    { names: ['--bpftrace'], value: true },
    { names: ['--pid-file'], value: true },
    { names: ['--help', '-h'], value: false },
  ];
  const { values, booleans, rest } = parseFlags(argv, specs, 'runner');
  const nonEmpty = (key: string): string | undefined => {
    const v = values.get(key);
    if (v !== undefined && v === '') throw new UsageError(`${key} must not be empty`);
    return v;
  };
  const deadline = values.get('--deadline');
  const grace = values.get('--grace-period');
  return {
    program: nonEmpty('--program') ?? DEFAULT_PROGRAM,
    deadline: deadline === undefined ? undefined : parseSeconds(deadline, '--deadline', { positive: true }),
    gracePeriod: grace === undefined ? DEFAULT_GRACE_PERIOD : parseSeconds(grace, '--grace-period'),
    stopFile: nonEmpty('--stop-file'),
    terminationLog: nonEmpty('--termination-log'),
    podUid: nonEmpty('--pod-uid'),
    containerId: nonEmpty('--container-id'),
    bpftrace: nonEmpty('--bpftrace') ?? 'bpftrace',
    pidFile: nonEmpty('--pid-file') ?? DEFAULT_PID_FILE,
    args: rest,
    help: booleans.has('--help'),
  };
}

export interface StopOptions {
  timeout: number;
  pidFile: string;
  /** Only ask the runner to stop (a repeat is harmless) and return at once. */
  request: boolean;
  help: boolean;
}

export const STOP_USAGE = `usage: trace-operator stop [--timeout=SECONDS] [--pid-file=PATH] [--request]

Sends SIGINT to the runner named in the pid file (the trace pod's preStop hook)
and waits until it exits or the timeout passes.

With --request (what the operator runs in the pod, through pods/exec, when
spec.stop is set) it sends the runner a stop request instead and returns at
once: bpftrace gets SIGINT and prints its maps, and a repeated request changes
nothing. Exits 0 when the request was delivered, 3 when no runner is running.

flags:
  --timeout=SECONDS  how long to wait for the runner to exit (default ${DEFAULT_GRACE_PERIOD})
  --pid-file=PATH    the runner's pid file (default ${DEFAULT_PID_FILE})
  --request          deliver a stop request and return without waiting
`;

export function parseStopArgs(argv: readonly string[]): StopOptions {
  const { values, booleans, rest } = parseFlags(
    argv,
    [
      { names: ['--timeout'], value: true },
      { names: ['--pid-file'], value: true },
      { names: ['--request'], value: false },
      { names: ['--help', '-h'], value: false },
    ],
    'stop',
  );
  if (rest.length > 0) throw new UsageError(`'stop' takes no arguments, got '${rest.join(' ')}'`);
  const timeout = values.get('--timeout');
  return {
    timeout: timeout === undefined ? DEFAULT_GRACE_PERIOD : parseSeconds(timeout, '--timeout'),
    pidFile: values.get('--pid-file') || DEFAULT_PID_FILE,
    request: booleans.has('--request'),
    help: booleans.has('--help'),
  };
}

export interface RunLocalOptions {
  file: string | undefined;
  program: string | undefined;
  deadline: number | undefined;
  result: 'line' | 'json';
  bpftrace: string;
  gracePeriod: number | undefined;
  args: string[];
  help: boolean;
}

export const RUN_LOCAL_USAGE = `usage: trace-operator run-local (-f FILE | -e PROGRAM) [flags] [-- program arguments...]

Runs a TraceJob's bpftrace program on this machine (as root), as the trace pod
would, and prints its output.

flags:
  -f, --filename=FILE     a TraceJob manifest (YAML or JSON)
  -e, --program=PROGRAM   a bpftrace program to run instead of a manifest
  --deadline=SECONDS      stop the trace after this long (overrides spec.deadline)
  --grace-period=SECONDS  overrides spec.deadlineGracePeriod
  --result=json           print the structured result as JSON instead of the result line
  --bpftrace=PATH         the bpftrace binary (default: bpftrace on PATH)
`;

export function parseRunLocalArgs(argv: readonly string[]): RunLocalOptions {
  const { values, booleans, rest } = parseFlags(
    argv,
    [
      { names: ['-f', '--filename'], value: true },
      { names: ['-e', '--program'], value: true },
      { names: ['--deadline'], value: true },
      { names: ['--grace-period'], value: true },
      { names: ['--result'], value: true },
      { names: ['--bpftrace'], value: true },
      { names: ['--help', '-h'], value: false },
    ],
    'run-local',
  );
  const help = booleans.has('--help');
  const file = values.get('-f');
  const program = values.get('-e');
  if (!help && (file === undefined) === (program === undefined))
    throw new UsageError('give either -f FILE (a TraceJob manifest) or -e PROGRAM');
  const result = values.get('--result') ?? 'line';
  if (result !== 'line' && result !== 'json')
    throw new UsageError(`--result must be 'json' (or 'line', the default), got '${result}'`);
  const deadline = values.get('--deadline');
  const grace = values.get('--grace-period');
  return {
    file,
    program,
    deadline: deadline === undefined ? undefined : parseSeconds(deadline, '--deadline', { positive: true }),
    gracePeriod: grace === undefined ? undefined : parseSeconds(grace, '--grace-period'),
    result,
    bpftrace: values.get('--bpftrace') || 'bpftrace',
    args: rest,
    help,
  };
}
