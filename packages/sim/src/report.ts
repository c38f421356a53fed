import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeAction } from './faults';
import { describeClientOp, opKind, opLabel, type ClientOp } from './history';
import type { SimResult } from './simulator';

export interface ReportOptions {
  /** Directory reports go under (a `<protocol>-seed-<n>/` folder is made in it). Default `.sim-reports` in cwd. */
  dir?: string;
  /** The command that replays the run, printed in the HTML. */
  replay?: string;
}

export interface ReportFiles {
  dir: string;
  trace: string;
  timeline: string;
}

/**
 * Writes `trace.ndjson` (one JSON object per simulator event, when the run was traced, plus the history) and
 * `timeline.html` (a self-contained page: one lane per client, operations as bars, the violation highlighted).
 */
export async function writeReport(result: SimResult<ClientOp>, options: ReportOptions = {}): Promise<ReportFiles> {
  const dir = resolve(options.dir ?? '.sim-reports', `${safe(result.protocol)}-seed-${result.seed}`);
  await mkdir(dir, { recursive: true });
  const trace = join(dir, 'trace.ndjson');
  const timeline = join(dir, 'timeline.html');
  const lines = [...(result.trace ?? [])];
  for (const op of result.history) lines.push(JSON.stringify({ history: op.id, op: describeClientOp(op) }));
  await writeFile(trace, lines.join('\n') + '\n');
  await writeFile(timeline, renderTimeline(result, options.replay));
  return { dir, trace, timeline };
}

function safe(s: string): string {
  return s.replace(/[^a-zA-Z0-9._-]+/g, '_');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The HTML timeline as a string: no external resources, no server. */
export function renderTimeline(result: SimResult<ClientOp>, replay?: string): string {
  const ops = result.history;
  const clients = Math.max(0, ...ops.map((o) => o.client + 1));
  const bad = new Set<number>();
  if (result.check?.result === 'illegal') for (const op of result.check.ops) bad.add(op.id);
  const end = Math.max(result.endTime, 1);
  const W = 1600;
  const LANE = 26;
  const TOP = 40;
  const x = (t: number) => ((Math.min(t, end) / end) * W).toFixed(1);
  const bars: string[] = [];
  for (const op of ops) {
    const y = TOP + op.client * LANE + 4;
    const x0 = Number(x(op.invoke));
    const x1 = Math.max(x0 + 2, Number(x(op.complete ?? end)));
    const cls = bad.has(op.id) ? 'bad' : op.status === 'ok' ? `ok ${opKind(op)}` : 'info';
    const label = opLabel(op);
    bars.push(
      `<rect class="${cls}" x="${x0}" y="${y}" width="${(x1 - x0).toFixed(1)}" height="${LANE - 8}"><title>${esc(describeClientOp(op))}</title></rect>` +
        (x1 - x0 > 60 ? `<text x="${x0 + 3}" y="${y + 13}">${esc(label)}</text>` : ''),
    );
  }
  const marks: string[] = [];
  for (const ev of result.schedule) {
    const t = ev.at * result.tickUs;
    marks.push(`<line class="fault" x1="${x(t)}" x2="${x(t)}" y1="${TOP - 30}" y2="${TOP - 4}"><title>${esc(`tick ${ev.at}: ${describeAction(ev.action)}`)}</title></line>`);
  }
  if (result.violation) {
    const vx = x(result.violation.time);
    marks.push(`<line class="violation" x1="${vx}" x2="${vx}" y1="0" y2="${TOP + clients * LANE}"><title>${esc(result.violation.message)}</title></line>`);
  }
  const lanes = Array.from({ length: clients }, (_, c) => `<text class="lane" x="2" y="${TOP + c * LANE + 17}">c${c}</text><line class="lane" x1="0" x2="${W}" y1="${TOP + (c + 1) * LANE}" y2="${TOP + (c + 1) * LANE}"/>`);
  const height = TOP + clients * LANE + 10;
  const verdict = result.ok ? 'ok' : `${result.violation?.kind}: ${result.violation?.name}`;
  const counter = result.check?.result === 'illegal' ? result.check.ops : [];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(`${result.protocol} seed ${result.seed}: ${verdict}`)}</title>
<style>
body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 6px}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}
.wrap{overflow-x:auto;border:1px solid #ddd}
svg text{font:10px monospace;pointer-events:none}
rect.ok{fill:#7fb2e5}rect.ok.put{fill:#8fcf8f}rect.ok.cas{fill:#e5c07f}rect.ok.append{fill:#b89be0}
rect.info{fill:#ccc;fill-opacity:.5;stroke:#999;stroke-dasharray:3 2}
rect.bad{fill:#e55;stroke:#900;stroke-width:2}
line.fault{stroke:#f90;stroke-width:2}line.violation{stroke:#d00;stroke-width:2}line.lane{stroke:#eee}
text.lane{font-weight:bold}
.legend span{display:inline-block;padding:1px 6px;margin-right:6px}
</style></head><body>
<h1>${esc(result.protocol)} · seed ${result.seed} · ${esc(verdict)}</h1>
<div>nodes ${esc(result.nodes.join(' '))} · ${result.history.length} ops (${result.stats.opsOk} ok, ${result.stats.opsIndeterminate} indeterminate) · ${result.stats.steps} steps · ${result.stats.crashes} crashes · simulated ${(result.endTime / 1000).toFixed(0)} ms</div>
${replay ? `<p>Replay: <code>${esc(replay)}</code></p>` : ''}
${result.violation ? `<pre>${esc(result.violation.message)}</pre>` : ''}
<div class="legend"><span style="background:#8fcf8f">put</span><span style="background:#7fb2e5">get</span><span style="background:#e5c07f">cas</span><span style="background:#b89be0">append</span><span style="background:#ddd">indeterminate</span><span style="background:#e55;color:#fff">counterexample</span><span style="border-left:3px solid #f90">fault</span><span style="border-left:3px solid #d00">violation</span>
zoom <input id="zoom" type="range" min="1" max="20" value="1"></div>
<div class="wrap"><svg id="tl" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" preserveAspectRatio="none">
${lanes.join('\n')}
${marks.join('\n')}
${bars.join('\n')}
</svg></div>
${counter.length > 0 ? `<h2>Failing sub-history (${esc(result.violation?.name ?? '')})</h2><pre>${esc(counter.map(describeClientOp).join('\n'))}</pre>` : ''}
<details><summary>Fault schedule (${result.schedule.length} events)</summary><pre>${esc(result.schedule.map((e) => `tick ${e.at}: ${describeAction(e.action)}`).join('\n'))}</pre></details>
<details><summary>History (${ops.length} ops; times in µs)</summary><pre>${esc(ops.map(describeClientOp).join('\n'))}</pre></details>
<script>
const z=document.getElementById('zoom'),s=document.getElementById('tl');
z.addEventListener('input',()=>{s.setAttribute('width',String(${W}*Number(z.value)));});
</script>
</body></html>
`;
}
