export * from './metrics';
export * from './train';
export * from './dp';
export * from './dp-fast';
export * from './step-check';
export * from './throughput';
export * from './score';
export * from './calibration';
