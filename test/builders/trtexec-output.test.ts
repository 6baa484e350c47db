import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseDimensions, quoteNonFinite, readExportedOutputs } from '../../src/builders/trtexec-output.js'
import { toFloat64 } from '../../src/validate/tensors.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-export-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

// The layout trtexec's --exportOutput writes (sampleReporting.cpp exportJSONOutput).
const EXPORT = `[
  { "name" : "logits"
  , "dimensions" : "2x3"
  , "values" : [ 0.1, -0.2, 3.5e-05, nan, inf, -inf ]
  }
, { "name" : "nan-count:0"
  , "dimensions" : ""
  , "values" : [ 7 ]
  }
]
`

describe('reading trtexec --exportOutput', () => {
  it('quotes the bare nan/inf iostreams prints, and leaves names alone', () => {
    expect(quoteNonFinite('[ nan, -nan, inf, -inf, 1e-05 ]')).toBe('[ "NaN", "NaN", "Infinity", "-Infinity", 1e-05 ]')
    expect(quoteNonFinite('{ "name" : "inf, nan" }')).toBe('{ "name" : "inf, nan" }')
  })

  it('reads dimensions as trtexec writes them: AxB, empty for a scalar', () => {
    expect(parseDimensions('1x1000')).toEqual([1, 1000])
    expect(parseDimensions('')).toEqual([])
    expect(parseDimensions('1x?')).toBeUndefined()
  })

  it('gives host tensors of the reference\'s dtypes, non-finite values included', async () => {
    const file = join(dir, 'outputs.json')
    await writeFile(file, EXPORT)
    const t = await readExportedOutputs(file, { logits: 'float32', 'nan-count:0': 'int64' })
    expect(t.logits!.dims).toEqual([2, 3])
    const v = Array.from(toFloat64(t.logits!))
    expect(v.slice(0, 3).map((x) => Number(x.toPrecision(5)))).toEqual([0.1, -0.2, 3.5e-5])
    expect(v.slice(3)).toEqual([NaN, Infinity, -Infinity])
    expect(t['nan-count:0']).toMatchObject({ dtype: 'int64', dims: [] })
  })

  it('a file trtexec did not write, or wrote broken, is its failure (exit 3)', async () => {
    await expect(readExportedOutputs(join(dir, 'absent.json'))).rejects.toMatchObject({ code: 'TRTEXEC_BAD_OUTPUT', exitCode: 3 })
    const broken = join(dir, 'broken.json')
    await writeFile(broken, '[ { "name" : "y", "dimensions" : "2", "values" : [ 1 ] } ]')
    await expect(readExportedOutputs(broken)).rejects.toMatchObject({ code: 'TRTEXEC_BAD_OUTPUT', message: expect.stringMatching(/do not fit/) })
    await writeFile(broken, '[ { "name" : "y", "values" : [ 1 ] } ')
    await expect(readExportedOutputs(broken)).rejects.toMatchObject({ code: 'TRTEXEC_BAD_OUTPUT', message: expect.stringMatching(/not valid JSON/) })
  })
})
