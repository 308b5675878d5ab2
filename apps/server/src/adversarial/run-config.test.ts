// The robust-aggregation settings over REST (issue 13): trimmed_beta and krum_f are part of the run
// configuration a deployed coordinator accepts, and a trimmed mean that trims nothing is refused with
// a clear error instead of silently averaging every update.
import { afterEach, expect, it } from 'vitest';
import type { RunningServer } from '../server';
import { ADMIN_TOKEN, startTestServer } from '../testing/fake-hospital';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(config: Record<string, unknown>) {
  const res = await fetch(`${server!.url}/api/v1/train/start`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ config }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

it.each([
  { config: { strategy: 'trimmed', min_fit_clients: 3, min_available_clients: 3 }, status: 400, error: /^config\.trimmed_beta: a trimmed mean with trimmed_beta 0\.2 over the 3 hospitals a round expects .* trims nothing/ },
  { config: { strategy: 'krum', krum_f: 1, min_fit_clients: 3 }, status: 400, error: /^config\.krum_f: .*min_fit_clients ≥ 5/ },
  { config: { strategy: 'trimmed', trimmed_beta: 0.34, min_fit_clients: 3, min_available_clients: 3, wait_for_clients_s: 1 }, status: 200 },
  { config: { strategy: 'krum', krum_f: 1, min_fit_clients: 5, min_available_clients: 5, wait_for_clients_s: 1 }, status: 200 },
])('POST /api/v1/train/start $config → $status', async ({ config, status, error }) => {
  server = await startTestServer();
  const res = await start(config);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  if (error) expect((res.body.error as { message: string }).message).toMatch(error);
  else expect(res.body.config).toMatchObject(config);
  await server.coordinator.stop(undefined, 'test');
});
