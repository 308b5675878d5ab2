/** @fedcare/server: the coordinator as a library, for the `fedcare serve` / `simulate` hosts. */
export { startServer, MAX_MESSAGE_BYTES, DEFAULT_LIMITS, type RunningServer, type ServerLimits, type ServerOptions } from './server';
export { Coordinator, RunConflictError } from './coordinator';
export { SocketGrid } from './grid';
export { openApiDocument } from './http';
export { openSqliteStore, openStore, type StoreSpec } from './store';
export { TokenAuthority, generateToken, parseHospitalTokens } from './store/tokens';
export { serveStatic, type StaticApp } from './static';
export { tokenJson } from './http';
export { parseAllowedOrigins } from './security';
export { writeRoundEmf, roundMetricValues, EMF_NAMESPACE, type EmfOptions } from './emf';
export { MlflowTracker, mlflowOptionsFromEnv, type MlflowOptions, type MlflowStats } from './mlflow';
