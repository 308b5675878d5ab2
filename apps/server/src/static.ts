/**
 * Serves built web apps (dashboard, portal) from directories under URL prefixes. Only GET/HEAD,
 * no directory listings, no path traversal; unknown paths inside an app fall back to its
 * index.html (client-side routes).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticApp {
  /** URL prefix with trailing slash, e.g. '/dashboard/'. */
  prefix: string;
  /** Directory holding index.html and assets. */
  dir: string;
}

/** Returns true when the request was answered (file, index.html fallback, redirect or 404 for a missing build). */
export function serveStatic(apps: readonly StaticApp[], req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  for (const app of apps) {
    const bare = app.prefix.replace(/\/$/, '');
    if (url.pathname === bare) {
      res.writeHead(301, { location: app.prefix });
      res.end();
      return true;
    }
    if (!url.pathname.startsWith(app.prefix)) continue;
    const root = path.resolve(app.dir);
    const index = path.join(root, 'index.html');
    if (!existsSync(index)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${app.prefix} is not built: run \`npm run build\`\n`);
      return true;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname.slice(app.prefix.length));
    } catch {
      res.writeHead(400).end();
      return true;
    }
    const file = path.resolve(root, rel);
    const inside = file === root || file.startsWith(root + path.sep);
    const target = inside && rel !== '' && existsSync(file) && statSync(file).isFile() ? file : index;
    if (!inside) {
      res.writeHead(403).end();
      return true;
    }
    const ext = path.extname(target);
    const immutable = target !== index && /\/assets\//.test(target);
    res.writeHead(200, {
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(target).pipe(res);
    return true;
  }
  return false;
}
