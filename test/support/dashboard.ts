// Runs `trace-operator dashboard` as a process, as a user would, on a free
// port of 127.0.0.1, with a given kubeconfig (admin, or a ServiceAccount's).
import { execa, type ResultPromise } from 'execa';
import { kubeconfigPath } from './cluster.ts';
import { eventually } from './eventually.ts';
import { CLI } from './manager.ts';

export interface RunningDashboard {
  /** http://127.0.0.1:PORT/ */
  url: string;
  origin: string;
  /** The session token the page was served with (read from the page, as the browser does). */
  token(): Promise<string>;
  logs(): string;
  stop(): Promise<number>;
}

export async function startDashboard(
  options: { kubeconfig?: string; namespace?: string } = {},
): Promise<RunningDashboard> {
  let output = '';
  let exited: number | undefined;
  const child: ResultPromise = execa(
    process.execPath,
    [
      CLI,
      'dashboard',
      '--port=0',
      `--kubeconfig=${options.kubeconfig ?? kubeconfigPath}`,
      ...(options.namespace === undefined ? [] : [`--namespace=${options.namespace}`]),
    ],
    { reject: false, all: true },
  );
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  void child.then((r) => {
    exited = r.exitCode ?? -1;
  });
  const url = await eventually(
    'the dashboard prints its address',
    async () => {
      if (exited !== undefined) throw new Error(`the dashboard exited with ${exited}:\n${output}`);
      return /http:\/\/127\.0\.0\.1:\d+\//.exec(output)?.[0];
    },
    30_000,
  );
  const origin = url.replace(/\/$/, '');
  return {
    url,
    origin,
    token: async () => {
      const html = await (await fetch(url)).text();
      const token = /name="dashboard-token" content="([^"]+)"/.exec(html)?.[1];
      if (token === undefined) throw new Error('the page carries no dashboard token');
      return token;
    },
    logs: () => output,
    stop: async () => {
      child.kill('SIGINT');
      return (await child).exitCode ?? -1;
    },
  };
}

/** Runs `trace-operator plot ARGS` against the local cluster; returns its exit code and stderr. */
export async function runPlot(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [CLI, 'plot', `--kubeconfig=${kubeconfigPath}`, ...args], {
    reject: false,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The aria-labels of the rects in mark groups of class `cls` of an SVG document. */
export function svgLabels(svg: string, cls: string): string[] {
  const group = new RegExp(`<g[^>]*class="${cls}"[^>]*>([\\s\\S]*?)</g>`, 'g');
  const out: string[] = [];
  for (const g of svg.matchAll(group))
    for (const r of (g[1] ?? '').matchAll(/<rect[^>]*aria-label="([^"]*)"/g)) out.push(r[1] ?? '');
  return out;
}
