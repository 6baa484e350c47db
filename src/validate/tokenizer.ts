/**
 * The model's tokenizer: tokenizer.json (and tokenizer_config.json beside it) loaded through
 * @huggingface/tokenizers, the tokenizer of transformers.js (pure JS, no install script). Used by text
 * calibration data and by text generation.
 */
import { stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { errnoCode, IntegrityError, ModelforgeError, NotFoundError, osFailure, UsageError } from '../lib/errors.js'
import { readJsonFile } from '../lib/json.js'

export interface LoadedTokenizer { tokenizer: Tokenizer; path: string; padId: number; special: Set<number> }

export async function loadTokenizer(modelPath: string, given: string | undefined, purpose: string): Promise<LoadedTokenizer> {
  let file = join(dirname(modelPath), 'tokenizer.json')
  if (given !== undefined) {
    let s
    try {
      s = await stat(given)
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`--tokenizer ${given} does not exist`, { code: 'TOKENIZER_NOT_FOUND', hint: 'Give a tokenizer.json, or the model directory holding one.' })
      throw osFailure(err, `reading --tokenizer ${given}`)
    }
    file = s.isDirectory() ? join(given, 'tokenizer.json') : given
  }
  const json = await readJsonFile<Record<string, unknown>>(file, { expect: 'object' }).catch((err: unknown) => {
    if (err instanceof ModelforgeError && err.code === 'JSON_NOT_FOUND') {
      throw new UsageError(`${purpose} needs the model's tokenizer, and there is no ${file}${given === undefined ? ' next to the model' : ''}`, {
        code: 'TOKENIZER_REQUIRED',
        hint: 'Pass --tokenizer <tokenizer.json or the model directory> (the export\'s --out has one), or give --calib-data as a directory of ONNX test-data inputs.',
      })
    }
    throw err
  })
  const configPath = join(dirname(file), 'tokenizer_config.json')
  const config = await readJsonFile<Record<string, unknown>>(configPath, { expect: 'object' }).catch((err: unknown) => {
    if (err instanceof ModelforgeError && err.code === 'JSON_NOT_FOUND') return {} as Record<string, unknown>
    throw err
  })
  let tokenizer: Tokenizer
  try {
    tokenizer = new Tokenizer(json, config)
  } catch (err) {
    throw new IntegrityError(`${file} is not a tokenizer the tokenizer library can load: ${(err as Error).message}`, {
      code: 'TOKENIZER_INVALID',
      hint: 'Give the tokenizer.json of the model (Hugging Face tokenizers format), with --tokenizer if it is elsewhere.',
    })
  }
  const padding = json.padding as { pad_id?: unknown } | null | undefined
  const padToken = typeof config.pad_token === 'string' ? config.pad_token : undefined
  const padId = typeof padding?.pad_id === 'number' ? padding.pad_id : (padToken !== undefined ? tokenizer.token_to_id(padToken) : undefined) ?? 0
  const special = new Set([...tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id))
  return { tokenizer, path: file, padId, special }
}
