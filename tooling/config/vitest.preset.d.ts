import type { ViteUserConfig } from 'vitest/config';
export declare const SOURCE_CONDITION: '@consensus-kit/source';
export declare function definePackageConfig(overrides?: ViteUserConfig): ViteUserConfig;
