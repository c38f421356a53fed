import type { KeyValue, KvValue } from '@consensus-kit/kv';
import { connectKv } from '../connect';
import { outputFor } from '../render';

interface KvOptions {
  dir: string;
  json?: boolean;
  serializable?: boolean;
  limit?: number;
  prefix?: boolean;
}

const text = (v: KvValue) => (typeof v === 'string' ? v : Buffer.from(v).toString('base64'));

function printKv(kv: KeyValue, json: boolean): void {
  if (json) console.log(JSON.stringify({ ...kv, value: text(kv.value) }));
  else console.log(text(kv.value));
}

async function withClient<T>(o: KvOptions, fn: (c: ReturnType<typeof connectKv>) => Promise<T>): Promise<T> {
  const c = connectKv(o.dir);
  try {
    return await fn(c);
  } finally {
    await c.kv.close();
  }
}

export function put(o: KvOptions, key: string, value: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.put(key, value, { prevKv: true });
    if (o.json) console.log(JSON.stringify(r.prev ? { ...r, prev: { ...r.prev, value: text(r.prev.value) } } : r));
    else console.log(`OK (revision ${r.revision})`);
  });
}

export function get(o: KvOptions, key: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.get(key, o.serializable ? { consistency: 'serializable' } : {});
    if (r === undefined) {
      if (o.json) console.log('null');
      else console.error(`(not found: ${key})`);
      process.exitCode = 1;
      return;
    }
    printKv(r, outputFor(o).json);
  });
}

export function del(o: KvOptions, key: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const r = await kv.delete(key, o.prefix ? { prefix: true } : {});
    if (o.json) console.log(JSON.stringify({ revision: r.revision, deleted: r.deleted }));
    else console.log(`deleted ${r.deleted} key${r.deleted === 1 ? '' : 's'} (revision ${r.revision})`);
  });
}

export function range(o: KvOptions, prefix: string): Promise<void> {
  return withClient(o, async ({ kv }) => {
    const rows = await kv.range(prefix, { ...(o.limit !== undefined ? { limit: o.limit } : {}), ...(o.serializable ? { consistency: 'serializable' as const } : {}) });
    if (o.json) {
      console.log(JSON.stringify(rows.map((r) => ({ ...r, value: text(r.value) }))));
      return;
    }
    for (const r of rows) console.log(`${r.key}\t${text(r.value)}`);
    if (rows.length === 0) console.error(`(no keys with prefix ${JSON.stringify(prefix)})`);
  });
}
