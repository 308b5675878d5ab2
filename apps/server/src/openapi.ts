/** The OpenAPI 3.1 document of the REST API (seed spec 7.2), served at /api/v1/openapi.json. */
import { STRATEGY_NAMES } from '@fedcare/shared/protocol';

const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        field: { type: 'string' },
        correlation_id: { type: 'string', description: 'INTERNAL (500) only: the id the coordinator logged the error under; the error itself is never sent' },
      },
    },
  },
};

const errors = {
  '400': { description: 'Invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
  '401': {
    description: 'No or unknown token',
    headers: { 'WWW-Authenticate': { description: 'RFC 6750 challenge: `Bearer realm="fedcare"`, with `error="invalid_token"` when a token was offered', schema: { type: 'string' } } },
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '403': {
    description: 'Token lacks the role',
    headers: { 'WWW-Authenticate': { description: 'RFC 6750 challenge with `error="insufficient_scope"`', schema: { type: 'string' } } },
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '429': {
    description: 'Too many failed authentications from this address: blocked for a minute (the limit is FEDCARE_AUTH_FAILURES_PER_MINUTE)',
    headers: { 'Retry-After': { description: 'Seconds until the address may try again', schema: { type: 'integer' } } },
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '413': { description: 'Request body over 64 KiB', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
};

/** A token's expiry: ISO-8601 with an offset, in the future; without it the token lasts until revoked. */
const expiresAt = { type: 'string', format: 'date-time', description: 'When the token stops working (ISO-8601, in the future)' };

const metricsMap = { type: 'object', additionalProperties: { type: ['number', 'null'] } };

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'fedcare coordinator API',
    version: '1.0.0',
    description: 'Status, metrics and run control of the federated-learning coordinator. Hospitals train over Socket.IO (namespace /hospital), not over this API.',
  },
  servers: [{ url: '/' }],
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An admin token or a hospital token (fedcare token create).' } },
    schemas: {
      Error: error,
      Status: {
        type: 'object',
        required: ['current_round', 'total_rounds', 'active_clients', 'global_accuracy', 'privacy_budget', 'status', 'run_id'],
        properties: {
          run_id: { type: ['string', 'null'] },
          status: { type: 'string', enum: ['idle', 'running', 'completed', 'stopped', 'failed'] },
          current_round: { type: 'integer' },
          total_rounds: { type: 'integer' },
          stage: { type: ['string', 'null'] },
          active_clients: { type: 'array', items: { type: 'string' } },
          global_accuracy: { type: ['number', 'null'] },
          privacy_budget: { type: ['number', 'null'] },
          protocol_version: { type: 'integer' },
        },
      },
      RoundMetrics: {
        type: 'object',
        required: ['round_number', 'metrics', 'timestamp'],
        properties: {
          round_number: { type: 'integer' },
          metrics: metricsMap,
          per_hospital: { type: 'object', additionalProperties: metricsMap },
          participation: { type: 'array', items: { type: 'object' } },
          timestamp: { type: 'string', format: 'date-time' },
        },
      },
      RunConfig: {
        type: 'object',
        additionalProperties: false,
        properties: {
          strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
          rounds: { type: 'integer', minimum: 1 },
          local_epochs: { type: 'integer', minimum: 1 },
          batch_size: { type: 'integer', minimum: 1 },
          learning_rate: { type: 'number', exclusiveMinimum: 0 },
          proximal_mu: { type: 'number', minimum: 0 },
          fraction_fit: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
          fraction_evaluate: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
          min_fit_clients: { type: 'integer', minimum: 1 },
          min_evaluate_clients: { type: 'integer', minimum: 1 },
          min_available_clients: { type: 'integer', minimum: 1 },
          seq_len: { type: 'integer', minimum: 2 },
          seed: { type: 'integer' },
          stage_timeout_s: { type: 'number', exclusiveMinimum: 0 },
          wait_for_clients_s: { type: 'number', exclusiveMinimum: 0 },
          rejoin_grace_s: { type: 'number', minimum: 0 },
          round_failure_policy: { type: 'string', enum: ['retry', 'stop'] },
          max_round_retries: { type: 'integer', minimum: 0 },
          early_stopping_patience: { type: 'integer', minimum: 0 },
          checkpoint_every: { type: 'integer', minimum: 1 },
          secure_aggregation: { type: 'string', enum: ['none', 'secagg'], description: 'secagg: SecAgg+ — the coordinator learns only the weighted sum (weighted-sum strategies only)' },
          secagg_neighbours: { type: 'integer', minimum: 1, maximum: 254, description: 'neighbours per hospital in the SecAgg+ graph (absent: all)' },
          secagg_threshold: { type: 'integer', minimum: 2, maximum: 255, description: 'shares needed to recover a hospital’s secrets (absent: 3 or ⌊2k/3⌋+1)' },
          secagg_clip: { type: 'number', exclusiveMinimum: 0, description: 'each coordinate of an update is clipped to ±R before masking' },
          max_samples_per_hospital: { type: 'integer', minimum: 1, maximum: 10_000_000, description: 'run cap on a hospital’s weight; its bound is min(cap, the num_records it declared at its first sign-in of the run)' },
          update_norm_bound: { type: 'number', minimum: 0, description: 'plain mode: updates above this multiple of the round’s median L2 norm are scaled down to it (0: off)' },
          trimmed_beta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 0.5, description: 'trimmed mean: fraction trimmed at each end (default 0.2); must trim at least one of the hospitals a round expects' },
          krum_f: { type: 'integer', minimum: 0, description: 'Krum: Byzantine hospitals tolerated (default ⌊(n − 3)/2⌋; min_fit_clients ≥ 2f + 3)' },
          selection_aggregate: { type: 'string', enum: ['median', 'weighted'], description: 'how hospitals’ val_loss combine for the best model and early stopping' },
          straggler_factor: { type: 'number', minimum: 0, description: 'adaptive stage deadline: max(straggler_min_s, factor × median answer time) once half answered (0: off)' },
          straggler_min_s: { type: 'number', minimum: 0 },
          straggler_policy: { type: 'string', enum: ['none', 'exclude'] },
          straggler_strikes: { type: 'integer', minimum: 1, description: 'consecutive straggling rounds before exclusion' },
          dp: {
            description: 'Client-side differential privacy (DP-SGD, RDP accountant per hospital); absent = not private',
            type: 'object',
            additionalProperties: false,
            required: ['noise_multiplier', 'max_grad_norm', 'target_epsilon', 'delta'],
            properties: {
              noise_multiplier: { type: 'number', exclusiveMinimum: 0 },
              max_grad_norm: { type: 'number', exclusiveMinimum: 0 },
              target_epsilon: { type: 'number', exclusiveMinimum: 0 },
              delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
            },
          },
        },
      },
      TokenInfo: {
        type: 'object',
        required: ['token_id', 'role', 'created_at'],
        properties: {
          token_id: { type: 'string' },
          role: { type: 'string', enum: ['admin', 'observer', 'hospital'] },
          hospital_id: { type: 'string' },
          created_at: { type: 'string' },
          expires_at: { type: 'string' },
          revoked_at: { type: 'string' },
        },
      },
      Run: {
        type: 'object',
        required: ['run_id', 'status'],
        properties: {
          run_id: { type: 'string' },
          status: { type: 'string' },
          config: { type: 'object' },
          total_rounds: { type: 'integer' },
          last_completed_round: { type: 'integer' },
          reason: { type: 'string' },
          created_at: { type: 'string' },
        },
      },
    },
  },
  paths: {
    '/api/v1/status': {
      get: {
        operationId: 'getStatus',
        summary: 'Current training status',
        responses: { '200': { description: 'Status', content: { 'application/json': { schema: { $ref: '#/components/schemas/Status' } } } }, '401': errors['401'], '429': errors['429'] },
      },
    },
    '/api/v1/whoami': {
      get: {
        operationId: 'whoami',
        summary: "The bearer token's role and, for a hospital token, its hospital (the portal's sign-in)",
        responses: {
          '200': {
            description: 'Principal',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['role'],
                  properties: { role: { type: 'string', enum: ['admin', 'observer', 'hospital'] }, hospital_id: { type: 'string' } },
                },
              },
            },
          },
          '401': errors['401'], '429': errors['429'],
        },
      },
    },
    '/api/v1/metrics': {
      get: {
        operationId: 'getMetrics',
        summary: 'Per-round metrics of a run (seed spec 6.1 names)',
        parameters: [
          { name: 'run_id', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'round_number', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } },
        ],
        responses: {
          '200': {
            description: 'Metrics',
            content: {
              'application/json': {
                schema: { type: 'object', required: ['run_id', 'rounds'], properties: { run_id: { type: 'string' }, rounds: { type: 'array', items: { $ref: '#/components/schemas/RoundMetrics' } } } },
              },
            },
          },
          '400': errors['400'],
          '401': errors['401'], '429': errors['429'],
          '404': { description: 'Unknown run', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
    '/api/v1/runs': {
      get: {
        operationId: 'listRuns',
        summary: 'Run history, newest first',
        responses: {
          '200': { description: 'Runs', content: { 'application/json': { schema: { type: 'object', properties: { runs: { type: 'array', items: { $ref: '#/components/schemas/Run' } } } } } } },
          '401': errors['401'], '429': errors['429'],
        },
      },
    },
    '/api/v1/train/start': {
      post: {
        operationId: 'startTraining',
        summary: 'Start a new training run (admin)',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', properties: { config: { $ref: '#/components/schemas/RunConfig' } } } } },
        },
        responses: {
          '200': { description: 'Started', content: { 'application/json': { schema: { type: 'object', required: ['run_id', 'status'], properties: { run_id: { type: 'string' }, status: { type: 'string' }, config: { $ref: '#/components/schemas/RunConfig' } } } } } },
          ...errors,
          '409': { description: 'A run is already active', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
    '/api/v1/train/stop': {
      post: {
        operationId: 'stopTraining',
        summary: 'Stop the active run (admin)',
        parameters: [{ name: 'run_id', in: 'query', required: false, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'Stopped', content: { 'application/json': { schema: { type: 'object', required: ['status'], properties: { run_id: { type: 'string' }, status: { type: 'string' } } } } } },
          ...errors,
          '404': { description: 'No such active run', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
    '/api/v1/tokens': {
      get: {
        operationId: 'listTokens',
        summary: 'Stored credentials, without their secrets (admin)',
        responses: {
          '200': { description: 'Tokens', content: { 'application/json': { schema: { type: 'object', required: ['tokens'], properties: { tokens: { type: 'array', items: { $ref: '#/components/schemas/TokenInfo' } } } } } } },
          '401': errors['401'], '429': errors['429'],
          '403': errors['403'],
        },
      },
      post: {
        operationId: 'createToken',
        summary: 'Create a hospital or admin token (admin); the token is in this response only',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                oneOf: [
                  { type: 'object', additionalProperties: false, required: ['role', 'hospital_id'], properties: { role: { const: 'hospital' }, hospital_id: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]{0,31}$' }, expires_at: expiresAt } },
                  { type: 'object', additionalProperties: false, required: ['role'], properties: { role: { const: 'admin' }, expires_at: expiresAt } },
                  { type: 'object', additionalProperties: false, required: ['role'], properties: { role: { const: 'observer' }, expires_at: expiresAt } },
                ],
              },
            },
          },
        },
        responses: {
          '201': {
            description: 'Created',
            content: {
              'application/json': {
                schema: { type: 'object', required: ['token_id', 'token', 'role'], properties: { token_id: { type: 'string' }, token: { type: 'string' }, role: { type: 'string', enum: ['admin', 'observer', 'hospital'] }, hospital_id: { type: 'string' } } },
              },
            },
          },
          ...errors,
        },
      },
    },
    '/api/v1/tokens/revoke': {
      post: {
        operationId: 'revokeToken',
        summary: "Revoke a stored token (admin); connections that signed in with it are closed at once",
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', additionalProperties: false, required: ['token_id'], properties: { token_id: { type: 'string' } } } } } },
        responses: {
          '200': {
            description: 'Revoked',
            content: {
              'application/json': {
                schema: { type: 'object', required: ['token_id', 'revoked', 'disconnected'], properties: { token_id: { type: 'string' }, revoked: { const: true }, disconnected: { type: 'integer', minimum: 0 } } },
              },
            },
          },
          ...errors,
          '404': { description: 'No active stored token with this id', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
    '/api/v1/openapi.json': {
      get: { operationId: 'getOpenApi', summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1 document' } } },
    },
  },
} as const;
