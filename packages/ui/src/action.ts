/** Reads a `UiAction` from untrusted JSON: every field checked, unknown fields refused. */
import { UiActionError } from './errors';
import { UI_ACTION_NAMES, type UiAction, type UiActionName } from './model';

const MAX_TEXT = 16 * 1024;
/** As core's node ids: 1-128 characters, no whitespace. */
const NODE_ID = /^\S{1,128}$/;
const ROLES = ['voter', 'learner', 'observer'] as const;

const FIELDS: Record<UiActionName, { required: string[]; optional: string[] }> = {
  put: { required: ['key', 'value'], optional: [] },
  get: { required: ['key'], optional: [] },
  kill: { required: ['node'], optional: [] },
  restart: { required: ['node'], optional: [] },
  partition: { required: ['node'], optional: ['peer'] },
  heal: { required: [], optional: [] },
  transfer: { required: ['to'], optional: [] },
  'add-member': { required: [], optional: ['node', 'role'] },
  'remove-member': { required: ['node'], optional: [] },
  bench: { required: [], optional: ['seconds', 'clients'] },
};

function isActionName(value: unknown): value is UiActionName {
  return typeof value === 'string' && (UI_ACTION_NAMES as readonly string[]).includes(value);
}

function checkText(name: string, value: unknown, allowEmpty: boolean): void {
  if (typeof value !== 'string') throw new UiActionError(`"${name}" must be a string`);
  if (!allowEmpty && value.length === 0) throw new UiActionError(`"${name}" must not be empty`);
  if (value.length > MAX_TEXT) throw new UiActionError(`"${name}" is longer than ${MAX_TEXT} characters`);
}

function checkNode(name: string, value: unknown): void {
  if (typeof value !== 'string' || !NODE_ID.test(value)) {
    throw new UiActionError(`"${name}" must be a node id (1-128 characters, no whitespace)`);
  }
}

function checkCount(name: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new UiActionError(`"${name}" must be an integer from 1 to ${max}`);
  }
}

/** The action `body` (parsed JSON) describes, or a `UiActionError` saying what is wrong with it. */
export function parseUiAction(body: unknown): UiAction {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UiActionError('the body must be a JSON object');
  const record = body as Record<string, unknown>;
  const name = record['action'];
  if (!isActionName(name)) {
    throw new UiActionError(`unknown action ${JSON.stringify(name) ?? 'undefined'}; one of: ${UI_ACTION_NAMES.join(', ')}`);
  }
  const { required, optional } = FIELDS[name];
  for (const key of Object.keys(record)) {
    if (key !== 'action' && !required.includes(key) && !optional.includes(key)) {
      throw new UiActionError(`action "${name}" takes no field "${key}"`);
    }
  }
  for (const key of required) if (!Object.hasOwn(record, key)) throw new UiActionError(`action "${name}" needs "${key}"`);
  const present = (key: string): boolean => Object.hasOwn(record, key) && record[key] !== undefined;
  switch (name) {
    case 'put':
      checkText('key', record['key'], false);
      checkText('value', record['value'], true);
      return { action: name, key: record['key'] as string, value: record['value'] as string };
    case 'get':
      checkText('key', record['key'], false);
      return { action: name, key: record['key'] as string };
    case 'kill':
    case 'restart':
    case 'remove-member':
      checkNode('node', record['node']);
      return { action: name, node: record['node'] as string };
    case 'partition': {
      checkNode('node', record['node']);
      if (!present('peer')) return { action: name, node: record['node'] as string };
      checkNode('peer', record['peer']);
      if (record['peer'] === record['node']) throw new UiActionError('"peer" must differ from "node"');
      return { action: name, node: record['node'] as string, peer: record['peer'] as string };
    }
    case 'heal':
      return { action: name };
    case 'transfer':
      checkNode('to', record['to']);
      return { action: name, to: record['to'] as string };
    case 'add-member': {
      const action: UiAction & { action: 'add-member' } = { action: name };
      if (present('node')) {
        checkNode('node', record['node']);
        action.node = record['node'] as string;
      }
      if (present('role')) {
        const role = record['role'];
        if (!(ROLES as readonly unknown[]).includes(role)) throw new UiActionError(`"role" must be one of: ${ROLES.join(', ')}`);
        action.role = role as (typeof ROLES)[number];
      }
      return action;
    }
    case 'bench': {
      const action: UiAction & { action: 'bench' } = { action: name };
      if (present('seconds')) {
        checkCount('seconds', record['seconds'], 600);
        action.seconds = record['seconds'] as number;
      }
      if (present('clients')) {
        checkCount('clients', record['clients'], 1024);
        action.clients = record['clients'] as number;
      }
      return action;
    }
  }
}
