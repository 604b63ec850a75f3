// Turns the TypeBox schema source into the CustomResourceDefinition, the way
// controller-gen turns Go types into one. The conversion is strict: it
// knows every keyword a structural schema allows and throws on anything
// else, so a schema change that Kubernetes would reject fails here first.
import { Kind, OptionalKind, type TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { TraceJobSpec, TraceJobStatus } from './schema.ts';
import { API_GROUP, API_VERSION, CRD_NAME, KIND, LIST_KIND, PLURAL, SHORT_NAMES, SINGULAR } from './constants.ts';

/** A JSON value as it appears in a CRD. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** apiextensions.k8s.io/v1 JSONSchemaProps, as plain JSON. */
export type JsonSchemaProps = { [key: string]: JsonValue };

// Keywords copied as they are. Everything not here or handled below is an error.
const PASS_THROUGH = new Set([
  'description',
  'format',
  'default',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'enum',
  'nullable',
]);
// Keywords TypeBox adds for its own runtime checks that have no meaning (or
// are not allowed) in a structural schema: additionalProperties: false is
// the API server's default pruning behaviour.
const TYPEBOX_ONLY = new Set([
  'additionalProperties',
  'type',
  'required',
  'properties',
  'items',
  'anyOf',
  'const',
  'patternProperties',
]);

/**
 * Converts a TypeBox schema to a structural openAPIV3Schema node.
 * `path` names the node in error messages.
 */
export function toStructural(schema: TSchema, path = '<root>'): JsonSchemaProps {
  const out: JsonSchemaProps = {};
  const kind = schema[Kind] as string;
  switch (kind) {
    case 'Object': {
      out['type'] = 'object';
      const properties = (schema['properties'] ?? {}) as Record<string, TSchema>;
      const props: { [key: string]: JsonValue } = {};
      const required: string[] = [];
      for (const [name, child] of Object.entries(properties)) {
        props[name] = toStructural(child, `${path}.${name}`);
        if (child[OptionalKind] !== 'Optional') required.push(name);
      }
      if (Object.keys(props).length > 0) out['properties'] = props;
      if (required.length > 0) out['required'] = required;
      const additional: unknown = schema['additionalProperties'];
      if (additional !== undefined && additional !== false) {
        throw new Error(
          `${path}: additionalProperties with properties is not a structural schema; use Type.Record for a map`,
        );
      }
      break;
    }
    case 'Record': {
      out['type'] = 'object';
      const patterns = Object.values((schema['patternProperties'] ?? {}) as Record<string, TSchema>);
      const value = patterns[0];
      if (patterns.length !== 1 || value === undefined)
        throw new Error(`${path}: a Record must have exactly one value schema`);
      out['additionalProperties'] = toStructural(value, `${path}[*]`);
      break;
    }
    case 'Array':
      out['type'] = 'array';
      out['items'] = toStructural(schema['items'] as TSchema, `${path}[]`);
      break;
    case 'String':
    case 'Integer':
    case 'Number':
    case 'Boolean':
      out['type'] = kind.toLowerCase();
      break;
    case 'Literal':
      out['type'] = literalType(schema['const'], path);
      out['enum'] = [schema['const'] as JsonValue];
      break;
    case 'Union': {
      // Only unions of literals of one type: they become an enum.
      const members = schema['anyOf'] as TSchema[];
      const values = members.map((m) => {
        if (m[Kind] !== 'Literal')
          throw new Error(`${path}: only unions of literals can be expressed in a structural schema`);
        return m['const'] as JsonValue;
      });
      const types = new Set(values.map((v) => literalType(v, path)));
      if (types.size !== 1) throw new Error(`${path}: union members must all be of one type`);
      out['type'] = [...types][0] as string;
      out['enum'] = values;
      break;
    }
    default:
      throw new Error(
        `${path}: TypeBox kind '${kind}' has no structural-schema form; use Object, Record, Array, String, Integer, Number, Boolean, Literal or a Union of Literals`,
      );
  }
  for (const [key, value] of Object.entries(schema)) {
    if (PASS_THROUGH.has(key)) {
      if (key === 'enum' && out['enum'] !== undefined) continue;
      out[key] = value as JsonValue;
    } else if (key.startsWith('x-kubernetes-')) {
      out[key] = value as JsonValue;
    } else if (!TYPEBOX_ONLY.has(key)) {
      throw new Error(
        `${path}: keyword '${key}' is not allowed in a CRD schema (no $id, $ref or TypeBox extensions); remove it from the schema source`,
      );
    }
  }
  // type and description first, so the generated YAML reads top-down.
  const { type, description, ...rest } = out;
  return { type: type ?? null, ...(description === undefined ? {} : { description }), ...rest };
}

function literalType(value: unknown, path: string): string {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  throw new Error(`${path}: literal ${String(value)} has no structural-schema type`);
}

/** What a namespaced custom resource of this operator is made of. */
export interface ResourceDefinition {
  crdName: string;
  names: { kind: string; listKind: string; plural: string; singular: string; shortNames: readonly string[] };
  description: string;
  spec: TSchema;
  status: TSchema;
  printerColumns: JsonValue[];
  selectableFields?: JsonValue[];
}

/** The openAPIV3Schema of a resource: apiVersion, kind, metadata, and its spec and status. */
export function resourceOpenApiSchema(r: Pick<ResourceDefinition, 'description' | 'spec' | 'status'>): JsonSchemaProps {
  return {
    type: 'object',
    description: r.description,
    required: ['spec'],
    properties: {
      apiVersion: {
        type: 'string',
        description: 'APIVersion defines the versioned schema of this representation of an object.',
      },
      kind: {
        type: 'string',
        description: 'Kind is a string value representing the REST resource this object represents.',
      },
      metadata: { type: 'object' },
      spec: toStructural(r.spec, 'spec'),
      status: toStructural(r.status, 'status'),
    },
  };
}

/** The CustomResourceDefinition of a namespaced resource with a status subresource, as a plain object. */
export function namespacedCrd(r: ResourceDefinition): { [key: string]: JsonValue } {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: r.crdName,
      labels: { 'app.kubernetes.io/name': 'trace-operator', 'app.kubernetes.io/part-of': 'trace-operator' },
    },
    spec: {
      group: API_GROUP,
      names: { ...r.names, shortNames: [...r.names.shortNames], categories: ['tracing'] },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: r.printerColumns,
          ...(r.selectableFields === undefined ? {} : { selectableFields: r.selectableFields }),
          schema: { openAPIV3Schema: resourceOpenApiSchema(r) },
        },
      ],
    },
  };
}

const TRACEJOB: ResourceDefinition = {
  crdName: CRD_NAME,
  names: { kind: KIND, listKind: LIST_KIND, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES },
  description:
    'TraceJob runs a bpftrace program on a node (or on the node of a pod) for a bounded time and keeps its output. The operator creates a ConfigMap and a Job named kubectl-trace-<id>, owned by the TraceJob, which the kubectl-trace plugin can attach to.',
  spec: TraceJobSpec,
  status: TraceJobStatus,
  printerColumns: [
    {
      name: 'ID',
      type: 'string',
      jsonPath: '.status.id',
      description: 'Trace id, for kubectl trace attach/logs/delete.',
    },
    { name: 'Node', type: 'string', jsonPath: '.status.node', description: 'Node the trace runs on.' },
    {
      name: 'Phase',
      type: 'string',
      jsonPath: '.status.phase',
      description: 'Pending, Running, Succeeded or Failed.',
    },
    { name: 'Result', type: 'string', jsonPath: '.status.result.outcome', description: 'How the trace ended.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    {
      name: 'Pod',
      type: 'string',
      jsonPath: '.spec.targetPod.name',
      priority: 1,
      description: 'Target pod, for pod traces.',
    },
    {
      name: 'P50',
      type: 'number',
      jsonPath: '.status.result.maps[0].histograms[0].p50',
      priority: 1,
      description: 'Median of the first histogram of the first map (its bucket upper bound).',
    },
    {
      name: 'P99',
      type: 'number',
      jsonPath: '.status.result.maps[0].histograms[0].p99',
      priority: 1,
      description: '99th percentile of the first histogram of the first map (its bucket upper bound).',
    },
    {
      name: 'Deadline',
      type: 'integer',
      jsonPath: '.spec.deadline',
      priority: 1,
      description: 'Seconds the trace runs.',
    },
  ],
  selectableFields: [{ jsonPath: '.spec.hostname' }],
};

/** The openAPIV3Schema of the TraceJob resource. */
export function traceJobOpenApiSchema(): JsonSchemaProps {
  return resourceOpenApiSchema(TRACEJOB);
}

/** The TraceJob CustomResourceDefinition as a plain object. */
export function traceJobCrd(): { [key: string]: JsonValue } {
  return namespacedCrd(TRACEJOB);
}

const HEADER = '# Generated by `npm run manifests` (hack/generate-crd.ts) from src/tracejob/schema.ts. Do not edit.\n';

/** The CRD file content, byte for byte what config/crd/bases/ holds. */
export function renderCrdYaml(): string {
  return `${HEADER}---\n${stringify(traceJobCrd(), { lineWidth: 0, indent: 2, sortMapEntries: false })}`;
}

/** config/crd/kustomization.yaml, listing the given CRD files (default: the TraceJob's). */
export function renderCrdKustomization(files: readonly string[] = [CRD_FILE]): string {
  const resources = files.map((f) => `  - ${f.replace(/^config\/crd\//, '')}\n`).join('');
  return `${HEADER}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${resources}`;
}

/** Path of the generated CRD, relative to the repository root. */
export const CRD_FILE = `config/crd/bases/${API_GROUP}_${PLURAL}.yaml`;
export const CRD_KUSTOMIZATION_FILE = 'config/crd/kustomization.yaml';
