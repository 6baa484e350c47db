import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { PRECISIONS, type Precision } from '../validate/compare.js'
import { assertValidated, formatValidation, validateModel, type ValidateResult } from '../validate/validate.js'
import { decoderValidationError, formatDecoderValidation, isDecoderModel, validateDecoder, type DecoderValidation } from '../validate/decoder-check.js'
import { UsageError } from '../lib/errors.js'

export default class Validate extends BaseCommand {
  static summary = 'Compare an ONNX model\'s outputs with a reference, output by output (exit 4 when any is off)'
  static description = `The reference is another ONNX model (both run on the same inputs), an ONNX test data directory (test_data_set_N/input_N.pb + output_N.pb) or a reference JSON ({"inputs": {...}, "outputs": {...}}). Inputs come from --inputs, else from the reference, else are generated from the model's inputs (token ids inside the vocabulary, attention masks with padded tails, token types, uniform floats).

An element passes when |candidate - reference| <= atol OR |candidate - reference| / |reference| <= rtol (Polygraphy's rule). Defaults by --precision: fp32 atol 1e-4 rtol 1e-3; fp16 1e-2 / 1e-2; int8 cosine similarity >= 0.99 and, for logits, the same argmax.

A decoder with a KV cache (past_key_values inputs) is checked by steps instead: prefill (a left-padded batch), one cached decode step and greedy generation, against a reference.json holding {prefill, decode, greedy} (PyTorch's outputs) or another ONNX decoder; it reports the largest logits error of each step (--atol, default 1e-4, fp16 1e-2) and the first diverging token.

Exit codes: 4 validation failed (the table says which output and by how much), 2 bad arguments or mismatched reference, 6 file not found. See docs/validate.md.`
  static examples = [
    '<%= config.bin %> validate out/model.onnx --reference fixtures/hf-tiny/tiny-bert/reference.json --atol 1e-4',
    '<%= config.bin %> validate model_fp16.onnx --reference model.onnx --precision fp16 --samples 4 --sequence-length 128',
    '<%= config.bin %> validate model.onnx --reference onnx-tests/test_softmax_example --atol 1e-7 --rtol 1e-3',
    '<%= config.bin %> validate model_int8.onnx --reference model.onnx --precision int8 --inputs calib.json --json',
    '<%= config.bin %> validate model.onnx --reference ref.json --atol 1e-5 --atol logits:1e-3 --rtol 0',
    '<%= config.bin %> validate llm/onnx/model.onnx --reference llm/reference.json --atol 1e-4',
  ]
  static args = {
    candidate: Args.string({ description: 'the ONNX model to check', required: true }),
  }
  static flags = {
    reference: Flags.string({ description: 'reference: an .onnx model, an ONNX test data directory, or a reference JSON', required: true, helpValue: '<onnx|dir|json>' }),
    inputs: Flags.string({ description: 'inputs: a JSON file ({"inputs": {...}}) or a directory of input_N.pb files [default: the reference\'s, else generated]', helpValue: '<dir|json>' }),
    precision: Flags.string({ description: 'tolerance defaults: fp32 (1e-4/1e-3), fp16 (1e-2/1e-2), int8 (cosine >= 0.99, logits argmax)', options: [...PRECISIONS], default: 'fp32' }),
    atol: Flags.string({ description: 'absolute tolerance: <number> for all outputs or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    rtol: Flags.string({ description: 'relative tolerance: <number> for all outputs or <output>:<number> (repeatable)', multiple: true, helpValue: '<[output:]value>' }),
    'min-cosine': Flags.string({ description: 'also require this cosine similarity per output, a number from -1 to 1 (int8 default 0.99; otherwise off)', helpValue: '<-1..1>' }),
    output: Flags.string({ description: 'compare only this output (repeatable)', multiple: true, helpValue: '<name>' }),
    samples: Flags.integer({ description: 'generated inputs: batch size (>= 1)', default: 2, min: 1 }),
    'sequence-length': Flags.integer({ description: 'generated inputs: sequence length (>= 1, capped at max_position_embeddings)', default: 16, min: 1 }),
    seed: Flags.integer({ description: 'generated inputs: PRNG seed (same seed, same inputs)', default: 0 }),
    'vocab-size': Flags.integer({ description: 'generated inputs: token ids below this [default: config.json next to the model, else the embedding table]', min: 1 }),
  }

  async run(): Promise<ValidateResult | DecoderValidation> {
    const { args, flags } = await this.parse(Validate)
    if (await isDecoderModel(args.candidate)) return this.decoder(args.candidate, flags)
    const minCosine = flags['min-cosine'] === undefined ? undefined : Number(flags['min-cosine'])
    const result = await this.withProgress((progress) => validateModel({
      candidate: args.candidate,
      reference: flags.reference,
      inputs: flags.inputs,
      precision: flags.precision as Precision,
      atol: flags.atol,
      rtol: flags.rtol,
      minCosine,
      outputs: flags.output,
      generate: {
        samples: flags.samples,
        sequenceLength: flags['sequence-length'],
        seed: flags.seed,
        ...(flags['vocab-size'] ? { vocabSize: flags['vocab-size'] } : {}),
      },
      progress,
    }))
    this.say(formatValidation(result))
    return assertValidated(result)
  }

  private async decoder(candidate: string, flags: { reference: string; precision: string; atol?: string[]; [k: string]: unknown }): Promise<DecoderValidation> {
    const unused = ['inputs', 'rtol', 'min-cosine', 'output', 'vocab-size'].filter((k) => flags[k] !== undefined)
    const atol = flags.atol ?? []
    if (unused.length || atol.length > 1 || atol.some((a) => a.includes(':')) || flags.precision === 'int8') {
      throw new UsageError(`${candidate} is a decoder: validate checks its logits by steps, with one --atol and --precision fp32|fp16${unused.length ? ` (not ${unused.map((k) => `--${k}`).join(', ')})` : ''}`, {
        code: 'INVALID_OPTION',
        hint: 'For example --atol 1e-4, or --precision fp16.',
      })
    }
    const r = await validateDecoder({ candidate, reference: flags.reference, precision: flags.precision as 'fp32' | 'fp16', ...(atol.length ? { atol: Number(atol[0]) } : {}) })
    this.say(formatDecoderValidation(r))
    if (!r.passed) throw decoderValidationError(r)
    return r
  }
}
