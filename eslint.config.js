export { default } from '@consensus-kit/tooling/eslint';
