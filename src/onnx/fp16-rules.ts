/**
 * The op rules of the fp16 transform (to-fp16.ts): which ops stay in float32 and why, and which inputs and
 * outputs of a converted op do not follow its float type. Kept apart from the rewrite so that the lists,
 * each with its reason, can be read (and argued with) in one place; docs/quantize.md repeats them.
 */
import { AttributeType, type NodeProto } from './proto.js'

/**
 * Ops kept in float32 by default: `--keep-fp32 op,op` replaces this list. Each is here for its numbers,
 * not because fp16 is invalid for it (that is unsupportedReason below, which no flag turns off):
 *
 * - Resize, Upsample: the output-to-input coordinate transform runs in the data type; fp16 has an ulp of 1
 *   from 1024 and of 2 from 2048, so pixel positions of large images snap; and `scales` must stay float32.
 * - Range: its length is ceil((limit - start) / delta), which fp16 rounding changes; ONNX defines no fp16
 *   Range at all (see unsupportedReason), so a float Range is kept either way.
 * - CumSum: a running sum grows with the axis length and its fp16 error with it (NVIDIA AutoCast keeps a
 *   deep CumSum in fp32 for the same reason).
 * - TopK: fp16 rounding turns close values into ties, which changes the indices, the output that matters.
 * - NonMaxSuppression, RoiAlign: box coordinates in pixels lose precision in fp16 (and NonMaxSuppression
 *   has no fp16 type in ONNX).
 * - RandomUniform(Like), RandomNormal(Like), Bernoulli, Multinomial: sampling in fp16 changes the
 *   distribution (small uniforms flush to 0, normal tails clip) and there is nothing to gain.
 * - EyeLike: no arithmetic, and its 0/1 output casts exactly, so keeping it costs a Cast and spares a
 *   rewrite of its dtype attribute.
 *
 * onnxconverter-common's DEFAULT_OP_BLOCK_LIST has most of these (plus Min/Max, for old onnxruntime CPU
 * kernels, and the ai.onnx.ml ops, which are kept here by their domain).
 */
export const DEFAULT_KEEP_FP32_OPS: readonly string[] = [
  'Resize', 'Upsample', 'Range', 'CumSum', 'TopK', 'NonMaxSuppression', 'RoiAlign',
  'RandomUniform', 'RandomUniformLike', 'RandomNormal', 'RandomNormalLike', 'Bernoulli', 'Multinomial', 'EyeLike',
]

/**
 * Ops of the default domain whose ONNX type constraints admit no float16 input at the given opset: an fp16
 * input makes the model invalid (onnxruntime refuses to load it: "Type 'tensor(float16)' of input
 * parameter ... is invalid"). Found by loading a one-node fp16 model of every op in onnxruntime 1.30.
 * The value is the first opset that admits float16 (Infinity: none does).
 */
const NO_FP16_BEFORE: Readonly<Record<string, number>> = {
  Range: Infinity,
  Celu: Infinity,
  NonMaxSuppression: Infinity,
  IsInf: 20,
}

/** Ops whose values are sequences, maps or optionals: the transform follows tensors only. */
const NON_TENSOR_OPS = new Set([
  'SequenceAt', 'SequenceConstruct', 'SequenceEmpty', 'SequenceErase', 'SequenceInsert', 'SequenceLength',
  'SequenceMap', 'SplitToSequence', 'ConcatFromSequence', 'Optional', 'OptionalGetElement', 'OptionalHasElement',
])

/**
 * Why a node must stay in float32 whatever the block list says, or undefined when it may be converted:
 * - ops of other domains (com.microsoft, ai.onnx.ml, custom): their type constraints are not known here;
 * - nodes holding subgraphs (If, Loop, Scan): their bodies are typed for float32 and not rewritten;
 * - ops with no fp16 type in ONNX at the model's opset (NO_FP16_BEFORE);
 * - sequence and optional ops;
 * - QuantizeLinear/DequantizeLinear: their scales fix the float type (float32 only before opset 19) and
 *   they belong to the int8 transform.
 */
export function unsupportedReason(node: NodeProto, opset: number): string | undefined {
  if (node.domain && node.domain !== 'ai.onnx') return `op of domain ${node.domain}, whose types this transform does not know`
  if ((node.attribute ?? []).some((a) => a.type === AttributeType.GRAPH || a.type === AttributeType.GRAPHS || a.g || (a.graphs?.length ?? 0) > 0)) {
    return 'holds a subgraph, which is not converted'
  }
  const since = NO_FP16_BEFORE[node.opType]
  if (since !== undefined && opset < since) {
    return since === Infinity ? 'ONNX defines no float16 type for it' : `ONNX admits float16 for it from opset ${since} (the model has ${opset})`
  }
  if (NON_TENSOR_OPS.has(node.opType)) return 'works on sequences or optionals, which this transform does not follow'
  if (node.opType === 'QuantizeLinear' || node.opType === 'DequantizeLinear') return 'Q/DQ scales fix the float type; left to the int8 transform'
  return undefined
}

/**
 * Inputs of a converted op that must stay float32: Resize's and Upsample's `scales` are tensor(float) only
 * in every opset.
 */
export const FP32_ONLY_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Resize: [2],
  Upsample: [1],
}

/**
 * Inputs whose type is free of the op's float type (any float is valid), so a converted op takes them in
 * whatever precision they already have instead of through a Cast: what Cast, Shape and Size read; Pow's
 * exponent (T1); Dropout's ratio (T1); Resize's roi (T2); the input of the *Like generators (T1).
 */
export const FREE_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Cast: [0],
  CastLike: [0],
  Shape: [0],
  Size: [0],
  Pow: [1],
  Dropout: [1],
  Resize: [1],
  EyeLike: [0],
  RandomNormalLike: [0],
  RandomUniformLike: [0],
}

/**
 * Outputs that stay float32 when the op computes in fp16: LayerNormalization's Mean and InvStdDev are of
 * type U (float32 or bfloat16, set by stash_type), not of the input's type T.
 */
export const FP32_OUTPUTS: Readonly<Record<string, readonly number[]>> = {
  LayerNormalization: [1, 2],
}

/** Ops whose output type is an attribute (`dtype`) rather than the type of their inputs. */
export const DTYPE_ATTRIBUTE_OPS = new Set(['EyeLike', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli'])

/**
 * Ops that onnxruntime 1.30's CPU provider has no fp16 kernel for on x86-64, found by loading a one-node
 * fp16 model of each op and reading back the optimized graph: onnxruntime runs them anyway, by inserting
 * its own Cast pairs around them (its InsertCastTransformer), so they compute in float32 between fp16
 * tensors. They stay fp16 in the model, since TensorRT (the target) has fp16 kernels for them; only
 * validation on the CPU sees float32 arithmetic with fp16 rounding at each op boundary. The ops that do
 * have fp16 CPU kernels are the data-movement ones (Reshape, Transpose, Concat, Slice, Gather, ...),
 * LayerNormalization, Clip, Max, Min, IsNaN, Round, Sign. For docs/quantize.md and the report, not for
 * the rewrite.
 */
export const ORT_CPU_CASTS_AROUND: readonly string[] = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Tanh', 'Sigmoid', 'Relu', 'LeakyRelu',
  'Elu', 'Selu', 'Erf', 'Gelu', 'Softmax', 'LogSoftmax', 'MatMul', 'Gemm', 'Conv', 'ConvTranspose',
  'BatchNormalization', 'InstanceNormalization', 'GroupNormalization', 'ReduceMean', 'ReduceSum', 'ReduceMax',
  'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceSumSquare', 'ReduceLogSumExp',
  'Where', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Abs', 'Neg', 'Floor', 'Ceil',
  'Cos', 'Sin', 'Tan', 'Atan', 'Acos', 'Asin', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'MaxPool',
  'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'Tile', 'Pad', 'Dropout', 'Mean', 'Sum',
  'HardSigmoid', 'HardSwish', 'Softplus', 'Softsign', 'Einsum', 'Trilu', 'PRelu', 'ThresholdedRelu', 'Mish',
  'LpNormalization', 'MeanVarianceNormalization', 'DepthToSpace', 'SpaceToDepth', 'GridSample', 'Det', 'Hardmax',
  'OneHot', 'NonZero', 'ArgMax', 'ArgMin', 'GRU', 'LSTM', 'RNN', 'LRN', 'DFT', 'STFT', 'Unique', 'MaxRoiPool', 'Swish',
]
