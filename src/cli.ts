#!/usr/bin/env node
// The only place that reads process.argv and the environment, and the only
// place that exits. Every command is a function (argv, env, signal) -> exit code.
import type { CommandMain } from './command.ts';

const commands: Record<string, { summary: string; load: () => Promise<CommandMain> }> = {
  manager: {
    summary: 'run the controller against the cluster in KUBECONFIG or in-cluster config',
    load: async () => (await import('./controller/main.ts')).managerMain,
  },
  runner: {
    summary: 'run a bpftrace program inside a trace pod (the trace container command)',
    load: async () => (await import('./runner/main.ts')).runnerMain,
  },
  stop: {
    summary: 'ask a running runner to stop and wait for it (the trace pod preStop hook)',
    load: async () => (await import('./runner/main.ts')).stopMain,
  },
  plot: {
    summary: "draw a TraceJob's histograms or a TraceTrigger's runs as SVG or PNG",
    load: async () => (await import('./plot/main.ts')).plotMain,
  },
  dashboard: {
    summary: 'serve a local web page of TraceJobs and TraceTriggers (127.0.0.1, your kubeconfig)',
    load: async () => (await import('./dashboard/main.ts')).dashboardMain,
  },
  'run-local': {
    summary: 'run a TraceJob program with bpftrace on this machine',
    load: async () => (await import('./runner/main.ts')).runLocalMain,
  },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: trace-operator <command> [flags]\n\ncommands:\n${lines.join('\n')}\n\nRun 'trace-operator <command> --help' for a command's flags.`;
}

const [name, ...rest] = process.argv.slice(2);
const command = name === undefined ? undefined : commands[name];
if (command === undefined) {
  const known = name === undefined || name === '--help' || name === '-h';
  (known ? process.stdout : process.stderr).write(
    `${known ? '' : `trace-operator: unknown command '${name}'\n\n`}${usage()}\n`,
  );
  process.exit(known ? 0 : 2);
}

const controller = new AbortController();
const main = await command.load();
const code = await main({
  argv: rest,
  env: process.env,
  signal: controller.signal,
  stdout: process.stdout,
  stderr: process.stderr,
  onSignal: (sig, handler) => process.on(sig, handler),
});
process.exitCode = code;
