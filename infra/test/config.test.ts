// The deployment parameters (CDK context): defaults, and one clear error naming a bad value.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseEcrUri, resolveConfig } from '../src/config';

describe('resolveConfig', () => {
  it('has defaults that synthesize offline: us-east-1 over a and b, the fedcare ECR repository, WAF on, one NAT gateway, a placeholder certificate', () => {
    expect(resolveConfig({})).toEqual({
      region: 'us-east-1',
      availabilityZones: ['us-east-1a', 'us-east-1b'],
      image: { kind: 'ecr', repositoryName: 'fedcare', tag: 'latest' },
      certificateArn: 'arn:aws:acm:us-east-1:000000000000:certificate/00000000-0000-0000-0000-000000000000',
      certificatePlaceholder: true,
      allowedOrigins: [],
      waf: true,
      deployment: 'production',
      natGateways: 1,
    });
  });

  it('takes every parameter from strings, as `cdk -c key=value` gives them', () => {
    const c = resolveConfig({
      region: 'eu-west-1',
      availabilityZones: ' eu-west-1c , eu-west-1a ',
      imageRepository: 'fl/coordinator',
      imageTag: '1.4.0',
      certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
      allowedOrigins: 'https://a.example, http://localhost:5173',
      alarmEmail: 'ops@example.org',
      waf: 'false',
      deployment: 'consortium-eu',
      natGateways: '2',
    });
    expect(c).toMatchObject({
      region: 'eu-west-1',
      availabilityZones: ['eu-west-1c', 'eu-west-1a'],
      image: { kind: 'ecr', repositoryName: 'fl/coordinator', tag: '1.4.0' },
      certificatePlaceholder: false,
      allowedOrigins: ['https://a.example', 'http://localhost:5173'],
      alarmEmail: 'ops@example.org',
      waf: false,
      deployment: 'consortium-eu',
      natGateways: 2,
    });
    expect(resolveConfig({ waf: false, natGateways: 1 })).toMatchObject({ waf: false, natGateways: 1 });
    expect(resolveConfig({ imageUri: 'ghcr.io/org/fedcare@sha256:' + 'a'.repeat(64) }).image).toEqual({ kind: 'uri', uri: `ghcr.io/org/fedcare@sha256:${'a'.repeat(64)}` });
  });

  it.each([
    [{ region: 'Europe' }, /context region: "Europe"/],
    [{ availabilityZones: 'us-east-1a' }, /two different zones/],
    [{ availabilityZones: 'us-east-1a,us-east-1a' }, /two different zones/],
    [{ region: 'eu-west-1', availabilityZones: 'us-east-1a,us-east-1b' }, /"us-east-1a" is not a zone of eu-west-1/],
    [{ imageUri: 'fedcare' }, /context imageUri/],
    [{ imageUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/fedcare' }, /context imageUri/],
    [{ imageRepository: 'Fedcare' }, /context imageRepository/],
    [{ imageTag: 'a b' }, /context imageTag/],
    [{ certificateArn: 'arn:aws:iam::123456789012:server-certificate/x' }, /not an ACM certificate ARN/],
    [{ region: 'eu-west-1', certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555' }, /the certificate is in us-east-1, the load balancer in eu-west-1/],
    [{ allowedOrigins: 'https://a.example/' }, /"https:\/\/a\.example\/" is not an origin/],
    [{ allowedOrigins: 'a.example' }, /not an origin/],
    [{ alarmEmail: 'ops' }, /context alarmEmail/],
    [{ waf: 'maybe' }, /context waf: expected true or false/],
    [{ deployment: 'prod env' }, /context deployment/],
    [{ natGateways: '3' }, /context natGateways: 1 or 2/],
  ])('refuses %j', (ctx, message) => {
    expect(() => resolveConfig(ctx)).toThrow(ConfigError);
    expect(() => resolveConfig(ctx)).toThrow(message);
  });
});

describe('parseEcrUri', () => {
  it('splits an ECR image URI by tag or digest, and leaves other registries alone', () => {
    expect(parseEcrUri('123456789012.dkr.ecr.eu-west-1.amazonaws.com/fl/coordinator:1.4.0')).toEqual({ account: '123456789012', region: 'eu-west-1', repositoryName: 'fl/coordinator', tagOrDigest: '1.4.0' });
    expect(parseEcrUri(`123456789012.dkr.ecr.eu-west-1.amazonaws.com/fedcare@sha256:${'b'.repeat(64)}`)?.tagOrDigest).toBe(`sha256:${'b'.repeat(64)}`);
    expect(parseEcrUri('docker.io/library/node:24-slim')).toBeUndefined();
  });
});
