// The invariant and view types are declared once, in core's testing entry (DESIGN r2); re-exported here for
// the simulator's own modules and its public API.
export { electionSafety, instantiateInvariants } from '@consensus-kit/core/testing';
export type { Invariant, InvariantSource, ReplicaView, SimView } from '@consensus-kit/core/testing';
