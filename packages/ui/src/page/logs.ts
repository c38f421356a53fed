/** Each node's log as a strip of entries coloured by term: commit point marked, snapshot prefix hatched. */
import type { UiFrame } from '../model';
import { h, s } from './dom';
import { logStrip, logWindow, termColor } from './layout';

const COLUMNS = 48;
const CELL = 10;
const ROW = 16;

export function renderLogs(container: HTMLElement, frame: UiFrame, ids: readonly string[]): void {
  const window = logWindow(frame.nodes, COLUMNS);
  const byId = new Map(frame.nodes.map((n) => [n.id, n]));
  const rows: HTMLElement[] = [];
  for (const id of ids) {
    const node = byId.get(id);
    const svg = s('svg', { class: 'strip', viewBox: `0 0 ${COLUMNS * CELL + 2} ${ROW}`, preserveAspectRatio: 'xMinYMid meet', role: 'img' });
    let description = `${id}: no log reported`;
    if (node) {
      const strip = logStrip(node, window);
      if (strip.compactedColumns > 0) {
        svg.append(s('rect', { class: 'compacted', x: 1, y: 2, width: strip.compactedColumns * CELL - 1, height: ROW - 4 }, s('title', {}, `compacted into the snapshot (below index ${window.start + strip.compactedColumns})`)));
      }
      for (const cell of strip.cells) {
        svg.append(
          s(
            'rect',
            { class: cell.committed ? 'entry committed' : 'entry', x: 1 + cell.column * CELL, y: 2, width: CELL - 1, height: ROW - 4, fill: termColor(cell.term), 'data-index': cell.index, 'data-term': cell.term },
            s('title', {}, `index ${cell.index}, term ${cell.term}${cell.type ? `, ${cell.type}` : ''}${cell.committed ? ', committed' : ''}`),
          ),
        );
      }
      if (strip.commitColumn !== undefined) {
        const x = 1 + strip.commitColumn * CELL - 0.5;
        svg.append(s('line', { class: 'commit-mark', x1: x, x2: x, y1: 0, y2: ROW }));
      }
      description = `${id}: entries ${node.firstIndex ?? node.log[0]?.index ?? '-'} to ${node.lastIndex ?? node.log.at(-1)?.index ?? '-'}, commit ${node.commitIndex ?? '-'}, applied ${node.appliedIndex ?? '-'}${node.snapshotIndex ? `, snapshot at ${node.snapshotIndex}` : ''}`;
    }
    svg.setAttribute('aria-label', description);
    rows.push(h('div', { class: 'log-row' }, h('span', { class: 'log-id' }, id), svg));
  }
  container.replaceChildren(
    h('p', { class: 'log-axis' }, `indexes ${window.start} to ${window.start + window.width - 1}; the line is the commit point, hatched entries are in the snapshot, pale ones not yet committed`),
    ...rows,
  );
}
