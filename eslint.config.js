import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'fixtures/**', 'bench/.work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Only src/lib/exec.ts may spawn processes (DESIGN.md section 1).
      'no-restricted-imports': ['error', { paths: [{ name: 'execa', message: 'Use src/lib/exec.ts.' }] }],
    },
  },
  { files: ['src/lib/exec.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['bin/**/*.js', '.ci/**/*.mjs', 'scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
)
