// Runs a command in a pod's container through the pods/exec subresource and
// returns its exit code and output, as `kubectl exec` does (without stdin or a
// TTY). The connection is a WebSocket speaking Kubernetes' channel protocols
// (v5.channel.k8s.io, else v4): every binary message starts with its channel,
// 1 stdout, 2 stderr, 3 the Status that reports how the command ended.
import type { WebSocket } from 'ws';
import type { Status } from './objects.ts';
import type { RequestOptions } from './rest-transport.ts';
import { errorMessage } from '../error-message.ts';

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
/** Output kept of each stream: the commands run this way print a line or two. */
const MAX_OUTPUT = 16 * 1024;

export interface ExecOptions {
  container: string;
  command: readonly string[];
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Opens an upgraded connection (RestTransport.webSocket); `attach` is called
 * with the socket before any of its events, so no message is missed.
 */
export type WebSocketOpener = (
  path: string,
  query: string,
  protocols: readonly string[],
  opts: RequestOptions,
  attach: (socket: WebSocket) => void,
) => Promise<WebSocket>;

export function execQuery(options: ExecOptions): string {
  const params = new URLSearchParams();
  for (const arg of options.command) params.append('command', arg);
  params.set('container', options.container);
  params.set('stdout', 'true');
  params.set('stderr', 'true');
  return `?${params.toString()}`;
}

/** The exit code a Status on the status channel reports; throws when the command could not run at all. */
export function exitCodeOf(status: Status): number {
  if (status.status === 'Success') return 0;
  const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status.reason === 'NonZeroExitCode' && code !== undefined && /^\d+$/.test(code)) return Number(code);
  throw new Error(`the command did not run: ${status.message ?? status.reason ?? 'no reason given'}`);
}

/**
 * Runs `options.command` in the container of the pod at `podPath` and waits
 * for it to end (`opts.timeoutMs`, default 30 s, for the handshake and as long
 * again for the command). Throws ApiError when the API server refuses the
 * exec (403 without get and create on pods/exec, 404 for a pod that is gone,
 * 400 for one not running), an Error when the command cannot be started or
 * the connection fails.
 */
export async function execInPod(
  open: WebSocketOpener,
  podPath: string,
  options: ExecOptions,
  opts: RequestOptions = {},
): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const what = `exec of '${options.command.join(' ')}' in ${podPath}`;
  let session: Session | undefined;
  const socket = await open(`${podPath}/exec`, execQuery(options), EXEC_PROTOCOLS, opts, (s) => {
    session = listen(s, what);
  });
  const heard = session as Session;
  return new Promise<ExecResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      heard.failure ??= new Error(`${what}: no end within ${timeoutMs / 1000}s`);
      socket.terminate();
    }, timeoutMs);
    const onAbort = (): void => {
      heard.failure ??= opts.signal?.reason instanceof Error ? opts.signal.reason : new Error(`${what}: aborted`);
      socket.terminate();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (heard.failure !== undefined) reject(heard.failure);
      else if (heard.exitCode === undefined)
        reject(new Error(`${what}: the connection closed before the command's status came`));
      else resolve({ exitCode: heard.exitCode, stdout: heard.stdout, stderr: heard.stderr });
    };
    if (heard.closed) finish();
    else heard.onClose = finish;
  });
}

/** What one exec connection has said so far. */
interface Session {
  stdout: string;
  stderr: string;
  exitCode?: number;
  failure?: Error;
  closed: boolean;
  onClose?: () => void;
}

function listen(socket: WebSocket, what: string): Session {
  const session: Session = { stdout: '', stderr: '', closed: false };
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0];
    const text = data.subarray(1).toString('utf8');
    if (channel === STDOUT && session.stdout.length < MAX_OUTPUT) session.stdout += text;
    else if (channel === STDERR && session.stderr.length < MAX_OUTPUT) session.stderr += text;
    else if (channel === STATUS && text !== '') {
      try {
        session.exitCode = exitCodeOf(JSON.parse(text) as Status);
      } catch (error) {
        session.failure ??= new Error(`${what}: ${errorMessage(error)}`);
      }
    }
  });
  socket.on('error', (error) => {
    session.failure ??= new Error(`${what}: ${error.message}`, { cause: error });
  });
  socket.once('close', () => {
    session.closed = true;
    session.onClose?.();
  });
  return session;
}
