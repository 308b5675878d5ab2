/** The coordinator's Store: SQLite by default, plus credentials (DB and env tokens). The Store contract and its types live in @fedcare/shared/fl. */
export { openSqliteStore, SqliteStore, SCHEMA_VERSION, MIGRATIONS, type SqliteStoreOptions } from './sqlite';
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
