export * from './errors';
export * from './messages';
export * from './size';
export * from './run-config-file';
