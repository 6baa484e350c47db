import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../lib/base-command.js'
import { assertWellFormed, formatInspection, type ModelInspection } from '../onnx/inspect.js'
import { inspectModel } from '../validate/load-check.js'

export default class Inspect extends BaseCommand {
  static summary = 'Show what an ONNX model is: opsets, inputs/outputs, op histogram, parameters, external data'
  static description = `Reads the model without running it: IR version, opsets, producer, metadata, inputs and outputs with dtypes and shapes (symbolic dims by name), the op histogram over all graphs (If/Loop/Scan bodies included), parameter count and bytes, and the external data files the model names.

It also checks the structure (names defined once, every node input defined, opsets imported, initializers holding their bytes, external data present); --load also loads the model in onnxruntime-node (shape errors, unknown operators).

Exit codes: 4 the model is broken or (with --load) onnxruntime refuses it, after printing what could be read; 6 file not found. See docs/inspect.md.`
  static examples = [
    '<%= config.bin %> inspect out/model.onnx',
    '<%= config.bin %> inspect out/model.onnx --load --json',
  ]
  static args = {
    model: Args.string({ description: 'the ONNX file', required: true }),
  }
  static flags = {
    load: Flags.boolean({ description: 'also load the model in onnxruntime-node and report its view of inputs/outputs', default: false }),
  }

  async run(): Promise<ModelInspection> {
    const { args, flags } = await this.parse(Inspect)
    const info = await inspectModel(args.model, { load: flags.load })
    this.say(formatInspection(info))
    return assertWellFormed(info)
  }
}
