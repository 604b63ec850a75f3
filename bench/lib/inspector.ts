// The manager's V8 inspector, for two readings the bench takes from outside:
// - the live heap: a full garbage collection first (HeapProfiler.collectGarbage),
//   then Runtime.getHeapUsage. nodejs_heap_size_used_bytes counts garbage not
//   yet collected, which after a burst or a re-list can be most of it; this
//   counts what is kept.
// - a CPU profile of one stretch (--burst-cpu-prof): Profiler.start, later
//   Profiler.stop, saved as a .cpuprofile that Chrome's DevTools opens.
// The manager runs with --inspect=127.0.0.1:0 (loopback, a random port); no
// session is attached except during a reading.

/** Pulls the inspector's WebSocket URL out of Node's "Debugger listening on ws://..." line. */
export function inspectorUrl(line: string): string | undefined {
  const m = /Debugger listening on (ws:\/\/\S+)/.exec(line);
  return m?.[1];
}

/** One WebSocket session with the inspector: send a method, await its result. */
class InspectorSession {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (event: MessageEvent) => {
      const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error !== undefined) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    });
    ws.addEventListener('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error('the inspector session closed'));
      this.#pending.clear();
    });
  }

  static async open(url: string): Promise<InspectorSession> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), {
        once: true,
      });
    });
    return new InspectorSession(ws);
  }

  call(method: string, params?: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

export interface LiveHeap {
  usedBytes: number;
  totalBytes: number;
  /** How long the forced collection took (the manager's event loop stops meanwhile). */
  gcMs: number;
}

/** Forces a full GC in the inspected process and returns its heap usage afterwards. */
export async function liveHeap(url: string, timeoutMs = 60_000): Promise<LiveHeap> {
  const session = await InspectorSession.open(url);
  const timer = setTimeout(() => session.close(), timeoutMs);
  try {
    const started = performance.now();
    await session.call('HeapProfiler.collectGarbage');
    const gcMs = performance.now() - started;
    const usage = (await session.call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize, gcMs };
  } finally {
    clearTimeout(timer);
    session.close();
  }
}

/** A CPU profile under way; stop() ends it and returns the profile (DevTools' .cpuprofile JSON). */
export interface CpuProfiling {
  stop(): Promise<unknown>;
}

/** Starts V8's sampling profiler in the inspected process (a sample every `intervalUs`). */
export async function startCpuProfile(url: string, intervalUs = 1000): Promise<CpuProfiling> {
  const session = await InspectorSession.open(url);
  try {
    await session.call('Profiler.enable');
    await session.call('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.call('Profiler.start');
  } catch (error) {
    session.close();
    throw error;
  }
  return {
    stop: async () => {
      try {
        const { profile } = (await session.call('Profiler.stop')) as { profile: unknown };
        return profile;
      } finally {
        session.close();
      }
    },
  };
}
