import type { Linter } from 'eslint';
export declare const protocolPurity: Linter.Config;
declare const config: Linter.Config[];
export default config;
