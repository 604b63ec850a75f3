// Who may talk to the dashboard. It acts with the user's own credentials,
// so a page on another site must not be able to make it act:
// - every request must name this server in Host (a DNS-rebinding page's
//   Host is its own name, so it cannot even read the page and its token);
// - every write must come from this origin (Origin header) and carry the
//   per-session token that only the served page knows.
import { timingSafeEqual } from 'node:crypto';

export const TOKEN_HEADER = 'x-dashboard-token';

export interface GuardVerdict {
  ok: boolean;
  status: number;
  reason: string;
}

const OK: GuardVerdict = { ok: true, status: 200, reason: '' };

export class RequestGuard {
  readonly #hosts: Set<string>;
  readonly #token: Buffer;

  /** `hosts` are the Host header values that name this server ("127.0.0.1:8080", "localhost:8080"). */
  constructor(hosts: readonly string[], token: string) {
    this.#hosts = new Set(hosts.map((h) => h.toLowerCase()));
    this.#token = Buffer.from(token);
  }

  /** Any request: the Host header must name this server. */
  checkHost(host: string | undefined): GuardVerdict {
    if (host !== undefined && this.#hosts.has(host.toLowerCase())) return OK;
    return {
      ok: false,
      status: 421,
      reason: `this dashboard answers only as ${[...this.#hosts].join(' or ')}, not as '${host ?? ''}'`,
    };
  }

  /** A write: same origin, and the session token the page was served with. */
  checkWrite(headers: {
    origin?: string | undefined;
    host?: string | undefined;
    token?: string | undefined;
  }): GuardVerdict {
    const host = this.checkHost(headers.host);
    if (!host.ok) return host;
    if (headers.origin === undefined || headers.origin !== `http://${headers.host ?? ''}`)
      return {
        ok: false,
        status: 403,
        reason: `cross-site request refused: Origin '${headers.origin ?? '(none)'}' is not this dashboard (http://${headers.host ?? ''})`,
      };
    const given = Buffer.from(headers.token ?? '');
    if (given.length !== this.#token.length || !timingSafeEqual(given, this.#token))
      return {
        ok: false,
        status: 403,
        reason: `request refused: the ${TOKEN_HEADER} header does not carry this session's token; reload the page`,
      };
    return OK;
  }
}
