import { describeStorageConformance, persistReady, saveSteps } from '@consensus-kit/core/testing';
import { describe, expect, it } from 'vitest';
import { emptyMemoryStorageState, MemoryStorage } from './memory-storage';

describeStorageConformance(
  { describe, it, expect },
  'MemoryStorage',
  () => {
    const state = emptyMemoryStorageState();
    return {
      open: async () => new MemoryStorage(state),
      // A crash in the middle of a save: the first `point` steps of the pinned order reach the shared state,
      // which a new MemoryStorage then reopens.
      async crashDuringSave(setup, save, point) {
        const storage = new MemoryStorage(state);
        await setup(storage);
        persistReady(storage, save, point);
        return { storage: new MemoryStorage(state), completed: point >= saveSteps(save) };
      },
    };
  },
  { crashes: true },
);

describe('MemoryStorage.saveNow', () => {
  it('writes truncation, entries, then hard state, and a refused batch changes nothing', () => {
    const s = new MemoryStorage();
    s.saveNow({ hardState: Uint8Array.of(1), entries: [1, 2, 3].map((index) => ({ index, term: 1, type: 'command' as const, data: new Uint8Array(0) })) });
    const gap = { index: 5, term: 2, type: 'command' as const, data: new Uint8Array(0) };
    expect(() => s.saveNow({ hardState: Uint8Array.of(2), truncateAfter: 1, entries: [gap] })).toThrow(/gap/);
    expect(s.lastIndex()).toBe(3);
    expect([...(s.initialState().hardState ?? [])]).toEqual([1]);
  });
});
