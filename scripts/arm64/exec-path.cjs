// Preloaded into every arm64 node process of scripts/test-arm64.sh (NODE_OPTIONS=--require …).
//
// V8's background threads (concurrent compilers and GC) make node crash at random under qemu-user
// ("qemu: uncaught target signal 11"), most often on a busy machine. Measured on 2 cores at load 6-8, 4 parallel
// ts-node start-ups: 7 of 8 crashed as is, 0 of 8 with --single-threaded; qemu 7.2 (bookworm) and 10.0
// (bookworm-backports) both. That flag must be on node's command line (NODE_OPTIONS refuses V8 flags, and
// setting it at run time breaks the GC that is already running), but the tests spawn children with
// process.execPath. So the script starts node through a wrapper, ARM64_NODE_WRAPPER (`exec node
// --single-threaded "$@"`), and this makes process.execPath that wrapper, so every child comes back through it.
'use strict';
const wrapper = process.env.ARM64_NODE_WRAPPER;
if (process.arch === 'arm64' && wrapper) process.execPath = wrapper;
