// The size limits of a TraceResult, apart from its schema so that the runner
// can read them without loading TypeBox at start-up.

/** Caps that keep status.result small enough for etcd and `kubectl get -o yaml`. */
export const RESULT_LIMITS = {
  maps: 32,
  entriesPerMap: 64,
  histogramsPerMap: 16,
  bucketsPerHistogram: 64,
  messageLength: 1024,
  keyLength: 256,
} as const;
