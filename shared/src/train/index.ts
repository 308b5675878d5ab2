export * from './metrics';
export * from './train';
