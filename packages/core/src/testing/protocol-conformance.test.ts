import { describe, expect, it } from 'vitest';
import { describeProtocolConformance, solo } from '@consensus-kit/core/testing';

describeProtocolConformance({ describe, it, expect }, { module: solo, nodes: 1 });
