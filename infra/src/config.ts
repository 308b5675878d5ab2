/**
 * The deployment's parameters: one typed object with defaults, read from CDK context
 * (`cdk synth -c region=eu-west-1 -c certificateArn=…`, or the `context` block of cdk.json) and
 * checked before any construct is made, so a bad value fails in one line naming it.
 *
 * | context key          | default                         | meaning |
 * |----------------------|---------------------------------|---------|
 * | `region`             | `us-east-1`                     | the AWS region of every stack (the account is the CLI's) |
 * | `availabilityZones`  | `<region>a,<region>b`           | the two AZs of the VPC (fixed names: synth does no lookup) |
 * | `imageUri`           | —                               | the coordinator image, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/fedcare:1.4.0`; wins over the next two |
 * | `imageRepository`    | `fedcare`                       | an ECR repository of this account and region … |
 * | `imageTag`           | `latest`                        | … and the tag (or `sha256:` digest) to run |
 * | `certificateArn`     | a placeholder (synth only)      | the ACM certificate of the HTTPS listener, in `region` |
 * | `allowedOrigins`     | none                            | browser origins besides the coordinator's own (FEDCARE_ALLOWED_ORIGINS), comma-separated |
 * | `alarmEmail`         | none (no subscription)          | the e-mail address subscribed to the alarm topic |
 * | `waf`                | `true`                          | AWS WAF on the load balancer (AWS managed common rules + a per-IP rate rule) |
 * | `deployment`         | `production`                    | the EMF `Deployment` dimension (FEDCARE_DEPLOYMENT) the alarms select |
 * | `natGateways`        | `1`                             | NAT gateways (1, as seed spec 5.2 prices it; 2 for one per AZ) |
 */

/** The parameters after defaults and checks. */
export interface FedcareConfig {
  readonly region: string;
  readonly availabilityZones: readonly string[];
  readonly image: { readonly kind: 'uri'; readonly uri: string } | { readonly kind: 'ecr'; readonly repositoryName: string; readonly tag: string };
  /** The ACM certificate; `certificatePlaceholder` when none was given (synth works, a deploy fails). */
  readonly certificateArn: string;
  readonly certificatePlaceholder: boolean;
  readonly allowedOrigins: readonly string[];
  readonly alarmEmail?: string;
  readonly waf: boolean;
  readonly deployment: string;
  readonly natGateways: number;
}

/** The raw parameters: strings, as `-c key=value` gives them (booleans and numbers are accepted too, as cdk.json gives them). */
export type FedcareContext = Partial<Record<(typeof CONTEXT_KEYS)[number], string | boolean | number | undefined>>;

export const CONTEXT_KEYS = ['region', 'availabilityZones', 'imageUri', 'imageRepository', 'imageTag', 'certificateArn', 'allowedOrigins', 'alarmEmail', 'waf', 'deployment', 'natGateways'] as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const ECR_URI = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9][a-z0-9._/-]*)(?::([\w][\w.-]{0,127})|@(sha256:[0-9a-f]{64}))$/;
const REPOSITORY = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG = /^(?:[\w][\w.-]{0,127}|sha256:[0-9a-f]{64})$/;
const CERTIFICATE = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/;
const DEPLOYMENT = /^[A-Za-z0-9_.-]{1,64}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** An ECR image URI split into its parts; undefined for any other registry. */
export function parseEcrUri(uri: string): { account: string; region: string; repositoryName: string; tagOrDigest: string } | undefined {
  const m = ECR_URI.exec(uri);
  if (!m) return undefined;
  return { account: m[1] as string, region: m[2] as string, repositoryName: m[3] as string, tagOrDigest: (m[4] ?? m[5]) as string };
}

function text(ctx: FedcareContext, key: keyof FedcareContext): string | undefined {
  const v = ctx[key];
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' ? undefined : s;
}

function bool(ctx: FedcareContext, key: keyof FedcareContext, fallback: boolean): boolean {
  const s = text(ctx, key);
  if (s === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(s)) return true;
  if (/^(0|false|no|off)$/i.test(s)) return false;
  throw new ConfigError(`context ${key}: expected true or false, got "${s}"`);
}

/** The parameters with defaults applied; throws ConfigError naming the first bad one. */
export function resolveConfig(ctx: FedcareContext = {}): FedcareConfig {
  const region = text(ctx, 'region') ?? 'us-east-1';
  if (!REGION.test(region)) throw new ConfigError(`context region: "${region}" is not an AWS region name (e.g. eu-west-1)`);

  const azs = (text(ctx, 'availabilityZones') ?? `${region}a,${region}b`).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (azs.length !== 2 || new Set(azs).size !== 2) throw new ConfigError(`context availabilityZones: two different zones are needed, got "${azs.join(',')}"`);
  for (const az of azs) {
    if (!new RegExp(`^${region}[a-z]$`).test(az)) throw new ConfigError(`context availabilityZones: "${az}" is not a zone of ${region}`);
  }

  let image: FedcareConfig['image'];
  const uri = text(ctx, 'imageUri');
  if (uri !== undefined) {
    if (/\s/.test(uri) || !/^[\w.-]+(:\d+)?\/.+[:@].+$/.test(uri)) throw new ConfigError(`context imageUri: "${uri}" is not an image reference with a tag or digest (registry/repository:tag)`);
    const ecr = parseEcrUri(uri);
    if (uri.includes('.dkr.ecr.') && ecr === undefined) throw new ConfigError(`context imageUri: "${uri}" looks like an ECR image but is not ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG (or @sha256:…)`);
    image = { kind: 'uri', uri };
  } else {
    const repositoryName = text(ctx, 'imageRepository') ?? 'fedcare';
    const tag = text(ctx, 'imageTag') ?? 'latest';
    if (!REPOSITORY.test(repositoryName)) throw new ConfigError(`context imageRepository: "${repositoryName}" is not an ECR repository name`);
    if (!TAG.test(tag)) throw new ConfigError(`context imageTag: "${tag}" is not an image tag or sha256 digest`);
    image = { kind: 'ecr', repositoryName, tag };
  }

  const givenCertificate = text(ctx, 'certificateArn');
  if (givenCertificate !== undefined) {
    const m = CERTIFICATE.exec(givenCertificate);
    if (!m) throw new ConfigError(`context certificateArn: "${givenCertificate}" is not an ACM certificate ARN`);
    if (m[1] !== region) throw new ConfigError(`context certificateArn: the certificate is in ${m[1]}, the load balancer in ${region} (an ALB takes a certificate of its own region)`);
  }
  const certificateArn = givenCertificate ?? `arn:aws:acm:${region}:000000000000:certificate/00000000-0000-0000-0000-000000000000`;

  const allowedOrigins = (text(ctx, 'allowedOrigins') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const origin of allowedOrigins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (url === undefined || !/^https?:$/.test(url.protocol) || url.origin !== origin) {
      throw new ConfigError(`context allowedOrigins: "${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`);
    }
  }

  const alarmEmail = text(ctx, 'alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) throw new ConfigError(`context alarmEmail: "${alarmEmail}" is not an e-mail address`);

  const deployment = text(ctx, 'deployment') ?? 'production';
  if (!DEPLOYMENT.test(deployment)) throw new ConfigError(`context deployment: "${deployment}" must be 1–64 letters, digits, '_', '-' or '.'`);

  const natText = text(ctx, 'natGateways') ?? '1';
  const natGateways = Number(natText);
  if (natGateways !== 1 && natGateways !== 2) throw new ConfigError(`context natGateways: 1 or 2, got "${natText}"`);

  return {
    region,
    availabilityZones: azs,
    image,
    certificateArn,
    certificatePlaceholder: givenCertificate === undefined,
    allowedOrigins,
    ...(alarmEmail !== undefined ? { alarmEmail } : {}),
    waf: bool(ctx, 'waf', true),
    deployment,
    natGateways,
  };
}
