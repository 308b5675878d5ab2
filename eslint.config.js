// Lint for the whole repo. The boundary rules keep shared/src host-free: it must run in a browser
// tab, a Web Worker and Node alike (no DOM, no node:*, no React, no socket.io).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const hostModules = {
  patterns: [
    { group: ['node:*'], message: 'shared/src runs in browsers and workers too: no node:* modules.' },
    { group: ['react', 'react-dom', 'react/*'], message: 'shared/src has no UI.' },
    { group: ['socket.io', 'socket.io-client'], message: 'shared/src knows no transport: hosts implement Grid.' },
    { group: ['@tensorflow/tfjs', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-*'], message: 'shared/src imports @tensorflow/tfjs-core only; hosts register backends.' },
    { group: ['fs', 'path', 'os', 'crypto', 'child_process', 'worker_threads'], message: 'shared/src runs in browsers too: use globalThis.crypto etc.' },
  ],
};

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/cdk.out/**', '.fedcare/**', 'data/**', 'test-results/**', '.scratch/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['shared/src/**/*.ts'],
    ignores: ['shared/src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', hostModules],
      'no-restricted-globals': ['error', 'window', 'document', 'navigator', 'localStorage', 'indexedDB', 'process', 'Buffer', 'require', '__dirname'],
    },
  },
  {
    // Randomness for privacy and keys is the CSPRNG (shared/src/util/csprng.ts), never Math.random.
    files: ['shared/src/**/*.ts', 'apps/*/src/**/*.ts', 'apps/*/src/**/*.tsx'],
    ignores: ['**/*.test.ts', '**/*.test.tsx'],
    rules: { 'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Math.random is not a CSPRNG: use crypto.getRandomValues (shared/src/util/csprng.ts) or the seeded Rng where reproducibility, not secrecy, is wanted.' }] },
  },
  {
    // The DP-SGD path adds only exact discrete Gaussian noise (issue 14): no floating-point Gaussian
    // (Box–Muller's log/cos/sin, or any other transcendental of a random draw) may come back here.
    files: ['shared/src/train/dp.ts', 'shared/src/train/dp-fast.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['random', 'log', 'log1p', 'cos', 'sin', 'exp'].map((property) => ({
          object: 'Math',
          property,
          message: 'the DP path samples noise only with the exact discrete Gaussian (shared/src/privacy/discrete-gaussian.ts); a floating-point transform of random draws leaks (Mironov 2012).',
        })),
      ],
      'no-restricted-imports': ['error', { ...hostModules, paths: [{ name: '../util/csprng', importNames: ['gaussians'], message: 'no floating-point Gaussian on the DP path' }] }],
    },
  },
  {
    files: ['scripts/**/*.mjs', 'apps/cli/bin/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  { files: ['**/*.d.ts'], rules: { 'no-var': 'off' } },
);
