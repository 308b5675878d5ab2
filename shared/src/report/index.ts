export * from './plot';
export * from './report';
