// `trace-operator dashboard`: flags, then the local web page until SIGINT.
import { parseArgs } from 'node:util';
import type { CommandMain } from '../command.ts';
import { KubeClient, loadKubeConfig } from '../runtime/kube-client.ts';
import { createLogger } from '../runtime/logger.ts';
import { startDashboard } from './server.ts';
import { errorMessage } from '../error-message.ts';

const USAGE = `usage: trace-operator dashboard [flags]

Serves a web page of TraceJobs and TraceTriggers: lists that follow the
cluster, a trace's conditions, Events, live output and charts, a Stop button,
fleet runs and heatmaps of scheduled triggers. It acts with your kubeconfig's
credentials, so it can do only what your RBAC allows.

flags:
      --port N           port to listen on (default 8765; 0 picks a free one)
      --address ADDR     address to listen on (default 127.0.0.1). WARNING: any other
                         address lets everyone who can reach it act with YOUR credentials
  -n, --namespace NS     namespace to show first (default: all namespaces)
      --kubeconfig FILE  kubeconfig (default: $KUBECONFIG, then ~/.kube/config)
      --context NAME     kubeconfig context (default: the current one)
  -h, --help             show this help
`;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export const dashboardMain: CommandMain = async (ctx) => {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...ctx.argv],
      options: {
        port: { type: 'string' },
        address: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    ctx.stderr.write(`trace-operator dashboard: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values['help'] === true) {
    ctx.stdout.write(USAGE);
    return 0;
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const port = Number(str('port') ?? '8765');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    ctx.stderr.write(`trace-operator dashboard: --port must be a port number from 0 to 65535, got '${str('port')}'\n`);
    return 2;
  }
  const address = str('address') ?? '127.0.0.1';
  const logger = createLogger({ stream: ctx.stderr, level: 'info', fields: { logger: 'dashboard' } });
  let client: KubeClient;
  let user: string | undefined;
  try {
    const kubeconfig = str('kubeconfig') ?? ctx.env['KUBECONFIG'];
    const context = str('context');
    const kc = loadKubeConfig({
      ...(kubeconfig === undefined || kubeconfig === '' ? {} : { kubeconfig }),
      ...(context === undefined ? {} : { context }),
    });
    user = kc.context?.user;
    client = new KubeClient({ kubeConfig: kc, fieldManager: 'trace-operator-dashboard', maxRetries: 2 });
  } catch (error) {
    ctx.stderr.write(`trace-operator dashboard: ${errorMessage(error)}\n`);
    return 1;
  }
  if (!LOOPBACK.has(address))
    ctx.stderr.write(
      `WARNING: serving on ${address}, not loopback: anyone who can reach it can read and stop traces with your credentials (${user ?? 'your kubeconfig user'}).\n`,
    );
  let dashboard;
  try {
    const namespace = str('namespace');
    dashboard = await startDashboard({
      client,
      address: address === 'localhost' ? '127.0.0.1' : address,
      port,
      logger,
      ...(namespace === undefined ? {} : { namespace }),
      ...(user === undefined ? {} : { user }),
    });
  } catch (error) {
    ctx.stderr.write(`trace-operator dashboard: cannot start on ${address}:${port}: ${errorMessage(error)}\n`);
    client.close();
    return 1;
  }
  ctx.stdout.write(`trace-operator dashboard: ${dashboard.url} (cluster ${client.server}; Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    ctx.onSignal('SIGINT', resolve);
    ctx.onSignal('SIGTERM', resolve);
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await dashboard.close();
  client.close();
  return 0;
};
