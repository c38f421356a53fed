#!/usr/bin/env node
// What one put at 1 in flight costs on this machine with no consensus code at all: four Node processes
// replay the message pattern and the durable writes of a 3-node put, and nothing else.
//
//   client --387 B--> leader --481 B--> follower 1, follower 2   (each writes 400 B with O_DSYNC, then acks)
//   leader writes its own 400 B with O_DSYNC, answers once it and one follower are durable --46 B--> client
//
// Compare its p50 with `consensus-cli bench --clients 1` run in the same minutes and on the same disk: the
// difference is what the real stack (framing, msgpack, raft, storage records, the kv state machine and the
// client) adds. Usage: node scripts/latency-floor.mjs [--dir <dir on the disk to test>] [--puts 5000]
import { fork } from 'node:child_process';
import { closeSync, constants, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const WAL_BYTES = 1 << 20;
const RECORD = Buffer.alloc(400, 1);
const APPEND_BYTES = 481;
const ACK_BYTES = 65;

/** A WAL file filled with zeros and synced first, so each O_DSYNC write changes no file size (as storage-fs does). */
function openWal(path) {
  const fd = openSync(path, 'w+');
  writeSync(fd, Buffer.alloc(WAL_BYTES), 0, WAL_BYTES, 0);
  fsyncSync(fd);
  closeSync(fd);
  const dsync = openSync(path, constants.O_RDWR | constants.O_DSYNC);
  let pos = 0;
  return {
    write() {
      writeSync(dsync, RECORD, 0, RECORD.length, pos);
      pos = (pos + RECORD.length) % WAL_BYTES;
    },
  };
}

function listen(onSocket) {
  return new Promise((resolve) => {
    const server = createServer((s) => {
      s.setNoDelay(true);
      onSocket(s);
    });
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

async function follower(dir, name) {
  const wal = openWal(join(dir, `${name}.wal`));
  const port = await listen((s) => {
    let pending = Buffer.alloc(0);
    s.on('data', (chunk) => {
      // Messages are 481 bytes and start with their put's number; one write and one ack per message.
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= APPEND_BYTES) {
        const seq = pending.readUInt32LE(0);
        pending = pending.subarray(APPEND_BYTES);
        wal.write();
        const ack = Buffer.alloc(ACK_BYTES, 4);
        ack.writeUInt32LE(seq, 0);
        s.write(ack);
      }
    });
  });
  process.send({ port });
}

async function leader(dir, followerPorts) {
  const wal = openWal(join(dir, 'leader.wal'));
  const answer = Buffer.alloc(46, 5);
  let client;
  let seq = 0;
  let acked = 0;
  let durable = false;
  let open = false;
  const maybeAnswer = () => {
    if (open && durable && acked >= 1) {
      open = false;
      client.write(answer);
    }
  };
  const followers = await Promise.all(followerPorts.map(connect));
  for (const f of followers) {
    let pending = Buffer.alloc(0);
    f.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= ACK_BYTES) {
        if (pending.readUInt32LE(0) === seq) acked++;
        pending = pending.subarray(ACK_BYTES);
      }
      maybeAnswer();
    });
  }
  const port = await listen((s) => {
    client = s;
    s.on('data', () => {
      open = true;
      acked = 0;
      durable = false;
      const append = Buffer.alloc(APPEND_BYTES, 2);
      append.writeUInt32LE(++seq, 0);
      // Raft thesis 10.2.1: the leader sends before its own write, so the writes overlap.
      for (const f of followers) f.write(append);
      wal.write();
      durable = true;
      maybeAnswer();
    });
  });
  process.send({ port });
}

function start(role, args) {
  const child = fork(fileURLToPath(import.meta.url), ['--role', role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`${role} exited with code ${code}`)));
  });
  return { child, port };
}

async function main() {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      dir: { type: 'string' },
      name: { type: 'string' },
      followers: { type: 'string' },
      puts: { type: 'string', default: '5000' },
    },
  });
  if (values.role === 'follower') return follower(values.dir, values.name);
  if (values.role === 'leader') return leader(values.dir, values.followers.split(',').map(Number));

  const puts = Number(values.puts);
  if (!Number.isSafeInteger(puts) || puts < 100 || puts > 1_000_000) throw new Error('--puts must be an integer from 100 to 1000000');
  const dir = mkdtempSync(join(values.dir ?? tmpdir(), 'latency-floor-'));
  const children = [];
  try {
    const f1 = start('follower', ['--dir', dir, '--name', 'f1']);
    const f2 = start('follower', ['--dir', dir, '--name', 'f2']);
    children.push(f1.child, f2.child);
    const ports = await Promise.all([f1.port, f2.port]);
    const l = start('leader', ['--dir', dir, '--followers', ports.join(',')]);
    children.push(l.child);
    const socket = await connect(await l.port);
    const request = Buffer.alloc(387, 3);
    const warmup = 1000;
    const latencies = new Float64Array(puts);
    await new Promise((resolve) => {
      let n = 0;
      let sentAt = 0;
      const send = () => {
        sentAt = performance.now();
        socket.write(request);
      };
      socket.on('data', () => {
        if (n >= warmup) latencies[n - warmup] = performance.now() - sentAt;
        if (++n === warmup + puts) resolve();
        else send();
      });
      send();
    });
    socket.destroy();
    latencies.sort();
    const at = (q) => latencies[Math.min(puts - 1, Math.floor(q * puts))].toFixed(3);
    console.log(`latency floor, ${puts} puts at 1 in flight (no consensus code): p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms`);
  } finally {
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`latency-floor: ${e.message}`);
  process.exit(1);
});
