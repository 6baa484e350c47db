import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { IntegrityError, type ModelforgeError } from '../../src/lib/errors.js'
import { parseJson, readJsonFile, readJsonFileSync, type JsonFailure } from '../../src/lib/json.js'

const dir = mkdtempSync(join(tmpdir(), 'mf-json-'))
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text)
  return join(dir, name)
}
const thrown = (fn: () => unknown): ModelforgeError => {
  try {
    fn()
  } catch (err) {
    return err as ModelforgeError
  }
  throw new Error('expected a failure')
}

describe('readJsonFile', () => {
  it('reads a file, checking the shape asked for', async () => {
    expect(await readJsonFile(file('ok.json', '{"a": [1, 2]}'), { expect: 'object' })).toEqual({ a: [1, 2] })
    expect(await readJsonFile(file('list.json', '[1]'), { expect: 'array' })).toEqual([1])
    expect(readJsonFileSync(join(dir, 'ok.json'))).toEqual({ a: [1, 2] })
  })

  it('names the file and what it is: exit 6 for a missing file, 4 for broken content, the OS failure for the rest', async () => {
    const missing = await readJsonFile(join(dir, 'none.json'), { what: 'labels file' }).catch((e: ModelforgeError) => e)
    expect(missing).toMatchObject({ exitCode: 6, code: 'JSON_NOT_FOUND', message: `labels file ${join(dir, 'none.json')} does not exist` })
    const broken = (await readJsonFile(file('broken.json', '{ nope'), { what: 'labels file' }).catch((e: unknown) => e)) as ModelforgeError
    expect(broken).toMatchObject({ exitCode: 4, code: 'JSON_INVALID' })
    expect(broken.message).toMatch(new RegExp(`^labels file ${join(dir, 'broken.json')} is not valid JSON: `))
    const unreadable = await readJsonFile(dir).catch((e: ModelforgeError) => e)
    expect(unreadable).toMatchObject({ exitCode: 2, code: 'IS_A_DIRECTORY', message: `Cannot read ${dir}: it is a directory (EISDIR) while reading a JSON file` })
    expect(thrown(() => readJsonFileSync(join(dir, 'list.json'), { expect: 'object' }))).toMatchObject({
      code: 'JSON_INVALID',
      message: `${join(dir, 'list.json')} must hold a JSON object`,
    })
  })

  it('lets the caller choose the error: the class, so the exit code, the code and the hint', async () => {
    const seen: JsonFailure[] = []
    const onError = (f: JsonFailure): Error => {
      seen.push(f)
      return new IntegrityError(f.message, { code: 'MODEL_CONFIG_INVALID', hint: 'Build it again.' })
    }
    const err = await readJsonFile(file('null.json', 'null'), { expect: 'object', onError }).catch((e: ModelforgeError) => e)
    expect(err).toMatchObject({ exitCode: 4, code: 'MODEL_CONFIG_INVALID', hint: 'Build it again.' })
    await readJsonFile(join(dir, 'none.json'), { onError }).catch(() => undefined)
    await readJsonFile(join(dir, 'broken.json'), { onError }).catch(() => undefined)
    expect(seen.map((f) => [f.kind, f.where])).toEqual([
      ['shape', join(dir, 'null.json')],
      ['missing', join(dir, 'none.json')],
      ['syntax', join(dir, 'broken.json')],
    ])
    expect(seen[0]!.reason).toBe('a JSON object')
    expect(seen[1]!.reason).toMatch(/ENOENT/)
    expect(seen[2]!.cause).toBeInstanceOf(SyntaxError)
  })
})

describe('parseJson', () => {
  it('parses text from anywhere, naming where it came from', () => {
    expect(parseJson('{"x": 1}', 'the header')).toEqual({ x: 1 })
    expect(thrown(() => parseJson('{', 'the header of a.safetensors')).message).toMatch(/^the header of a.safetensors is not valid JSON: /)
    expect(thrown(() => parseJson('{}', 'modules.json', { expect: 'array' })).message).toBe('modules.json must hold a JSON array')
  })
})
