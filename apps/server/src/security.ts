/**
 * What the coordinator tells browsers, and which browser origins it answers.
 *
 * Headers (helmet, on every response): a Content-Security-Policy per surface — the portal may
 * compile WebAssembly (`'wasm-unsafe-eval'`: TF.js's WASM backend, node-seal) and start its
 * same-origin module worker; the dashboard needs neither; the API and everything else get
 * `default-src 'none'` — never `'unsafe-inline'`, and `'unsafe-eval'` only in the training
 * worker's own policy (node-seal's bindings need it, see below); `frame-ancestors 'none'`;
 * `X-Content-Type-Options: nosniff`; `Referrer-Policy: no-referrer`; HSTS when the coordinator
 * itself speaks TLS. Violations are reported to `/csp-report` (logged and counted). The portal is
 * cross-origin isolated (COOP `same-origin` + COEP `require-corp`), which threaded WASM needs.
 *
 * Origins: a browser request (one with an Origin header) is answered only when its origin is the
 * coordinator's own — the scheme and Host it was reached by, so a load balancer's public name
 * works without configuration — or one of FEDCARE_ALLOWED_ORIGINS. Requests without an Origin
 * (the headless hospitals, curl, a scraper) are not browser requests and are not restricted here;
 * their tokens are what protects them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

export type Surface = 'portal' | 'portal-worker' | 'dashboard' | 'api';

const COMMON = {
  defaultSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  objectSrc: ["'none'"],
  reportUri: ['/csp-report'],
};

/** The web apps' directives: same-origin scripts, styles, images, connections (REST and Socket.IO). */
const APP = {
  ...COMMON,
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  // 'self' covers the same host's ws:/wss: (CSP Level 3).
  connectSrc: ["'self'"],
  manifestSrc: ["'self'"],
};

const PORTAL = { ...APP, scriptSrc: ["'self'", "'wasm-unsafe-eval'"], workerSrc: ["'self'"] };

const POLICIES: Record<Surface, Record<string, string[]>> = {
  // WebAssembly compilation (TF.js WASM backend, node-seal's BFV) and the training worker.
  portal: PORTAL,
  // The training worker's own policy (a worker's CSP is the one its script is served with): it
  // also allows 'unsafe-eval', because node-seal's Emscripten bindings (embind) build their method
  // callers with `new Function`; without it HE mode cannot run. And blob: workers and scripts:
  // TF.js's threaded WASM starts its pthreads as workers from a blob: URL that load the backend's
  // own factory from another blob: (tfjs-backend-wasm's init(); there is no option to serve them as
  // files). Both blobs are built by TF.js's bundled code in this worker, never from data it
  // receives. The page keeps the strict policy: the worker has no DOM.
  'portal-worker': { ...PORTAL, scriptSrc: ["'self'", "'wasm-unsafe-eval'", "'unsafe-eval'", 'blob:'], workerSrc: ["'self'", 'blob:'] },
  dashboard: APP,
  api: COMMON,
};

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

function middleware(surface: Surface, tls: boolean): Middleware {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: POLICIES[surface] },
    // Cross-origin isolation for the portal only (SharedArrayBuffer, threaded WASM); the dashboard
    // and the API are not isolated and keep helmet's defaults for COOP/CORP.
    crossOriginEmbedderPolicy: surface === 'portal' || surface === 'portal-worker' ? { policy: 'require-corp' } : false,
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: tls ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    xFrameOptions: { action: 'deny' },
  }) as unknown as Middleware;
}

/** Which surface a path belongs to. */
export function surfaceOf(pathname: string): Surface {
  if (/^\/hospital\/assets\/training\.worker-[\w-]+\.js$/.test(pathname)) return 'portal-worker';
  if (pathname === '/hospital' || pathname.startsWith('/hospital/')) return 'portal';
  if (pathname === '/dashboard' || pathname.startsWith('/dashboard/')) return 'dashboard';
  return 'api';
}

/** Sets the security headers of `surface` on `res` (before anything is written). */
export function securityHeaders(tls: boolean): (req: IncomingMessage, res: ServerResponse, surface: Surface) => void {
  const bySurface: Record<Surface, Middleware> = {
    portal: middleware('portal', tls),
    'portal-worker': middleware('portal-worker', tls),
    dashboard: middleware('dashboard', tls),
    api: middleware('api', tls),
  };
  return (req, res, surface) => {
    let failed: unknown;
    bySurface[surface](req, res, (err) => {
      failed = err;
    });
    if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
  };
}

/** FEDCARE_ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port]); each is checked. */
export function parseAllowedOrigins(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  return value.split(',').map((raw) => {
    const s = raw.trim();
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new Error(`FEDCARE_ALLOWED_ORIGINS: "${s}" is not an origin (scheme://host[:port])`);
    }
    if (!['http:', 'https:'].includes(u.protocol) || u.origin !== s.replace(/\/$/, '')) {
      throw new Error(`FEDCARE_ALLOWED_ORIGINS: "${s}" is not an origin (scheme://host[:port], no path)`);
    }
    return u.origin;
  });
}

/** The origin a request reached this coordinator by: its scheme (or the load balancer's X-Forwarded-Proto) and Host. */
export function ownOrigin(req: IncomingMessage, tls: boolean): string | undefined {
  const host = req.headers.host;
  if (!host) return undefined;
  const forwarded = req.headers['x-forwarded-proto'];
  const proto = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim() || (tls ? 'https' : 'http');
  return `${proto}://${host}`.toLowerCase();
}

/**
 * Undefined when the request may be answered; else why not. No Origin header: not a browser
 * request, allowed. `Origin: null` (sandboxed frames, file://) is refused.
 */
export function originRefusal(req: IncomingMessage, allowed: readonly string[], tls: boolean): string | undefined {
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  const o = origin.toLowerCase();
  if (o === ownOrigin(req, tls) || allowed.includes(o)) return undefined;
  return `origin ${origin} is not allowed (the coordinator answers its own origin${allowed.length ? ` and ${allowed.join(', ')}` : ''}; set FEDCARE_ALLOWED_ORIGINS for others)`;
}
