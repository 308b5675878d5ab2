/**
 * JSON for metrics: JSON has no NaN or ±Infinity, so they become null (e.g. privacy_epsilon is
 * null while a run is not differentially private, ε = ∞). One rule for REST, CLI and exports.
 */
export function stringifyMetrics(value: unknown, space?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), space);
}
