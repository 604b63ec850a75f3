// The manager's live heap, measured through the V8 inspector: a full garbage
// collection first (HeapProfiler.collectGarbage), then Runtime.getHeapUsage.
// nodejs_heap_size_used_bytes counts garbage not yet collected, which after
// a burst or a re-list can be most of it; this counts what is kept.
// The manager runs with --inspect=127.0.0.1:0 (loopback, a random port); no
// session is attached except during a reading.

/** Pulls the inspector's WebSocket URL out of Node's "Debugger listening on ws://..." line. */
export function inspectorUrl(line: string): string | undefined {
  const m = /Debugger listening on (ws:\/\/\S+)/.exec(line);
  return m?.[1];
}

export interface LiveHeap {
  usedBytes: number;
  totalBytes: number;
  /** How long the forced collection took (the manager's event loop stops meanwhile). */
  gcMs: number;
}

/** Forces a full GC in the inspected process and returns its heap usage afterwards. */
export async function liveHeap(url: string, timeoutMs = 60_000): Promise<LiveHeap> {
  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  ws.addEventListener('message', (event: MessageEvent) => {
    const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error !== undefined) p?.reject(new Error(msg.error.message));
    else p?.resolve(msg.result);
  });
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method }));
    });
  const timer = setTimeout(() => ws.close(), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), {
        once: true,
      });
    });
    const started = performance.now();
    await call('HeapProfiler.collectGarbage');
    const gcMs = performance.now() - started;
    const usage = (await call('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
    return { usedBytes: usage.usedSize, totalBytes: usage.totalSize, gcMs };
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}
