// A user's own protocol module, as `pnpm sim --module <path>` loads it: here, the toy with local reads.
import { createToyModule, toyInvariants } from '../src/toy/index';

export default createToyModule({ localReads: true }, 'user-toy');
export const invariants = toyInvariants;
