// $container_pid lookup against synthetic /proc trees, one per cgroup layout
// (test/fixtures/runner/proc/README). The same code runs against the real
// /proc in test/integration/runner-container-pid.test.ts.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  ContainerNotFoundError,
  cgroupMatches,
  findContainerPid,
  findContainerProcesses,
  normalizeContainerId,
  parentPidFromStat,
  substituteContainerPid,
  usesContainerPid,
} from '../../src/runner/container-pid.ts';

const ID = '3f1b9c0d2e4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4';
const POD_UID = '8d6a3c2e-1f4b-4e5a-9c7d-0b1e2f3a4b5c';
const procRoot = (layout: string) => fileURLToPath(new URL(`../fixtures/runner/proc/${layout}`, import.meta.url));

for (const layout of ['cgroupfs-v1', 'systemd-v2-containerd', 'systemd-v1-docker', 'systemd-v2-crio', 'cgroupns-v2']) {
  test(`finds the container's init process: ${layout}`, async (t) => {
    t.is(await findContainerPid({ containerId: ID, procRoot: procRoot(layout) }), 4242);
    t.is(
      await findContainerPid({ containerId: `containerd://${ID}`, podUid: POD_UID, procRoot: procRoot(layout) }),
      4242,
    );
    const processes = await findContainerProcesses({ containerId: ID, procRoot: procRoot(layout) });
    t.deepEqual(processes, [
      { pid: 4242, ppid: 812 },
      { pid: 4300, ppid: 4242 },
      { pid: 4301, ppid: 4242 },
    ]);
  });
}

test('a container that is not there is a clear error', async (t) => {
  const error = await t.throwsAsync(
    findContainerPid({ containerId: 'f'.repeat(64), procRoot: procRoot('systemd-v2-containerd') }),
    { instanceOf: ContainerNotFoundError },
  );
  t.regex(error?.message ?? '', /no process of container f{64} found .*hostPID/);
  await t.throwsAsync(findContainerPid({ containerId: 'bad id/..', procRoot: procRoot('cgroupfs-v1') }), {
    instanceOf: ContainerNotFoundError,
    message: /not valid/,
  });
});

test('the pod UID, when given, must match a pod named in the path', async (t) => {
  await t.throwsAsync(
    findContainerPid({
      containerId: ID,
      podUid: '00000000-0000-0000-0000-000000000000',
      procRoot: procRoot('systemd-v2-containerd'),
    }),
    {
      instanceOf: ContainerNotFoundError,
    },
  );
});

test('matching looks at whole path components, not substrings', (t) => {
  const short = ID.slice(0, 12);
  t.false(cgroupMatches(`0::/kubepods/pod${POD_UID}/${ID}`, short));
  t.false(cgroupMatches(`0::/kubepods/pod${POD_UID}/${ID}x`, ID));
  t.true(cgroupMatches(`0::/system.slice/docker-${ID}.scope`, ID));
  t.true(cgroupMatches(`0::/machine.slice/libpod-${ID}.scope`, ID));
  t.false(cgroupMatches(`0::/kubepods/pod${POD_UID}/${ID}/child`, ID)); // a sub-cgroup is not the container's own
  t.is(normalizeContainerId(`docker://${ID.toUpperCase()}`), ID);
});

test('parent PIDs are read past a command name with spaces and parentheses', (t) => {
  t.is(parentPidFromStat('4301 (nginx (cache)) S 4242 4301 4301 0'), 4242);
  t.is(parentPidFromStat('1 (a) b) R 0 1'), 0);
  t.is(parentPidFromStat('garbage'), undefined);
});

test('$container_pid is replaced only as a whole identifier', (t) => {
  const program =
    'tracepoint:syscalls:sys_enter_openat /pid == $container_pid/ { @[$container_pid_x] = count(); printf("%d", $container_pid); }';
  t.true(usesContainerPid(program));
  t.is(
    substituteContainerPid(program, 4242),
    'tracepoint:syscalls:sys_enter_openat /pid == 4242/ { @[$container_pid_x] = count(); printf("%d", 4242); }',
  );
  t.false(usesContainerPid('BEGIN { $container_pidx = 1; }'));
});
