import { serveUi, type UiFrame, type UiSource } from '@consensus-kit/ui';

const ids = ['n1', 'n2', 'n3'];
const frames: UiFrame[] = [1, 2, 3].map((term, seq) => ({
  seq, at: seq * 10,
  members: { voters: ids, learners: [], observers: [] },
  nodes: ids.map((id) => ({ id, up: true, role: id === `n${term}` ? 'leader' : 'follower', term, commitIndex: term, log: [{ index: term, term }] })),
  links: [], messages: [{ from: `n${term}`, to: 'n1', type: 'AppendEntries', at: seq * 10 }],
  events: [{ at: seq * 10, kind: 'leader', node: `n${term}`, text: `n${term} leads term ${term}` }],
}));
const source: UiSource = {
  hello: () => ({ mode: 'replay', protocol: 'raft', title: 'three terms', timeUnit: 'tick', actions: [] }),
  history: () => frames,
  subscribe: () => () => {},
};

const server = await serveUi({ source });
console.log(`open ${server.url}`);
const history = (await (await fetch(`${server.url}api/history`)).json()) as UiFrame[];
console.log(`${history.length} frames, last leader ${history.at(-1)?.events[0]?.node}`);
if (!process.argv.includes('--keep')) await server.close(); // --keep: serve until Ctrl-C
