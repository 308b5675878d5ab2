// The coordinator's REST model route and run report on a tabular run (task tabular): the MLP's
// manifest with the run's schema and its weights, never the risk model's bundle; the report shows
// the MLP and the schema.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints } from '@fedcare/shared/api';
import { TABULAR_BUNDLE_FORMAT, type TabularModelBundle, type TabularModelCard } from '@fedcare/shared/fl';
import type { TabularSchema } from '@fedcare/shared/tabular';
import { storeTabularRun } from '../../../shared/src/testing/tabular-run';
import type { RunningServer } from './server';
import { ADMIN_TOKEN, HOSPITAL_TOKENS, startTestServer } from './testing/fake-hospital';

const RUN = 'tab-rest-1';
let server: RunningServer;
let schema: TabularSchema;

async function get(target: string, token: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${server.url}${target}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  server = await startTestServer();
  ({ schema } = await storeTabularRun(server.store, RUN, ['H1', 'H2']));
});

afterAll(async () => {
  await server?.close();
});

describe('a tabular run on the REST API', () => {
  it('GET /api/v1/runs/{run_id}/models/latest: its MLP manifest with the run schema, its weights, a tabular card; a hospital sees only itself among the hospitals', async () => {
    const admin = await get(`/api/v1/runs/${RUN}/models/latest`, ADMIN_TOKEN);
    expect(admin.status).toBe(200);
    const body = endpoints.getModel.response.parse(admin.body) as unknown as { model: TabularModelBundle; weights_base64: string; model_card: TabularModelCard };
    expect(body.model).toMatchObject({ format: TABULAR_BUNDLE_FORMAT, task: 'tabular', run_id: RUN, round: 1, model: 'mlp', schema });
    expect(body.model.mlp).toMatchObject({ inputs: schema.width, classes: schema.classes.length });
    const weights = Buffer.from(body.weights_base64, 'base64');
    expect(weights.byteLength).toBe(body.model.weights.float32_count * 4);
    expect(createHash('sha256').update(weights).digest('hex')).toBe((await server.store.getModel(RUN, 'latest'))!.sha256);
    expect(body.model.weights.sha256).toBe((await server.store.getModel(RUN, 'latest'))!.sha256);
    expect(body.model.schema_sha256).toBe(createHash('sha256').update(JSON.stringify(schema)).digest('hex'));
    expect(body.model_card).toMatchObject({ format: 'fedcare-tabular-model-card/1', data: { target: 'readmitted', classes: schema.classes }, training: { hospitals: ['H1', 'H2'] }, metrics: { pooled: { auc_roc: 0.8 } } });
    const h1 = await get(`/api/v1/runs/${RUN}/models/1`, HOSPITAL_TOKENS.H1 as string);
    expect(h1.status).toBe(200);
    expect((h1.body as { model_card: TabularModelCard }).model_card.training.hospitals).toEqual(['H1']);
    expect((await get(`/api/v1/runs/${RUN}/models/latest`, HOSPITAL_TOKENS.H3 as string)).status).toBe(403);
  });

  it('GET /api/v1/runs/{run_id}/report: the model card section is the MLP and the schema', async () => {
    const res = await get(`/api/v1/runs/${RUN}/report`, ADMIN_TOKEN);
    expect(res.status).toBe(200);
    const { html } = endpoints.getRunReport.response.parse(res.body);
    expect(html).toMatch(/<section id="model-card"><h2>Model card<\/h2><p>Tabular model <code>mlp \d+→/);
    expect(html).toMatch(/Target <code>readmitted<\/code> over 300 training rows/);
    expect(html).not.toContain('Intended use');
  });
});
