/**
 * The coordinator's Store: SQLite by default or DynamoDB + S3 (openStore picks by spec), plus
 * credentials (DB and env tokens). The Store contract and its types live in @fedcare/shared/fl.
 * The AWS SDK is loaded only when an aws store is opened.
 */
export { openSqliteStore, SqliteStore, SCHEMA_VERSION, MIGRATIONS, type SqliteStoreOptions } from './sqlite';
export { openAwsStore, AwsStore, AWS_TABLES, type AwsStoreOptions } from './aws';
export { openStore, type StoreSpec } from './open';
export {
  TokenAuthority,
  TokenConfigError,
  describePrincipal,
  envTokens,
  generateToken,
  hashToken,
  isValidHospitalId,
  parseAdminToken,
  parseHospitalTokens,
  HOSPITAL_ID_PATTERN,
  MIN_ENV_TOKEN_LENGTH,
  type EnvTokens,
  type HospitalToken,
} from './tokens';
