/** One way to open whichever Store the coordinator is configured with (`fedcare serve --store sqlite|aws`). */
import type { Store } from '@fedcare/shared/fl';
import { openAwsStore } from './aws';
import { openSqliteStore } from './sqlite';

export type StoreSpec =
  | { kind: 'sqlite'; file: string }
  | { kind: 'aws'; tablePrefix: string; bucket: string; region?: string; createMissing?: boolean };

/**
 * Opens the store a spec names. SQLite: the file (created and migrated if needed; ':memory:' for a
 * private one). AWS: DynamoDB tables `${tablePrefix}fl-…` and the S3 bucket, endpoints from
 * AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3 (else the region's); rejects with one line
 * naming the endpoint and table or bucket when they are missing or unreachable.
 */
export async function openStore(spec: StoreSpec): Promise<Store> {
  switch (spec.kind) {
    case 'sqlite':
      return openSqliteStore(spec.file);
    case 'aws':
      return openAwsStore({
        tablePrefix: spec.tablePrefix,
        bucket: spec.bucket,
        ...(spec.region === undefined ? {} : { region: spec.region }),
        ...(spec.createMissing === undefined ? {} : { createMissing: spec.createMissing }),
      });
    default:
      throw new Error(`unknown store kind ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
  }
}
