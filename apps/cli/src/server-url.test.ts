import { describe, expect, it } from 'vitest';
import { isLoopbackHost, serverUrlRefusal } from './server-url';

describe('fedcare client --server: plain http only to this machine', () => {
  it.each([
    ['https://coordinator.example', false, undefined],
    ['http://localhost:8080', false, undefined],
    ['http://127.0.0.1:8080', false, undefined],
    ['http://127.8.9.10', false, undefined],
    ['http://[::1]:8080', false, undefined],
    ['http://app.localhost', false, undefined],
    ['http://10.0.0.5:8080', true, undefined],
  ])('%s (--insecure %s) is used', (url, insecure, refusal) => {
    expect(serverUrlRefusal(url, insecure)).toBe(refusal);
  });

  it.each(['http://10.0.0.5:8080', 'http://coordinator.example', 'http://localhost.evil.example', 'http://[::ffff:a00:5]', 'http://128.0.0.1'])('%s is refused without --insecure', (url) => {
    expect(serverUrlRefusal(url, false)).toMatch(/plain http:\/\/ to .* unencrypted; use https:\/\/.*--insecure/);
  });

  it('refuses what is not an http(s) URL', () => {
    expect(serverUrlRefusal('coordinator:8080', false)).toMatch(/not supported|not a URL/);
    expect(serverUrlRefusal('ftp://x', true)).toMatch(/ftp: is not supported/);
  });

  it('knows loopback names', () => {
    expect(['localhost', '127.0.0.1', '[::1]', 'LOCALHOST'].map(isLoopbackHost)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', 'example.com', '::'].map(isLoopbackHost)).toEqual([false, false, false]);
  });
});
