import { describe, expect, it } from 'vitest';
import { describeProtocolConformance } from '@consensus-kit/core/testing';
import { zab } from './index';

const api = { describe, it, expect };
describeProtocolConformance(api, { module: zab });
describeProtocolConformance(api, { module: zab, nodes: 5 });
describeProtocolConformance(api, { module: zab, nodes: 1 });
