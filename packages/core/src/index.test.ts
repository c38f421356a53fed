import { describe, expect, it } from 'vitest';
import { placeholder } from '@consensus-kit/core';
describe('x', () => { it('y', () => { expect(placeholder).toBe(1); }); });
