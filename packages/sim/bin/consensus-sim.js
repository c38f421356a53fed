#!/usr/bin/env node
// Stable bin entry (exists before a build, so installs can link it); the CLI itself is built to dist/.
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));
