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
    files: ['scripts/**/*.mjs', 'apps/cli/bin/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  { files: ['**/*.d.ts'], rules: { 'no-var': 'off' } },
);
