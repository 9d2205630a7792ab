#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { main, runsServer } from '../dist/src/cli/main.js';

// A command that sends a few requests and exits spends more on V8 optimizing undici's WebAssembly HTTP
// parser (about 0.15 s and 35 MiB for `kplex list`) than the optimized parser ever saves it; servers
// keep it. Set before the parser is compiled, when a command's implementation is imported.
if (!runsServer(process.argv)) setFlagsFromString('--liftoff-only');

const code = await main(process.argv);
// Exit as soon as the output is out: left to itself, Node first waits for V8's background work.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
