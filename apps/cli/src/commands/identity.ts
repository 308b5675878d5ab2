/** `fedcare identity`: the hospital's SecAgg+/HE signing identity, to publish to the other operators out of band. */
import { parseArgs } from 'node:util';
import { hospitalIdSchema } from '@fedcare/shared/data';
import { exportIdentityPublicKey, identityFingerprint, keyHex } from '@fedcare/shared/secagg';
import { CliError } from '../io';
import { defaultIdentityPath, loadOrCreateIdentityFile } from '../identity-file';

const HELP = `usage: fedcare identity --hospital H1 (--identity FILE | --data H1.ndjson) [--json]

Prints the hospital's identity public key (Ed25519) and its fingerprint. The key pair is generated
here, at random, the first time it is needed (by this command or by \`fedcare client\`), and kept in
--identity FILE (default: H1.identity.pem beside the data; mode 0600): it is not derived from any
token, so the coordinator cannot sign as this hospital. Give the public key to the other hospitals'
operators by a channel the coordinator does not control; each puts every hospital's line into a
roster file {"H1": "<key>", "H2": "<key>", …} and runs \`fedcare client --roster FILE\` (or loads it
in the portal), so no identity key relayed by the coordinator is ever trusted on first use. Read the
fingerprint aloud to check a key that came by e-mail. Nothing secret is printed. A lost key file
means a new identity: see the README (key rotation and loss).`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      hospital: { type: 'string' },
      identity: { type: 'string' },
      data: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.hospital) throw new CliError('--hospital is required', 2);
  if (!hospitalIdSchema.safeParse(values.hospital).success) throw new CliError(`--hospital: "${values.hospital}" is not a valid hospital id`, 2);
  if (!values.identity && !values.data) throw new CliError('--identity FILE or --data FILE is required (the key file is kept beside the data by default)', 2);
  const file = values.identity ?? defaultIdentityPath(values.data as string, values.hospital);
  const { identity, created } = await loadOrCreateIdentityFile(file).catch((e: unknown) => {
    throw new CliError((e as Error).message);
  });
  const key = await exportIdentityPublicKey(identity.publicKey);
  const fingerprint = await identityFingerprint(key);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ hospital: values.hospital, algorithm: 'Ed25519', public_key: keyHex(key), fingerprint, key_file: file, created })}\n`);
  } else {
    process.stdout.write(
      `${values.hospital} identity key (Ed25519): ${keyHex(key)}\nfingerprint: ${fingerprint}\nroster entry: ${JSON.stringify({ [values.hospital]: keyHex(key) }).slice(1, -1)}\n` +
        `key file: ${file}${created ? ' (created now)' : ''}\n`,
    );
  }
  return 0;
}
