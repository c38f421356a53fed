export { TOY_OPTIONS, createToyModule, toy } from './toy-protocol';
export type { ToyFlaws, ToyOptions } from './toy-protocol';
import { electionSafety, type Invariant } from '../invariant';

/** The toy protocol's own invariants (run through the simulator's hook like any protocol package's). */
export function toyInvariants(): Invariant[] {
  return [electionSafety()];
}
