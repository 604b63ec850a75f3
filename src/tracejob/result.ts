// The captured result of a finished trace: what the runner prints as its
// machine-readable summary and what the controller stores in status.result.
// It lives in the API package because it is part of the TraceJob's status.
import { Type, type Static } from '@sinclair/typebox';
import { RESULT_LIMITS } from './result-limits.ts';

export { RESULT_LIMITS };

export const HistogramBucket = Type.Object(
  {
    low: Type.Optional(
      Type.Number({ description: 'Inclusive lower bound of the bucket; absent for the open-ended lowest bucket.' }),
    ),
    high: Type.Optional(
      Type.Number({ description: 'Exclusive upper bound of the bucket; absent for the open-ended highest bucket.' }),
    ),
    count: Type.Integer({ minimum: 0, description: 'Number of samples that fell in the bucket.' }),
  },
  { description: 'One bucket of a bpftrace hist() or lhist().' },
);

export const Histogram = Type.Object(
  {
    key: Type.Optional(
      Type.String({
        maxLength: RESULT_LIMITS.keyLength,
        description: 'The map key for a keyed histogram (for example @usecs[comm]); absent for an unkeyed one.',
      }),
    ),
    buckets: Type.Array(HistogramBucket, {
      maxItems: RESULT_LIMITS.bucketsPerHistogram,
      description: 'Non-empty buckets in ascending order.',
    }),
    total: Type.Integer({ minimum: 0, description: 'Total number of samples.' }),
    p50: Type.Optional(
      Type.Number({ description: 'Median, estimated as the upper bound of the bucket that holds it.' }),
    ),
    p90: Type.Optional(
      Type.Number({ description: '90th percentile, estimated as the upper bound of the bucket that holds it.' }),
    ),
    p99: Type.Optional(
      Type.Number({ description: '99th percentile, estimated as the upper bound of the bucket that holds it.' }),
    ),
  },
  { description: 'A histogram with its percentiles.' },
);

export const MapEntry = Type.Object(
  {
    key: Type.String({
      maxLength: RESULT_LIMITS.keyLength,
      description: 'The map key as bpftrace prints it, without brackets.',
    }),
    value: Type.String({ description: 'The value as bpftrace prints it (a string keeps 64-bit integers exact).' }),
  },
  { description: 'One key and value of a keyed bpftrace map.' },
);

export const MapResult = Type.Object(
  {
    name: Type.String({ description: 'The map name including the @, for example "@usecs".' }),
    kind: Type.Union([Type.Literal('histogram'), Type.Literal('scalar'), Type.Literal('keyed')], {
      description: 'histogram: hist() or lhist(); scalar: a map without keys; keyed: a map with keys.',
    }),
    value: Type.Optional(Type.String({ description: 'The value of a scalar map.' })),
    entries: Type.Optional(
      Type.Array(MapEntry, {
        maxItems: RESULT_LIMITS.entriesPerMap,
        description: 'Entries of a keyed map, largest values first.',
      }),
    ),
    histograms: Type.Optional(
      Type.Array(Histogram, {
        maxItems: RESULT_LIMITS.histogramsPerMap,
        description: 'One histogram per key (one without a key for an unkeyed map).',
      }),
    ),
    truncated: Type.Optional(
      Type.Boolean({ description: 'True when entries or histograms were cut to the size limits.' }),
    ),
  },
  { description: 'The final contents of one bpftrace map.' },
);

export const TraceOutcome = Type.Union(
  [
    Type.Literal('Completed'),
    Type.Literal('DeadlineReached'),
    Type.Literal('Stopped'),
    Type.Literal('CompileError'),
    Type.Literal('AttachError'),
    Type.Literal('Error'),
  ],
  {
    description:
      'How the trace ended: Completed (the program exited by itself), DeadlineReached (stopped at the deadline), Stopped (interrupted on request), CompileError (bpftrace rejected the program), AttachError (a probe could not be attached), Error (anything else).',
  },
);

export const TraceResult = Type.Object(
  {
    outcome: TraceOutcome,
    exitCode: Type.Integer({ description: 'Exit code of bpftrace (or of the runner when bpftrace did not start).' }),
    message: Type.Optional(
      Type.String({
        maxLength: RESULT_LIMITS.messageLength,
        description: 'One-line reason when the trace failed, taken from bpftrace.',
      }),
    ),
    startedAt: Type.Optional(Type.String({ format: 'date-time', description: 'When bpftrace started.' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time', description: 'When bpftrace ended.' })),
    outputLines: Type.Optional(Type.Integer({ minimum: 0, description: 'Lines of text output the program produced.' })),
    maps: Type.Array(MapResult, {
      maxItems: RESULT_LIMITS.maps,
      description: 'The final maps, as printed when the trace ended.',
    }),
    truncated: Type.Boolean({ description: 'True when maps were left out or cut to fit the size limits.' }),
  },
  { description: 'The structured, size-bounded result of a finished trace.' },
);

export type HistogramBucket = Static<typeof HistogramBucket>;
export type Histogram = Static<typeof Histogram>;
export type MapEntry = Static<typeof MapEntry>;
export type MapResult = Static<typeof MapResult>;
export type TraceOutcome = Static<typeof TraceOutcome>;
export type TraceResult = Static<typeof TraceResult>;
