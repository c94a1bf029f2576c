/**
 * A stand-in evalpipe for the "controller dies" sandbox test: opens a pool of one container on the image named
 * by argv[2] with a 60 s candidate timeout, says `ready`, and runs a busy loop until it is killed.
 */
import { SandboxPool } from '../../src/sandbox/sandbox-pool.js';

const pool = await SandboxPool.open({ image: process.argv[2]!, concurrency: 1, timeoutMs: 60_000 });
process.stdout.write('ready\n');
await pool.execute('while True:\n    pass\n');
