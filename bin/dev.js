#!/usr/bin/env -S node --import tsx --no-warnings
// Runs the TypeScript sources directly (no build step), for development.
process.env.NODE_ENV = 'development'
const { main } = await import('../src/cli.ts')
await main(process.argv.slice(2), import.meta.url)
