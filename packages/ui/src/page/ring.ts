/** The cluster drawn as a ring (SVG): links with their rates, nodes, and messages travelling. */
import type { UiFrame, UiMessage, UiNodeState } from '../model';
import { attr, keepOrder, s, text } from './dom';
import { DROPPED_STOP, NODE_RADIUS, VIEW_SIZE, along, drawnLinks, formatRate, membershipOf, messageProgress, ringLayout, sampleMessages, shownRole, starPoints, termColor, travelTime, type Point } from './layout';

/** Messages animated per frame at most (the source samples already; this bounds the page's work). */
export const MESSAGES_PER_FRAME = 24;


interface NodeView {
  group: SVGGElement;
  circle: SVGCircleElement;
  /** A star on the leader's circle (drawn, not a font glyph: every browser shows it). */
  star: SVGPolygonElement;
  label: SVGTextElement;
  sub: SVGTextElement;
  progress: SVGTextElement;
  title: SVGTitleElement;
}

export class RingView {
  readonly svg: SVGSVGElement;
  private readonly linkLayer: SVGGElement;
  private readonly nodeLayer: SVGGElement;
  private readonly messageLayer: SVGGElement;
  private readonly nodes = new Map<string, NodeView>();
  private positions = new Map<string, Point>();
  private selected: string | undefined;
  private readonly reduceMotion: boolean;
  private lastShown = Number.NEGATIVE_INFINITY;

  constructor(private readonly onSelect: (id: string) => void) {
    this.linkLayer = s('g', { class: 'links' });
    this.messageLayer = s('g', { class: 'messages', 'aria-hidden': 'true' });
    this.nodeLayer = s('g', { class: 'nodes' });
    this.svg = s(
      'svg',
      { viewBox: `0 0 ${VIEW_SIZE} ${VIEW_SIZE}`, class: 'ring', role: 'group', 'aria-label': 'Cluster: nodes on a ring' },
      this.linkLayer,
      this.messageLayer,
      this.nodeLayer,
    );
    this.reduceMotion = typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches;
  }

  select(id: string | undefined): void {
    this.selected = id;
    for (const [nodeId, view] of this.nodes) attr(view.group, 'aria-pressed', String(nodeId === id));
  }

  render(frame: UiFrame, ids: string[], leader: string | undefined): void {
    this.positions = ringLayout(ids);
    const byId = new Map<string, UiNodeState>(frame.nodes.map((n) => [n.id, n]));
    this.renderLinks(frame, new Set(ids));
    for (const [id, view] of this.nodes) {
      if (!this.positions.has(id)) {
        view.group.remove();
        this.nodes.delete(id);
      }
    }
    for (const id of ids) {
      const view = this.nodes.get(id) ?? this.createNode(id);
      this.updateNode(view, id, byId.get(id), frame, leader);
    }
    // The DOM (and so the tab order) in ring order.
    keepOrder(this.nodeLayer, ids.flatMap((id) => this.nodes.get(id)?.group ?? []));
  }

  private createNode(id: string): NodeView {
    const circle = s('circle', { r: NODE_RADIUS, class: 'node-circle' });
    const label = s('text', { class: 'node-id', 'text-anchor': 'middle', dy: '0.35em' });
    const sub = s('text', { class: 'node-sub', 'text-anchor': 'middle', y: NODE_RADIUS + 13 });
    const progress = s('text', { class: 'node-progress', 'text-anchor': 'middle', y: NODE_RADIUS + 25 });
    const title = s('title');
    const star = s('polygon', { class: 'leader-mark', points: starPoints(NODE_RADIUS * 0.72, -NODE_RADIUS * 0.72, 9), 'aria-hidden': 'true' });
    const group = s('g', { class: 'node', tabindex: 0, role: 'button', 'data-testid': `node-${id}`, 'aria-pressed': 'false' }, title, circle, star, label, sub, progress);
    const choose = (): void => this.onSelect(id);
    group.addEventListener('click', choose);
    group.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        choose();
      }
    });
    const view = { group, circle, star, label, sub, progress, title };
    this.nodes.set(id, view);
    this.nodeLayer.append(group);
    return view;
  }

  private updateNode(view: NodeView, id: string, node: UiNodeState | undefined, frame: UiFrame, leader: string | undefined): void {
    const point = this.positions.get(id) ?? { x: 0, y: 0 };
    const role = shownRole(node);
    const membership = membershipOf(frame.members, id);
    const up = node?.up === true;
    attr(view.group, 'transform', `translate(${point.x} ${point.y})`);
    attr(view.group, 'data-role', role);
    attr(view.group, 'data-up', String(up));
    attr(view.group, 'data-term', node?.term === undefined ? '' : String(node.term));
    attr(view.group, 'data-member', membership);
    attr(view.group, 'data-leader', String(id === leader));
    attr(view.group, 'aria-pressed', String(id === this.selected));
    attr(view.circle, 'fill', up && node?.term !== undefined ? termColor(node.term) : '#9aa0a6');
    text(view.label, id);
    text(view.progress, up && node?.commitIndex !== undefined ? `${node.commitIndex}/${node.appliedIndex ?? '-'}${node.lag ? ` \u00b7 lag ${node.lag}` : ''}` : '');
    attr(view.star, 'display', id === leader ? undefined : 'none');
    text(view.sub, up ? `${role} \u00b7 t${node?.term ?? '?'}` : 'down');
    const parts = [
      `${id}: ${role}`,
      membership === 'none' ? 'not a member' : membership,
      node?.term === undefined ? undefined : `term ${node.term}`,
      node?.commitIndex === undefined ? undefined : `commit ${node.commitIndex}`,
      node?.appliedIndex === undefined ? undefined : `applied ${node.appliedIndex}`,
      node?.lag === undefined ? undefined : `lag ${node.lag}`,
      id === leader ? 'leader' : undefined,
    ].filter((p) => p !== undefined);
    const description = parts.join(', ');
    text(view.title, description);
    attr(view.group, 'aria-label', description);
  }

  private renderLinks(frame: UiFrame, ids: ReadonlySet<string>): void {
    const parts: SVGElement[] = [];
    for (const link of drawnLinks(frame, ids)) {
      const a = this.positions.get(link.from);
      const b = this.positions.get(link.to);
      if (!a || !b) continue;
      // Each direction is its own line, 4 units to the right of travel, so one-way cuts show.
      const start = along(a, b, NODE_RADIUS / Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)), 4);
      const end = along(a, b, 1 - NODE_RADIUS / Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)), 4);
      const cls = link.blocked ? 'link cut' : link.rate > 0 ? 'link busy' : 'link';
      const line = s('line', { class: cls, x1: start.x, y1: start.y, x2: end.x, y2: end.y, 'data-from': link.from, 'data-to': link.to, 'data-blocked': String(link.blocked) });
      parts.push(line);
      if (link.blocked) {
        const mid = along(a, b, 0.5, 4);
        parts.push(s('text', { class: 'cut-mark', x: mid.x, y: mid.y, 'text-anchor': 'middle', dy: '0.35em' }, '\u00d7'));
      } else if (link.rate > 0) {
        const at = along(a, b, 0.3, 12);
        parts.push(s('text', { class: 'rate', x: at.x, y: at.y, 'text-anchor': 'middle', dy: '0.35em' }, formatRate(link.rate)));
      }
    }
    this.linkLayer.replaceChildren(...parts);
  }

  /**
   * Draws `messages` travelling from sender to receiver (or, scrubbed back or with reduced motion, halfway); a
   * dropped one travels to the middle of its link, where a cut is marked, and stops there, drawn hollow and red.
   */
  showMessages(messages: readonly UiMessage[], animate: boolean): void {
    this.messageLayer.replaceChildren();
    // Travel takes about the time between two frames (live: the source's pace), within [250, 900] ms.
    const now = typeof performance === 'object' ? performance.now() : 0;
    const travelMs = travelTime(now - this.lastShown);
    this.lastShown = now;
    const drawn = sampleMessages(messages, MESSAGES_PER_FRAME);
    const moving: Array<{ dot: SVGCircleElement; a: Point; b: Point; delay: number; message: UiMessage }> = [];
    drawn.forEach((message, i) => {
      const a = this.positions.get(message.from);
      const b = this.positions.get(message.to);
      if (!a || !b || message.from === message.to) return;
      const dropped = typeof message.dropped === 'string';
      // Standing still: halfway, and a dropped one a little short of the cut mark so both show.
      const still = along(a, b, dropped ? DROPPED_STOP - 0.08 : 0.5, 4);
      const label = `${message.type} ${message.from} \u2192 ${message.to}${dropped ? `, dropped (${message.dropped})` : ''}`;
      const dot = s('circle', { class: dropped ? 'message dropped' : 'message', r: 4, cx: still.x, cy: still.y, 'data-type': message.type, 'data-dropped': dropped ? message.dropped : undefined }, s('title', {}, label));
      this.messageLayer.append(dot);
      moving.push({ dot, a, b, delay: (i * travelMs) / Math.max(drawn.length, 1) / 2, message });
    });
    if (!animate || this.reduceMotion || moving.length === 0 || typeof requestAnimationFrame !== 'function') return;
    const began = performance.now();
    const layer = this.messageLayer;
    const tick = (now: number): void => {
      let running = false;
      for (const m of moving) {
        const t = (now - began - m.delay) / travelMs;
        if (t < 0) {
          running = true;
          m.dot.setAttribute('opacity', '0');
          continue;
        }
        if (t > 1) {
          m.dot.setAttribute('opacity', '0');
          continue;
        }
        running = true;
        const p = along(m.a, m.b, messageProgress(m.message, t), 4);
        m.dot.setAttribute('cx', String(p.x));
        m.dot.setAttribute('cy', String(p.y));
        m.dot.setAttribute('opacity', '1');
      }
      if (running && layer.isConnected && moving[0]?.dot.parentNode === layer) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }
}
