// `trace-operator manager`: flags (each with an environment variable as
// fallback, for Deployments), then the manager until SIGTERM/SIGINT.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { CommandMain } from '../command.ts';
import {
  defaultOperatorSettings,
  isImageReference,
  type ImagePullPolicy,
  type OperatorSettings,
} from '../tracejob/index.ts';
import { createLogger, parseLogLevel } from '../runtime/logger.ts';
import { runManager, type ManagerOptions } from './manager.ts';
import { errorMessage } from '../error-message.ts';

const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const FLAGS = {
  kubeconfig: {
    type: 'string',
    env: 'KUBECONFIG',
    help: 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster config)',
  },
  namespaces: {
    type: 'string',
    env: 'TRACE_OPERATOR_NAMESPACES',
    help: 'comma-separated namespaces where TraceJobs may run; a TraceJob elsewhere gets Accepted=False (default: all)',
  },
  'watch-namespaces': {
    type: 'string',
    env: 'TRACE_OPERATOR_WATCH_NAMESPACES',
    help: 'comma-separated namespaces to watch, for a namespace-scoped install (default: the whole cluster)',
  },
  'allowed-images': {
    type: 'string',
    env: 'TRACE_OPERATOR_ALLOWED_IMAGES',
    help: "comma-separated runner images TraceJobs may use; an entry ending in '/', ':' or '@' is a prefix (default: the shipped runner and init images)",
  },
  'default-image': {
    type: 'string',
    env: 'TRACE_OPERATOR_DEFAULT_IMAGE',
    help: 'runner image when spec.imageNameTag is unset',
  },
  'default-init-image': {
    type: 'string',
    env: 'TRACE_OPERATOR_DEFAULT_INIT_IMAGE',
    help: 'header-fetching init image when spec.initImageNameTag is unset',
  },
  'image-pull-policy': {
    type: 'string',
    env: 'TRACE_OPERATOR_IMAGE_PULL_POLICY',
    help: 'Always, IfNotPresent or Never (default IfNotPresent)',
  },
  'stop-exec': {
    type: 'string',
    env: 'TRACE_OPERATOR_STOP_EXEC',
    help: "true or false: stop a trace at once by running 'trace-operator stop --request' in its pod (pods/exec); false leaves every stop to the ConfigMap the kubelet syncs, about a minute (default true)",
  },
  concurrency: { type: 'string', env: 'TRACE_OPERATOR_CONCURRENCY', help: 'concurrent reconciles (default 8)' },
  'metrics-bind-address': {
    type: 'string',
    env: 'TRACE_OPERATOR_METRICS_BIND_ADDRESS',
    help: 'address of /metrics (default :8080)',
  },
  'health-probe-bind-address': {
    type: 'string',
    env: 'TRACE_OPERATOR_HEALTH_PROBE_BIND_ADDRESS',
    help: 'address of /healthz and /readyz (default :8081)',
  },
  'leader-elect': {
    type: 'string',
    env: 'TRACE_OPERATOR_LEADER_ELECT',
    help: 'true or false: elect a leader through a Lease so only one replica writes (default true)',
  },
  'leader-election-namespace': {
    type: 'string',
    env: 'TRACE_OPERATOR_LEADER_ELECTION_NAMESPACE',
    help: "namespace of the Lease (default: the pod's namespace, else default)",
  },
  'leader-election-id': {
    type: 'string',
    env: 'TRACE_OPERATOR_LEADER_ELECTION_ID',
    help: 'name of the Lease (default trace-operator-leader)',
  },
  'resync-period': {
    type: 'string',
    env: 'TRACE_OPERATOR_RESYNC_PERIOD',
    help: 'seconds between looks at every TraceJob even without changes (default 600)',
  },
  'webhook-bind-address': {
    type: 'string',
    env: 'TRACE_OPERATOR_WEBHOOK_BIND_ADDRESS',
    help: 'address of the Alertmanager webhook (POST /alertmanager/namespaces/<ns>/tracetriggers/<name>), e.g. :9443 (default: off)',
  },
  'webhook-cert-dir': {
    type: 'string',
    env: 'TRACE_OPERATOR_WEBHOOK_CERT_DIR',
    help: 'directory of the webhook tls.crt and tls.key, reloaded when they change (default /tmp/k8s-webhook-server/serving-certs)',
  },
  'webhook-insecure': {
    type: 'string',
    env: 'TRACE_OPERATOR_WEBHOOK_INSECURE',
    help: 'true: serve the webhook over plain HTTP, only behind a TLS-terminating proxy or on loopback (default false)',
  },
  'webhook-max-body-bytes': {
    type: 'string',
    env: 'TRACE_OPERATOR_WEBHOOK_MAX_BODY_BYTES',
    help: 'largest notification body accepted; larger ones get 413 (default 1048576)',
  },
  'max-triggered-per-minute': {
    type: 'string',
    env: 'TRACE_OPERATOR_MAX_TRIGGERED_PER_MINUTE',
    help: 'TraceJobs all TraceTriggers together may create per rolling minute; more are suppressed as rateLimited (default 60)',
  },
  'max-fleet-nodes': {
    type: 'string',
    env: 'TRACE_OPERATOR_MAX_FLEET_NODES',
    help: 'most nodes one schedule or fire-annotation run of a TraceTrigger may trace; a selector matching more creates nothing (default 1000)',
  },
  'log-level': { type: 'string', env: 'TRACE_OPERATOR_LOG_LEVEL', help: 'debug, info, warn or error (default info)' },
  help: { type: 'boolean', env: '', help: 'show this help' },
} as const;

type FlagName = keyof typeof FLAGS;

export function usage(): string {
  const lines = Object.entries(FLAGS).map(
    ([name, f]) => `  --${name.padEnd(27)} ${f.help}${f.env === '' ? '' : ` [$${f.env}]`}`,
  );
  return `usage: trace-operator manager [flags]\n\nRuns the TraceJob and TraceTrigger controllers and, with --webhook-bind-address, the Alertmanager webhook.\n\nflags:\n${lines.join('\n')}\n`;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return items.length === 0 ? undefined : items;
}

function positiveInteger(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new Error(`--${name} must be a whole number from 1 to ${max}, got '${value}'`);
  return n;
}

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new Error(`--${name} must be true or false, got '${value}'`);
}

function settingsFrom(get: (name: FlagName) => string | undefined): OperatorSettings {
  const settings = defaultOperatorSettings();
  const image = (name: FlagName): string | undefined => {
    const value = get(name);
    if (value !== undefined && !isImageReference(value))
      throw new Error(`--${name} '${value}' is not a valid image reference (registry/repository:tag or @digest)`);
    return value;
  };
  settings.defaultImage = image('default-image') ?? settings.defaultImage;
  settings.defaultInitImage = image('default-init-image') ?? settings.defaultInitImage;
  const allowed = list(get('allowed-images'));
  if (allowed !== undefined) settings.allowedImages = allowed;
  const policy = get('image-pull-policy');
  if (policy !== undefined) {
    if (policy !== 'Always' && policy !== 'IfNotPresent' && policy !== 'Never')
      throw new Error(`--image-pull-policy must be Always, IfNotPresent or Never, got '${policy}'`);
    settings.imagePullPolicy = policy satisfies ImagePullPolicy;
  }
  return settings;
}

function defaultLeaseNamespace(env: Readonly<Record<string, string | undefined>>): string {
  if (env['POD_NAMESPACE'] !== undefined && env['POD_NAMESPACE'] !== '') return env['POD_NAMESPACE'];
  return existsSync(IN_CLUSTER_NAMESPACE_FILE) ? readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() : 'default';
}

/** Parses flags and environment into manager options; throws with a message naming the bad flag. */
export function managerOptions(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  logger: ManagerOptions['logger'],
): ManagerOptions | 'help' {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, f]) => [name, { type: f.type }])) as Record<
    FlagName,
    { type: 'string' | 'boolean' }
  >;
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  if (values.help === true) return 'help';
  const get = (name: FlagName): string | undefined => {
    const flag = values[name];
    if (typeof flag === 'string') return flag;
    const fromEnv = FLAGS[name].env === '' ? undefined : env[FLAGS[name].env];
    return fromEnv === '' ? undefined : fromEnv;
  };
  const namespaces = list(get('namespaces'));
  return {
    kubeconfig: get('kubeconfig'),
    settings: settingsFrom(get),
    allowedNamespaces: namespaces === undefined ? undefined : new Set(namespaces),
    watchNamespaces: list(get('watch-namespaces')),
    stopExec: bool('stop-exec', get('stop-exec'), true),
    concurrency: positiveInteger('concurrency', get('concurrency'), 8, 64),
    metricsAddress: get('metrics-bind-address') ?? ':8080',
    probeAddress: get('health-probe-bind-address') ?? ':8081',
    leaderElection: {
      enabled: bool('leader-elect', get('leader-elect'), true),
      namespace: get('leader-election-namespace') ?? defaultLeaseNamespace(env),
      name: get('leader-election-id') ?? 'trace-operator-leader',
    },
    resyncPeriodMs: positiveInteger('resync-period', get('resync-period'), 600, 86_400) * 1000,
    logger,
    triggers: {
      webhook: {
        address: get('webhook-bind-address'),
        certDir: get('webhook-cert-dir') ?? '/tmp/k8s-webhook-server/serving-certs',
        insecure: bool('webhook-insecure', get('webhook-insecure'), false),
        maxBodyBytes: positiveInteger('webhook-max-body-bytes', get('webhook-max-body-bytes'), 1 << 20, 64 << 20),
      },
      maxTriggeredPerMinute: positiveInteger('max-triggered-per-minute', get('max-triggered-per-minute'), 60, 100_000),
      maxFleetNodes: positiveInteger('max-fleet-nodes', get('max-fleet-nodes'), 1000, 100_000),
    },
  };
}

export const managerMain: CommandMain = async (ctx) => {
  let options: ManagerOptions | 'help';
  const logLevelText =
    ctx.env['TRACE_OPERATOR_LOG_LEVEL'] ??
    ctx.argv.find((a) => a.startsWith('--log-level='))?.slice('--log-level='.length) ??
    'info';
  try {
    const logger = createLogger({
      stream: ctx.stderr,
      level: parseLogLevel(logLevelText),
      fields: { logger: 'trace-operator' },
    });
    options = managerOptions(ctx.argv, ctx.env, logger);
  } catch (error) {
    ctx.stderr.write(`trace-operator manager: ${errorMessage(error)}\n\n${usage()}`);
    return 2;
  }
  if (options === 'help') {
    ctx.stdout.write(usage());
    return 0;
  }
  const { logger } = options;
  const shutdown = new AbortController();
  const onSignal = (): void => {
    logger.info('signal received: shutting down');
    shutdown.abort();
  };
  ctx.onSignal('SIGTERM', onSignal);
  ctx.onSignal('SIGINT', onSignal);
  ctx.signal.addEventListener('abort', () => shutdown.abort(), { once: true });
  try {
    const exit = await runManager(options, shutdown.signal);
    return exit === 'leadership-lost' ? 1 : 0;
  } catch (error) {
    logger.error('manager failed', { error: error instanceof Error ? error : String(error) });
    return 1;
  }
};
