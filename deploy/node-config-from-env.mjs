#!/usr/bin/env node
// Writes a consensus-cli node config (node.json) from environment variables, for containers: the same image
// runs every member, and each learns its id from its host name (a StatefulSet pod `consensus-1`, a compose
// service `n2`) unless CK_NODE_ID says otherwise. Then `consensus-cli node --config <file>` runs it.
//
//   CK_CLUSTER_ID   the cluster's id (required)
//   CK_PEERS        every voter, "id=host:port,id=host:port,..." (required; host names are resolved at connect)
//   CK_NODE_ID      this node's id (default: the host name)
//   CK_PROTOCOL     raft | paxos | zab (default raft)
//   CK_DATA_DIR     default /data
//   CK_LISTEN       "host:port" to bind for peers and clients (default 0.0.0.0:<this node's port in CK_PEERS>)
//   CK_HTTP         "host:port" for /health and /metrics (default 0.0.0.0:7201)
//   CK_SECRET_FILE  a file holding the cluster secret (a Kubernetes or compose secret); CK_SECRET otherwise
//   CK_ADMIN        "true" lets clients partition, transfer and change membership (default false)
//   CK_JOIN         "true": this node joins a running cluster through `members add` instead of bootstrapping
//   CK_TICK_MS, CK_ELECTION_TICKS, CK_LOG_LEVEL, CK_SNAPSHOT_EVERY: as in the node config
//
// Usage: node node-config-from-env.mjs <output file>. A missing or malformed variable exits 2 naming it.
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

function fail(msg) {
  console.error(`node-config-from-env: ${msg}`);
  process.exit(2);
}

function hostPort(v, what) {
  const m = /^([^\s:]+):(\d{1,5})$/.exec(v);
  if (m === null || Number(m[2]) > 65535) fail(`${what} must be "host:port", got ${JSON.stringify(v)}`);
  return { host: m[1], port: Number(m[2]) };
}

function int(name) {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) fail(`${name} must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function flag(name) {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (v !== 'true' && v !== 'false') fail(`${name} must be true or false, got ${JSON.stringify(v)}`);
  return v === 'true';
}

const out = process.argv[2];
if (out === undefined) fail('usage: node-config-from-env.mjs <output file>');
const env = process.env;
const clusterId = env.CK_CLUSTER_ID ?? fail('CK_CLUSTER_ID is required');
const id = env.CK_NODE_ID || hostname();
const peers = {};
for (const part of (env.CK_PEERS ?? fail('CK_PEERS is required ("id=host:port,...")')).split(',')) {
  const eq = part.indexOf('=');
  if (eq <= 0) fail(`CK_PEERS entry ${JSON.stringify(part)} must be id=host:port`);
  const peer = part.slice(0, eq).trim();
  peers[peer] = part.slice(eq + 1).trim();
  hostPort(peers[peer], `CK_PEERS's ${peer}`);
}
if (!(id in peers)) fail(`this node's id ${JSON.stringify(id)} is not in CK_PEERS (${Object.keys(peers).join(', ')}); set CK_NODE_ID`);
const listen = env.CK_LISTEN ? hostPort(env.CK_LISTEN, 'CK_LISTEN') : { host: '0.0.0.0', port: hostPort(peers[id], 'CK_PEERS').port };
const http = env.CK_HTTP ? hostPort(env.CK_HTTP, 'CK_HTTP') : { host: '0.0.0.0', port: 7201 };
const secret = env.CK_SECRET_FILE ? readFileSync(env.CK_SECRET_FILE, 'utf8').replace(/\r?\n$/, '') : env.CK_SECRET || undefined;

const config = {
  clusterId,
  id,
  protocol: env.CK_PROTOCOL || 'raft',
  dataDir: env.CK_DATA_DIR || '/data',
  listen,
  http,
  peers,
  secret,
  admin: flag('CK_ADMIN'),
  join: flag('CK_JOIN'),
  tickMs: int('CK_TICK_MS'),
  electionTicks: int('CK_ELECTION_TICKS'),
  snapshotEvery: int('CK_SNAPSHOT_EVERY'),
  logLevel: env.CK_LOG_LEVEL || undefined,
};
writeFileSync(out, `${JSON.stringify(config, null, 2)}\n`);
