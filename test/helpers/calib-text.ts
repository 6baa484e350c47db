/**
 * Calibration text for the tiny fixtures: sentences of words from the fixture's own vocabulary (vocab.txt
 * next to its model), so that every token the tokenizer produces is a real one, seeded and reproducible.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { prng } from '../../src/lib/random.js'

export function vocabularyWords(modelPath: string): string[] {
  return readFileSync(join(dirname(modelPath), 'vocab.txt'), 'utf8').split('\n')
    .filter((w) => w && !w.startsWith('[') && !w.startsWith('##'))
}

/** Writes `lines` sentences of 3 to 12 vocabulary words to `path`; returns them. */
export function writeCalibText(path: string, modelPath: string, lines: number, seed = 0): string[] {
  const words = vocabularyWords(modelPath)
  const rand = prng(seed)
  const out = Array.from({ length: lines }, () => Array.from({ length: 3 + Math.floor(rand() * 10) }, () => words[Math.floor(rand() * words.length)]!).join(' '))
  writeFileSync(path, out.join('\n') + '\n')
  return out
}
