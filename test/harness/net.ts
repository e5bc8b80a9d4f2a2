/** Free loopback ports and connection probes, shared with the demo (agent/demo/process.ts). */
export { canConnect, freePort } from '../../agent/demo/process.js';
