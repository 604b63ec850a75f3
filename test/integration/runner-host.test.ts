// The runner's dealings with the host, for real: $container_pid for a process
// the test puts in its own cgroup named like a containerd container, and
// mounting tracefs/debugfs where they are missing.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { findContainerPid } from '../../src/runner/container-pid.ts';
import { runnerMain } from '../../src/runner/main.ts';
import { parseRunnerOutput } from '../../src/runner/result-parse.ts';
import { ensureTracingFs } from '../../src/runner/tracefs.ts';
import { runInProcess, tempDir, writeProgram } from '../fixtures/runner/harness.ts';

const run = promisify(execFile);

async function cgroup2Mount(): Promise<string> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const line = mounts.split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  const mountPoint = line?.split(' ')[1];
  if (mountPoint === undefined)
    throw new Error('no cgroup2 hierarchy mounted: mount -t cgroup2 none /sys/fs/cgroup/unified');
  return mountPoint;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A shell moved into a cgroup named like a containerd container of a pod, forking children there. */
async function fakeContainer(t: { teardown: (fn: () => Promise<void>) => void }) {
  const containerId = randomBytes(32).toString('hex');
  const podUid = randomUUID();
  const pod = path.join(await cgroup2Mount(), `kubepods-besteffort-pod${podUid.replaceAll('-', '_')}.slice`);
  const scope = path.join(pod, `cri-containerd-${containerId}.scope`);
  await mkdir(scope, { recursive: true });
  // The shell joins the cgroup itself, then keeps forking `sleep` children there and waiting for them.
  const shell = spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && while :; do sleep 0.2; done', 'sh', scope], {
    stdio: 'ignore',
    detached: true,
  });
  t.teardown(async () => {
    try {
      process.kill(-(shell.pid ?? 0), 'SIGKILL');
    } catch {
      // gone
    }
    for (let i = 0; i < 50 && (await readFile(path.join(scope, 'cgroup.procs'), 'utf8')).trim() !== ''; i++)
      await sleep(100);
    await rmdir(scope);
    await rmdir(pod);
  });
  for (
    let i = 0;
    i < 50 && !(await readFile(path.join(scope, 'cgroup.procs'), 'utf8')).includes(String(shell.pid));
    i++
  )
    await sleep(100);
  return { containerId, podUid, pid: shell.pid ?? 0 };
}

test.serial('finds the init process of a container-like cgroup in the real /proc', async (t) => {
  const container = await fakeContainer(t);
  await sleep(300); // let the shell fork a child or two into the cgroup
  t.is(await findContainerPid({ containerId: container.containerId }), container.pid);
  t.is(
    await findContainerPid({ containerId: `containerd://${container.containerId}`, podUid: container.podUid }),
    container.pid,
  );
  await t.throwsAsync(findContainerPid({ containerId: randomBytes(32).toString('hex') }), {
    message: /no process of container/,
  });
});

test.serial('the runner substitutes $container_pid and traces that process', async (t) => {
  const container = await fakeContainer(t);
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const program = await writeProgram(
    dir,
    'BEGIN { printf("container pid %d\\n", $container_pid); }\ntracepoint:syscalls:sys_enter_wait4 /pid == $container_pid/ { @waits = count(); }\n',
  );
  const runner = runInProcess(runnerMain, [
    `--program=${program}`,
    '--deadline=2',
    `--pod-uid=${container.podUid}`,
    `--container-id=${container.containerId}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await runner.done, 0, runner.stderr());
  t.true(runner.stdout().includes(`container pid ${container.pid}\n`), runner.stdout());
  t.regex(runner.stderr(), new RegExp(`\\$container_pid is ${container.pid}`));
  const waits = parseRunnerOutput(runner.stdout())?.maps.find((m) => m.name === '@waits');
  t.true(Number(waits?.value) >= 1, runner.stdout());
});

test('a program with $container_pid but no target container is a clear error', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  const runner = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, 'BEGIN { printf("%d", $container_pid); exit(); }')}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await runner.done, 1);
  t.regex(
    parseRunnerOutput(runner.stdout())?.message ?? '',
    /uses \$container_pid but the trace has no target container/,
  );
  const missing = runInProcess(runnerMain, [
    `--program=${await writeProgram(dir, 'BEGIN { printf("%d", $container_pid); exit(); }')}`,
    `--container-id=${'e'.repeat(64)}`,
    `--pid-file=${path.join(dir, 'runner.pid')}`,
  ]);
  t.is(await missing.done, 1);
  t.regex(parseRunnerOutput(missing.stdout())?.message ?? '', /no process of container e{64} found/);
});

test.serial('tracefs and debugfs are mounted where they are missing', async (t) => {
  const { dir, cleanup } = await tempDir();
  const tracing = path.join(dir, 'kernel', 'tracing');
  const debug = path.join(dir, 'kernel', 'debug');
  await mkdir(tracing, { recursive: true });
  await mkdir(debug, { recursive: true });
  t.teardown(async () => {
    await run('umount', [tracing]).catch(() => undefined);
    await run('umount', ['-l', debug]).catch(() => undefined);
    await cleanup();
  });
  const report = await ensureTracingFs({ sysRoot: dir });
  t.deepEqual(report.warnings, []);
  t.deepEqual(report.mounted, [tracing, debug]);
  t.is(report.tracingDir, tracing);
  t.true((await stat(path.join(tracing, 'events', 'block'))).isDirectory());
  // Mounted already: nothing more to do.
  t.deepEqual((await ensureTracingFs({ sysRoot: dir })).mounted, []);
});

test('a failed mount is a warning, not an error', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  await mkdir(path.join(dir, 'kernel', 'tracing'), { recursive: true });
  const report = await ensureTracingFs({
    sysRoot: dir,
    mount: async () => {
      throw new Error('mount: permission denied');
    },
  });
  t.is(report.tracingDir, undefined);
  t.regex(report.warnings.join('\n'), /could not mount tracefs .*permission denied/);
  t.regex(report.warnings.join('\n'), /tracepoint probes will not be found/);
});
