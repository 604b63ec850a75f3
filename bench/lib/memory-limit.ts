// The manager runs in the bench as it runs in its pod: inside a memory cgroup
// with the shipped `resources.limits.memory` (config/manager/manager.yaml).
// Node sizes V8's heap from that limit (process.constrainedMemory()): under
// 1 GiB the heap limit here is 560 MiB and the young generation small, where
// an unconstrained process on this 24 GiB machine gets 4 GiB and grows its
// heap far past what the pod would. Without a writable memory cgroup (not
// root, or no cgroupfs) the manager runs unconstrained and the bench says so.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MANAGER_MANIFEST = path.join(repoRoot, 'config', 'manager', 'manager.yaml');
const CGROUP_ROOT = '/sys/fs/cgroup';

const UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9, '': 1 };

/**
 * Bytes of a Kubernetes quantity such as "1Gi" or "512M" (the binary and
 * decimal suffixes a memory limit uses). Hand-written because client-node's
 * quantityToScalar is not exported from the package's entry point.
 */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|)$/.exec(quantity.trim());
  if (match === null) throw new Error(`not a memory quantity this bench reads: ${quantity}`);
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? ''] ?? 1));
}

/** The manager container's memory limit in config/manager/manager.yaml, e.g. "1Gi". */
export function shippedMemoryLimit(): string {
  for (const doc of parseAllDocuments(readFileSync(MANAGER_MANIFEST, 'utf8'))) {
    const object = doc.toJS() as {
      kind?: string;
      spec?: {
        template?: { spec?: { containers?: { name?: string; resources?: { limits?: { memory?: string } } }[] } };
      };
    } | null;
    if (object?.kind !== 'Deployment') continue;
    const limit = object.spec?.template?.spec?.containers?.find((c) => c.name === 'manager')?.resources?.limits?.memory;
    if (limit !== undefined) return limit;
  }
  throw new Error(`${MANAGER_MANIFEST} has no Deployment whose manager container sets resources.limits.memory`);
}

export interface MemoryCgroup {
  /** Writing a pid here moves that process into the cgroup. */
  procsFile: string;
  limit: string;
  remove(): void;
}

/**
 * A fresh memory cgroup `<prefix><name>` limited to `limit`, below this
 * process's own (cgroup v2 or v1), or why there is none. Empty ones an
 * interrupted run left behind with the same prefix are removed first.
 */
export function createMemoryCgroup(
  prefix: string,
  name: string,
  limit: string,
): MemoryCgroup | { unavailable: string } {
  const bytes = quantityBytes(limit);
  const v2 = existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'));
  const own = ownCgroupPath(v2);
  const parent = v2 ? path.join(CGROUP_ROOT, own) : path.join(CGROUP_ROOT, 'memory', own);
  const dir = path.join(parent, `${prefix}${name}`);
  try {
    for (const entry of readdirSync(parent)) if (entry.startsWith(prefix)) removeEmpty(path.join(parent, entry));
    mkdirSync(dir);
    writeFileSync(path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(bytes));
  } catch (error) {
    return { unavailable: `no memory cgroup at ${dir}: ${(error as Error).message}` };
  }
  return {
    procsFile: path.join(dir, 'cgroup.procs'),
    limit,
    remove: () => removeEmpty(dir),
  };
}

function removeEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still holds a process: the next run removes it
  }
}

function ownCgroupPath(v2: boolean): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, cgroupPath] = line.split(':');
    if (cgroupPath === undefined) continue;
    if (v2 ? controllers === '' : controllers?.split(',').includes('memory') === true) return cgroupPath;
  }
  return '/';
}

/** The command and arguments that run `command args` inside the cgroup (a shell moves itself in, then execs). */
export function inCgroup(cgroup: MemoryCgroup, command: string, args: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroup.procsFile, command, ...args]];
}
