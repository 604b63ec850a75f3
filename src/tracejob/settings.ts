// Operator settings that shape the trace pod, and the image allow-list.
// Creating a TraceJob means running a privileged pod on a node, so only
// images the operator's administrator listed may run (docs/design.md, Guarantees).
import type { TraceJobSpec } from './schema.ts';

export type ImagePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface OperatorSettings {
  /** Trace container image when spec.imageNameTag is unset; it must contain bpftrace and trace-operator. */
  defaultImage: string;
  /** Init container image when spec.fetchHeaders is true and spec.initImageNameTag is unset. */
  defaultInitImage: string;
  /**
   * Images a TraceJob may run. An entry ending in '/', ':' or '@' is a
   * prefix: 'ghcr.io/org/' allows every image under ghcr.io/org/,
   * 'ghcr.io/org/runner:' every tag of that repository, 'ghcr.io/org/runner@'
   * every digest of it. Any other entry must equal the image exactly. An
   * empty list allows nothing, not even the defaults.
   */
  allowedImages: string[];
  /** Pull policy of both containers; when unset Kubernetes' default applies (Always for :latest, else IfNotPresent). */
  imagePullPolicy?: ImagePullPolicy;
}

/** The runner image this version of the operator ships. */
export const DEFAULT_RUNNER_REPOSITORY = 'ghcr.io/alexeldeib/trace-operator';
export const DEFAULT_RUNNER_IMAGE = `${DEFAULT_RUNNER_REPOSITORY}:v0.1.0`;
/** kubectl-trace's header-fetching init image. */
export const DEFAULT_INIT_REPOSITORY = 'quay.io/iovisor/kubectl-trace-init';
export const DEFAULT_INIT_IMAGE = `${DEFAULT_INIT_REPOSITORY}:latest`;

/** Settings for a fresh install: the shipped images, any tag of their repositories allowed. */
export function defaultOperatorSettings(): OperatorSettings {
  return {
    defaultImage: DEFAULT_RUNNER_IMAGE,
    defaultInitImage: DEFAULT_INIT_IMAGE,
    allowedImages: [
      `${DEFAULT_RUNNER_REPOSITORY}:`,
      `${DEFAULT_RUNNER_REPOSITORY}@`,
      `${DEFAULT_INIT_REPOSITORY}:`,
      `${DEFAULT_INIT_REPOSITORY}@`,
    ],
    imagePullPolicy: 'IfNotPresent',
  };
}

// An image reference: [registry[:port]/]path[:tag][@algorithm:digest].
// Path components are lower case as the distribution spec requires; the
// registry may carry a port. This is stricter than "any string" so that an
// allow-list prefix such as 'ghcr.io/org/' cannot be escaped with '..' or
// whitespace, and looser than a full parser (no length rules per part).
const DOMAIN =
  '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?';
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const IMAGE_REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);

/** True when `image` is a well-formed image reference. */
export function isImageReference(image: string): boolean {
  return image.length <= 512 && IMAGE_REFERENCE.test(image);
}

/** True when the allow-list permits `image` (see OperatorSettings.allowedImages). */
export function isImageAllowed(image: string, allowedImages: readonly string[]): boolean {
  if (!isImageReference(image)) return false;
  return allowedImages.some((entry) => {
    if (entry.length === 0) return false;
    const isPrefix = entry.endsWith('/') || entry.endsWith(':') || entry.endsWith('@');
    return isPrefix ? image.startsWith(entry) && image.length > entry.length : image === entry;
  });
}

/** The images a spec runs with, defaults applied. `init` is undefined when no init container runs. */
export function effectiveImages(
  spec: Pick<TraceJobSpec, 'imageNameTag' | 'initImageNameTag' | 'fetchHeaders'>,
  settings: OperatorSettings,
): { main: string; init: string | undefined } {
  return {
    main: spec.imageNameTag ?? settings.defaultImage,
    init: spec.fetchHeaders === true ? (spec.initImageNameTag ?? settings.defaultInitImage) : undefined,
  };
}
