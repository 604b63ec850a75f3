// The trace-operator launcher script on its own: when it starts bpftrace
// before Node, with which command line, and what it hands over. A stand-in
// `node` on PATH records what it received (the compiled runner's side is in
// runner-build.test.ts, with the real node and bpftrace). As root: the
// launcher mounts tracefs where it is missing, as a trace pod needs.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { REPO, tempDir } from '../fixtures/runner/harness.ts';

const run = promisify(execFile);
const LAUNCHER = path.join(REPO, 'src', 'runner', 'bin', 'trace-operator');

const FAKE_NODE = `#!/bin/sh
printf '%s\\n' "$@" > "$RECORD/args"
printf '%s' "\${TRACE_OPERATOR_PRESTARTED_BPFTRACE-unset}" > "$RECORD/handed-over"
if [ -e /proc/$$/fd/5 ]; then cat <&5 > "$RECORD/stdout"; cat <&6 > "$RECORD/stderr"; fi
`;
const FAKE_BPFTRACE = `#!/bin/sh
printf '%s|' "$(basename "$0")" "$@"
echo "fake bpftrace's stderr" >&2
`;

interface Launched {
  args: string[];
  handedOver: string;
  /** What the prestarted bpftrace wrote, read from fds 5 and 6; undefined when nothing was started. */
  stdout: string | undefined;
  stderr: string | undefined;
}

async function launch(
  t: { teardown: (fn: () => Promise<void>) => void },
  argv: (dir: string) => string[],
  program: string | undefined,
  env: Record<string, string> = {},
  fakes: { node?: string; bpftrace?: string } = {},
): Promise<Launched & { dir: string }> {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  await mkdir(path.join(dir, 'bin'));
  await writeFile(path.join(dir, 'bin', 'node'), fakes.node ?? FAKE_NODE);
  await writeFile(path.join(dir, 'bin', 'bpftrace'), fakes.bpftrace ?? FAKE_BPFTRACE);
  await writeFile(path.join(dir, 'bpftrace-0.17'), FAKE_BPFTRACE);
  for (const file of ['bin/node', 'bin/bpftrace', 'bpftrace-0.17']) await chmod(path.join(dir, file), 0o755);
  if (program !== undefined) await writeFile(path.join(dir, 'program.bt'), program);
  // Its exit code is the stand-in node's; what matters is what that recorded.
  await run(LAUNCHER, argv(dir), {
    env: {
      ...process.env,
      ...env,
      PATH: `${path.join(dir, 'bin')}:${process.env['PATH'] ?? ''}`,
      RECORD: dir,
      TMPDIR: dir,
      TRACE_OPERATOR_HOME: '/opt/trace-operator',
    },
  }).catch(() => undefined);
  const optional = (file: string): Promise<string | undefined> =>
    readFile(path.join(dir, file), 'utf8').catch(() => undefined);
  return {
    dir,
    args: (await readFile(path.join(dir, 'args'), 'utf8')).trimEnd().split('\n'),
    handedOver: await readFile(path.join(dir, 'handed-over'), 'utf8'),
    stdout: await optional('stdout'),
    stderr: await optional('stderr'),
  };
}

const PROGRAM = 'interval:s:1 { exit(); }\n';

/** The launcher's FIFOs still in `dir` (its TMPDIR). */
function fifosLeft(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('trace-operator-launch-'));
}

test("for the runner, bpftrace starts before Node with the runner's command line, and Node gets its output and PID", async (t) => {
  const launched = await launch(
    t,
    (dir) => ['runner', `--program=${dir}/program.bt`, '--deadline=5', '--', 'a', 'b c'],
    PROGRAM,
  );
  t.deepEqual(launched.args, [
    '/opt/trace-operator/dist/cli.js',
    'runner',
    `--program=${launched.dir}/program.bt`,
    '--deadline=5',
    '--',
    'a',
    'b c',
  ]);
  t.regex(launched.handedOver, /^\d+:5:6$/);
  t.is(launched.stdout, `bpftrace|-B|line|-f|json|--|${launched.dir}/program.bt|a|b c|`);
  t.is(launched.stderr, "fake bpftrace's stderr\n");
  t.deepEqual(fifosLeft(launched.dir), [], 'the FIFOs are unlinked once opened');
});

test('--bpftrace=PATH names the binary the launcher starts', async (t) => {
  const launched = await launch(
    t,
    (dir) => ['runner', `--program=${dir}/program.bt`, `--bpftrace=${dir}/bpftrace-0.17`],
    PROGRAM,
  );
  t.regex(launched.handedOver, /^\d+:5:6$/);
  t.is(launched.stdout, `bpftrace-0.17|-B|line|-f|json|--|${launched.dir}/program.bt|`);
});

const leftToTheRunner: [string, (dir: string) => string[], string | undefined][] = [
  [
    'the program uses $container_pid',
    (dir) => ['runner', `--program=${dir}/program.bt`],
    'tracepoint:syscalls:sys_enter_openat /pid == $container_pid/ { exit(); }\n',
  ],
  ['a flag is given as two words', (dir) => ['runner', '--program', `${dir}/program.bt`], PROGRAM],
  ['--help', () => ['runner', '--help'], PROGRAM],
  ['an empty --program', () => ['runner', '--program='], PROGRAM],
  ['the program cannot be read', (dir) => ['runner', `--program=${dir}/missing.bt`], undefined],
  ['the command is not runner', (dir) => ['run-local', '-f', `${dir}/program.bt`], PROGRAM],
];
for (const [why, argv, program] of leftToTheRunner) {
  test(`nothing is started before Node when ${why}`, async (t) => {
    const launched = await launch(t, argv, program);
    t.is(launched.handedOver, 'unset');
    t.is(launched.stdout, undefined, 'no descriptors handed over');
    t.deepEqual(launched.args.slice(1), argv(launched.dir));
  });
}

test("a hand-over in the caller's environment never reaches the runner", async (t) => {
  const launched = await launch(t, () => ['runner', '--help'], PROGRAM, {
    TRACE_OPERATOR_PRESTARTED_BPFTRACE: '1:5:6',
  });
  t.is(launched.handedOver, 'unset');
});

test('$container_pid inside a longer name is not $container_pid', async (t) => {
  const launched = await launch(
    t,
    (dir) => ['runner', `--program=${dir}/program.bt`],
    'BEGIN { $container_pidx = 1; exit(); }\n',
  );
  t.regex(launched.handedOver, /^\d+:5:6$/);
});

test('a bpftrace that Node never takes over does not outlive the runner process', async (t) => {
  const launched = await launch(
    t,
    (dir) => ['runner', `--program=${dir}/program.bt`],
    PROGRAM,
    {},
    {
      // Node records what it got and then fails at once, as a broken install would.
      node: `${FAKE_NODE.replace(/\nif .*\n$/, '\n')}echo $$ > "$RECORD/node-pid"\nwhile [ ! -e "$RECORD/bpftrace-pid" ]; do sleep 0.01; done\nexit 1\n`,
      // Written whole, then renamed: Node exits as soon as the file appears, and the
      // launcher may kill this shell before an unfinished write lands.
      bpftrace:
        '#!/bin/sh\necho $$ > "$RECORD/bpftrace-pid.tmp"\nmv "$RECORD/bpftrace-pid.tmp" "$RECORD/bpftrace-pid"\nexec sleep 60\n',
    },
  );
  const pid = Number(await readFile(path.join(launched.dir, 'bpftrace-pid'), 'utf8'));
  t.regex(launched.handedOver, new RegExp(`^${pid}:5:6$`));
  for (let waited = 0; existsSync(`/proc/${pid}`) && waited < 10_000; waited += 20)
    await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(existsSync(`/proc/${pid}`), 'killed when the runner process exited');
});

test('a bpftrace started for a program that uses $container_pid is stopped before Node starts', async (t) => {
  // The launcher starts bpftrace first and reads the program while it compiles; such a
  // program needs the runner to fill the PID in, so that bpftrace must be gone.
  const launched = await launch(
    t,
    (dir) => ['runner', `--program=${dir}/program.bt`],
    'tracepoint:syscalls:sys_enter_openat /pid == $container_pid/ { exit(); }\n',
    {},
    {
      node: `${FAKE_NODE.replace(/\nif .*\n$/, '\n')}pid=$(cat "$RECORD/bpftrace-pid" 2>/dev/null); [ -n "$pid" ] && [ -e /proc/$pid ] && echo alive > "$RECORD/bpftrace-alive"\nexit 0\n`,
      bpftrace:
        '#!/bin/sh\necho $$ > "$RECORD/bpftrace-pid.tmp"\nmv "$RECORD/bpftrace-pid.tmp" "$RECORD/bpftrace-pid"\nexec sleep 60\n',
    },
  );
  t.is(launched.handedOver, 'unset');
  t.is(launched.stdout, undefined, 'no descriptors handed over');
  t.false(existsSync(path.join(launched.dir, 'bpftrace-alive')), 'no bpftrace of the launcher runs while Node does');
  t.deepEqual(fifosLeft(launched.dir), []);
});
