/**
 * What trtexec's --exportOutput writes, read back as host tensors:
 *
 *   [
 *     { "name" : "logits"
 *     , "dimensions" : "2x1000"
 *     , "values" : [ 0.1, -0.2, ... ]
 *     }
 *   ]
 *
 * `dimensions` is a string of dims joined by "x" (empty for a scalar), `values` the tensor flattened in
 * row-major order (fp16 and bf16 printed after conversion to float). trtexec prints the numbers with C++
 * iostreams, so a NaN or an infinity appears as a bare nan / inf / -nan / -inf, which no JSON parser
 * accepts: those words become the strings the host tensors read ("NaN", "Infinity").
 */
import { readFile } from 'node:fs/promises'
import { ExternalError, errnoCode, osFailure } from '../lib/errors.js'
import { parseJson } from '../lib/json.js'
import { fromValues, type Dtype, type TensorMap } from '../validate/tensors.js'

const BARE: Record<string, string> = { nan: '"NaN"', '-nan': '"NaN"', inf: '"Infinity"', '-inf': '"-Infinity"', infinity: '"Infinity"', '-infinity': '"-Infinity"' }

/** The text with iostream's bare non-finite words quoted; strings (tensor names) are left as they are. */
export function quoteNonFinite(text: string): string {
  let out = ''
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (ch === '"') {
      let j = i + 1
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      out += text.slice(i, j + 1)
      i = j + 1
      continue
    }
    const word = /^-?[A-Za-z]+/.exec(text.slice(i, i + 10))
    if (word) {
      out += BARE[word[0].toLowerCase()] ?? word[0]
      i += word[0].length
      continue
    }
    out += ch
    i++
  }
  return out
}

function badOutput(file: string, why: string): ExternalError {
  return new ExternalError(`trtexec's --exportOutput file ${file} ${why}`, {
    code: 'TRTEXEC_BAD_OUTPUT',
    hint: 'trtexec reported success but its export is not what its format says; rerun the validation command by hand (see --dry-run) to inspect the file.',
    details: { file },
  })
}

export function parseDimensions(text: string): number[] | undefined {
  if (text.trim() === '') return []
  const dims = text.split('x').map((d) => Number(d))
  return dims.every((d) => Number.isInteger(d) && d >= 0) ? dims : undefined
}

/**
 * The exported outputs as host tensors of the given dtypes (the reference's: an int64 output of a TensorRT
 * 8 engine is int32 on the device, yet the same integers). An output without a dtype is read as float32.
 */
export async function readExportedOutputs(file: string, dtypes: Record<string, Dtype> = {}): Promise<TensorMap> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw badOutput(file, 'was not written')
    throw osFailure(err, "reading trtexec's exported outputs", file)
  }
  const entries = parseJson<unknown[]>(quoteNonFinite(text), file, { expect: 'array', onError: (f) => badOutput(file, `is not valid JSON: ${f.reason}`) })
  const out: TensorMap = {}
  for (const [i, e] of entries.entries()) {
    const entry = e as { name?: unknown; dimensions?: unknown; values?: unknown }
    if (!entry || typeof entry.name !== 'string' || typeof entry.dimensions !== 'string' || !Array.isArray(entry.values)) {
      throw badOutput(file, `holds an entry (#${i}) without name, dimensions and values`)
    }
    const dims = parseDimensions(entry.dimensions)
    if (!dims) throw badOutput(file, `gives output "${entry.name}" the dimensions "${entry.dimensions}"`)
    try {
      out[entry.name] = fromValues(dtypes[entry.name] ?? 'float32', dims, entry.values, `exported output ${entry.name}`)
    } catch (err) {
      throw badOutput(file, `holds values for output "${entry.name}" that do not fit it: ${(err as Error).message}`)
    }
  }
  return out
}
