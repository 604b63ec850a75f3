// The merged result of one run of a TraceTrigger (all the TraceJobs one
// firing created), as kept in the trigger's status.runs[].result. Its maps
// have the shape of a TraceJob's status.result.maps, so whatever draws a
// TraceJob's histogram draws a run's; the caps are tighter, because status
// keeps a series of runs (the dashboard's heatmap) in one object.
import { Type, type Static } from '@sinclair/typebox';
import { MapResult } from '../tracejob/result.ts';

/** Caps of one run's merged result: 20 runs of these stay well under etcd's object size limit. */
export const RUN_RESULT_LIMITS = {
  maps: 8,
  histogramsPerMap: 8,
  bucketsPerHistogram: 32,
  entriesPerMap: 32,
  /** Named nodes in the failed and running lists (counts stay exact). */
  listedNodes: 20,
  messageLength: 256,
} as const;

export const RunNodeCounts = Type.Object(
  {
    selected: Type.Integer({ minimum: 0, description: 'TraceJobs the run has (one per target node).' }),
    contributed: Type.Integer({ minimum: 0, description: 'Nodes whose trace ended with maps that are merged here.' }),
    failed: Type.Integer({ minimum: 0, description: 'Nodes whose trace failed; their maps, if any, are not merged.' }),
    running: Type.Integer({ minimum: 0, description: 'Nodes whose trace has not ended yet.' }),
  },
  { description: 'How many nodes of the run contributed, failed or are still running.' },
);

export const FailedNode = Type.Object(
  {
    node: Type.String({ description: 'Node name.' }),
    traceJob: Type.String({ description: 'Name of the TraceJob that failed.' }),
    message: Type.Optional(
      Type.String({ maxLength: RUN_RESULT_LIMITS.messageLength, description: 'Why, from the TraceJob.' }),
    ),
  },
  { description: 'A node whose trace failed.' },
);

export const RunResult = Type.Object(
  {
    complete: Type.Boolean({ description: 'True when no trace of the run is still running.' }),
    partial: Type.Boolean({
      description: 'True when some traces of the run failed, so the merged maps leave those nodes out.',
    }),
    nodes: RunNodeCounts,
    failedNodes: Type.Optional(
      Type.Array(FailedNode, {
        maxItems: RUN_RESULT_LIMITS.listedNodes,
        description: 'The nodes that failed (the first ones by name).',
      }),
    ),
    runningNodes: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: RUN_RESULT_LIMITS.listedNodes,
        description: 'The nodes still running (the first ones by name).',
      }),
    ),
    maps: Type.Array(MapResult, {
      maxItems: RUN_RESULT_LIMITS.maps,
      description:
        "The contributing nodes' maps merged by name: histograms of the same key summed bucket by bucket with p50/p90/p99 recomputed; integer scalars and keyed values added (right for count() and sum(); per-node values stay in each TraceJob's status).",
    }),
    unmerged: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: RUN_RESULT_LIMITS.maps,
        description: 'Maps left out because the nodes disagree on their kind or their values are not integers.',
      }),
    ),
    truncated: Type.Boolean({
      description: 'True when maps, keys or buckets were cut to the size limits, or a node’s own result was cut.',
    }),
  },
  { description: 'The merged result of the run.' },
);

export type RunNodeCounts = Static<typeof RunNodeCounts>;
export type FailedNode = Static<typeof FailedNode>;
export type RunResult = Static<typeof RunResult>;
