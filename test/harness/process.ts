/**
 * Spawned children with their output kept, for tests. One implementation, shared with the demo:
 * agent/demo/process.ts (`spawnKept`).
 */
export { spawnKept as spawnLogged, type KeptProcess as Spawned } from '../../agent/demo/process.js';
