import { describeStorageConformance } from '@consensus-kit/core/testing';
import { emptyMemoryStorageState, MemoryStorage } from './memory-storage';

describeStorageConformance('MemoryStorage', () => {
  const state = emptyMemoryStorageState();
  return { open: async () => new MemoryStorage(state) };
});
