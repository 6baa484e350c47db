/**
 * --help and docs/ tell the truth about the flags: every command's --help renders and shows each of its
 * flags with a description and an example using long flag names; every flag is documented on the command's
 * page in docs/, and every flag a page names exists on a command that page documents.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cli, repoRoot } from '../helpers/store-helpers.js'

interface ManifestFlag { name: string; description?: string; allowNo?: boolean; char?: string; hidden?: boolean; aliases?: string[] }
interface ManifestCommand { id: string; summary?: string; description?: string; examples?: string[]; flags: Record<string, ManifestFlag> }

const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, ManifestCommand> }
const commands = Object.values(manifest.commands)

/** The docs page that documents a command. */
function pageOf(id: string): string {
  return id.startsWith('store:') ? 'store.md' : id.startsWith('registry:') ? 'registry.md' : `${id}.md`
}

/** The names a flag goes by on the command line. */
function spellings(f: ManifestFlag): string[] {
  return [`--${f.name}`, ...(f.allowNo ? [`--no-${f.name}`] : []), ...(f.aliases ?? []).map((a) => `--${a}`)]
}

// Flags every command has, documented once in docs/cli.md rather than on each page.
const GLOBAL = new Set(['--json', '--help'])

describe('--help and docs/ match the flags', () => {
  it.each(commands.map((c) => [c.id.replaceAll(':', ' '), c] as const))('%s: --help shows every flag, described, and a long-flag example', (name, c) => {
    const r = cli([...name.split(' '), '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/USAGE/)
    for (const f of Object.values(c.flags).filter((x) => !x.hidden)) {
      expect(f.description, `${name} --${f.name} has no description`).toBeTruthy()
      expect(r.stdout, `${name} --help lacks --${f.name}`).toContain(`--${f.allowNo ? '[no-]' : ''}${f.name}`)
    }
    expect(c.examples?.length, `${name} has no example`).toBeGreaterThan(0)
    // Examples use long flag names (Heroku's convention): no single-dash short flags.
    for (const ex of c.examples ?? []) expect(ex, ex).not.toMatch(/\s-[a-zA-Z](\s|$)/)
  })

  it.each(commands.map((c) => [c.id.replaceAll(':', ' '), c] as const))('%s: each flag is documented on its docs page', (name, c) => {
    const page = readFileSync(join(repoRoot, 'docs', pageOf(c.id)), 'utf8')
    for (const f of Object.values(c.flags).filter((x) => !x.hidden && !GLOBAL.has(`--${x.name}`))) {
      expect(spellings(f).some((s) => page.includes(s)), `docs/${pageOf(c.id)} does not mention ${name} --${f.name}`).toBe(true)
    }
  })

  it.each([...new Set(commands.map((c) => pageOf(c.id)))])('docs/%s names no flag that its commands lack', (page) => {
    const text = readFileSync(join(repoRoot, 'docs', page), 'utf8')
    const known = new Set([...GLOBAL, ...commands.filter((c) => pageOf(c.id) === page).flatMap((c) => Object.values(c.flags).flatMap(spellings))])
    // Flags of other tools quoted on the page (curl, sha256sum, optimum-cli, git) are marked as such below.
    const foreign = new Set(FOREIGN[page] ?? [])
    const unknown = new Set<string>()
    for (const line of text.split('\n')) {
      // A line that runs another modelforge command (`modelforge store gc --older-than 0`) may name its flags.
      const here = new Set(commands.filter((c) => line.includes(`modelforge ${c.id.replaceAll(':', ' ')} `)).flatMap((c) => Object.values(c.flags).flatMap(spellings)))
      for (const [n] of line.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) if (!known.has(n) && !foreign.has(n) && !here.has(n)) unknown.add(n)
    }
    expect([...unknown], `docs/${page} names flags no command of it has`).toEqual([])
  })
})

/** Flags of other programs that the pages quote. */
const FOREIGN: Record<string, string[]> = {
  'export.md': ['--model', '--library-name'], // optimum-cli export onnx
  'store.md': ['--exclude', '--links', '--perms', '--times'], // rsync, in the backup recipe
  // trtexec's own flags (camelCase, so only their lower-case start matches), and --flag=value as a pattern.
  'build-engine.md': ['--onnx', '--save'], // trtexec's, in the manifest example
  'build.md': ['--best', '--bf16', '--builder', '--export', '--flag', '--fp16', '--hardware', '--int8', '--load', '--max', '--mem', '--min', '--onnx', '--opt', '--profiling', '--save', '--separate', '--shapes', '--skip', '--strongly', '--timing'],
}
