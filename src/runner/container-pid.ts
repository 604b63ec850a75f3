// Finding a container's main process from /proc, for `$container_pid`.
//
// Every process's /proc/<pid>/cgroup names its cgroup in each hierarchy
// ("<id>:<controllers>:<path>"; cgroup v2 has the single line "0::<path>").
// Container runtimes put the container id in the last part of that path:
//   cgroupfs driver: /kubepods/burstable/pod<uid>/<id>
//   systemd driver:  /kubepods.slice/.../cri-containerd-<id>.scope,
//                    docker-<id>.scope, crio-<id>.scope, libpod-<id>.scope
// A path component matches when it is the id, optionally behind a
// "<runtime>-" prefix and before ".scope". (Under a cgroup namespace the
// path is relative, "/../../...", and still ends in the same component.)
// Of the processes in the container's cgroup, the init process is the one
// whose parent is outside it; the lowest such PID wins a tie.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseProcStat } from './proc-stat.ts';

export interface FindContainerPidOptions {
  /** The container id, as in a pod's status ("containerd://<id>" is accepted). */
  containerId: string;
  /** Where /proc is mounted; tests pass a synthetic tree. */
  procRoot?: string;
  /** The pod's UID; when given, a cgroup path that names a pod must name this one. */
  podUid?: string;
}

export class ContainerNotFoundError extends Error {
  override name = 'ContainerNotFoundError';
}

/** The bare container id: without a "<runtime>://" prefix, lower case. */
export function normalizeContainerId(id: string): string {
  return id
    .replace(/^[a-z0-9-]+:\/\//i, '')
    .trim()
    .toLowerCase();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A test of one cgroup path component for this container id. */
export function containerComponentMatcher(containerId: string): (component: string) => boolean {
  const id = escapeRegExp(normalizeContainerId(containerId));
  const pattern = new RegExp(`^(?:[a-z0-9]+(?:-[a-z0-9]+)*-)?${id}(?:\\.scope)?$`);
  return (component) => pattern.test(component);
}

/** True when one /proc/<pid>/cgroup content places the process in the container. */
export function cgroupMatches(cgroupFile: string, containerId: string, podUid?: string): boolean {
  const matches = containerComponentMatcher(containerId);
  const uidForms = podUid === undefined ? [] : [podUid.toLowerCase(), podUid.toLowerCase().replaceAll('-', '_')];
  for (const line of cgroupFile.split('\n')) {
    const parts = line.split(':');
    if (parts.length < 3) continue;
    const cgroupPath = parts.slice(2).join(':');
    const components = cgroupPath.split('/').filter((c) => c !== '');
    const last = components.at(-1);
    if (last === undefined || !matches(last)) continue;
    if (uidForms.length > 0) {
      const podComponent = components.find((c) => /pod[0-9a-f]{8}[-_]/i.test(c));
      if (podComponent !== undefined && !uidForms.some((u) => podComponent.toLowerCase().includes(`pod${u}`))) continue;
    }
    return true;
  }
  return false;
}

/** The parent PID from /proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold spaces and parens). */
export function parentPidFromStat(stat: string): number | undefined {
  const ppid = parseProcStat(stat)?.ppid;
  return ppid !== undefined && Number.isInteger(ppid) ? ppid : undefined;
}

async function readOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined; // the process ended while we looked, or the file is unreadable
  }
}

/** All PIDs whose cgroup is the container's, each with its parent PID. */
export async function findContainerProcesses(
  options: FindContainerPidOptions,
): Promise<{ pid: number; ppid: number | undefined }[]> {
  const procRoot = options.procRoot ?? '/proc';
  const names = await readdir(procRoot);
  const pids = names.filter((n) => /^\d+$/.test(n)).map(Number);
  const found: { pid: number; ppid: number | undefined }[] = [];
  const batch = 64;
  for (let i = 0; i < pids.length; i += batch) {
    const slice = pids.slice(i, i + batch);
    const cgroups = await Promise.all(slice.map((pid) => readOrUndefined(path.join(procRoot, String(pid), 'cgroup'))));
    for (const [j, cgroup] of cgroups.entries()) {
      const pid = slice[j];
      if (pid === undefined || cgroup === undefined || !cgroupMatches(cgroup, options.containerId, options.podUid))
        continue;
      const stat = await readOrUndefined(path.join(procRoot, String(pid), 'stat'));
      found.push({ pid, ppid: stat === undefined ? undefined : parentPidFromStat(stat) });
    }
  }
  return found.sort((a, b) => a.pid - b.pid);
}

/** The PID of the container's init process; throws ContainerNotFoundError when none is found. */
export async function findContainerPid(options: FindContainerPidOptions): Promise<number> {
  const id = normalizeContainerId(options.containerId);
  if (!/^[0-9a-z][0-9a-z_.-]*$/.test(id)) {
    throw new ContainerNotFoundError(
      `container id '${options.containerId}' is not valid: pass the id from the pod's status.containerStatuses[].containerID`,
    );
  }
  const procRoot = options.procRoot ?? '/proc';
  const processes = await findContainerProcesses(options);
  const inContainer = new Set(processes.map((p) => p.pid));
  const init = processes.find((p) => p.ppid === undefined || !inContainer.has(p.ppid)) ?? processes[0];
  if (init === undefined) {
    throw new ContainerNotFoundError(
      `no process of container ${id} found in ${procRoot}/*/cgroup: check that the container is running on this node and that the trace pod uses hostPID`,
    );
  }
  return init.pid;
}

/** Replaces `$container_pid` (not when it begins a longer identifier) with the PID. */
export function substituteContainerPid(program: string, pid: number): string {
  return program.replace(/\$container_pid(?![A-Za-z0-9_])/g, String(pid));
}

/** True when the program refers to `$container_pid`. */
export function usesContainerPid(program: string): boolean {
  return /\$container_pid(?![A-Za-z0-9_])/.test(program);
}
