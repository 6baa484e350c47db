/**
 * Error codes are a contract: every code thrown in src/ is in the catalogue with the exit code of the class
 * that throws it, every catalogue code is thrown somewhere, and docs/errors.md is the catalogue rendered.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, isErrorCode } from '../../src/lib/error-codes.js'
import { renderErrorsDoc } from '../../scripts/errors-doc.js'
import { repoRoot } from '../helpers/store-helpers.js'

const CLASS_EXIT: Record<string, number> = { InternalError: 1, UsageError: 2, ExternalError: 3, IntegrityError: 4, ConflictError: 5, NotFoundError: 6, PolicyError: 7, InterruptedError: 130 }

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

const files = sources(join(repoRoot, 'src')).filter((f) => !f.endsWith('error-codes.ts'))

/** The text of a call's arguments: from just after its "(" to the matching ")", skipping strings. */
function callArguments(text: string, start: number): string {
  let depth = 1
  const templates: number[] = []
  for (let i = start; i < text.length; i++) {
    const ch = text[i]!
    if (ch === "'" || ch === '"') {
      for (i++; i < text.length && text[i] !== ch; i++) if (text[i] === '\\') i++
    } else if (ch === '`') {
      templates.push(depth)
      for (i++; i < text.length && text[i] !== '`'; i++) {
        if (text[i] === '\\') i++
        else if (text[i] === '$' && text[i + 1] === '{') break
      }
      if (text[i] === '`') templates.pop()
      else { depth++; i++ }
    } else if (ch === '(' || ch === '[' || ch === '{') depth++
    else if (ch === ')' || ch === ']' || ch === '}') {
      depth--
      if (depth === 0) return text.slice(start, i)
      if (ch === '}' && templates.length > 0 && templates[templates.length - 1] === depth) {
        // back inside a template literal: skip to its end or its next ${
        for (i++; i < text.length && text[i] !== '`'; i++) {
          if (text[i] === '\\') i++
          else if (text[i] === '$' && text[i + 1] === '{') break
        }
        if (text[i] === '`') templates.pop()
        else { depth++; i++ }
      }
    }
  }
  return text.slice(start)
}

/** Every `new XError(message, { ... code: 'C' ... })` in src, with the class and the code (or null). */
function throwSites(): { where: string; cls: string; code: string | null }[] {
  const out: { where: string; cls: string; code: string | null }[] = []
  for (const f of files) {
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/new (\w+Error)\(/g)) {
      if (!(m[1]! in CLASS_EXIT)) continue
      const args = callArguments(text, m.index! + m[0].length)
      // The code of this call only, not of a call nested in its arguments.
      const own = args.replace(/new \w+Error\([\s\S]*$/, '')
      const codes = [...own.matchAll(/\bcode: ([^,}\n]+)/g)].map((c) => c[1]!)
      const where = `${relative(repoRoot, f)}:${text.slice(0, m.index).split('\n').length}`
      if (codes.length === 0) out.push({ where, cls: m[1]!, code: null })
      // A code chosen by a condition (`code: a ? 'X' : 'Y'`) lists each literal.
      for (const c of codes) for (const lit of c.matchAll(/'([A-Z][A-Z0-9_]*)'/g)) out.push({ where, cls: m[1]!, code: lit[1]! })
    }
  }
  return out
}

describe('error codes', () => {
  it('every throw names a catalogued code with its class\'s exit code', () => {
    const sites = throwSites()
    expect(sites.length).toBeGreaterThan(150)
    const bad = sites.filter((s) => s.code !== null && (!isErrorCode(s.code) || ERROR_CODES[s.code].exit !== CLASS_EXIT[s.cls]))
      .map((s) => `${s.where} ${s.cls} ${s.code}${s.code && isErrorCode(s.code) ? ` (catalogue exit ${ERROR_CODES[s.code].exit})` : ' (not in the catalogue)'}`)
    expect(bad).toEqual([])
  })

  it('every catalogued code is used in src/', () => {
    const text = files.map((f) => readFileSync(f, 'utf8')).join('\n')
    const unused = Object.keys(ERROR_CODES).filter((c) => !text.includes(`'${c}'`))
    expect(unused).toEqual([])
  })

  it('docs/errors.md is the catalogue rendered (npm run docs:errors)', () => {
    expect(readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8')).toBe(renderErrorsDoc())
  })

  it('every code has a summary and a hint, and hints name only commands that exist', () => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, unknown> }
    const commands = Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' '))
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(info.summary, code).toBeTruthy()
      expect(info.hint, code).toBeTruthy()
    }
    // Hints in the catalogue and at throw sites: `modelforge <command>` and `store <verb>` must exist.
    const hints = [...Object.values(ERROR_CODES).map((i) => i.hint), ...files.map((f) => readFileSync(f, 'utf8'))].join('\n')
    const named = [...hints.matchAll(/`(?:modelforge )?((?:store )?[a-z][a-z-]+)[ `]/g)].map((m) => m[1]!)
    const cliWords = named.filter((w) => /^(store [a-z-]+|fetch|export|validate|inspect|toy-store|doctor|build|build-engine|quantize|registry [a-z]+)$/.test(w))
    expect(cliWords.filter((w) => !commands.includes(w))).toEqual([])
  })

  it('hints name only docs pages that exist, and one way to a stack trace: DEBUG=modelforge*', () => {
    // The catalogue's hints and every line of src/ that gives one.
    const hintLines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => /\bhint\b/.test(l)))
    const text = [...Object.values(ERROR_CODES).map((i) => i.hint), ...hintLines].join('\n')
    const pages = [...new Set([...text.matchAll(/docs\/([a-z-]+\.md)/g)].map((m) => m[1]!))]
    const docs = readdirSync(join(repoRoot, 'docs'))
    expect(pages.filter((p) => !docs.includes(p))).toEqual([])
    expect(text).not.toMatch(/DEBUG=1\b/)
    expect(text.match(/DEBUG=(?!modelforge\*)\S+/g) ?? []).toEqual([])
  })
})
