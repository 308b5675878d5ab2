/**
 * Builds the browser apps. One app per build, picked by `--mode <app>` (or FEDCARE_APP; default
 * `dashboard`): `npx vite build` builds the dashboard into apps/dashboard/dist with base /dashboard/,
 * `npx vite build --mode hospital-portal` the portal into apps/hospital-portal/dist with base
 * /hospital/ (its training worker is an ES-module worker, so it may load the WebGPU backend lazily).
 * `npx vite --mode dashboard` serves it for development, proxying REST and Socket.IO to a
 * coordinator at FEDCARE_SERVER (default http://localhost:8080).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

interface WebApp {
  root: string;
  base: string;
}

const APPS: Record<string, WebApp> = {
  dashboard: { root: 'apps/dashboard', base: '/dashboard/' },
  'hospital-portal': { root: 'apps/hospital-portal', base: '/hospital/' },
};

export default defineConfig(({ mode }) => {
  const name = APPS[mode] ? mode : (process.env.FEDCARE_APP ?? 'dashboard');
  const app = APPS[name];
  if (!app) throw new Error(`unknown web app "${name}"; known: ${Object.keys(APPS).join(', ')}`);
  const root = fileURLToPath(new URL(`./${app.root}/`, import.meta.url));
  const server = process.env.FEDCARE_SERVER ?? 'http://localhost:8080';
  return {
    root,
    base: app.base,
    plugins: [react()],
    // React + recharts + zod + socket.io-client are ~800 kB minified (~235 kB gzip) in one chunk, and
    // the portal's worker carries TF.js with three backends (~2 MB): fine for pages loaded once per session.
    build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 3072 },
    worker: { format: 'es' as const },
    server: {
      proxy: {
        '/api': server,
        '/socket.io': { target: server, ws: true },
      },
    },
  };
});
