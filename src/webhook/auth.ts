// Who may post alerts: a bearer token that a TokenReview accepts, whose user
// a SubjectAccessReview allows to `create` the tracetriggers/alerts
// subresource of the trigger posted to. So firing a trigger is plain RBAC
// (ClusterRole tracetrigger-alerts bound to Alertmanager's ServiceAccount),
// and the operator never reads a Secret. Positive answers are cached for a
// short time (Alertmanager posts the same token every group_interval);
// refusals are not, so a new binding takes effect at once.
import { createHash } from 'node:crypto';

export interface AuthUser {
  username: string;
  uid?: string | undefined;
  groups?: string[] | undefined;
  extra?: Record<string, string[]> | undefined;
}

export interface AuthBackend {
  /** undefined when the token is not valid; throws when the API server cannot be asked. */
  reviewToken(token: string): Promise<AuthUser | undefined>;
  /** throws when the API server cannot be asked. */
  mayFire(user: AuthUser, namespace: string, name: string): Promise<{ allowed: boolean; reason?: string }>;
}

export type AuthResult =
  { ok: true; user: AuthUser } | { ok: false; status: 401 | 403; reason: string; message: string };

/** The token of an `Authorization: Bearer <token>` header, else undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export class Authorizer {
  readonly #backend: AuthBackend;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #users = new Map<string, { user: AuthUser; until: number }>();
  readonly #grants = new Map<string, number>();

  constructor(options: { backend: AuthBackend; ttlMs?: number; now?: () => number }) {
    this.#backend = options.backend;
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  /** 401 without a valid token, 403 without the permission; throws when the API server is unreachable. */
  async check(authorization: string | undefined, namespace: string, name: string): Promise<AuthResult> {
    const token = bearerToken(authorization);
    if (token === undefined)
      return {
        ok: false,
        status: 401,
        reason: 'Unauthorized',
        message:
          'no bearer token: configure the Alertmanager receiver with http_config.authorization.credentials_file pointing at a ServiceAccount token',
      };
    const now = this.#now();
    const tokenKey = createHash('sha256').update(token).digest('hex');
    let user = this.#users.get(tokenKey);
    if (user === undefined || user.until <= now) {
      const reviewed = await this.#backend.reviewToken(token);
      if (reviewed === undefined) {
        this.#users.delete(tokenKey);
        return {
          ok: false,
          status: 401,
          reason: 'Unauthorized',
          message: 'the bearer token was not accepted by the API server (TokenReview); it may be expired or revoked',
        };
      }
      user = { user: reviewed, until: now + this.#ttlMs };
      this.#prune(now);
      this.#users.set(tokenKey, user);
    }
    const grantKey = `${tokenKey}\u0000${namespace}\u0000${name}`;
    if ((this.#grants.get(grantKey) ?? 0) > now) return { ok: true, user: user.user };
    const decision = await this.#backend.mayFire(user.user, namespace, name);
    if (!decision.allowed) {
      this.#grants.delete(grantKey);
      return {
        ok: false,
        status: 403,
        reason: 'Forbidden',
        message: `${user.user.username} may not create tracetriggers/alerts of ${namespace}/${name}; bind the ClusterRole tracetrigger-alerts to it (in namespace ${namespace})${decision.reason === undefined ? '' : `: ${decision.reason}`}`,
      };
    }
    this.#grants.set(grantKey, now + this.#ttlMs);
    return { ok: true, user: user.user };
  }

  #prune(now: number): void {
    if (this.#users.size < 1024) return;
    for (const [k, v] of this.#users) if (v.until <= now) this.#users.delete(k);
    for (const [k, until] of this.#grants) if (until <= now) this.#grants.delete(k);
  }
}
