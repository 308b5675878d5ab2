/** Where the built web apps live in this repository (served by `fedcare serve` / `npm start`). */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StaticApp } from '@fedcare/server';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function webApps(): StaticApp[] {
  return [
    { prefix: '/dashboard/', dir: path.join(ROOT, 'apps/dashboard/dist') },
    { prefix: '/hospital/', dir: path.join(ROOT, 'apps/hospital-portal/dist') },
  ];
}
