/**
 * The building blocks the native exporters share (encoders in native-graph.ts, decoders in
 * decoder-graph.ts): cached scalar constants, int64 shape constants, transformers' activations and the
 * reductions whose axes moved from an attribute to an input at opset 18.
 */
import { UsageError } from '../lib/errors.js'
import { GraphBuilder, int64s } from '../onnx/graph-builder.js'

export const BATCH = 'batch_size'
export const SEQUENCE = 'sequence_length'
/** torch.finfo(torch.float32).min: what transformers adds to masked attention scores. */
export const FLOAT32_MIN = -3.4028234663852886e38
export const NATIVE_OPSETS = { min: 17, max: 21 }

/** The opsets the native exporters write (LayerNormalization needs 17); exit 2 outside them. */
export function checkNativeOpset(opset: number): void {
  if (opset < NATIVE_OPSETS.min || opset > NATIVE_OPSETS.max) {
    throw new UsageError(`--opset ${opset} is outside what the native exporter writes (${NATIVE_OPSETS.min} to ${NATIVE_OPSETS.max})`, {
      code: 'UNSUPPORTED_OPSET',
      hint: 'LayerNormalization needs opset 17; pick an opset from 17 to 21, or use --exporter optimum.',
    })
  }
}

/** The lowest IR version that allows the opset (onnxruntime refuses older IR with newer opsets). */
export const irVersionFor = (opset: number): number => (opset >= 21 ? 10 : opset >= 19 ? 9 : 8)

export const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu', 'silu', 'swish'] as const

export class GraphOps {
  readonly g: GraphBuilder
  private readonly scalars = new Map<string, string>()

  constructor(
    readonly opset: number,
    graphName = 'main_graph',
  ) {
    this.g = new GraphBuilder(graphName)
  }

  scalar(value: number, type: 'float' | 'int64' = 'float'): string {
    const key = `${type}:${value}`
    let name = this.scalars.get(key)
    if (!name) {
      name = type === 'float' ? this.g.constant('const', [], new Float32Array([value])) : this.g.constant('const', [], int64s([value]))
      this.scalars.set(key, name)
    }
    return name
  }

  ints(values: number[]): string {
    return this.g.constant('shape', [values.length], int64s(values))
  }

  /** One dimension of a value's shape, as an int64 scalar. */
  dim(x: string, axis: number): string {
    return this.g.op('Gather', [this.g.op('Shape', [x]), this.scalar(axis, 'int64')], { axis: 0 })
  }

  /** ReduceMean over `axes`, kept: the axes are an attribute up to opset 17 and an input from 18. */
  reduceMean(x: string, axes: number[]): string {
    return this.opset >= 18
      ? this.g.op('ReduceMean', [x, this.ints(axes)], { keepdims: 1 })
      : this.g.op('ReduceMean', [x], { axes, keepdims: 1 })
  }

  /** transformers' ACT2FN by name. */
  activation(x: string, name: string): string {
    const g = this.g
    switch (name) {
      case 'gelu': {
        // transformers' GELUActivation: 0.5 * x * (1 + erf(x / sqrt(2))).
        const erf = g.op('Erf', [g.op('Div', [x, this.scalar(Math.SQRT2)])])
        return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, this.scalar(1)])]), this.scalar(0.5)])
      }
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
      case 'gelu_fast': {
        // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        const cube = g.op('Mul', [g.op('Mul', [x, x]), x])
        const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [cube, this.scalar(0.044715)])]), this.scalar(Math.sqrt(2 / Math.PI))])
        return g.op('Mul', [g.op('Mul', [x, g.op('Add', [g.op('Tanh', [inner]), this.scalar(1)])]), this.scalar(0.5)])
      }
      case 'relu':
        return g.op('Relu', [x])
      case 'silu':
      case 'swish':
        return g.op('Mul', [x, g.op('Sigmoid', [x])])
      default:
        throw new UsageError(`Activation ${JSON.stringify(name)} is not supported by the native exporter (${ACTIVATIONS.join(', ')})`, {
          code: 'UNSUPPORTED_CONFIG',
          hint: 'Use --exporter optimum for this model.',
        })
    }
  }
}
