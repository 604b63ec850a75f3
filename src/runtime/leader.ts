// Leader election on a coordination.k8s.io/v1 Lease, with client-go's
// algorithm and controller-runtime's defaults, so only one replica writes.
//
// API
//   interface Lease (the fields used), interface LeaseClient (get/create/replace; KubeClient fits)
//   type LeaderRunResult = 'lost' | 'cancelled' | 'finished'
//   function defaultIdentity(): string                     `${hostname}_${uuid}`
//   function microTime(ms): string                         RFC 3339 with microseconds, as Lease times are
//   class LeaderElector
//     new LeaderElector({ client, namespace, name, identity?, leaseDurationMs = 15_000,
//                         renewDeadlineMs = 10_000, retryPeriodMs = 2_000, releaseOnCancel = false,
//                         onStartedLeading, onStoppedLeading?, onNewLeader?, clock?, logger?, metrics?, random? })
//     run(signal): Promise<LeaderRunResult>
//     isLeader(): boolean
//     readonly identity: string
//     leaseTransitions(): number | undefined            as last observed
//
// Behaviour (client-go leaderelection)
// - Acquire: every retryPeriod (jittered up to +120%), GET the Lease; create
//   it if absent; take it if it is free (no holder) or its holder has not
//   renewed it for leaseDurationSeconds as timed by OUR clock since we last
//   saw the record change (no trust in other machines' clocks); the write is
//   a PUT carrying the observed resourceVersion, so two candidates racing
//   for the same Lease cannot both win (one gets 409 Conflict).
// - Once leading, `onStartedLeading(leaderSignal)` runs while we renew every
//   retryPeriod. If no renew has succeeded for renewDeadline, leadership is
//   lost: leaderSignal aborts at once (so all writers stop) and run()
//   resolves 'lost' after onStartedLeading settles. controller-runtime exits
//   the process at this point; the caller decides.
// - When `signal` aborts: leaderSignal aborts, onStartedLeading is awaited,
//   and with releaseOnCancel the Lease is handed back (holder cleared,
//   leaseDurationSeconds 1) so a successor takes over at once; 'cancelled'.
// - If onStartedLeading returns on its own the election ends the same way
//   ('finished'); if it throws, run() rethrows after releasing.
// - leader_election_master_status{name} follows isLeader().
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { isAlreadyExists, isConflict, isNotFound } from './api-error.ts';
import { realClock, type Clock } from './clock.ts';
import { nopLogger, type Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';
import type { KubeObject } from './objects.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

/** The three calls leader election makes (KubeClient satisfies this). */
export interface LeaseClient {
  get<T>(path: string, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
  create<T>(collectionPath: string, body: T, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
  replace<T>(path: string, body: T, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
}

export type LeaderRunResult = 'lost' | 'cancelled' | 'finished';

export interface LeaderElectorOptions {
  client: LeaseClient;
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  releaseOnCancel?: boolean;
  /** Runs while we lead; `signal` aborts when leadership ends for any reason. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  logger?: Logger;
  metrics?: RuntimeMetrics;
  random?: () => number;
}

const JITTER_FACTOR = 1.2;

export function defaultIdentity(): string {
  return `${os.hostname()}_${randomUUID()}`;
}

/** metav1.MicroTime's wire format: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Lease-based leader election for one lock. */
export class LeaderElector {
  readonly identity: string;
  readonly #client: LeaseClient;
  readonly #namespace: string;
  readonly #name: string;
  readonly #path: string;
  readonly #collection: string;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #releaseOnCancel: boolean;
  readonly #onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  readonly #onStoppedLeading: (() => void) | undefined;
  readonly #onNewLeader: ((identity: string) => void) | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #metrics: RuntimeMetrics | undefined;
  readonly #random: () => number;
  #leading = false;
  /** The record as last read or written, its resourceVersion, and when (our clock) it last changed. */
  #observed: { spec: LeaseSpec; rv: string | undefined; at: number } | undefined;
  #lastHolder: string | undefined;

  constructor(options: LeaderElectorOptions) {
    this.identity = options.identity ?? defaultIdentity();
    this.#client = options.client;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.#collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`;
    this.#path = `${this.#collection}/${encodeURIComponent(options.name)}`;
    this.#leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!(this.#leaseDurationMs > this.#renewDeadlineMs))
      throw new RangeError('leader election: leaseDuration must be greater than renewDeadline');
    if (!(this.#renewDeadlineMs > JITTER_FACTOR * this.#retryPeriodMs))
      throw new RangeError(`leader election: renewDeadline must be greater than ${JITTER_FACTOR} × retryPeriod`);
    if (this.#retryPeriodMs < 1) throw new RangeError('leader election: retryPeriod must be positive');
    this.#releaseOnCancel = options.releaseOnCancel ?? false;
    this.#onStartedLeading = options.onStartedLeading;
    this.#onStoppedLeading = options.onStoppedLeading;
    this.#onNewLeader = options.onNewLeader;
    this.#clock = options.clock ?? realClock;
    this.#log = (options.logger ?? nopLogger).child({
      lease: `${options.namespace}/${options.name}`,
      identity: this.identity,
    });
    this.#metrics = options.metrics;
    this.#random = options.random ?? Math.random;
  }

  isLeader(): boolean {
    return this.#leading;
  }

  leaseTransitions(): number | undefined {
    return this.#observed?.spec.leaseTransitions;
  }

  async run(signal: AbortSignal): Promise<LeaderRunResult> {
    this.#metrics?.leader(this.#name, false);
    if (!(await this.#acquire(signal))) return 'cancelled';
    this.#setLeading(true);
    this.#log.info('became leader');

    const leaderAbort = new AbortController();
    const onOuterAbort = (): void => leaderAbort.abort(signal.reason);
    signal.addEventListener('abort', onOuterAbort, { once: true });
    let workError: unknown;
    let workFailed = false;
    const work = (async () => this.#onStartedLeading(leaderAbort.signal))().then(
      () => {},
      (error: unknown) => {
        workFailed = true;
        workError = error;
      },
    );
    const workSettled = work.then(() => leaderAbort.abort(new Error('leader work finished')));
    let result: LeaderRunResult;
    try {
      const renewed = await this.#renewLoop(leaderAbort.signal);
      result = renewed === 'lost' ? 'lost' : signal.aborted ? 'cancelled' : 'finished';
      if (result === 'lost') {
        this.#setLeading(false);
        this.#log.warn('leadership lost: could not renew the lease in time', {
          renewDeadlineMs: this.#renewDeadlineMs,
        });
      }
      leaderAbort.abort(new Error(`leadership ${result}`));
      await workSettled;
      if (result !== 'lost') {
        if (this.#releaseOnCancel) await this.#release();
        this.#setLeading(false);
      }
    } finally {
      signal.removeEventListener('abort', onOuterAbort);
    }
    this.#onStoppedLeading?.();
    this.#log.info('stopped leading', { result });
    if (workFailed) throw workError;
    return result;
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#metrics?.leader(this.#name, leading);
  }

  async #acquire(signal: AbortSignal): Promise<boolean> {
    this.#log.info('attempting to acquire the leader lease');
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(signal)) return true;
      const wait = this.#retryPeriodMs * (1 + this.#random() * JITTER_FACTOR);
      try {
        await this.#clock.sleep(wait, signal);
      } catch {
        return false;
      }
    }
    return false;
  }

  /** Renews every retryPeriod until the signal aborts ('stopped') or renewDeadline passes without success ('lost'). */
  async #renewLoop(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    let lastRenew = this.#clock.now();
    while (!signal.aborted) {
      try {
        await this.#clock.sleep(this.#retryPeriodMs, signal);
      } catch {
        return 'stopped';
      }
      const deadline = lastRenew + this.#renewDeadlineMs;
      const attemptAbort = new AbortController();
      const attemptSignal = AbortSignal.any([signal, attemptAbort.signal]);
      const timer = this.#clock.sleep(Math.max(0, deadline - this.#clock.now()), attemptSignal).then(
        () => attemptAbort.abort(new Error('renew deadline passed')),
        () => {},
      );
      let ok = false;
      try {
        ok = await this.#tryAcquireOrRenew(attemptSignal);
      } finally {
        attemptAbort.abort();
        await timer;
      }
      if (signal.aborted) return 'stopped';
      if (ok) {
        lastRenew = this.#clock.now();
      } else if (this.#clock.now() >= deadline) {
        return 'lost';
      } else if (this.#observed !== undefined && this.#observed.spec.holderIdentity !== this.identity) {
        // Someone else holds the Lease now (we were too slow, or it was taken over): stop at once.
        return 'lost';
      }
    }
    return 'stopped';
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = this.#clock.now();
    const desired: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.round(this.#leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    const opts = { signal, timeoutMs: this.#renewDeadlineMs };
    let existing: Lease;
    try {
      existing = await this.#client.get<Lease>(this.#path, opts);
    } catch (error: unknown) {
      if (signal.aborted) return false;
      if (!isNotFound(error)) {
        this.#log.warn('could not read the leader lease', { err: error });
        return false;
      }
      try {
        const created = await this.#client.create<Lease>(
          this.#collection,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.#name, namespace: this.#namespace },
            spec: desired,
          },
          opts,
        );
        this.#observe(created.spec ?? desired, created.metadata.resourceVersion, this.#clock.now());
        return true;
      } catch (createError: unknown) {
        if (!isAlreadyExists(createError) && !signal.aborted)
          this.#log.warn('could not create the leader lease', { err: createError });
        return false;
      }
    }

    const spec = existing.spec ?? {};
    if (this.#observed === undefined || !sameRecord(this.#observed.spec, spec))
      this.#observe(spec, existing.metadata.resourceVersion, now);
    else if (this.#observed.rv !== existing.metadata.resourceVersion)
      this.#observed.rv = existing.metadata.resourceVersion;
    const holder = spec.holderIdentity ?? '';
    const observedAt = this.#observed?.at ?? now;
    const durationMs = (spec.leaseDurationSeconds ?? this.#leaseDurationMs / 1000) * 1000;
    if (holder !== '' && holder !== this.identity && observedAt + durationMs > now) return false;

    if (holder === this.identity) {
      desired.acquireTime = spec.acquireTime ?? desired.acquireTime;
      desired.leaseTransitions = spec.leaseTransitions ?? 0;
    } else {
      desired.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      const updated = await this.#client.replace<Lease>(this.#path, { ...existing, spec: desired }, opts);
      this.#observe(updated.spec ?? desired, updated.metadata.resourceVersion, this.#clock.now());
      return true;
    } catch (error: unknown) {
      if (!signal.aborted) {
        if (isConflict(error)) this.#log.debug('lost a race for the leader lease (409 Conflict)');
        else this.#log.warn('could not update the leader lease', { err: error });
      }
      return false;
    }
  }

  #observe(spec: LeaseSpec, rv: string | undefined, at: number): void {
    this.#observed = { spec, rv, at };
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.#lastHolder) {
      this.#lastHolder = holder;
      if (holder !== '') {
        this.#log.info('new leader observed', { leader: holder });
        try {
          this.#onNewLeader?.(holder);
        } catch (error: unknown) {
          this.#log.error('onNewLeader threw', { err: error });
        }
      }
    }
  }

  /** Hands the Lease back if we still hold it (best effort, bounded by renewDeadline). */
  async #release(): Promise<void> {
    const opts = { signal: AbortSignal.timeout(this.#renewDeadlineMs), timeoutMs: this.#renewDeadlineMs };
    try {
      const existing = await this.#client.get<Lease>(this.#path, opts);
      if (existing.spec?.holderIdentity !== this.identity) return;
      const now = microTime(this.#clock.now());
      await this.#client.replace<Lease>(
        this.#path,
        {
          ...existing,
          spec: {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: existing.spec.leaseTransitions ?? 0,
          },
        },
        opts,
      );
      this.#log.info('released the leader lease');
    } catch (error: unknown) {
      this.#log.warn('could not release the leader lease; the next leader waits for it to expire', { err: error });
    }
  }
}

function sameRecord(a: LeaseSpec, b: LeaseSpec): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.renewTime === b.renewTime &&
    a.acquireTime === b.acquireTime &&
    a.leaseTransitions === b.leaseTransitions &&
    a.leaseDurationSeconds === b.leaseDurationSeconds
  );
}
