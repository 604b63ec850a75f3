// The API calls of the TraceTrigger controller, the firing path and the
// webhook's authentication, over the runtime KubeClient: one request each;
// creates tolerate AlreadyExists, gets and deletes tolerate NotFound.
import { API_GROUP, API_VERSION, PLURAL, type TraceJob } from '../tracejob/index.ts';
import { ALERTS_SUBRESOURCE, TRIGGER_PLURAL, type TraceTrigger } from '../tracetrigger/index.ts';
import { isAlreadyExists, isNotFound } from '../runtime/api-error.ts';
import { resourcePath, type KubeClient } from '../runtime/kube-client.ts';
import type { CreateOutcome } from './reconcile-deps.ts';

export interface ReviewedUser {
  username: string;
  uid?: string | undefined;
  groups?: string[] | undefined;
  extra?: Record<string, string[]> | undefined;
}

export interface TriggerApi {
  createTraceJob(traceJob: TraceJob): Promise<CreateOutcome>;
  /** Sets spec.stop on a TraceJob; 'gone' when it no longer exists. */
  stopTraceJob(namespace: string, name: string): Promise<'stopped' | 'gone'>;
  deleteTraceJob(namespace: string, name: string, uid: string): Promise<void>;
  getTrigger(namespace: string, name: string): Promise<TraceTrigger | undefined>;
  /** PUT of /status with the object's resourceVersion (optimistic lock); returns the stored object. */
  replaceTriggerStatus(trigger: TraceTrigger): Promise<TraceTrigger>;
  /** TokenReview: the user a bearer token belongs to, or undefined when the API server does not accept it. */
  reviewToken(token: string, audiences?: readonly string[]): Promise<ReviewedUser | undefined>;
  /** SubjectAccessReview: may `user` create tracetriggers/alerts of this trigger? */
  mayFire(user: ReviewedUser, namespace: string, name: string): Promise<{ allowed: boolean; reason?: string }>;
}

const tracejobs = (namespace: string, name?: string): string =>
  resourcePath({
    group: API_GROUP,
    version: API_VERSION,
    plural: PLURAL,
    namespace,
    ...(name === undefined ? {} : { name }),
  });
const tracetriggers = (namespace: string, name?: string): string =>
  resourcePath({
    group: API_GROUP,
    version: API_VERSION,
    plural: TRIGGER_PLURAL,
    namespace,
    ...(name === undefined ? {} : { name }),
  });

interface TokenReviewStatus {
  status?: { authenticated?: boolean; user?: ReviewedUser; error?: string };
}
interface SubjectAccessReviewStatus {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

export function triggerApi(client: KubeClient): TriggerApi {
  return {
    createTraceJob: async (traceJob) => {
      try {
        await client.create(tracejobs(traceJob.metadata.namespace ?? 'default'), traceJob);
        return 'created';
      } catch (error) {
        if (isAlreadyExists(error)) return 'exists';
        throw error;
      }
    },
    stopTraceJob: async (namespace, name) => {
      try {
        await client.patch(tracejobs(namespace, name), { spec: { stop: true } }, 'merge');
        return 'stopped';
      } catch (error) {
        if (isNotFound(error)) return 'gone';
        throw error;
      }
    },
    deleteTraceJob: async (namespace, name, uid) => {
      try {
        await client.delete(tracejobs(namespace, name), { preconditions: { uid }, propagationPolicy: 'Background' });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },
    getTrigger: async (namespace, name) => {
      try {
        return await client.get<TraceTrigger>(tracetriggers(namespace, name));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    replaceTriggerStatus: (trigger) =>
      client.replaceStatus<TraceTrigger>(
        tracetriggers(trigger.metadata.namespace ?? 'default', trigger.metadata.name),
        trigger,
      ),
    reviewToken: async (token, audiences) => {
      const review = await client.create<TokenReviewStatus & object>(
        resourcePath({ group: 'authentication.k8s.io', version: 'v1', plural: 'tokenreviews' }),
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, ...(audiences === undefined ? {} : { audiences: [...audiences] }) },
        } as TokenReviewStatus & object,
      );
      const status = review.status;
      if (status?.authenticated !== true || status.user?.username === undefined) return undefined;
      return status.user;
    },
    mayFire: async (user, namespace, name) => {
      const review = await client.create<SubjectAccessReviewStatus & object>(
        resourcePath({ group: 'authorization.k8s.io', version: 'v1', plural: 'subjectaccessreviews' }),
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            ...(user.uid === undefined ? {} : { uid: user.uid }),
            ...(user.groups === undefined ? {} : { groups: user.groups }),
            ...(user.extra === undefined ? {} : { extra: user.extra }),
            resourceAttributes: {
              group: API_GROUP,
              version: API_VERSION,
              resource: TRIGGER_PLURAL,
              subresource: ALERTS_SUBRESOURCE,
              namespace,
              name,
              verb: 'create',
            },
          },
        } as SubjectAccessReviewStatus & object,
      );
      const status = review.status;
      return {
        allowed: status?.allowed === true && status.denied !== true,
        ...(status?.reason === undefined || status.reason === '' ? {} : { reason: status.reason }),
      };
    },
  };
}
