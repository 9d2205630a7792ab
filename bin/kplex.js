#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv);
// Exit as soon as the output is out: left to itself, Node first waits for V8's background work, such as
// optimizing undici's WebAssembly HTTP parser, which costs a finished `kplex list` about 0.2 s.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
