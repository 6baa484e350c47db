#!/usr/bin/env node
// `store current` is called very often by agents and scripts; answer it without loading oclif when the
// arguments are the plain form (the fast path falls back to oclif for anything it does not recognise).
import { fastPath } from '../dist/fast-path.js'

if (!(await fastPath(process.argv.slice(2)))) {
  const { main } = await import('../dist/cli.js')
  await main(process.argv.slice(2), import.meta.url)
}
