#!/usr/bin/env node
import { run } from './cli';

const code = await run(process.argv);
process.exitCode = code;
// Exit once pending output has flushed, even if a client socket is still closing.
setTimeout(() => process.exit(code), 50).unref();
