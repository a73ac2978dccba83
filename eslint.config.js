// Lint and format: neostandard (the standard style, with typescript-eslint) for
// TypeScript and JavaScript, and import-x/no-cycle, since a cycle makes module load
// order decide which bindings are still undefined.
import neostandard from 'neostandard'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'build/**', 'fuzz-out/**', 'node_modules/**'] }),
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'test/tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // `void promise` marks a deliberate fire-and-forget (a signal handler, a timer).
      'no-void': ['error', { allowAsStatement: true }],
    },
  },
]
