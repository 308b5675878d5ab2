import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from './static';

describe('serveStatic', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fc-static-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(path.join(dir, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(path.join(path.dirname(dir), 'secret.txt'), 'nope');
    const missing = path.join(dir, 'not-built');
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (!serveStatic([{ prefix: '/dashboard/', dir }, { prefix: '/hospital/', dir: missing }], req, res, url)) res.writeHead(418).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('serves files with types, falls back to index.html, redirects the bare prefix', async () => {
    const js = await fetch(`${base}/dashboard/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    expect(await js.text()).toBe('console.log(1)');
    const route = await fetch(`${base}/dashboard/runs/abc`);
    expect(await route.text()).toContain('<title>dash</title>');
    const bare = await fetch(`${base}/dashboard`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/dashboard/');
  });

  it('refuses path traversal and says when an app is not built', async () => {
    // '..%2f' survives URL normalisation and decodes to '../'
    const up = await fetch(`${base}/dashboard/..%2fsecret.txt`);
    expect(up.status).toBe(403);
    const notBuilt = await fetch(`${base}/hospital/`);
    expect(notBuilt.status).toBe(404);
    expect(await notBuilt.text()).toMatch(/not built/);
    expect((await fetch(`${base}/other`)).status).toBe(418);
  });
});
