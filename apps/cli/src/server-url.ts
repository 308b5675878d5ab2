/**
 * `fedcare client --server URL`: a hospital's token and model updates cross this connection, so
 * plain http:// is for this machine only. To any other host it is refused unless --insecure says
 * the risk is known (a lab network, a TLS-terminating sidecar on the same host under another name).
 */
import { isIP } from 'node:net';

/** Whether a URL's host is this machine: localhost (and *.localhost), 127.0.0.0/8, ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Why the coordinator URL is refused (undefined when it may be used). */
export function serverUrlRefusal(url: string, insecure: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `--server: "${url}" is not a URL (https://host[:port])`;
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol !== 'http:') return `--server: ${u.protocol} is not supported (https:// or, on this machine, http://)`;
  if (isLoopbackHost(u.hostname) || insecure) return undefined;
  return `--server: plain http:// to ${u.hostname} would send this hospital's token and updates unencrypted; use https:// (--ca for a private CA), or --insecure if you accept that`;
}
