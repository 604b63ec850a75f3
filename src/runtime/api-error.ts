// Errors from the Kubernetes API, classified the way apimachinery's
// `errors.IsNotFound` / `IsConflict` / ... do: by the Status `reason` when the
// server sent one, by HTTP status otherwise.
//
// API
//   class ApiError extends Error
//     new ApiError({ status, reason?, message, method, path, details?, retryAfterSeconds? })
//     status: number           HTTP status (410 for watch ERROR events with code 410)
//     reason: string           Status.reason ("NotFound", "AlreadyExists", "Conflict", "Gone", "Expired", ...)
//     method, path, details?, retryAfterSeconds?
//     static fromStatus(status: Status, request: { method, path }, httpStatus?): ApiError
//   isNotFound(e) / isAlreadyExists(e) / isConflict(e) / isGone(e) / isInvalid(e) / isForbidden(e)
//   isTooManyRequests(e) / isServerTimeout(e)
//   function reasonForStatus(httpStatus): string   apimachinery's default reason for a bare status code
import type { Status } from './objects.ts';

export interface ApiErrorInit {
  status: number;
  reason?: string;
  message: string;
  method: string;
  path: string;
  details?: Status['details'];
  retryAfterSeconds?: number;
}

/** apimachinery's default reasons for HTTP statuses that came without a Status body. */
export function reasonForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 406:
      return 'NotAcceptable';
    case 409:
      return 'Conflict';
    case 410:
      return 'Gone';
    case 413:
      return 'RequestEntityTooLarge';
    case 415:
      return 'UnsupportedMediaType';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'Unknown';
  }
}

/** An HTTP error response (or watch ERROR event) from the API server. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  readonly details: Status['details'] | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(init: ApiErrorInit, options?: ErrorOptions) {
    super(
      `${init.method} ${init.path}: ${init.status} ${init.reason ?? reasonForStatus(init.status)}: ${init.message}`,
      options,
    );
    this.name = 'ApiError';
    this.status = init.status;
    this.reason = init.reason !== undefined && init.reason !== '' ? init.reason : reasonForStatus(init.status);
    this.method = init.method;
    this.path = init.path;
    this.details = init.details;
    this.retryAfterSeconds = init.retryAfterSeconds ?? init.details?.retryAfterSeconds;
  }

  /** The server's own message, without the method/path prefix. */
  get serverMessage(): string {
    const prefix = `${this.method} ${this.path}: ${this.status} ${this.reason}: `;
    return this.message.startsWith(prefix) ? this.message.slice(prefix.length) : this.message;
  }

  static fromStatus(status: Status, request: { method: string; path: string }, httpStatus?: number): ApiError {
    const code = httpStatus ?? status.code ?? 500;
    return new ApiError({
      status: code,
      ...(status.reason === undefined ? {} : { reason: status.reason }),
      message: status.message ?? reasonForStatus(code),
      method: request.method,
      path: request.path,
      ...(status.details === undefined ? {} : { details: status.details }),
    });
  }
}

function check(error: unknown, reason: string, status: number): boolean {
  if (!(error instanceof ApiError)) return false;
  if (error.reason === reason) return true;
  return error.status === status && (error.reason === 'Unknown' || error.reason === reasonForStatus(status));
}

export const isNotFound = (error: unknown): boolean => check(error, 'NotFound', 404);
export const isAlreadyExists = (error: unknown): boolean => check(error, 'AlreadyExists', 409);
/** An optimistic-concurrency conflict (stale resourceVersion), not AlreadyExists. */
export const isConflict = (error: unknown): boolean =>
  error instanceof ApiError && error.status === 409 && error.reason !== 'AlreadyExists';
/** 410: a watch or list resourceVersion too old ("Expired" or "Gone"). */
export const isGone = (error: unknown): boolean =>
  error instanceof ApiError && (error.status === 410 || error.reason === 'Expired' || error.reason === 'Gone');
export const isInvalid = (error: unknown): boolean => check(error, 'Invalid', 422);
export const isForbidden = (error: unknown): boolean => check(error, 'Forbidden', 403);
export const isTooManyRequests = (error: unknown): boolean => check(error, 'TooManyRequests', 429);
export const isServerTimeout = (error: unknown): boolean =>
  check(error, 'ServerTimeout', 504) || check(error, 'Timeout', 504);
