export * from './csv';
export * from './schema';
export * from './mlp';
export * from './train';
export * from './wire';
export * from './client';
export * from './partition';
