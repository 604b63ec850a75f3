// Kubernetes name and value formats shared by the schema (as patterns the
// API server enforces) and by validation (as checks the controller repeats
// for objects that bypassed the CRD schema).
import { FormatRegistry } from '@sinclair/typebox';

/** RFC 1123 DNS subdomain: object names such as nodes, pods, ConfigMaps and service accounts. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const DNS_SUBDOMAIN_MAX = 253;
/** RFC 1123 DNS label: container names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const DNS_LABEL_MAX = 63;
/** ConfigMap data keys. */
export const CONFIGMAP_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
/** A label value (empty allowed). */
export const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';
export const LABEL_VALUE_MAX = 63;
/** The id the operator assigns: a lower-case UUID, as kubectl-trace uses. */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
/** metav1.Condition reason. */
export const CONDITION_REASON_PATTERN = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';
/** metav1.Condition type. */
export const CONDITION_TYPE_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$';

const dnsSubdomain = new RegExp(DNS_SUBDOMAIN_PATTERN);
const dnsLabel = new RegExp(DNS_LABEL_PATTERN);
const labelValue = new RegExp(LABEL_VALUE_PATTERN);
const uuid = new RegExp(UUID_PATTERN);

export function isDnsSubdomain(value: string): boolean {
  return value.length > 0 && value.length <= DNS_SUBDOMAIN_MAX && dnsSubdomain.test(value);
}

export function isDnsLabel(value: string): boolean {
  return value.length > 0 && value.length <= DNS_LABEL_MAX && dnsLabel.test(value);
}

export function isLabelValue(value: string): boolean {
  return value.length <= LABEL_VALUE_MAX && labelValue.test(value);
}

export function isUuid(value: string): boolean {
  return uuid.test(value);
}

// RFC 3339 date-time as Kubernetes writes it (metav1.Time), with optional
// fractional seconds and a Z or numeric offset.
const dateTime = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export function isDateTime(value: string): boolean {
  return dateTime.test(value) && !Number.isNaN(Date.parse(value));
}

/**
 * TypeBox rejects strings with a format it does not know, so the formats the
 * schema uses are registered here. The registry is TypeBox's own global;
 * registering is idempotent and has no other effect.
 */
export function registerFormats(): void {
  if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', isDateTime);
}
