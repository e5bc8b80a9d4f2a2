#!/usr/bin/env node
// The `meterlink` executable. All behaviour is in cli.ts; this file only owns the process exit status.
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv.slice(2));
