// What the Job controller's FailedCreate Event says about a trace pod it
// could not create, as a reason, a message that says what to do, and
// whether waiting can help. Pure: the controller passes the Event's message.
//
// Admission refusals (Pod Security, a validating webhook) are permanent for
// this pod: the trace pod is privileged by design and its spec does not
// change. A missing service account or an exhausted quota may be fixed
// while the trace waits, so those fail only at spec.startTimeoutSeconds.
import { REASONS } from './conditions.ts';

export interface PodCreateProblem {
  reason: string;
  message: string;
  /** True when the pod will never be admitted: fail the trace now. */
  permanent: boolean;
}

/** The part of "Error creating: pods "x" is forbidden: <detail>" after the boilerplate. */
function detailOf(message: string): string {
  const trimmed = message.trim().replace(/^Error creating: /, '');
  const forbidden = /^pods? "[^"]*" is forbidden: /.exec(trimmed);
  return forbidden === null ? trimmed : trimmed.slice(forbidden[0].length);
}

export function describePodCreateFailure(message: string): PodCreateProblem {
  const detail = detailOf(message);
  const account = /service ?account (\S+?): serviceaccounts? "([^"]+)" not found/i.exec(detail);
  if (account !== null) {
    return {
      reason: REASONS.ServiceAccountNotFound,
      message: `The Job cannot create the trace pod: the service account ${account[1] ?? ''} does not exist. Create it, or set spec.serviceAccount to one that exists (the trace fails if the pod has not started by spec.startTimeoutSeconds).`,
      permanent: false,
    };
  }
  if (/violates PodSecurity/.test(detail)) {
    return {
      reason: REASONS.PodForbidden,
      message: `Pod Security admission refused the privileged trace pod (${detail}). Trace pods need the privileged level: run the TraceJob in a namespace labelled pod-security.kubernetes.io/enforce=privileged (the operator's --namespaces should list only such namespaces).`,
      permanent: true,
    };
  }
  if (/admission webhook .* denied the request/.test(detail)) {
    return {
      reason: REASONS.PodForbidden,
      message: `An admission webhook refused the trace pod (${detail}). Allow privileged, hostPID trace pods (label iovisor.org/kubectl-trace) in this namespace, or trace from a namespace the policy exempts.`,
      permanent: true,
    };
  }
  if (/exceeded quota/.test(detail)) {
    return {
      reason: REASONS.QuotaExceeded,
      message: `The Job cannot create the trace pod: a ResourceQuota of the namespace is used up (${detail}). Free or raise the quota; the trace fails if the pod has not started by spec.startTimeoutSeconds.`,
      permanent: false,
    };
  }
  return {
    reason: REASONS.PodCreateFailed,
    message: `The Job cannot create the trace pod: ${detail}. The trace fails if the pod has not started by spec.startTimeoutSeconds.`,
    permanent: false,
  };
}
