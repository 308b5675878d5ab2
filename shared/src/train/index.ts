export * from './metrics';
export * from './train';
export * from './dp';
export * from './dp-fast';
