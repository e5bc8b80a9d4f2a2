#!/usr/bin/env node
// The `meterlink` executable. All behaviour is in cli.ts; this file only owns the process exit status.
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2));
// Exit explicitly: aws-crt keeps native handles alive for a while after an MQTT client is closed
// (awslabs/aws-crt-nodejs#600), which would keep a finished command hanging.
process.exit(code);
