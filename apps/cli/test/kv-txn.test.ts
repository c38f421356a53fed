import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, useSourceNodes, useStartedCluster } from './helpers';

useSourceNodes();

// kv transactions and history are the state machine's, the same under every protocol: one raft cluster.
describe('consensus-cli kv: txn, get --rev, compact on a running cluster', () => {
  const cluster = useStartedCluster();
  let dir: string;
  beforeAll(() => {
    dir = cluster();
  });

  it('runs a txn from a JSON file, reads a key at a past revision, compacts, and reports compacted and future revisions', async () => {
    expect((await cli('put', 'cfg/a', '1', '--dir', dir)).out).toBe('OK (revision 1)\n');
    expect((await cli('put', 'cfg/a', '2', '--dir', dir)).out).toBe('OK (revision 2)\n');

    const file = join(dir, 'txn.json');
    writeFileSync(
      file,
      JSON.stringify({
        if: [{ key: 'cfg/a', target: 'value', cmp: '=', value: '2' }],
        then: [{ op: 'put', key: 'cfg/b', value: 'x' }, { op: 'get', key: 'cfg/a' }],
        else: [{ op: 'get', key: 'cfg/b' }],
      }),
    );
    const t = await cli('txn', file, '--dir', dir);
    expect(t.code).toBe(0);
    expect(t.out).toBe('SUCCESS (revision 3)\nput OK (revision 3)\nget cfg/a\t2\n');
    // The same txn again: the compare still holds (cfg/a is unchanged), it writes cfg/b once more.
    const j = await cli('txn', file, '--dir', dir, '--json');
    expect(JSON.parse(j.out)).toMatchObject({ op: 'txn', succeeded: true, revision: 4, responses: [{ op: 'put', revision: 4 }, { op: 'get', kv: { key: 'cfg/a', value: '2' } }] });

    expect((await cli('get', 'cfg/a', '--rev', '1', '--dir', dir)).out).toBe('1\n');
    expect((await cli('get', 'cfg/b', '--rev', '3', '--dir', dir, '--json')).out).toContain('"modRevision":3');
    const missing = await cli('get', 'cfg/b', '--rev', '2', '--dir', dir);
    // cfg/b did not exist yet at revision 2: nothing printed, exit 0 (as etcdctl).
    expect(missing).toMatchObject({ code: 0, out: '' });
    expect((await cli('range', 'cfg/', '--rev', '2', '--dir', dir)).out).toBe('cfg/a\t2\n');

    expect((await cli('compact', '3', '--dir', dir)).out).toBe('compacted revision 3 (current revision 4)\n');
    const old = await cli('get', 'cfg/a', '--rev', '1', '--dir', dir);
    expect(old.code).toBe(1);
    expect(old.err).toMatch(/required revision 1 has been compacted.*\[COMPACTED\]/);
    const future = await cli('get', 'cfg/a', '--rev', '99', '--dir', dir);
    expect(future.code).toBe(1);
    expect(future.err).toMatch(/required revision 99 is a future revision \(current revision 4\)/);
    const again = await cli('compact', '2', '--dir', dir);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/has been compacted/);
  });

  it('refuses a malformed txn with a clear message and a non-zero exit code, sending nothing', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ then: [{ op: 'put', key: 'k', value: '1' }, { op: 'put', key: 'k', value: '2' }] }));
    const dup = await cli('txn', bad, '--dir', dir);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/written twice/);
    writeFileSync(bad, '{ "if": [ }');
    const json = await cli('txn', bad, '--dir', dir);
    expect(json.code).toBe(1);
    expect(json.err).toMatch(/is not valid JSON/);
    writeFileSync(bad, JSON.stringify({ iff: [] }));
    expect((await cli('txn', bad, '--dir', dir)).err).toMatch(/unknown field "iff"/);
    expect((await cli('txn', join(dir, 'nope.json'), '--dir', dir)).err).toMatch(/cannot read the txn/);
    expect((await cli('compact', 'zero', '--dir', dir)).code).toBe(2);
    expect((await cli('get', 'k', '--rev', '-1', '--dir', dir)).code).toBe(2);
    // Nothing was written by the refused txns.
    expect(await cli('get', 'k', '--dir', dir)).toMatchObject({ code: 0, out: '' });
  });
});
