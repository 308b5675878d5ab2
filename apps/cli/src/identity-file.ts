/**
 * The headless hospital's identity key on disk: its Ed25519 private key as PKCS#8 PEM (what
 * `openssl pkey -in H1.identity.pem -pubout` reads), generated here with WebCrypto on first use and
 * loaded after. Nothing of it comes from a credential, so the coordinator, which issues and
 * receives the token, cannot derive it. The file is created with mode 0600 from the start (a
 * temporary file opened 0600 and exclusive, then hard-linked into place, so no process ever sees
 * it partial or readable by others, and two first uses at once end with one key), and a key file
 * that others can read is refused, as ssh refuses one.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { importIdentityPublicKey, type KeyPair } from '@fedcare/shared/secagg';

/** Default key file for a data file: H1.ndjson → H1.identity.pem beside it. */
export function defaultIdentityPath(dataFile: string, hospitalId: string): string {
  const dir = path.extname(dataFile) ? path.dirname(dataFile) : dataFile;
  return path.join(dir, `${hospitalId}.identity.pem`);
}

export class IdentityFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityFileError';
  }
}

const pem = (der: Uint8Array) => `-----BEGIN PRIVATE KEY-----\n${Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;

/** The key pair in a PEM file: the private key non-extractable in WebCrypto, the public key derived from it. */
async function readIdentity(file: string, text: string): Promise<KeyPair> {
  let raw: Buffer;
  let der: Buffer;
  try {
    const key = createPrivateKey({ key: text, format: 'pem' });
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType ?? 'symmetric'} key, not Ed25519`);
    der = key.export({ format: 'der', type: 'pkcs8' });
    raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x as string, 'base64url');
  } catch (e) {
    throw new IdentityFileError(`identity key ${file} cannot be read (${(e as Error).message}); restore it from a backup, or move it away to create a new identity (the other hospitals must then re-pin it)`);
  }
  try {
    const privateKey = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
    return { privateKey, publicKey: await importIdentityPublicKey(Uint8Array.from(raw), 'Ed25519') };
  } finally {
    der.fill(0);
  }
}

/**
 * The hospital's identity from `file`, created there on first use. `created` says whether this call
 * generated it (the operator then publishes its fingerprint: `fedcare identity`).
 */
export async function loadOrCreateIdentityFile(file: string): Promise<{ identity: KeyPair; created: boolean }> {
  const existing = readIfPresent(file);
  if (existing !== undefined) return { identity: await readIdentity(file, existing), created: false };
  // Extractable only long enough to write it out; the pair kept in memory is re-imported non-extractable.
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as KeyPair;
  const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', 0o600);
    } catch (e) {
      throw new IdentityFileError(`cannot create the identity key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      writeSync(fd, pem(der));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, file);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new IdentityFileError(`cannot create the identity key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      // Another process created it first: use that one.
    }
  } finally {
    der.fill(0);
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
  }
  return { identity: await readIdentity(file, readIfPresent(file) as string), created };
}

/** The file's text, or undefined when there is none; refuses a key file that group or others can read. */
function readIfPresent(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IdentityFileError(`identity key ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
    throw new IdentityFileError(`identity key ${file} is accessible to other users (mode ${(statSync(file).mode & 0o777).toString(8)}); chmod 600 it after checking nobody copied it`);
  }
  return text;
}
