export * from './metrics';
export * from './train';
export * from './dp';
