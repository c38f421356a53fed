/** The page: header, ring, node table with per-node actions, logs, global actions, timeline. */
import type { UiAction, UiActionName, UiActionResult, UiFrame, UiHello, UiNodeState } from '../model';
import { Connection, fetchJson } from './connection';
import { attr, h, keepOrder, s, text } from './dom';
import { formatTime, leaderOf, membershipOf, nodeIds, shownRole, starPoints } from './layout';
import { renderLogs } from './logs';
import { RingView } from './ring';
import { FRAME_LIMIT, FrameStore, REPLAY_FRAME_LIMIT, isListed } from './store';

const EVENTS_SHOWN = 200;
const TABLE_COLUMNS = ['Node', 'Role', 'Member', 'Term', 'Commit / applied', 'Lag', 'Up', 'Actions'];
/** Frames per second while playing. */
const SPEEDS = [1, 2, 5, 20, 60];

interface RowView {
  row: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  name: HTMLSpanElement;
  star: SVGSVGElement;
  buttons: HTMLButtonElement[];
}

const NODE_ACTIONS: Array<{ name: string; action: UiActionName; label: string; make: (id: string) => UiAction }> = [
  { name: 'kill', action: 'kill', label: 'Kill', make: (node) => ({ action: 'kill', node }) },
  { name: 'restart', action: 'restart', label: 'Restart', make: (node) => ({ action: 'restart', node }) },
  { name: 'partition', action: 'partition', label: 'Partition', make: (node) => ({ action: 'partition', node }) },
  { name: 'transfer', action: 'transfer', label: 'Make leader', make: (to) => ({ action: 'transfer', to }) },
  { name: 'remove', action: 'remove-member', label: 'Remove', make: (node) => ({ action: 'remove-member', node }) },
];

export class App {
  private readonly store = new FrameStore();
  private hello: UiHello | undefined;
  private ids: string[] = [];
  private selected: string | undefined;
  private playing: ReturnType<typeof setInterval> | undefined;
  private lastDrawnSeq = -1;
  private eventsKey = '';
  private actionCount = 0;
  private detailsKey = '';
  private readonly ring: RingView;
  private readonly rows = new Map<string, RowView>();
  private readonly actionButtons: Array<{ el: HTMLButtonElement | HTMLInputElement | HTMLSelectElement; action: UiActionName }> = [];

  // Elements the page updates.
  private readonly titleEl = h('h1', { class: 'title' }, 'consensus-kit');
  private readonly modeEl = h('span', { class: 'mode' });
  private readonly connectionEl = h('span', { class: 'connection', 'data-testid': 'connection', 'data-state': 'closed', role: 'status' }, 'connecting');
  private readonly leaderEl = h('strong', { 'data-testid': 'leader' }, 'none');
  private readonly membersEl = h('p', { class: 'members' });
  private readonly detailsEl = h('div', { class: 'details', 'aria-live': 'polite' });
  private readonly tableBody = h('tbody');
  private readonly logsEl = h('div', { class: 'logs' });
  private readonly resultEl = h('output', { class: 'result', 'data-testid': 'action-result', 'data-ok': 'true', 'aria-live': 'polite', role: 'status' });
  private readonly keyInput = h('input', { type: 'text', id: 'ck-key', 'data-testid': 'key', autocomplete: 'off', spellcheck: 'false', value: 'greeting' });
  private readonly valueInput = h('input', { type: 'text', id: 'ck-value', 'data-testid': 'value', autocomplete: 'off', spellcheck: 'false', value: 'hello' });
  private readonly roleSelect = h('select', { id: 'ck-role', 'aria-label': 'Role of the new member' }, h('option', { value: 'voter' }, 'voter'), h('option', { value: 'learner' }, 'learner'), h('option', { value: 'observer' }, 'observer'));
  private readonly linkFrom = h('select', { id: 'ck-link-from', 'data-testid': 'link-from' });
  private readonly linkTo = h('select', { id: 'ck-link-to', 'data-testid': 'link-to' });
  private readonly slider = h('input', { type: 'range', id: 'ck-slider', 'data-testid': 'timeline-slider', min: 0, max: 0, value: 0, step: 1 });
  private readonly positionEl = h('span', { class: 'position', 'aria-live': 'off' });
  private readonly liveButton = h('button', { type: 'button', 'data-testid': 'live', 'aria-pressed': 'true' }, 'Live');
  // Labels in characters every font has (Latin-1 and cp1252: \u2039 \u203a \u00ab \u00bb), not arrows many lack.
  private readonly backButton = h('button', { type: 'button', 'data-testid': 'step-back', 'aria-label': 'Step back one frame' }, '\u2039 Step');
  private readonly forwardButton = h('button', { type: 'button', 'data-testid': 'step-forward', 'aria-label': 'Step forward one frame' }, 'Step \u203a');
  private readonly playButton = h('button', { type: 'button', 'data-testid': 'play', 'aria-pressed': 'false' }, 'Play');
  private readonly speedSelect = h('select', { id: 'ck-speed', 'data-testid': 'speed' }, ...SPEEDS.map((n) => h('option', { value: n }, `${n} frame${n === 1 ? '' : 's'}/s`)));
  private readonly prevEventButton = h('button', { type: 'button', 'data-testid': 'prev-event', 'aria-label': 'Back to the previous frame with events' }, '\u00ab Event');
  private readonly nextEventButton = h('button', { type: 'button', 'data-testid': 'next-event', 'aria-label': 'On to the next frame with events' }, 'Event \u00bb');
  private readonly replayNote = h('p', { class: 'hint replay-note' });
  /** Off: the cluster's events only; on: every node's own view too (each node's "n2 follows leader n1"). */
  private readonly allEventsBox = h('input', { type: 'checkbox', id: 'ck-all-events', 'data-testid': 'all-events' });
  private readonly eventsEl = h('ol', { class: 'events', 'data-testid': 'timeline', 'aria-label': 'Events, newest first' });
  private readonly replayEl = h('p', { class: 'replay-command' });

  constructor(private readonly root: HTMLElement) {
    this.ring = new RingView((id) => this.select(id));
    this.build();
  }

  start(): void {
    new Connection({
      hello: (hello) => this.setHello(hello),
      frames: (frames, reset) => this.addFrames(frames, reset),
      state: (open) => {
        attr(this.connectionEl, 'data-state', open ? 'open' : 'closed');
        text(this.connectionEl, open ? 'connected' : 'reconnecting\u2026');
      },
      lastSeq: () => this.store.lastSeq,
      firstSeq: () => this.store.frames[0]?.seq ?? -1,
      atOf: (seq) => {
        const f = this.store.frames[this.store.search(seq)];
        return f?.seq === seq ? f.at : undefined;
      },
    }).start();
  }

  private build(): void {
    const button = (testid: string, label: string, action: UiActionName | undefined, onClick: () => void): HTMLButtonElement => {
      const el = h('button', { type: 'button', 'data-testid': testid }, label);
      el.addEventListener('click', onClick);
      if (action) this.actionButtons.push({ el, action });
      return el;
    };
    const heal = button('heal', 'Heal all', 'heal', () => void this.run({ action: 'heal' }));
    const addMember = button('add-member', 'Add member', 'add-member', () => {
      const role = this.roleSelect.value as 'voter' | 'learner' | 'observer';
      void this.run(role === 'voter' ? { action: 'add-member' } : { action: 'add-member', role });
    });
    this.actionButtons.push({ el: this.roleSelect, action: 'add-member' });
    const bench = button('bench', 'Bench 5 s', 'bench', () => void this.run({ action: 'bench', seconds: 5 }));
    const put = button('put', 'Put', 'put', () => void this.run({ action: 'put', key: this.keyInput.value, value: this.valueInput.value }));
    const get = button('get', 'Get', 'get', () => void this.run({ action: 'get', key: this.keyInput.value }));
    const cut = button('cut-link', 'Cut link', 'partition', () => {
      const from = this.linkFrom.value;
      const to = this.linkTo.value;
      if (!from || !to || from === to) {
        this.showResult({ ok: false, text: 'choose two different nodes to cut the link between' });
        return;
      }
      void this.run({ action: 'partition', node: from, peer: to });
    });
    this.actionButtons.push({ el: this.keyInput, action: 'put' }, { el: this.valueInput, action: 'put' }, { el: this.linkFrom, action: 'partition' }, { el: this.linkTo, action: 'partition' });

    this.slider.setAttribute('aria-label', 'Timeline position');
    this.slider.addEventListener('input', () => {
      this.stopPlaying();
      this.store.scrubTo(Number(this.slider.value));
      this.draw();
    });
    this.liveButton.addEventListener('click', () => {
      this.stopPlaying();
      this.store.goLive();
      this.draw();
    });
    this.backButton.addEventListener('click', () => {
      this.stopPlaying();
      this.store.step(-1);
      this.draw();
    });
    this.forwardButton.addEventListener('click', () => {
      this.stopPlaying();
      this.store.step(1);
      this.draw();
    });
    this.playButton.addEventListener('click', () => (this.playing ? this.stopPlaying() : this.play()));
    this.speedSelect.value = '5';
    this.speedSelect.addEventListener('change', () => {
      if (!this.playing) return;
      this.stopPlaying();
      this.play();
    });
    this.allEventsBox.addEventListener('change', () => this.draw());
    for (const [button, direction] of [
      [this.prevEventButton, -1],
      [this.nextEventButton, 1],
    ] as const) {
      button.addEventListener('click', () => {
        this.stopPlaying();
        const index = this.store.eventIndex(direction, this.allEvents());
        if (index !== undefined) this.store.scrubTo(index);
        this.draw();
      });
    }

    const table = h(
      'table',
      { class: 'node-table' },
      h('caption', {}, 'Nodes'),
      h('thead', {}, h('tr', {}, ...TABLE_COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
      this.tableBody,
    );

    this.root.replaceChildren(
      h('header', { class: 'top' }, this.titleEl, h('p', { class: 'status-line' }, this.modeEl, ' \u00b7 leader: ', this.leaderEl, ' \u00b7 ', this.connectionEl)),
      h(
        'main',
        { class: 'grid' },
        h('section', { class: 'panel cluster', 'aria-labelledby': 'ck-cluster-h' }, h('h2', { id: 'ck-cluster-h' }, 'Cluster'), this.ring.svg, this.membersEl, this.detailsEl),
        h(
          'section',
          { class: 'panel actions', 'aria-labelledby': 'ck-actions-h' },
          h('h2', { id: 'ck-actions-h' }, 'Actions'),
          h('div', { class: 'row' }, h('label', { for: 'ck-key' }, 'Key'), this.keyInput, h('label', { for: 'ck-value' }, 'Value'), this.valueInput, put, get),
          h('div', { class: 'row' }, heal, h('label', { for: 'ck-role' }, 'as'), this.roleSelect, addMember, bench),
          h('div', { class: 'row' }, h('label', { for: 'ck-link-from' }, 'Link from'), this.linkFrom, h('label', { for: 'ck-link-to' }, 'to'), this.linkTo, cut),
          h('p', { class: 'result-line' }, 'Result: ', this.resultEl),
          this.replayNote,
        ),
        h('section', { class: 'panel table-panel', 'aria-labelledby': 'ck-nodes-h' }, h('h2', { id: 'ck-nodes-h' }, 'Nodes'), h('div', { class: 'scroll' }, table)),
        h('section', { class: 'panel logs-panel', 'aria-labelledby': 'ck-logs-h' }, h('h2', { id: 'ck-logs-h' }, 'Logs'), this.logsEl),
        h(
          'section',
          { class: 'panel timeline-panel', 'aria-labelledby': 'ck-timeline-h' },
          h('h2', { id: 'ck-timeline-h' }, 'Timeline'),
          h('div', { class: 'row' }, h('label', { for: 'ck-slider' }, 'Frame'), this.slider, this.positionEl),
          h('div', { class: 'row' }, this.prevEventButton, this.backButton, this.playButton, this.forwardButton, this.nextEventButton, this.liveButton, h('label', { for: 'ck-speed' }, 'Speed'), this.speedSelect),
          this.replayEl,
          h('div', { class: 'row' }, this.allEventsBox, h('label', { for: 'ck-all-events', title: 'Also list what each node reports of itself: the leader it follows, the members it sees, its snapshots' }, 'All node events')),
          this.eventsEl,
        ),
      ),
    );
  }

  private setHello(hello: UiHello): void {
    this.hello = hello;
    text(this.titleEl, hello.title || 'consensus-kit');
    document.title = `${hello.title || 'cluster'} \u2013 consensus-kit ui`;
    text(this.modeEl, `${hello.protocol} \u00b7 ${hello.mode === 'replay' ? 'replay' : 'live'}`);
    text(this.replayEl, hello.replayCommand ? `Reproduce: ${hello.replayCommand}` : '');
    text(this.replayNote, hello.mode === 'replay' ? 'A recorded run: actions are off. Step through it with the timeline.' : '');
    this.root.setAttribute('data-mode', hello.mode);
    this.store.limit = hello.mode === 'replay' ? REPLAY_FRAME_LIMIT : FRAME_LIMIT;
    const offered = new Set(hello.actions);
    for (const { el, action } of this.actionButtons) el.disabled = !offered.has(action);
    for (const view of this.rows.values()) this.updateRowButtons(view);
  }

  private addFrames(frames: UiFrame[], reset: boolean): void {
    if (reset) {
      this.store.reset();
      this.lastDrawnSeq = -1;
    }
    const wasEmpty = this.store.size === 0;
    if (this.store.merge(frames) === 0 && !reset) return;
    // A replay opens on its first step; a live cluster on its newest frame.
    if (wasEmpty && this.hello?.mode === 'replay' && this.store.size > 0) this.store.scrubTo(0);
    this.draw();
  }

  private select(id: string): void {
    this.selected = this.selected === id ? undefined : id;
    this.ring.select(this.selected);
    if (this.selected && [...this.linkFrom.options].some((o) => o.value === id)) this.linkFrom.value = id;
    this.draw();
  }

  private play(): void {
    if (this.store.size === 0) return;
    if (this.store.atEnd()) this.store.scrubTo(0);
    else this.store.step(0);
    attr(this.playButton, 'aria-pressed', 'true');
    text(this.playButton, 'Pause');
    this.playing = setInterval(() => {
      if (this.store.atEnd()) {
        this.stopPlaying();
        if (this.hello?.mode !== 'replay') this.store.goLive();
      } else this.store.step(1);
      this.draw();
    }, 1000 / Number(this.speedSelect.value));
    this.draw();
  }

  private stopPlaying(): void {
    if (!this.playing) return;
    clearInterval(this.playing);
    this.playing = undefined;
    attr(this.playButton, 'aria-pressed', 'false');
    text(this.playButton, 'Play');
  }

  private async run(action: UiAction): Promise<void> {
    // The result shown is the last action's: an earlier one answering later does not overwrite it.
    const mine = ++this.actionCount;
    attr(this.resultEl, 'data-pending', 'true');
    text(this.resultEl, `${action.action}\u2026`);
    let result: UiActionResult;
    try {
      result = await fetchJson<UiActionResult>('/api/action', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(action) });
      if (typeof result !== 'object' || result === null || typeof result.text !== 'string') result = { ok: false, text: 'the server sent no result' };
    } catch (error) {
      result = { ok: false, text: error instanceof Error ? error.message : String(error) };
    }
    if (mine === this.actionCount) this.showResult(result);
  }

  private showResult(result: UiActionResult): void {
    attr(this.resultEl, 'data-pending', undefined);
    attr(this.resultEl, 'data-ok', String(result.ok === true));
    text(this.resultEl, result.text);
  }

  private draw(): void {
    const frame = this.store.current();
    const live = this.store.live;
    attr(this.liveButton, 'aria-pressed', String(live));
    this.slider.max = String(Math.max(0, this.store.size - 1));
    this.slider.value = String(Math.max(0, this.store.index));
    this.slider.setAttribute('aria-valuetext', frame ? `frame ${frame.seq}${live ? ', live' : ''}` : 'no frames');
    text(this.positionEl, frame ? `${this.store.index + 1} / ${this.store.size}${live ? ' (live)' : ''} \u00b7 ${formatTime(frame.at, this.hello?.timeUnit ?? 'ms')}` : 'no frames yet');
    this.backButton.disabled = this.store.size === 0 || this.store.index <= 0;
    this.forwardButton.disabled = this.store.size === 0 || this.store.atEnd();
    this.prevEventButton.disabled = this.store.eventIndex(-1, this.allEvents()) === undefined;
    this.nextEventButton.disabled = this.store.eventIndex(1, this.allEvents()) === undefined;
    if (!frame) return;
    this.ids = nodeIds(frame);
    const leader = leaderOf(frame);
    text(this.leaderEl, leader ?? 'none');
    const m = frame.members;
    text(this.membersEl, `voters: ${m.voters.join(', ') || '-'} \u00b7 learners: ${m.learners.join(', ') || '-'} \u00b7 observers: ${m.observers.join(', ') || '-'}`);
    this.ring.render(frame, this.ids, leader);
    // Messages travel when the view moves on to a newer frame (live, play, step forward); else they stand still.
    if (frame.seq !== this.lastDrawnSeq) this.ring.showMessages(frame.messages, frame.seq > this.lastDrawnSeq);
    this.lastDrawnSeq = frame.seq;
    this.renderTable(frame, leader);
    this.renderLinkSelects();
    this.renderDetails(frame);
    renderLogs(this.logsEl, frame, this.ids);
    this.renderEvents();
  }

  private renderTable(frame: UiFrame, leader: string | undefined): void {
    const byId = new Map<string, UiNodeState>(frame.nodes.map((n) => [n.id, n]));
    for (const [id, view] of this.rows) {
      if (!this.ids.includes(id)) {
        view.row.remove();
        this.rows.delete(id);
      }
    }
    for (const id of this.ids) {
      let view = this.rows.get(id);
      if (!view) {
        view = this.createRow(id);
        this.rows.set(id, view);
      }
      const node = byId.get(id);
      const [, roleCell, memberCell, termCell, commitCell, lagCell, upCell] = view.cells;
      text(view.name, id);
      attr(view.star, 'display', id === leader ? undefined : 'none');
      text(roleCell as HTMLElement, shownRole(node));
      text(memberCell as HTMLElement, membershipOf(frame.members, id));
      text(termCell as HTMLElement, node?.term === undefined ? '-' : String(node.term));
      text(commitCell as HTMLElement, `${node?.commitIndex ?? '-'} / ${node?.appliedIndex ?? '-'}`);
      text(lagCell as HTMLElement, node?.lag === undefined ? '-' : String(node.lag));
      text(upCell as HTMLElement, node?.up ? 'up' : 'down');
      attr(view.row, 'data-up', String(node?.up === true));
      attr(view.row, 'aria-selected', String(id === this.selected));
    }
    keepOrder(this.tableBody, this.ids.flatMap((id) => this.rows.get(id)?.row ?? []));
  }

  private createRow(id: string): RowView {
    const cells = TABLE_COLUMNS.slice(0, 7).map((label, i) => (i === 0 ? h('th', { scope: 'row' }) : h('td', { 'data-label': label })));
    // The leader's star is drawn (SVG), not a font glyph some fonts lack; it is named for screen readers.
    const name = h('span', {}, id);
    const star = s('svg', { class: 'leader-icon', viewBox: '0 0 20 20', width: 14, height: 14, role: 'img', 'aria-label': 'leader', display: 'none' }, s('title', {}, 'leader'), s('polygon', { points: starPoints(10, 10.5, 9.5) }));
    cells[0]?.append(name, ' ', star);
    const buttons = NODE_ACTIONS.map((spec) => {
      const el = h('button', { type: 'button', 'data-testid': `${spec.name}-${id}`, 'data-action': spec.action, 'aria-label': `${spec.label} ${id}` }, spec.label);
      el.addEventListener('click', () => void this.run(spec.make(id)));
      return el;
    });
    const row = h('tr', { 'data-node': id }, ...cells, h('td', { class: 'node-actions', 'data-label': 'Actions' }, ...buttons));
    const view = { row, cells, name, star, buttons };
    this.updateRowButtons(view);
    return view;
  }

  private updateRowButtons(view: RowView): void {
    const offered = new Set(this.hello?.actions ?? []);
    for (const el of view.buttons) el.disabled = !offered.has(el.getAttribute('data-action') as UiActionName);
  }

  private renderLinkSelects(): void {
    for (const select of [this.linkFrom, this.linkTo]) {
      const current = [...select.options].map((o) => o.value);
      if (current.length === this.ids.length && current.every((v, i) => v === this.ids[i])) continue;
      const keep = select.value;
      select.replaceChildren(...this.ids.map((id) => h('option', { value: id }, id)));
      if (this.ids.includes(keep)) select.value = keep;
    }
    if (this.linkFrom.value === this.linkTo.value && this.ids.length > 1) {
      const other = this.ids.find((id) => id !== this.linkFrom.value);
      if (other) this.linkTo.value = other;
    }
  }

  private renderDetails(frame: UiFrame): void {
    const id = this.selected;
    const node = id === undefined ? undefined : frame.nodes.find((n) => n.id === id);
    // Rebuilt only when what it shows changes (an open <details> stays open across frames).
    const key = JSON.stringify([id, node]);
    if (key === this.detailsKey) return;
    this.detailsKey = key;
    if (!id) {
      this.detailsEl.replaceChildren(h('p', { class: 'hint' }, 'Select a node (click, or Tab then Enter) for its details.'));
      return;
    }
    const rows: Array<[string, string]> = [
      ['node', id],
      ['role', shownRole(node)],
      ['member', membershipOf(frame.members, id)],
      ['term', String(node?.term ?? '-')],
      ['leader (its view)', node?.leader ?? '-'],
      ['commit / applied / last', `${node?.commitIndex ?? '-'} / ${node?.appliedIndex ?? '-'} / ${node?.lastIndex ?? '-'}`],
      ['first index / snapshot', `${node?.firstIndex ?? '-'} / ${node?.snapshotIndex ?? '-'}`],
      ['lag', String(node?.lag ?? '-')],
      ['cut off from', node?.partitioned?.join(', ') || '-'],
      ['address', [node?.address, node?.http, node?.pid === undefined ? undefined : `pid ${node.pid}`].filter(Boolean).join(' \u00b7 ') || '-'],
    ];
    this.detailsEl.replaceChildren(
      h('h3', {}, `Node ${id}`),
      h('dl', {}, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      ...(node?.details ? [h('details', {}, h('summary', {}, 'protocol details'), h('pre', {}, JSON.stringify(node.details, null, 2)))] : []),
    );
  }

  private allEvents(): boolean {
    return this.allEventsBox.checked;
  }

  private renderEvents(): void {
    const all = this.allEvents();
    const events = this.store.eventsUpTo(EVENTS_SHOWN, all);
    const shownSeq = this.store.current()?.seq;
    // Rebuilt only when the list changes, so a focused event button keeps its focus across frames.
    const key = `${all}:${events.length}:${events[0]?.seq ?? ''}:${events.at(-1)?.seq ?? ''}:${events[0]?.at ?? ''}`;
    if (key === this.eventsKey) {
      for (const li of this.eventsEl.children) attr(li, 'aria-current', li.getAttribute('data-seq') === String(shownSeq) ? 'true' : undefined);
      return;
    }
    this.eventsKey = key;
    this.eventsEl.replaceChildren(
      ...events.map((event) => {
        const when = formatTime(event.at, this.hello?.timeUnit ?? 'ms');
        const jump = h('button', { type: 'button', class: 'event-jump', 'aria-label': `Show frame ${event.seq}` }, when);
        jump.addEventListener('click', () => {
          this.stopPlaying();
          this.store.showSeq(event.seq);
          this.draw();
        });
        // The text names its node ("n2 leads (term 3)", "isolate n2"): `node` marks the entry, it is not printed.
        return h(
          'li',
          {
            class: `event kind-${event.kind}`,
            'data-kind': event.kind,
            'data-seq': event.seq,
            'data-node': event.node,
            'data-scope': isListed(event, false) ? 'cluster' : 'node',
            'aria-current': event.seq === shownSeq ? 'true' : undefined,
          },
          jump,
          ' ',
          h('span', { class: 'kind' }, event.kind),
          ' ',
          h('span', { class: 'event-text' }, event.text),
        );
      }),
    );
    if (events.length === 0) this.eventsEl.append(h('li', { class: 'empty' }, all ? 'no events yet' : 'no cluster events yet (tick "All node events" for each node\u2019s own)'));
  }
}
