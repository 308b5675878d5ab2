/** Typed protocol errors: every rejection a hospital or the dashboard can receive. */

export const ERROR_CODES = [
  'INVALID_PAYLOAD', // a payload failed its schema; `field` names the path
  'UNAUTHORIZED', // no or unknown credential
  'FORBIDDEN', // a credential acting outside its role or as another hospital
  'NO_ACTIVE_RUN',
  'WRONG_RUN', // update for another run
  'STALE_ROUND', // update for a past round
  'FUTURE_ROUND', // update for a round that has not started
  'WRONG_STAGE', // result for a stage that is not open (or not open to this client)
  'NOT_SELECTED', // this client was not sampled for the stage
  'DUPLICATE_RESULT', // a second result for the same round and stage (replay)
  'NON_FINITE', // NaN or ±Infinity in weights or metrics
  'WRONG_LENGTH', // weights of the wrong size
  'CHECKSUM_MISMATCH', // weights do not hash to the SHA-256 sent with them
  'UNKNOWN_MODEL', // an instruction named a model by SHA-256 alone that this hospital does not hold
  'OUT_OF_BOUNDS', // a weight, count, sum or metric outside what this hospital may claim (bounded influence)
  'MESSAGE_TOO_LARGE',
  'RUN_CONFLICT', // e.g. start while a run is active
  'RATE_LIMITED', // too many failed sign-ins from this address: wait (retry_after_s) and try again
  'TOO_MANY_CONNECTIONS', // the per-address or total connection cap is reached
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ProtocolErrorPayload {
  code: ErrorCode;
  message: string;
  /** The offending field, dotted (e.g. `weights`, `metrics.train_loss`, `round`). */
  field?: string;
  /** The event the error answers. */
  event?: string;
  /** RATE_LIMITED: seconds until a new attempt is counted again. */
  retry_after_s?: number;
}

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }

  toPayload(event?: string): ProtocolErrorPayload {
    return { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}), ...(event ? { event } : {}) };
  }
}
