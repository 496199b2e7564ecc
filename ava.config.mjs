// ava 7 (ava 8 needs Node 22): TypeScript tests through tsx, one process per
// file (the pager is process-wide), GC exposed for the finalizer tests.
export default {
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx', '--expose-gc'],
  files: ['__test__/**/*.spec.ts'],
  workerThreads: false,
  timeout: '2m',
}
