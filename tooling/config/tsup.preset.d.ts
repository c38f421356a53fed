import type { Options } from 'tsup';
export declare function definePackageBuild(options: Options): Options | Options[];
